/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-rekey.h: re-keying a swtpm TPM 2.0 state directory (DESIGN.md section 6).
 *
 * The directory is libvirt's `<swtpm>/<uuid>/tpm2`.  The operation locks
 * swtpm's .lock with an open-file-description lock, decrypts every state file
 * under the old passphrase (or reads it as plaintext), validates it with
 * libtpms in a helper process, encrypts under the new passphrase, verifies,
 * and replaces the directory as a whole with renameat2(RENAME_EXCHANGE).
 * Thread-safe (no global state beyond the validator choice); it spawns the
 * validation helper with GSubprocess, never fork()s itself.
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
 * Re-key @state_dir (the tpm2 directory) from @old_key to @new_key.
 * @old_key NULL or with a NULL passphrase: every state file must be
 * plaintext (an encrypted one is refused); with a passphrase every file
 * must be encrypted (a plaintext one is refused): a state that is not what
 * the caller believes is an error, never guessed around.  @new_key must have
 * a passphrase (32773 otherwise).
 * Errors: MSVM_RC_IN_USE (lock held by swtpm or another re-key, or a
 * process has the directory as its --tpmstate: msvm-state-inuse.h; looked
 * at under the lock and again right before the exchange),
 * MSVM_RC_INVALID_STATE (wrong passphrase or KDF, state that does not
 * decrypt or validate, plaintext/encrypted not as given, TPM 1.2, no
 * permall, symlink or unexpected entry), MSVM_RC_NOT_SUPPORTED (no
 * RENAME_EXCHANGE), MSVM_RC_ACCESS_DENIED (read-only, permissions),
 * MSVM_RC_FAILED (I/O, full disk, validation helper missing).  On failure
 * every byte, owner and mode of the directory is as it was (a missing
 * .lock may have been created, as swtpm would) and no side directory is
 * left.  The libtpms check uses msvm_tpm_get_validator()
 * (msvm-tpm-validate.h).  Crash points (msvm_fault_point): see
 * docs/rekey.rst.
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
