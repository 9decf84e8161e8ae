/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-file.h: crash-safe replacement of a whole file, for the store, the
 * stash of `translate` and anything else that must never be half-written.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* Write @data to "@path.tmp" (mode @mode, O_EXCL after removing a leftover),
 * fsync, rename onto @path, fsync the directory; a fault point before each
 * step (store-write, store-fsync, store-rename, store-fsync-dir).  On failure
 * @path is as it was and the temporary file removed.  Errors: 32769 for
 * EACCES/EPERM/EROFS, else 32768. */
gboolean msvm_atomic_write(const char *path, const void *data, gsize len, mode_t mode,
                           GError **error);

/* fsync a directory (so that a rename or unlink in it is durable). */
gboolean msvm_fsync_dir(const char *dir, GError **error);

G_END_DECLS
