/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-trust.h: whether a program or module file may be run or mapped by a
 * process that may be root.  libc only: the hook's first stage compiles it
 * in (for its second stage), the libtpms check client uses it for the
 * helper it executes.
 */
#pragma once

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when @path is a regular file owned by root or by the effective user,
 * writable by neither group nor others, in a directory that is the same
 * (owned by root or the effective user, not group- or other-writable).
 * Symbolic links are followed (stat): what counts is the file reached. */
bool msvm_path_is_trusted(const char *path);

#ifdef __cplusplus
}
#endif
