/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-errno.c: errno to return code (see msvm-errno.h). */
#include "msvm-errno.h"

#include <errno.h>

#include "msvm-error.h"

guint32
msvm_return_code_from_errno(int err)
{
  switch (err) {
  case EACCES:
  case EPERM:
  case EROFS:
    return MSVM_RC_ACCESS_DENIED;
  case ENOMEM:
    return MSVM_RC_OUT_OF_MEMORY;
  default:
    return MSVM_RC_FAILED;
  }
}

gboolean
msvm_set_error_errno(GError **error, int err, const char *format, ...)
{
  g_autofree char *what = NULL;
  va_list ap;

  va_start(ap, format);
  what = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_set_error(error, MSVM_ERROR, (gint)msvm_return_code_from_errno(err), "%s: %s", what,
              g_strerror(err));
  return FALSE;
}
