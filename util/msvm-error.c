/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "msvm-error.h"

#include "msvm-cause.h"

#include <gio/gio.h>

/**
 * msvm_error_quark:
 *
 * The #MSVM_ERROR domain, named `msvm-security-error-quark`.  In Python a
 * failed call raises `GLib.Error` with this domain and the Hyper-V return
 * value as its `code`.
 *
 * Returns: the error domain's quark
 */
G_DEFINE_QUARK(msvm-security-error-quark, msvm_error)
G_DEFINE_QUARK(msvm-security-cause-quark, msvm_cause_error)

static const struct {
  guint32 rc;
  const char *name;
} return_codes[] = {
  { MSVM_RC_COMPLETED, "Completed with No Error" },
  { MSVM_RC_JOB_STARTED, "Method Parameters Checked - Job Started" },
  { MSVM_RC_FAILED, "Failed" },
  { MSVM_RC_ACCESS_DENIED, "Access Denied" },
  { MSVM_RC_NOT_SUPPORTED, "Not Supported" },
  { MSVM_RC_STATUS_UNKNOWN, "Status is unknown" },
  { MSVM_RC_TIMEOUT, "Timeout" },
  { MSVM_RC_INVALID_PARAMETER, "Invalid parameter" },
  { MSVM_RC_IN_USE, "System is in use" },
  { MSVM_RC_INVALID_STATE, "Invalid state for this operation" },
  { MSVM_RC_INCORRECT_TYPE, "Incorrect data type" },
  { MSVM_RC_NOT_AVAILABLE, "System is not available" },
  { MSVM_RC_OUT_OF_MEMORY, "Out of memory" },
};

/**
 * msvm_return_code_name:
 * @rc: a return value
 *
 * The name Hyper-V documents for a return value: "Invalid parameter" for
 * 32773 and so on.
 *
 * Returns: (transfer none) (nullable): the name, or %NULL for a value
 *   outside the set
 */
const char *
msvm_return_code_name(guint32 rc)
{
  for (gsize i = 0; i < G_N_ELEMENTS(return_codes); i++) {
    if (return_codes[i].rc == rc)
      return return_codes[i].name;
  }
  return NULL;
}

/**
 * msvm_error_to_return_code:
 * @error: (nullable): an error, or %NULL
 *
 * The return code an error stands for: its code in #MSVM_ERROR, the closest
 * one for `G_IO_ERROR` and `G_FILE_ERROR` (permission denied is 32769, no
 * space 32768, ...), 32768 (Failed) for anything else.
 *
 * Returns: the return code; 0 for %NULL
 */
guint32
msvm_error_to_return_code(const GError *error)
{
  if (error == NULL)
    return MSVM_RC_COMPLETED;
  if (error->domain == MSVM_ERROR && msvm_return_code_name((guint32)error->code) != NULL)
    return (guint32)error->code;
  if (error->domain == MSVM_CAUSE_ERROR)
    return error->code == MSVM_CAUSE_IN_USE ? MSVM_RC_IN_USE : MSVM_RC_INVALID_STATE;
  if (error->domain == G_IO_ERROR) {
    switch (error->code) {
    case G_IO_ERROR_PERMISSION_DENIED:
    case G_IO_ERROR_READ_ONLY:
      return MSVM_RC_ACCESS_DENIED;
    case G_IO_ERROR_NOT_FOUND:
      return MSVM_RC_NOT_AVAILABLE;
    case G_IO_ERROR_BUSY:
      return MSVM_RC_IN_USE;
    case G_IO_ERROR_TIMED_OUT:
      return MSVM_RC_TIMEOUT;
    case G_IO_ERROR_NOT_SUPPORTED:
      return MSVM_RC_NOT_SUPPORTED;
    case G_IO_ERROR_INVALID_ARGUMENT:
      return MSVM_RC_INVALID_PARAMETER;
    default:
      return MSVM_RC_FAILED;
    }
  }
  if (error->domain == G_FILE_ERROR) {
    switch (error->code) {
    case G_FILE_ERROR_ACCES:
    case G_FILE_ERROR_PERM:
    case G_FILE_ERROR_ROFS:
      return MSVM_RC_ACCESS_DENIED;
    case G_FILE_ERROR_NOENT:
      return MSVM_RC_NOT_AVAILABLE;
    case G_FILE_ERROR_NOMEM:
      return MSVM_RC_OUT_OF_MEMORY;
    default:
      return MSVM_RC_FAILED;
    }
  }
  if (error->domain == G_OPTION_ERROR)
    return MSVM_RC_INVALID_PARAMETER;
  return MSVM_RC_FAILED;
}

gboolean
msvm_error_is(const GError *error, guint32 rc)
{
  return error != NULL && msvm_error_to_return_code(error) == rc;
}

void
msvm_error_to_public(GError **error)
{
  guint32 rc;

  if (error == NULL || *error == NULL || (*error)->domain == MSVM_ERROR)
    return;
  rc = msvm_error_to_return_code(*error);
  (*error)->domain = MSVM_ERROR;
  (*error)->code = (gint)rc;
}
