/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-file.h: crash-safe replacement of a whole file, and directories that
 * survive a crash, for the store, the stash of `translate`, the output of
 * `get-key-protector --output` and anything else that must never be
 * half-written.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef enum {
  /* the temporary file is "@path.tmp": the caller holds a lock that keeps
   * other writers of @path away (and removes a leftover under it) */
  MSVM_ATOMIC_WRITE_LOCKED = 0,
  /* a unique "@path.tmp-XXXXXX": for a file that nothing locks (a path an
   * administrator gave); a crash may leave one behind */
  MSVM_ATOMIC_WRITE_UNIQUE_TEMP = 1 << 0,
} MsvmAtomicWriteFlags;

/* Write @data to a temporary file beside @path (mode @mode, O_EXCL,
 * O_NOFOLLOW), fsync it, rename it onto @path, fsync the directory; a fault
 * point before each step (store-write, store-fsync, store-rename,
 * store-fsync-dir).  On failure @path is as it was and the temporary file
 * removed.  Errors: 32769 for EACCES/EPERM/EROFS, else 32768. */
gboolean msvm_atomic_write(const char *path, const void *data, gsize len, mode_t mode,
                           MsvmAtomicWriteFlags flags, GError **error);

/* fsync a directory (so that a rename, unlink or mkdir in it is durable). */
gboolean msvm_fsync_dir(const char *dir, GError **error);

/* mkdir @path with @mode; when it was created, fsync its parent so that a
 * crash does not lose it.  An existing @path is left as it is
 * (*@ret_created FALSE; @ret_created may be NULL). */
gboolean msvm_mkdir_durable(const char *path, mode_t mode, gboolean *ret_created,
                            GError **error);

/* msvm_mkdir_durable for @path and each missing parent, outermost first. */
gboolean msvm_mkdir_with_parents_durable(const char *path, mode_t mode, GError **error);

G_END_DECLS
