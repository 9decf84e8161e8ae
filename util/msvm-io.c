/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-io.c: whole-buffer reads and writes.
 */
#include "msvm-io.h"

#include <errno.h>
#include <unistd.h>

bool
msvm_read_full(int fd, void *buf, size_t len, size_t *ret_got)
{
  unsigned char *p = buf;
  size_t got = 0;

  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      *ret_got = got;
      return false;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  *ret_got = got;
  return true;
}

bool
msvm_write_full(int fd, const void *buf, size_t len)
{
  const unsigned char *p = buf;
  size_t done = 0;

  while (done < len) {
    ssize_t n = write(fd, p + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    if (n == 0) {
      errno = EIO;
      return false;
    }
    done += (size_t)n;
  }
  return true;
}
