/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-settings.h: the typed model of one Msvm_SecuritySettingData instance.
 *
 * Every property is either absent (not given, or given as NULL: "leave this
 * setting unchanged", DESIGN.md section 3) or present with a value.  The
 * property table msvm_settings_props[] is the single list of known
 * properties; parser, formatter, metadata and translation all walk it.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Largest instance accepted, in bytes of input (any encoding). */
#define MSVM_SETTINGS_MAX_SIZE (4u * 1024u * 1024u)

typedef enum {
  MSVM_PROP_INSTANCE_ID,
  MSVM_PROP_ELEMENT_NAME,
  MSVM_PROP_CAPTION,
  MSVM_PROP_DESCRIPTION,
  MSVM_PROP_TPM_ENABLED,
  MSVM_PROP_KSD_ENABLED,
  MSVM_PROP_SHIELDING_REQUESTED,
  MSVM_PROP_DATA_PROTECTION_REQUESTED,
  MSVM_PROP_ENCRYPT_STATE_AND_VM_MIGRATION_TRAFFIC,
  MSVM_PROP_VIRTUALIZATION_BASED_SECURITY_OPT_OUT,
  MSVM_PROP_BIND_TO_HOST_TPM,
  MSVM_PROP_APP_CONTAINER_LAUNCH_OPT_OUT,
  MSVM_PROP_LAST
} MsvmProp;

typedef enum {
  MSVM_CIM_STRING,
  MSVM_CIM_BOOLEAN,
} MsvmCimType;

typedef struct {
  const char *name;        /* CIM spelling, e.g. "TpmEnabled" */
  MsvmCimType type;
  const char *class_origin; /* "Msvm_SecuritySettingData", "CIM_SettingData", ... */
} MsvmPropInfo;

extern const MsvmPropInfo msvm_settings_props[MSVM_PROP_LAST];

/* Case-insensitive lookup (CIM rule); returns MSVM_PROP_LAST when unknown. */
MsvmProp msvm_settings_prop_lookup(const char *name);

typedef struct {
  gboolean present;        /* FALSE: absent or NULL, leaves the setting unchanged */
  gboolean boolean;        /* for MSVM_CIM_BOOLEAN */
  char *string;            /* for MSVM_CIM_STRING (UTF-8, owned) */
} MsvmValue;

typedef struct {
  MsvmValue values[MSVM_PROP_LAST];
  /* Derived from InstanceID "Microsoft:<GUID>[\...]" when present. */
  gboolean has_vm_uuid;
  guint8 vm_uuid[16];
} MsvmSettings;

MsvmSettings *msvm_settings_new(void);
MsvmSettings *msvm_settings_copy(const MsvmSettings *settings);
void msvm_settings_free(MsvmSettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmSettings, msvm_settings_free)

void msvm_settings_set_boolean(MsvmSettings *settings, MsvmProp prop, gboolean value);
/* value NULL makes the property absent. */
void msvm_settings_set_string(MsvmSettings *settings, MsvmProp prop, const char *value);
/* TRUE only when the property is present and TRUE. */
gboolean msvm_settings_is_true(const MsvmSettings *settings, MsvmProp prop);

/* Overlay every present property of @update onto @base (absent ones leave
 * @base's value).  InstanceID and the VM UUID follow the same rule. */
void msvm_settings_merge(MsvmSettings *base, const MsvmSettings *update);

/* Parse "Microsoft:<GUID>[\...]" into 16 bytes in UUID-string order.
 * Errors: MSVM_RC_INVALID_PARAMETER naming InstanceID. */
gboolean msvm_settings_parse_instance_id(const char *instance_id, guint8 ret_uuid[16], GError **error);

/* Serialize as a CIM-XML <INSTANCE> (DSP0201) or as MOF text. Absent
 * properties are written as NULL (no VALUE / "= NULL"). */
char *msvm_settings_format_cim_xml(const MsvmSettings *settings);
char *msvm_settings_format_mof(const MsvmSettings *settings);

G_END_DECLS
