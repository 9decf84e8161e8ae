/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-cause.h: why a lower layer failed, before it is a return code.
 *
 * The state-file codec and the re-key engine (tpm/) say what went wrong in
 * their own terms: the key does not open the state, the state is damaged,
 * it is a format this project does not handle, or swtpm holds it.  Callers
 * inside the project decide on the cause (the store tries other
 * generations only for MSVM_CAUSE_WRONG_KEY: a truncated file is not a
 * reason to try every key it holds).  At the boundaries (the provider's
 * public functions, the CLI's reports, the hook's messages, job error
 * codes) msvm_error_to_return_code() and msvm_error_to_public() turn a
 * cause into its Hyper-V return code, once.  Private to the project: the
 * installed msvm-error.h has only MSVM_ERROR.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MSVM_CAUSE_ERROR (msvm_cause_error_quark())

typedef enum {
  MSVM_CAUSE_WRONG_KEY,    /* the key does not open it (HMAC mismatch; plaintext vs encrypted) -> 32775 */
  MSVM_CAUSE_CORRUPT,      /* truncated or malformed bytes, a state libtpms rejects -> 32775 */
  MSVM_CAUSE_UNSUPPORTED,  /* a format or version this project does not handle -> 32775 */
  MSVM_CAUSE_IN_USE,       /* swtpm (or another re-key) holds the state -> 32774 */
} MsvmCause;

GQuark msvm_cause_error_quark(void);

/* TRUE when @error stands for the return code @rc (msvm_error_to_return_code),
 * whichever domain says so; FALSE for NULL. */
gboolean msvm_error_is(const GError *error, guint32 rc);

/* The boundary: an error of any other domain (a cause, G_IO_ERROR, ...)
 * becomes the MSVM_ERROR of its return code, its message kept.  NULL or
 * *NULL: nothing. */
void msvm_error_to_public(GError **error);

G_END_DECLS
