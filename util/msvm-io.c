/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-io.c: whole-buffer reads and writes.
 */
#include "msvm-io.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t
msvm_monotonic_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wait until @fd is ready for @events or @deadline_us: 1 ready, 0 the
 * deadline passed (errno ETIMEDOUT), -1 an error. */
static int
wait_ready(int fd, short events, int64_t deadline_us)
{
  for (;;) {
    int64_t left = deadline_us - msvm_monotonic_us();
    struct pollfd pfd = { .fd = fd, .events = events };
    int r;

    if (left <= 0) {
      errno = ETIMEDOUT;
      return 0;
    }
    r = poll(&pfd, 1, left / 1000 + 1 > INT_MAX ? INT_MAX : (int)(left / 1000 + 1));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r > 0)
      return 1;
  }
}

/* The one read loop: until @len bytes or end of file, EINTR retried;
 * @timed: poll first and give up at @deadline_us (ETIMEDOUT), EAGAIN is
 * waited out.  Untimed it makes no system call but read() (the sandboxed
 * libtpms child may call nothing else). */
static bool
read_loop(int fd, void *buf, size_t len, bool timed, int64_t deadline_us, size_t *ret_got)
{
  unsigned char *p = buf;
  size_t got = 0;

  while (got < len) {
    ssize_t n;
    if (timed && wait_ready(fd, POLLIN, deadline_us) <= 0) {
      *ret_got = got;
      return false;
    }
    n = read(fd, p + got, len - got);
    if (n < 0 && (errno == EINTR || (timed && errno == EAGAIN)))
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

/* The one write loop (see read_loop); @socket: send() with MSG_NOSIGNAL. */
static bool
write_loop(int fd, const void *buf, size_t len, bool timed, int64_t deadline_us, bool socket)
{
  const unsigned char *p = buf;
  size_t done = 0;

  while (done < len) {
    ssize_t n;
    if (timed && wait_ready(fd, POLLOUT, deadline_us) <= 0)
      return false;
    /* (a timed send never blocks: on a blocking socket a plain send() of
     * more than the peer reads would sleep past the deadline) */
    n = socket ? send(fd, p + done, len - done, MSG_NOSIGNAL | (timed ? MSG_DONTWAIT : 0))
               : write(fd, p + done, len - done);
    if (n < 0 && (errno == EINTR || (timed && errno == EAGAIN)))
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

bool
msvm_read_full(int fd, void *buf, size_t len, size_t *ret_got)
{
  return read_loop(fd, buf, len, false, 0, ret_got);
}

bool
msvm_write_full(int fd, const void *buf, size_t len)
{
  return write_loop(fd, buf, len, false, 0, false);
}

bool
msvm_read_full_until(int fd, void *buf, size_t len, int64_t deadline_us, size_t *ret_got)
{
  return read_loop(fd, buf, len, true, deadline_us, ret_got);
}

bool
msvm_write_full_until(int fd, const void *buf, size_t len, int64_t deadline_us, bool socket)
{
  return write_loop(fd, buf, len, true, deadline_us, socket);
}
