/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate.h: checking a decrypted TPM 2.0 state with libtpms.
 *
 * libtpms keeps global state, so the check runs in another process:
 *  - msvm_tpm_validate_blobs() does the check itself (TPMLIB_ChooseTPMVersion,
 *    TPMLIB_RegisterCallbacks serving the blobs, TPMLIB_SetState,
 *    TPMLIB_ValidateState; never TPMLIB_MainInit).  Call it at most once per
 *    process: in the helper executable `msvm-security-tpm-validate`, or in a
 *    child forked by a single-threaded program (the hook, DESIGN.md 9).
 *    It lives in msvm_tpm_validate_core_dep (links libtpms).
 *  - msvm_tpm_validate_in_helper() runs that helper with the blobs on its
 *    standard input (the only place the plaintext goes) and is what the
 *    library uses.  It lives in msvm_tpm_dep (no libtpms).
 *
 * The pipe format: the 8 bytes "MSVMTPM1", then for permall and
 * volatilestate in that order a big-endian 32-bit length and that many
 * bytes (length 0: absent).  The helper exits 0 when the state is valid,
 * 1 when it is not (one line on standard error, no secret), 2 on a protocol
 * or usage error.
 *
 * Finding the helper: $MSVM_SECURITY_LIBEXECDIR (read with secure_getenv,
 * for tests and relocated installs) when set; else MSVM_LIBEXECDIR when
 * the helper is installed there; else the build tree (MSVM_BUILDDIR/tpm),
 * for running uninstalled.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MSVM_TPM_VALIDATE_HELPER "msvm-security-tpm-validate"
#define MSVM_TPM_VALIDATE_MAGIC "MSVMTPM1"

/* Errors: MSVM_RC_INVALID_STATE when libtpms rejects the state. */
gboolean msvm_tpm_validate_blobs(GBytes *permall, GBytes *volatilestate, GError **error);

/* Read the pipe format from @fd and validate (for the helper's main and a
 * forked child).  MSVM_RC_INVALID_PARAMETER for a malformed stream. */
gboolean msvm_tpm_validate_fd(int fd, GError **error);

/* Path of the helper executable (see above), or NULL with an error. */
char *msvm_tpm_validate_helper_path(GError **error);

/* Validate in the helper process.  @volatilestate may be NULL. */
gboolean msvm_tpm_validate_in_helper(GBytes *permall, GBytes *volatilestate,
                                     GError **error);

/* Validate in a child forked from this process (msvm_tpm_validate_core_dep).
 * Only for single-threaded programs (the hook): fork() in a threaded
 * process is not safe.  Same errors as msvm_tpm_validate_blobs(). */
gboolean msvm_tpm_validate_in_child(GBytes *permall, GBytes *volatilestate, GError **error);

/* How msvm_rekey_state_dir() and msvm_state_dir_check() validate: by
 * default msvm_tpm_validate_in_helper; the single-threaded hook sets
 * msvm_tpm_validate_in_child once at start-up (DESIGN.md section 9: it must
 * not execute a helper outside the AppArmor-allowed paths).  NULL restores
 * the default.  Not thread-safe: set it before any re-key. */
typedef gboolean (*MsvmTpmValidator)(GBytes *permall, GBytes *volatilestate, GError **error);
void msvm_tpm_set_validator(MsvmTpmValidator validator);
MsvmTpmValidator msvm_tpm_get_validator(void);

/* The pipe format for @permall / @volatilestate (a wiping GBytes). */
GBytes *msvm_tpm_validate_serialize(GBytes *permall, GBytes *volatilestate);

G_END_DECLS
