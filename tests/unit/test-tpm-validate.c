/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libtpms check of decrypted TPM 2.0 states: through the helper
 * executable (what the library uses) and in a forked child (what the
 * single-threaded hook uses), on the golden states made by the real swtpm
 * and on damaged ones.
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "msvm-error.h"
#include "msvm-trust.h"
#include "msvm-rekey.h"
#include "msvm-state-file.h"
#include "msvm-tpm-validate.h"

/* the owner of the state the blobs come from: this test's user */
#define OWNER getuid(), getgid()

typedef MsvmTpmValidator Validator;

static GBytes *
golden_plain(const char *state, const char *file)
{
  g_autofree char *dir = g_build_filename(g_getenv("MSVM_TEST_DATADIR"), state, NULL);
  g_autofree char *path = g_build_filename(dir, "tpm2", file, NULL);
  g_autofree char *pass_path = g_build_filename(dir, "passphrase", NULL);
  g_autofree char *data = NULL;
  g_autofree char *pass = NULL;
  gsize len = 0, pass_len = 0;
  GBytes *plain = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  g_assert_true(g_file_get_contents(pass_path, &pass, &pass_len, NULL));
  g_assert_true(msvm_state_file_decode((guint8 *)data, len, (guint8 *)pass, pass_len,
                                       MSVM_KDF_PBKDF2, &plain, &error));
  g_assert_no_error(error);
  return plain;
}

static GBytes *
damaged(GBytes *b, gsize off, gsize len)
{
  gsize n;
  guint8 *d = g_bytes_unref_to_data(g_bytes_ref(b), &n);
  g_assert_cmpuint(off + len, <=, n);
  for (gsize i = off; i < off + len; i++)
    d[i] ^= 0x5a;
  return g_bytes_new_take(d, n);
}

static GBytes *
truncated(GBytes *b, gsize n)
{
  return g_bytes_new_from_bytes(b, 0, n);
}

