/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-io.h: reading and writing whole buffers on a file descriptor, the
 * one place that retries EINTR and short transfers.  libc only (no GLib):
 * the hook's first stage, which links nothing else, compiles it in too.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read until @len bytes or end of file; *@ret_got says how many came (also
 * on failure).  false with errno set on a read error. */
bool msvm_read_full(int fd, void *buf, size_t len, size_t *ret_got);

/* Write all @len bytes; false with errno set on a write error. */
bool msvm_write_full(int fd, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
