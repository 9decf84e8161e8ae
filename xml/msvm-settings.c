/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "msvm-settings.h"

#include <string.h>

#include "msvm-error.h"
#include "msvm-uuid.h"

const MsvmPropInfo msvm_settings_props[MSVM_PROP_LAST] = {
  [MSVM_PROP_INSTANCE_ID] = { "InstanceID", MSVM_CIM_STRING, "CIM_SettingData" },
  [MSVM_PROP_ELEMENT_NAME] = { "ElementName", MSVM_CIM_STRING, "CIM_ManagedElement" },
  [MSVM_PROP_CAPTION] = { "Caption", MSVM_CIM_STRING, "CIM_ManagedElement" },
  [MSVM_PROP_DESCRIPTION] = { "Description", MSVM_CIM_STRING, "CIM_ManagedElement" },
  [MSVM_PROP_TPM_ENABLED] = { "TpmEnabled", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_KSD_ENABLED] = { "KsdEnabled", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_SHIELDING_REQUESTED] = { "ShieldingRequested", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_DATA_PROTECTION_REQUESTED] = { "DataProtectionRequested", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_ENCRYPT_STATE_AND_VM_MIGRATION_TRAFFIC] = { "EncryptStateAndVmMigrationTraffic", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_VIRTUALIZATION_BASED_SECURITY_OPT_OUT] = { "VirtualizationBasedSecurityOptOut", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_BIND_TO_HOST_TPM] = { "BindToHostTpm", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
  [MSVM_PROP_APP_CONTAINER_LAUNCH_OPT_OUT] = { "AppContainerLaunchOptOut", MSVM_CIM_BOOLEAN, "Msvm_SecuritySettingData" },
};

MsvmProp
msvm_settings_prop_lookup(const char *name)
{
  for (int p = 0; p < MSVM_PROP_LAST; p++) {
    if (g_ascii_strcasecmp(msvm_settings_props[p].name, name) == 0)
      return (MsvmProp)p;
  }
  return MSVM_PROP_LAST;
}

MsvmSettings *
msvm_settings_new(void)
{
  return g_new0(MsvmSettings, 1);
}

MsvmSettings *
msvm_settings_copy(const MsvmSettings *settings)
{
  MsvmSettings *copy = g_new0(MsvmSettings, 1);

  *copy = *settings;
  for (int p = 0; p < MSVM_PROP_LAST; p++)
    copy->values[p].string = g_strdup(settings->values[p].string);
  return copy;
}

void
msvm_settings_free(MsvmSettings *settings)
{
  if (settings == NULL)
    return;
  for (int p = 0; p < MSVM_PROP_LAST; p++)
    g_free(settings->values[p].string);
  g_free(settings);
}

void
msvm_settings_set_boolean(MsvmSettings *settings, MsvmProp prop, gboolean value)
{
  g_return_if_fail(prop < MSVM_PROP_LAST && msvm_settings_props[prop].type == MSVM_CIM_BOOLEAN);
  settings->values[prop].present = TRUE;
  settings->values[prop].boolean = value ? TRUE : FALSE;
}

void
msvm_settings_set_string(MsvmSettings *settings, MsvmProp prop, const char *value)
{
  g_return_if_fail(prop < MSVM_PROP_LAST && msvm_settings_props[prop].type == MSVM_CIM_STRING);
  g_free(settings->values[prop].string);
  settings->values[prop].string = g_strdup(value);
  settings->values[prop].present = value != NULL;
}

gboolean
msvm_settings_is_true(const MsvmSettings *settings, MsvmProp prop)
{
  return settings->values[prop].present && settings->values[prop].boolean;
}

void
msvm_settings_merge(MsvmSettings *base, const MsvmSettings *update)
{
  for (int p = 0; p < MSVM_PROP_LAST; p++) {
    const MsvmValue *v = &update->values[p];
    if (!v->present)
      continue;
    if (msvm_settings_props[p].type == MSVM_CIM_BOOLEAN)
      msvm_settings_set_boolean(base, (MsvmProp)p, v->boolean);
    else
      msvm_settings_set_string(base, (MsvmProp)p, v->string);
  }
  if (update->has_vm_uuid) {
    base->has_vm_uuid = TRUE;
    memcpy(base->vm_uuid, update->vm_uuid, sizeof(base->vm_uuid));
  }
}

/* The VM GUID of an InstanceID: MSVM_UUID_STRING_LEN characters that
 * msvm_uuid_parse() takes, optionally in braces as some tools write them;
 * returns the position after it, or NULL. */
static const char *
parse_guid(const char *p, guint8 uuid[16])
{
  char text[MSVM_UUID_STRING_LEN + 1];
  gboolean brace = *p == '{';

  if (brace)
    p++;
  if (strnlen(p, MSVM_UUID_STRING_LEN) < MSVM_UUID_STRING_LEN)
    return NULL;
  memcpy(text, p, MSVM_UUID_STRING_LEN);
  text[MSVM_UUID_STRING_LEN] = '\0';
  /* (no blanks inside an InstanceID, which the parser would allow) */
  if (g_ascii_isspace(text[0]) || g_ascii_isspace(text[MSVM_UUID_STRING_LEN - 1]) ||
      !msvm_uuid_parse(text, uuid))
    return NULL;
  p += MSVM_UUID_STRING_LEN;
  if (brace && *p++ != '}')
    return NULL;
  return p;
}

gboolean
msvm_settings_parse_instance_id(const char *instance_id, guint8 ret_uuid[16], GError **error)
{
  static const char prefix[] = "Microsoft:";
  guint8 uuid[16];
  const char *end;

  if (instance_id == NULL ||
      g_ascii_strncasecmp(instance_id, prefix, sizeof(prefix) - 1) != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "InstanceID must be \"Microsoft:<VM GUID>\"");
    return FALSE;
  }
  end = parse_guid(instance_id + sizeof(prefix) - 1, uuid);
  if (end == NULL || (*end != '\0' && *end != '\\')) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "InstanceID does not hold a VM GUID after \"Microsoft:\"");
    return FALSE;
  }
  memcpy(ret_uuid, uuid, 16);
  return TRUE;
}
