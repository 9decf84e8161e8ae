/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-instance.h: one parser for an embedded Msvm_SecuritySettingData
 * instance in every shape of DESIGN.md section 3: CIM-XML (plain and with WMI
 * system properties), the instance carried as escaped text or CDATA inside a
 * VALUE element, MOF; UTF-8 with or without BOM, UTF-16LE/BE with BOM.
 *
 * Never loads a DTD, expands an entity or touches the network; input larger
 * than MSVM_SETTINGS_MAX_SIZE is refused.
 */
#pragma once

#include "msvm-settings.h"

G_BEGIN_DECLS

/*
 * Errors (domain MSVM_ERROR):
 *   MSVM_RC_INVALID_PARAMETER  malformed, wrong class, duplicated property,
 *                              bad InstanceID, too large, empty, bad encoding
 *   MSVM_RC_INCORRECT_TYPE     a declared TYPE or a value that does not fit
 *                              the property's CIM type
 * The message names the property, or the byte offset in the input.
 * *ret_settings is untouched on failure.
 */
gboolean msvm_instance_parse(const guint8 *data, gsize len,
                             MsvmSettings **ret_settings, GError **error);

G_END_DECLS
