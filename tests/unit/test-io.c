/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-io: util/msvm-io.h's deadline-bounded loops.  A timed send to a
 * socket whose peer stops reading must come back with ETIMEDOUT at its
 * deadline (the libtpms check writes its request so: a helper that never
 * reads must not hold the hook); a plain send() on a blocking socket would
 * sleep until the peer read everything.
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "msvm-io.h"

static void
test_write_until_peer_stops_reading(void)
{
  gsize len = 8 * 1024 * 1024; /* far more than a socket buffer */
  g_autofree guint8 *data = g_malloc0(len);
  int pair[2];
  gint64 start;
  gboolean ok;

  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
  start = msvm_monotonic_us();
  ok = msvm_write_full_until(pair[1], data, len, start + 300 * 1000, TRUE);
  g_assert_false(ok);
  g_assert_cmpint(errno, ==, ETIMEDOUT);
  /* (well before the 60 s the test may take: it did not block) */
  g_assert_cmpint(msvm_monotonic_us() - start, <, 10 * G_USEC_PER_SEC);
  close(pair[0]);
  close(pair[1]);
}

static void
test_write_until_peer_gone(void)
{
  static const guint8 data[16] = { 0 };
  int pair[2];

  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
  close(pair[0]);
  /* EPIPE, not SIGPIPE (which would end this test) */
  g_assert_false(msvm_write_full_until(pair[1], data, sizeof(data),
                                       msvm_monotonic_us() + G_USEC_PER_SEC, TRUE));
  g_assert_cmpint(errno, ==, EPIPE);
  close(pair[1]);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/io/write-until-peer-stops-reading", test_write_until_peer_stops_reading);
  g_test_add_func("/io/write-until-peer-gone", test_write_until_peer_gone);
  return g_test_run();
}
