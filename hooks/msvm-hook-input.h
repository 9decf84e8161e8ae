/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-input.h: the hook's first stage reading libvirt's domain XML from
 * its standard input (msvm-hook-input.c).  libc only, like the first stage;
 * private (the first stage and tests/fuzz/fuzz-hook-input.c).
 */
#pragma once

#include <stddef.h>

/* Reads @fd to the end, looking for the project's metadata namespace
 * (MSVM_METADATA_NS).  The buffer starts at @first_cap bytes and doubles
 * while it is smaller than @max_keep; an input that does not fit the
 * buffer it reached then is still read to the end and searched (in a
 * window that keeps the last bytes of each read), but not kept.
 *
 * Returns 1 when the namespace occurs, with the whole input in *ret_buf
 * (NUL-terminated, *ret_len bytes, free()) or *ret_buf NULL when it was too
 * large to keep; 0 when it does not occur (*ret_buf NULL); -1 on a read or
 * allocation error (errno set).  An input shorter than @max_keep is always
 * kept. */
int msvm_hook_read_input(int fd, size_t first_cap, size_t max_keep, char **ret_buf,
                         size_t *ret_len);
