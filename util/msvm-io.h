/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-io.h: reading and writing whole buffers on a file descriptor, the
 * one place that retries EINTR and short transfers.  libc only (no GLib):
 * the hook's first stage, which links nothing else, compiles it in too.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read until @len bytes or end of file; *@ret_got says how many came (also
 * on failure).  false with errno set on a read error. */
bool msvm_read_full(int fd, void *buf, size_t len, size_t *ret_got);

/* Write all @len bytes; false with errno set on a write error. */
bool msvm_write_full(int fd, const void *buf, size_t len);

/* CLOCK_MONOTONIC in microseconds: the clock of g_get_monotonic_time(), so
 * that GLib code can compute the deadlines below. */
int64_t msvm_monotonic_us(void);

/* msvm_read_full, but only until @deadline_us: false with errno ETIMEDOUT
 * when it passed first (*@ret_got says what came meanwhile). */
bool msvm_read_full_until(int fd, void *buf, size_t len, int64_t deadline_us, size_t *ret_got);

/* msvm_write_full until @deadline_us (ETIMEDOUT); @socket: send() with
 * MSG_NOSIGNAL, so that a peer gone is EPIPE, not SIGPIPE, and
 * MSG_DONTWAIT, so that a peer that stops reading cannot hold it past the
 * deadline (a pipe must be O_NONBLOCK for that). */
bool msvm_write_full_until(int fd, const void *buf, size_t len, int64_t deadline_us,
                           bool socket);

#ifdef __cplusplus
}
#endif
