/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * free-canary.so: an LD_PRELOAD library for the freed-secrets test (issue
 * 9: "every buffer that held a secret must not outlive its use").
 *
 * It wraps free() and realloc() and looks into every block given back to
 * malloc for the canaries: byte strings listed in hexadecimal, one per line,
 * in the file $MSVM_TEST_CANARY_FILE (test secrets: a test's passphrases, a
 * store's seed).  A block that still holds one is reported, with the
 * canary's line number, the block's size and a backtrace, appended to
 * $MSVM_TEST_CANARY_REPORT.  A secret the program wiped before freeing it
 * is not found; one left in a buffer of GLib, libxml2 or OpenSSL is.
 *
 * realloc() always moves the block (malloc, copy, free), so that a buffer
 * that grew while holding a secret (a GString, a GByteArray) is looked
 * into at each growth too.  Blocks still allocated at exit are not looked
 * into: the kernel drops them with the process.  Memory that glibc frees
 * from inside itself (not through free()) is not seen either.
 *
 * Only the process started with it is looked into: it takes itself out of
 * LD_PRELOAD for the programs that process runs.
 *
 * Test code only; never built into anything installed.  Not usable under
 * AddressSanitizer (which owns malloc).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);

#define MAX_CANARIES 32
#define MAX_CANARY_LEN 256

static unsigned char canaries[MAX_CANARIES][MAX_CANARY_LEN];
static size_t canary_len[MAX_CANARIES];
static int canary_line[MAX_CANARIES];
static int n_canaries;
static int report_fd = -1;
static __thread int busy;

static int
hex_value(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* (no malloc here: it runs before anything else of the program) */
static void
load_canaries(const char *path)
{
  static char text[MAX_CANARIES * (2 * MAX_CANARY_LEN + 1) + 1];
  size_t got = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int line = 1;
  size_t i = 0;

  if (fd < 0)
    return;
  while (got < sizeof(text) - 1) {
    ssize_t n = read(fd, text + got, sizeof(text) - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  text[got] = '\0';
  while (i < got && n_canaries < MAX_CANARIES) {
    size_t len = 0;
    while (i + 1 < got && hex_value(text[i]) >= 0 && hex_value(text[i + 1]) >= 0 &&
           len < MAX_CANARY_LEN) {
      canaries[n_canaries][len++] =
        (unsigned char)(hex_value(text[i]) << 4 | hex_value(text[i + 1]));
      i += 2;
    }
    if (len >= 8) {  /* shorter ones would match by chance */
      canary_len[n_canaries] = len;
      canary_line[n_canaries] = line;
      n_canaries++;
    }
    while (i < got && text[i] != '\n')
      i++;
    i++;
    line++;
  }
}

__attribute__((constructor)) static void
free_canary_init(void)
{
  const char *canary_file = getenv("MSVM_TEST_CANARY_FILE");
  const char *report = getenv("MSVM_TEST_CANARY_REPORT");
  void *frames[2];

  /* Only the program the test runs: not the programs it runs, such as the
   * libtpms check's helper, whose sandbox would kill it for the report's
   * write(). */
  unsetenv("LD_PRELOAD");
  if (canary_file == NULL || report == NULL)
    return;
  load_canaries(canary_file);
  report_fd = open(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  /* backtrace() loads libgcc_s (and allocates) the first time: now, not
   * inside free() */
  busy = 1;
  (void)backtrace(frames, 2);
  busy = 0;
}

static void
write_all(const char *text, size_t len)
{
  while (len > 0) {
    ssize_t n = write(report_fd, text, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    text += n;
    len -= (size_t)n;
  }
}

static void
look_into(void *ptr, const char *how)
{
  size_t size;

  if (ptr == NULL || n_canaries == 0 || report_fd < 0 || busy)
    return;
  busy = 1;
  size = malloc_usable_size(ptr);
  for (int i = 0; i < n_canaries; i++) {
    if (memmem(ptr, size, canaries[i], canary_len[i]) != NULL) {
      char line[160];
      void *frames[32];
      int depth = backtrace(frames, 32);
      int n = snprintf(line, sizeof(line),
                       "pid %ld: %s of a block of %zu bytes that holds canary %d\n",
                       (long)getpid(), how, size, canary_line[i]);
      write_all(line, (size_t)n);
      backtrace_symbols_fd(frames, depth, report_fd);
      write_all("--\n", 3);
      break;
    }
  }
  busy = 0;
}

void
free(void *ptr)
{
  look_into(ptr, "free");
  __libc_free(ptr);
}

void *
realloc(void *ptr, size_t size)
{
  void *moved;
  size_t old;

  if (ptr == NULL)
    return __libc_malloc(size);
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  moved = __libc_malloc(size);
  if (moved == NULL)
    return NULL;
  old = malloc_usable_size(ptr);
  memcpy(moved, ptr, old < size ? old : size);
  look_into(ptr, "realloc");
  __libc_free(ptr);
  return moved;
}
