/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain.c: msvm_domain_apply(), the translation of DESIGN.md section 4
 * in the order libvirt's src/conf uses: read what the document records
 * (parse), merge the update over it (fill), check everything (validate),
 * then edit the tree, which cannot fail (apply), so that any error leaves
 * the document as it was.
 */
#include "config.h"

#include <string.h>

#include "msvm-domain-priv.h"
#include "msvm-error.h"

/* Properties that have no libvirt counterpart: TRUE is "Not Supported". */
static const struct {
  MsvmProp prop;
  const char *why;
} unsupported_when_true[] = {
  { MSVM_PROP_KSD_ENABLED,
    "the Generation 1 key storage drive has no libvirt counterpart" },
  { MSVM_PROP_BIND_TO_HOST_TPM,
    "binding the vTPM to the host's TPM is not supported on a libvirt host" },
};

/* Properties whose TRUE needs a key protector (here: the secret naming the
 * current generation's passphrase). */
static const MsvmProp need_protector[] = {
  MSVM_PROP_TPM_ENABLED,
  MSVM_PROP_SHIELDING_REQUESTED,
  MSVM_PROP_ENCRYPT_STATE_AND_VM_MIGRATION_TRAFFIC,
  MSVM_PROP_DATA_PROTECTION_REQUESTED,
};

static gboolean
validate(xmlDocPtr doc, const MsvmSettings *update, const MsvmSettings *merged,
         const MsvmShieldRecord *rec, const MsvmTranslateOptions *opts,
         const char *stash, xmlDocPtr *ret_stash, GError **error)
{
  guint8 uuid[16];

  /* Every check and record below (the InstanceID, the stash) is tied to the
   * domain's UUID: a definition without a valid one is refused outright. */
  if (!msvm_domain_get_uuid(doc, uuid, error))
    return FALSE;
  if (update->has_vm_uuid) {
    if (memcmp(uuid, update->vm_uuid, 16) != 0) {
      char want[37], have[37];
      msvm_uuid_format(update->vm_uuid, want);
      msvm_uuid_format(uuid, have);
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "InstanceID names the VM %s but the domain is %s", want, have);
      return FALSE;
    }
  }
  if (!opts->force && msvm_domain_has_nova(doc)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "the domain is managed by OpenStack nova (<nova:instance> metadata), which "
                "rewrites its definition and vTPM secret; refused unless forced");
    return FALSE;
  }
  for (gsize i = 0; i < G_N_ELEMENTS(unsupported_when_true); i++) {
    if (msvm_settings_is_true(merged, unsupported_when_true[i].prop)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED, "%s: %s",
                  msvm_settings_props[unsupported_when_true[i].prop].name,
                  unsupported_when_true[i].why);
      return FALSE;
    }
  }
  if (msvm_settings_is_true(merged, MSVM_PROP_SHIELDING_REQUESTED) &&
      !msvm_settings_is_true(merged, MSVM_PROP_TPM_ENABLED)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "ShieldingRequested TRUE needs TpmEnabled TRUE");
    return FALSE;
  }
  for (gsize i = 0; i < G_N_ELEMENTS(need_protector); i++) {
    if (msvm_settings_is_true(merged, need_protector[i]) && opts->secret_uuid == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "%s TRUE needs a key protector, and the VM has none yet "
                  "(SetKeyProtector or SetSecurityPolicy first; offline: --secret)",
                  msvm_settings_props[need_protector[i]].name);
      return FALSE;
    }
  }
  if (opts->secret_uuid != NULL) {
    guint8 sec[16];
    if (!msvm_uuid_parse(opts->secret_uuid, sec)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "the secret '%s' is not a UUID", opts->secret_uuid);
      return FALSE;
    }
  }
  if (!msvm_domain_tpm_validate(doc, merged, error))
    return FALSE;
  return msvm_domain_shielding_validate(doc, merged, rec, opts, stash, ret_stash, error);
}

gboolean
msvm_domain_apply(xmlDocPtr doc, const MsvmSettings *update,
                  const MsvmTranslateOptions *opts, const char *stash,
                  char **ret_stash, char **ret_message, GError **error)
{
  static const MsvmTranslateOptions no_opts = { 0 };
  g_autoptr(MsvmSettings) merged = msvm_settings_new();
  g_autoptr(GString) notes = g_string_new(NULL);
  MsvmShieldRecord rec = { 0 };
  xmlDocPtr sdoc = NULL;
  g_autofree char *secret = NULL;
  char *stash_text = NULL;

  g_return_val_if_fail(doc != NULL && update != NULL, FALSE);
  if (opts == NULL)
    opts = &no_opts;

  /* parse + fill */
  if (!msvm_domain_metadata_read(doc, merged, &rec, error)) {
    msvm_shield_record_clear(&rec);
    return FALSE;
  }
  msvm_settings_merge(merged, update);

  /* validate */
  if (!validate(doc, update, merged, &rec, opts, stash, &sdoc, error)) {
    msvm_shield_record_clear(&rec);
    return FALSE;
  }

  /* apply: from here on nothing fails */
  if (opts->secret_uuid != NULL) {
    guint8 sec[16];
    msvm_uuid_parse(opts->secret_uuid, sec);
    secret = g_malloc(37);
    msvm_uuid_format(sec, secret);
  }
  /* The stash records device positions in <devices>: a TPM that stays is
   * in place before shielding removes devices, and one that goes is removed
   * only after unshielding put them back, so positions match both ways. */
  if (msvm_settings_is_true(merged, MSVM_PROP_TPM_ENABLED)) {
    msvm_domain_tpm_apply(doc, merged, secret);
    sdoc = msvm_domain_shielding_apply(doc, merged, &rec, sdoc, notes);
  } else {
    sdoc = msvm_domain_shielding_apply(doc, merged, &rec, sdoc, notes);
    msvm_domain_tpm_apply(doc, merged, secret);
  }
  msvm_domain_metadata_write(doc, merged, &rec);
  msvm_shield_record_clear(&rec);

  if (sdoc != NULL) {
    GString *s = g_string_new(NULL);
    msvm_xml_format_node(s, xmlDocGetRootElement(sdoc));
    g_string_append_c(s, '\n');
    stash_text = g_string_free(s, FALSE);
    xmlFreeDoc(sdoc);
  }
  if (ret_stash != NULL)
    *ret_stash = stash_text;
  else
    g_free(stash_text);
  if (ret_message != NULL)
    *ret_message = notes->len > 0 ? g_strdup(notes->str) : NULL;
  return TRUE;
}
