/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate-priv.h: between the libtpms check (msvm-tpm-validate-core.c)
 * and its sandbox (msvm-tpm-sandbox.c).  The sandboxed child reports a
 * fixed-size verdict, never text: its parent writes the message.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  MSVM_VERDICT_VALID = 1,
  MSVM_VERDICT_REJECT_PERMANENT, /* value: libtpms's error */
  MSVM_VERDICT_REJECT_VOLATILE,  /* value: libtpms's error */
  MSVM_VERDICT_NOT_VALIDATED,    /* value: libtpms's error */
  MSVM_VERDICT_LIBTPMS_SETUP,    /* value: libtpms's error (choose version, callbacks) */
  MSVM_VERDICT_SANDBOX_SETUP,    /* value: MsvmSandboxStep << 16 | errno */
} MsvmVerdictKind;

typedef struct {
  guint32 kind;
  guint32 value;
} MsvmVerdict;

/* Before the sandbox: libtpms's output off, TPM 2.0 chosen, the NVRAM
 * callbacks serving @permall / @volatilestate (kept referenced by pointer:
 * they must live until msvm_tpm_validate_run()).  Parses nothing. */
gboolean msvm_tpm_validate_prepare(GBytes *permall, GBytes *volatilestate, MsvmVerdict *ret);

/* In the sandbox: TPMLIB_SetState and TPMLIB_ValidateState on the blobs in
 * memory; memory allocation is the only system call it needs. */
void msvm_tpm_validate_run(MsvmVerdict *ret);

/* The message for a verdict other than VALID, and its MSVM_RC_* code. */
void msvm_tpm_verdict_to_error(const MsvmVerdict *v, GError **error);

G_END_DECLS
