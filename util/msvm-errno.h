/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-errno.h: the one mapping of errno values to return codes (private to
 * the project; the installed msvm-error.h has only the domain and codes).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* MSVM_RC_ACCESS_DENIED for EACCES, EPERM and EROFS, MSVM_RC_OUT_OF_MEMORY
 * for ENOMEM, MSVM_RC_FAILED for anything else. */
guint32 msvm_return_code_from_errno(int err);

/* Set @error in MSVM_ERROR with the code for @err and the message
 * "<formatted>: <strerror(err)>".  Always returns FALSE. */
gboolean msvm_set_error_errno(GError **error, int err, const char *format, ...)
  G_GNUC_PRINTF(3, 4);

G_END_DECLS
