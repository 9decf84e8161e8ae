/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-error.h: the one GError domain of msvm-security.
 *
 * The error codes ARE the Hyper-V Msvm_SecurityService return codes
 * (DESIGN.md section 7), so that an error raised deep in the parser or the
 * re-key engine reaches the caller as the documented return value without a
 * translation table in between.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * MSVM_ERROR:
 *
 * The error domain of msvm-security (its name is
 * `msvm-security-error-quark`); the codes are #MsvmError, the Hyper-V
 * return values.
 */
#define MSVM_ERROR (msvm_error_quark())

/**
 * MsvmError:
 * @MSVM_RC_COMPLETED: 0, Completed with No Error (never an error's code).
 * @MSVM_RC_JOB_STARTED: 4096, Method Parameters Checked - Job Started (never
 *   an error's code).
 * @MSVM_RC_FAILED: 32768, Failed.
 * @MSVM_RC_ACCESS_DENIED: 32769, Access Denied.
 * @MSVM_RC_NOT_SUPPORTED: 32770, Not Supported.
 * @MSVM_RC_STATUS_UNKNOWN: 32771, Status is unknown.
 * @MSVM_RC_TIMEOUT: 32772, Timeout.
 * @MSVM_RC_INVALID_PARAMETER: 32773, Invalid parameter.
 * @MSVM_RC_IN_USE: 32774, System is in use.
 * @MSVM_RC_INVALID_STATE: 32775, Invalid state for this operation.
 * @MSVM_RC_INCORRECT_TYPE: 32776, Incorrect data type.
 * @MSVM_RC_NOT_AVAILABLE: 32777, System is not available.
 * @MSVM_RC_OUT_OF_MEMORY: 32778, Out of memory.
 *
 * The Msvm_SecurityService return codes (DESIGN.md section 7), which are the
 * codes of the #MSVM_ERROR domain.  (Named MsvmError so that GObject
 * introspection pairs it with msvm_error_quark(): in Python,
 * `MsvmSecurity.Error.INVALID_STATE`.  #MsvmReturnCode is the same type.)
 */
typedef enum {
  MSVM_RC_COMPLETED = 0,
  MSVM_RC_JOB_STARTED = 4096,
  MSVM_RC_FAILED = 32768,
  MSVM_RC_ACCESS_DENIED = 32769,
  MSVM_RC_NOT_SUPPORTED = 32770,
  MSVM_RC_STATUS_UNKNOWN = 32771,
  MSVM_RC_TIMEOUT = 32772,
  MSVM_RC_INVALID_PARAMETER = 32773,
  MSVM_RC_IN_USE = 32774,
  MSVM_RC_INVALID_STATE = 32775,
  MSVM_RC_INCORRECT_TYPE = 32776,
  MSVM_RC_NOT_AVAILABLE = 32777,
  MSVM_RC_OUT_OF_MEMORY = 32778,
} MsvmError;

/**
 * MsvmReturnCode:
 *
 * The earlier name of #MsvmError.
 */
typedef MsvmError MsvmReturnCode;

GQuark msvm_error_quark(void);
const char *msvm_return_code_name(guint32 rc);
guint32 msvm_error_to_return_code(const GError *error);

G_END_DECLS
