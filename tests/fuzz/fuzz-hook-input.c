/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-hook-input.c: the hook's first stage reading libvirt's domain XML from
 * its standard input and searching it for the project's namespace
 * (hooks/msvm-hook-input.c), with small buffers so that growing, the
 * overflow window and matches across reads are all reached by small inputs.
 *
 * Input: byte 0 chooses the first buffer size (at least the namespace's
 * length), byte 1 the largest input kept (in units of 4 bytes), the rest is
 * standard input, given through an anonymous file (memfd; no file system).
 * Oracle: "found" is exactly whether memmem() finds the namespace in the
 * whole input, and a kept input is the input, byte for byte, NUL-terminated;
 * an input shorter than the limit is always kept.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "msvm-domain.h"
#include "msvm-hook-input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NS_LEN (sizeof(MSVM_METADATA_NS) - 1)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  size_t first_cap, max_keep, len = 0, in_len;
  const uint8_t *in;
  char *buf = NULL;
  gboolean expect;
  int fd, rc;

  if (size < 2)
    return 0;
  first_cap = NS_LEN + data[0] % 64;
  max_keep = (size_t)data[1] * 4;
  in = data + 2;
  in_len = size - 2;

  fd = memfd_create("fuzz-hook-stdin", MFD_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  for (size_t done = 0; done < in_len;) {
    ssize_t n = write(fd, in + done, in_len - done);
    g_assert_cmpint(n, >, 0);
    done += (size_t)n;
  }
  g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);

  rc = msvm_hook_read_input(fd, first_cap, max_keep, &buf, &len);
  close(fd);
  expect = in_len >= NS_LEN && memmem(in, in_len, MSVM_METADATA_NS, NS_LEN) != NULL;
  g_assert_cmpint(rc, ==, expect ? 1 : 0);
  if (rc == 1 && buf != NULL) {
    g_assert_cmpuint(len, ==, in_len);
    g_assert_true(memcmp(buf, in, in_len) == 0);
    g_assert_cmpint(buf[len], ==, '\0');
  } else {
    g_assert_null(buf);
    g_assert_cmpuint(len, ==, 0);
  }
  if (rc == 1 && in_len < max_keep)
    g_assert_nonnull(buf);
  free(buf);
  return 0;
}