static void
check(Validator v)
{
  g_autoptr(GBytes) perm = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.permall");
  g_autoptr(GBytes) vol = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.volatilestate");
  g_autoptr(GBytes) perm128 = golden_plain("tpm2state-aes128-pbkdf2", "tpm2-00.permall");
  g_autoptr(GError) error = NULL;

  /* valid: permall alone, permall + volatile */
  g_assert_true(v(perm, NULL, OWNER, &error));
  g_assert_no_error(error);
  g_assert_true(v(perm, vol, OWNER, &error));
  g_assert_no_error(error);

  /* the permanent state damaged in the middle, or truncated */
  {
    g_autoptr(GBytes) bad = damaged(perm, 40, 160);
    g_assert_false(v(bad, NULL, OWNER, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE);
    g_assert_nonnull(strstr(error->message, "libtpms"));
    g_clear_error(&error);
  }
  {
    g_autoptr(GBytes) bad = truncated(perm, g_bytes_get_size(perm) / 2);
    g_assert_false(v(bad, vol, OWNER, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE);
    g_clear_error(&error);
  }
  /* the volatile state damaged (checksum) or truncated */
  {
    g_autoptr(GBytes) bad = damaged(vol, 5000, 32);
    g_assert_false(v(perm, bad, OWNER, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE);
    g_assert_nonnull(strstr(error->message, "volatile"));
    g_clear_error(&error);
  }
  {
    g_autoptr(GBytes) bad = truncated(vol, 5000);
    g_assert_false(v(perm, bad, OWNER, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE);
    g_clear_error(&error);
  }
  /* the AES-128 golden TPM (made by swtpm_setup's default mode) too */
  {
    g_autoptr(GBytes) vol128 = golden_plain("tpm2state-aes128-pbkdf2",
                                            "tpm2-00.volatilestate");
    g_assert_true(v(perm128, vol128, OWNER, &error));
    g_assert_no_error(error);
  }
  /* garbage */
  {
    g_autoptr(GBytes) junk = g_bytes_new_static("not a TPM state at all", 22);
    g_assert_false(v(junk, NULL, OWNER, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE);
    g_clear_error(&error);
  }
}

static void
test_helper(void)
{
  check(msvm_tpm_validate_in_helper);
}

static void
test_child(void)
{
  check(msvm_tpm_validate_in_child);
}

/* A validation server that went away (killed here, as an OOM kill or the
 * swtpm user would) is a failure of the check (32768), never a timeout
 * (32772, which sends the administrator to a backup); the next start of
 * the server works again. */
static void
test_server_gone(void)
{
  g_autoptr(GBytes) perm = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.permall");
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf("/proc/self/task/%d/children", (int)getpid());
  g_autofree char *children = NULL;
  g_auto(GStrv) pids = NULL;
  int killed = 0;

  if (!g_file_get_contents(path, &children, NULL, NULL)) {
    g_test_skip("no /proc/self/task/PID/children here");
    return;
  }
  pids = g_strsplit(g_strstrip(children), " ", -1);
  for (gsize i = 0; pids[i] != NULL; i++) {
    if (*pids[i] != '\0' && kill((pid_t)g_ascii_strtoll(pids[i], NULL, 10), SIGKILL) == 0)
      killed++;
  }
  g_assert_cmpint(killed, >=, 1); /* the server started in main() */
  g_assert_false(msvm_tpm_validate_in_child(perm, NULL, OWNER, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_nonnull(strstr(error->message, "went away"));
  g_clear_error(&error);
  g_assert_true(msvm_tpm_validate_server_start(&error));
  g_assert_no_error(error);
  g_assert_true(msvm_tpm_validate_in_child(perm, NULL, OWNER, &error));
  g_assert_no_error(error);
}

/* The helper itself: bad input on stdin is exit 2, a valid stream exit 0. */
static void
test_helper_protocol(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *helper = msvm_tpm_validate_helper_path(&error);
  g_autoptr(GBytes) perm = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.permall");
  g_autoptr(GBytes) good = msvm_tpm_validate_serialize(perm, NULL, OWNER);
  struct {
    GBytes *input;
    int status;
  } cases[] = {
    { g_bytes_new_static("", 0), 2 },
    { g_bytes_new_static("MSVMTPM0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24), 2 },
    /* the previous format (no owner) */
    { g_bytes_new_static("MSVMTPM1\0\0\0\0\0\0\0\0", 16), 2 },
    { g_bytes_new_static("MSVMTPM2\0\0\0\0\0\0\0\0\xff\xff\xff\xff", 20), 2 },
    { g_bytes_new_static("MSVMTPM2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24), 1 },
    { g_bytes_new_static("MSVMTPM2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0x", 25), 2 },
    /* no owner */
    { g_bytes_new_static("MSVMTPM2\xff\xff\xff\xff\0\0\0\0\0\0\0\0\0\0\0\0", 24), 2 },
    { g_bytes_ref(good), 0 },
  };

  g_assert_no_error(error);
  g_assert_nonnull(helper);
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GSubprocess) p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                                &error, helper, NULL);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate(p, cases[i].input, NULL, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(g_subprocess_get_if_exited(p));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, cases[i].status);
    g_bytes_unref(cases[i].input);
  }
  /* arguments are refused: the blobs come over stdin only */
  {
    g_autoptr(GSubprocess) p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                                                helper, "/etc/passwd", NULL);
    g_assert_true(g_subprocess_wait(p, NULL, &error));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 2);
  }
}

static void
test_helper_missing(void)
{
  g_autoptr(GBytes) perm = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.permall");
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = g_strdup(g_getenv("MSVM_SECURITY_LIBEXECDIR"));

  g_setenv("MSVM_SECURITY_LIBEXECDIR", "/nonexistent", TRUE);
  g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_nonnull(strstr(error->message, "missing"));
  g_setenv("MSVM_SECURITY_LIBEXECDIR", saved, TRUE);
}

/* The helper is run only when the owner-and-mode rule trusts it (issue 9,
 * item 5): a copy of the built helper, group-writable, in a directory
 * others can write, or (as root) owned by another user, is refused with
 * 32769 and never run; the same copy, 0755 in a 0700 directory, runs. */
static void
test_helper_untrusted(void)
{
  g_autoptr(GBytes) perm = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.permall");
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = g_strdup(g_getenv("MSVM_SECURITY_LIBEXECDIR"));
  g_autofree char *tmp = g_dir_make_tmp("msvm-trust-XXXXXX", NULL);
  g_autofree char *built = g_build_filename(saved, "msvm-security-tpm-validate", NULL);
  g_autofree char *copy = g_build_filename(tmp, "msvm-security-tpm-validate", NULL);
  g_autofree char *data = NULL;
  gsize len = 0;

  g_assert_nonnull(tmp);
  g_assert_true(g_file_get_contents(built, &data, &len, NULL));
  g_assert_true(g_file_set_contents(copy, data, (gssize)len, NULL));
  g_setenv("MSVM_SECURITY_LIBEXECDIR", tmp, TRUE);

  g_assert_cmpint(chmod(tmp, 0700), ==, 0);
  g_assert_cmpint(chmod(copy, 0775), ==, 0);
  g_assert_false(msvm_path_is_trusted(copy));
  g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  g_assert_nonnull(strstr(error->message, "not trusted"));
  g_clear_error(&error);

  g_assert_cmpint(chmod(copy, 0755), ==, 0);
  g_assert_cmpint(chmod(tmp, 0777), ==, 0);
  g_assert_false(msvm_path_is_trusted(copy));
  g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  g_clear_error(&error);
  g_assert_cmpint(chmod(tmp, 0700), ==, 0);

  if (geteuid() == 0) {
    g_assert_cmpint(chown(copy, 65534, 65534), ==, 0);
    g_assert_false(msvm_path_is_trusted(copy));
    g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
    g_clear_error(&error);
    g_assert_cmpint(chown(copy, 0, 0), ==, 0);
    g_assert_cmpint(chmod(copy, 0755), ==, 0);
  }

  g_assert_true(msvm_path_is_trusted(copy));
  g_assert_true(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  g_assert_no_error(error);

  g_setenv("MSVM_SECURITY_LIBEXECDIR", saved, TRUE);
  g_unlink(copy);
  g_rmdir(tmp);
}

#ifdef MSVM_FAULT_INJECTION
/* A check that never answers: 32772 after the timeout (here the test-only
 * 500 ms) and the helper's 2 s margin.  The helper is a FAKE stand-in that
 * sleeps (the real libtpms does not hang on demand). */
static void
test_helper_timeout(void)
{
  g_autoptr(GBytes) perm = golden_plain("tpm2state-aes256-pbkdf2", "tpm2-00.permall");
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = g_strdup(g_getenv("MSVM_SECURITY_LIBEXECDIR"));
  g_autofree char *dir = g_dir_make_tmp("msvm-fake-helper-XXXXXX", &error);
  g_autofree char *fake = NULL;
  gint64 t0, ms;

  g_assert_no_error(error);
  fake = g_build_filename(dir, MSVM_TPM_VALIDATE_HELPER, NULL);
  g_assert_true(g_file_set_contents(fake,
                                    "#!/bin/sh\n# FAKE helper (test only): never answers\n"
                                    "exec sleep 600\n", -1, NULL));
  g_assert_cmpint(g_chmod(fake, 0755), ==, 0);
  g_setenv("MSVM_SECURITY_LIBEXECDIR", dir, TRUE);
  g_setenv("MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS", "500", TRUE);
  t0 = g_get_monotonic_time();
  g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  ms = (g_get_monotonic_time() - t0) / 1000;
  g_assert_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT);
  g_assert_cmpint(ms, >=, 500);
  g_assert_cmpint(ms, <, 500 + 2000 + 2000);
  g_clear_error(&error);

  /* the real helper, its sandboxed child stalled (test builds) */
  g_setenv("MSVM_SECURITY_LIBEXECDIR", saved, TRUE);
  g_setenv("MSVM_SECURITY_TEST_VALIDATE_STALL", "1", TRUE);
  t0 = g_get_monotonic_time();
  g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  ms = (g_get_monotonic_time() - t0) / 1000;
  g_assert_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT);
  g_assert_nonnull(strstr(error->message, "did not finish within 500 ms"));
  g_assert_cmpint(ms, <, 500 + 2000);
  g_unsetenv("MSVM_SECURITY_TEST_VALIDATE_STALL");
  g_unsetenv("MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS");
  g_clear_error(&error);

  /* the seccomp filter's default action: a system call outside the list
   * (open, after the filter is loaded) kills the child */
  g_setenv("MSVM_SECURITY_TEST_SANDBOX_FORBIDDEN", "1", TRUE);
  g_assert_false(msvm_tpm_validate_in_helper(perm, NULL, OWNER, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_nonnull(strstr(error->message, "system call its sandbox forbids"));
  g_unsetenv("MSVM_SECURITY_TEST_SANDBOX_FORBIDDEN");
  g_unlink(fake);
  g_rmdir(dir);
}
#endif

/* A re-key with the forked-child validator, as the hook runs it. */
static void
test_rekey_with_child_validator(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp("msvm-validate-XXXXXX", &error);
  g_autofree char *dir = g_build_filename(tmp, "tpm2", NULL);
  g_autofree char *src = g_build_filename(g_getenv("MSVM_TEST_DATADIR"),
                                          "tpm2state-plaintext", "tpm2", NULL);
  const char *files[] = { "tpm2-00.permall", "tpm2-00.volatilestate" };
  MsvmStateKey key = { .passphrase = (const guint8 *)"hook", .passphrase_len = 4,
                       .kdf = MSVM_KDF_PBKDF2, .cipher = MSVM_CIPHER_AES_256_CBC };

  g_assert_no_error(error);
  g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
  for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *from = g_build_filename(src, files[i], NULL);
    g_autofree char *to = g_build_filename(dir, files[i], NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(from, &data, &len, NULL));
    g_assert_true(g_file_set_contents(to, data, (gssize)len, NULL));
  }
  msvm_tpm_set_validator(msvm_tpm_validate_in_child);
  g_assert_true(msvm_tpm_get_validator() == msvm_tpm_validate_in_child);
  g_assert_true(msvm_rekey_state_dir(dir, NULL, &key, &error));
  g_assert_no_error(error);
  g_assert_true(msvm_state_dir_check(dir, &key, &error));
  g_assert_no_error(error);
  msvm_tpm_set_validator(NULL);
  g_assert_true(msvm_tpm_get_validator() == msvm_tpm_validate_in_helper);
  for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p = g_build_filename(dir, files[i], NULL);
    g_unlink(p);
  }
  {
    g_autofree char *lock = g_build_filename(dir, ".lock", NULL);
    g_unlink(lock);
  }
  g_rmdir(dir);
  g_rmdir(tmp);
}

int
main(int argc, char **argv)
{
  g_autofree char *helper_dir = NULL;

  g_test_init(&argc, &argv, NULL);
  helper_dir = g_build_filename(g_getenv("MSVM_BUILDDIR"), "tpm", NULL);
  g_setenv("MSVM_SECURITY_LIBEXECDIR", helper_dir, TRUE);
  /* setenv and fork-based checks first, while the process has no GLib
   * worker thread (GSubprocess starts one) */
  g_assert_true(msvm_tpm_validate_server_start(NULL));
  g_test_add_func("/tpm-validate/helper-missing", test_helper_missing);
  g_test_add_func("/tpm-validate/helper-untrusted", test_helper_untrusted);
  g_test_add_func("/tpm-validate/child", test_child);
  g_test_add_func("/tpm-validate/rekey-with-child-validator", test_rekey_with_child_validator);
  g_test_add_func("/tpm-validate/server-gone", test_server_gone);
  g_test_add_func("/tpm-validate/helper", test_helper);
#ifdef MSVM_FAULT_INJECTION
  g_test_add_func("/tpm-validate/helper-timeout", test_helper_timeout);
#endif
  g_test_add_func("/tpm-validate/helper-protocol", test_helper_protocol);
  return g_test_run();
}
