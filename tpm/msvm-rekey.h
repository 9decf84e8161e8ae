/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-rekey.h: re-keying a swtpm TPM 2.0 state directory (DESIGN.md section 6).
 *
 * The directory is libvirt's `<swtpm>/<uuid>/tpm2`.  The operation locks
 * swtpm's .lock with an open-file-description lock, decrypts every state file
 * under the old passphrase (or reads it as plaintext), validates it with
 * libtpms in a helper process, encrypts under the new passphrase, verifies,
 * and replaces the directory as a whole with renameat2(RENAME_EXCHANGE).
 */
#pragma once

#include <glib.h>

#include "msvm-state-file.h" /* MsvmStateKdf, MsvmStateCipher */

G_BEGIN_DECLS

typedef struct {
  /* NULL: the state is plaintext (old) / not allowed (new). */
  const guint8 *passphrase;
  gsize passphrase_len;
  MsvmStateKdf kdf;
  MsvmStateCipher cipher; /* for the new state only; the old one is read from the header */
} MsvmStateKey;

/*
 * Re-key @state_dir (the tpm2 directory) from @old to @new.
 * Errors: MSVM_RC_IN_USE (lock held by swtpm), MSVM_RC_INVALID_STATE (wrong
 * passphrase, state that does not decrypt or validate, TPM 1.2, no permall),
 * MSVM_RC_NOT_SUPPORTED (no RENAME_EXCHANGE), MSVM_RC_ACCESS_DENIED,
 * MSVM_RC_FAILED (I/O, full disk).  On failure every byte of the directory
 * is as it was.
 */
gboolean msvm_rekey_state_dir(const char *state_dir, const MsvmStateKey *old_key,
                              const MsvmStateKey *new_key, GError **error);

/* Delete what an interrupted re-key of @state_dir left beside it (the side
 * directory "<parent>/.<name>.msvm-rekey", which after a crash past the
 * exchange holds the copy under the OLD passphrase).  Takes swtpm's lock
 * like a re-key (32774 while swtpm or a re-key runs); nothing to do is
 * success.  The next re-key does this too. */
gboolean msvm_rekey_remove_leftover(const char *state_dir, GError **error);

/* Check, without changing anything, that every state file of @state_dir opens
 * under @key (NULL passphrase: is plaintext) and validates. */
gboolean msvm_state_dir_check(const char *state_dir, const MsvmStateKey *key,
                              GError **error);

G_END_DECLS
