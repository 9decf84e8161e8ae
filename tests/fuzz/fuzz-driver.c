/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-driver.c: runs a libFuzzer target over its seed corpus as a normal
 * GLib test (one test per corpus file), as GLib's fuzzing/driver.c does, so
 * that every build exercises the fuzz targets without libFuzzer.
 *
 * The corpus folder is given by MSVM_FUZZ_CORPUS (set by tests/meson.build).
 *
 * Each input must also leave standard error empty: library code never
 * prints, and libxml2's own reports (an encoding converter's "input
 * conversion failed") must not escape either (issue 9).  File descriptor 2
 * points at an anonymous file while the target runs.
 */
#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
run_one(gconstpointer user_data)
{
  const char *path = user_data;
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_get_contents(path, &contents, &len, &error));
  g_assert_no_error(error);
  /* A copy of exactly len bytes, so that ASan sees any over-read. */
  {
    g_autofree uint8_t *copy = g_memdup2(contents, len);
    int capture = memfd_create("fuzz-stderr", MFD_CLOEXEC);
    int saved;
    struct stat st;
    int rc;

    g_assert_cmpint(capture, >=, 0);
    fflush(stderr);
    saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    g_assert_cmpint(saved, >=, 0);
    g_assert_cmpint(dup2(capture, STDERR_FILENO), ==, STDERR_FILENO);
    rc = LLVMFuzzerTestOneInput(copy, len);
    fflush(stderr);
    g_assert_cmpint(dup2(saved, STDERR_FILENO), ==, STDERR_FILENO);
    close(saved);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpint(fstat(capture, &st), ==, 0);
    if (st.st_size > 0) {
      char text[512] = { 0 };
      ssize_t n = pread(capture, text, sizeof(text) - 1, 0);
      g_test_fail_printf("%s wrote %lld bytes on stderr: %s", path, (long long)st.st_size,
                         n > 0 ? g_strchomp(text) : "");
    }
    close(capture);
  }
}

int
main(int argc, char **argv)
{
  const char *corpus = g_getenv("MSVM_FUZZ_CORPUS");
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  const char *name;

  g_test_init(&argc, &argv, NULL);
  if (corpus == NULL)
    g_error("MSVM_FUZZ_CORPUS is not set");
  dir = g_dir_open(corpus, 0, &error);
  if (dir == NULL)
    g_error("%s", error->message);
  while ((name = g_dir_read_name(dir)) != NULL)
    g_ptr_array_add(names, g_strdup(name));
  g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
  if (names->len == 0)
    g_error("empty corpus %s", corpus);
  for (guint i = 0; i < names->len; i++) {
    const char *n = g_ptr_array_index(names, i);
    g_autofree char *test_path = g_strdup_printf("/fuzz/corpus/%s", n);
    g_test_add_data_func_full(test_path, g_build_filename(corpus, n, NULL), run_one, g_free);
  }
  return g_test_run();
}
