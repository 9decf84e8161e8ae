/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain-metadata.c: the project's element under the domain's
 * <metadata> (every recorded setting, and what shielding changed), the
 * domain UUID, and the reverse translation msvm_domain_read_settings().
 *
 *   <msvm:security xmlns:msvm="urn:x-msvm-security:domain:1" version="1">
 *     <msvm:setting name="TpmEnabled">TRUE</msvm:setting>
 *     <msvm:setting name="ElementName">Security Settings</msvm:setting>
 *     <msvm:shielding>
 *       <msvm:features/>                  (the element was created)
 *       <msvm:smm before="off"/>          (no before=: the element was absent)
 *       <msvm:firmware/>
 *       <msvm:feature name="enrolled-keys" before="no"/>
 *       <msvm:feature name="secure-boot"/>
 *       <msvm:loader-secure/>             (secure= on <loader>)
 *       <msvm:devices removed="3"/>       (how many are in the stash)
 *     </msvm:shielding>
 *   </msvm:security>
 *
 * Nothing secret is written here: the devices shielding removed live in the
 * stash, which the caller keeps (root-only store, or the --stash file).
 */
#include "config.h"

#include <string.h>

#include "msvm-domain-priv.h"
#include "msvm-error.h"

#define METADATA_VERSION "1"

void
msvm_shield_record_clear(MsvmShieldRecord *rec)
{
  g_free(rec->smm_before);
  g_free(rec->secure_boot_before);
  g_free(rec->enrolled_keys_before);
  g_free(rec->loader_secure_before);
  memset(rec, 0, sizeof(*rec));
}

/* The changes a shielding record holds: element (and name= for firmware
 * features) -> the "changed" flag and the "before" value in the record.
 * Elements whose only meaning is "created by shielding" have no before. */
typedef struct {
  const char *element;
  const char *name;      /* name= attribute, or NULL */
  gsize changed_offset;
  gssize before_offset;  /* -1: no before value */
} MsvmShieldRecordField;

static const MsvmShieldRecordField record_fields[] = {
  { "features", NULL, G_STRUCT_OFFSET(MsvmShieldRecord, added_features), -1 },
  { "smm", NULL, G_STRUCT_OFFSET(MsvmShieldRecord, smm_changed),
    G_STRUCT_OFFSET(MsvmShieldRecord, smm_before) },
  { "firmware", NULL, G_STRUCT_OFFSET(MsvmShieldRecord, added_firmware), -1 },
  { "feature", "enrolled-keys", G_STRUCT_OFFSET(MsvmShieldRecord, enrolled_keys_changed),
    G_STRUCT_OFFSET(MsvmShieldRecord, enrolled_keys_before) },
  { "feature", "secure-boot", G_STRUCT_OFFSET(MsvmShieldRecord, secure_boot_changed),
    G_STRUCT_OFFSET(MsvmShieldRecord, secure_boot_before) },
  { "loader-secure", NULL, G_STRUCT_OFFSET(MsvmShieldRecord, loader_secure_changed),
    G_STRUCT_OFFSET(MsvmShieldRecord, loader_secure_before) },
};

#define FIELD_CHANGED(rec, f) G_STRUCT_MEMBER(gboolean, (rec), (f)->changed_offset)
#define FIELD_BEFORE(rec, f) G_STRUCT_MEMBER(char *, (rec), (f)->before_offset)

/* ---- lookups */

xmlNodePtr
msvm_domain_metadata_node(xmlDocPtr doc)
{
  return msvm_xml_child(xmlDocGetRootElement(doc), "metadata");
}

xmlNodePtr
msvm_domain_security_node(xmlDocPtr doc)
{
  return msvm_xml_child_ns(msvm_domain_metadata_node(doc), MSVM_METADATA_NS,
                           MSVM_METADATA_ELEMENT);
}

gboolean
msvm_domain_is_managed(xmlDocPtr doc)
{
  return doc != NULL && msvm_domain_security_node(doc) != NULL;
}

static char *
get_marker(xmlDocPtr doc, const char *name)
{
  xmlNodePtr sec = doc ? msvm_domain_security_node(doc) : NULL;
  xmlChar *v = sec ? xmlGetNoNsProp(sec, BAD_CAST name) : NULL;
  char *out = v != NULL && v[0] != '\0' ? g_strdup((const char *)v) : NULL;

  xmlFree(v);
  return out;
}

static gboolean
set_marker(xmlDocPtr doc, const char *name, const char *value)
{
  xmlNodePtr sec = msvm_domain_security_node(doc);

  if (sec == NULL)
    return FALSE;
  xmlSetProp(sec, BAD_CAST name, BAD_CAST value);
  return TRUE;
}

char *
msvm_domain_get_change_id(xmlDocPtr doc)
{
  return get_marker(doc, "change");
}

gboolean
msvm_domain_set_change_id(xmlDocPtr doc, const char *change_id)
{
  return set_marker(doc, "change", change_id);
}

char *
msvm_domain_get_incoming(xmlDocPtr doc)
{
  return get_marker(doc, "incoming");
}

gboolean
msvm_domain_set_incoming(xmlDocPtr doc, const char *nonce)
{
  return set_marker(doc, "incoming", nonce);
}

gboolean
msvm_domain_has_nova(xmlDocPtr doc)
{
  xmlNodePtr md = msvm_domain_metadata_node(doc);

  if (md == NULL)
    return FALSE;
  for (xmlNodePtr c = md->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && c->ns != NULL &&
        g_str_has_prefix((const char *)c->ns->href, MSVM_NOVA_NS_PREFIX) &&
        xmlStrcmp(c->name, BAD_CAST "instance") == 0)
      return TRUE;
  }
  return FALSE;
}

gboolean
msvm_domain_get_uuid(xmlDocPtr doc, guint8 ret_uuid[16], GError **error)
{
  xmlNodePtr node = msvm_xml_child(xmlDocGetRootElement(doc), "uuid");
  xmlChar *text;
  gboolean ok;

  if (node == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "the domain XML has no <uuid>");
    return FALSE;
  }
  text = xmlNodeGetContent(node);
  ok = msvm_uuid_parse((const char *)text, ret_uuid);
  xmlFree(text);
  if (!ok) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the domain's <uuid> is not a valid UUID");
    return FALSE;
  }
  return TRUE;
}

gboolean
msvm_domain_uuid_string(xmlDocPtr doc, char ret_uuid[37])
{
  guint8 uuid[16];

  if (!msvm_domain_get_uuid(doc, uuid, NULL))
    return FALSE;
  msvm_uuid_format(uuid, ret_uuid);
  return TRUE;
}

/* ---- parse */

static gboolean
read_setting(xmlNodePtr node, MsvmSettings *settings, GError **error)
{
  g_autofree char *name = msvm_xml_prop(node, "name");
  xmlChar *text = NULL;
  MsvmProp prop;
  gboolean ok = TRUE;

  if (name == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "the domain's msvm metadata has a setting without a name");
    return FALSE;
  }
  prop = msvm_settings_prop_lookup(name);
  if (prop == MSVM_PROP_LAST || prop == MSVM_PROP_INSTANCE_ID)
    return TRUE; /* written by a newer version, or derived: ignored */
  if (settings->values[prop].present) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "the domain's msvm metadata records %s twice", name);
    return FALSE;
  }
  text = xmlNodeGetContent(node);
  if (msvm_settings_props[prop].type == MSVM_CIM_BOOLEAN) {
    if (g_ascii_strcasecmp((const char *)text, "TRUE") == 0) {
      msvm_settings_set_boolean(settings, prop, TRUE);
    } else if (g_ascii_strcasecmp((const char *)text, "FALSE") == 0) {
      msvm_settings_set_boolean(settings, prop, FALSE);
    } else {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "the domain's msvm metadata records %s with a value that is not a boolean",
                  name);
      ok = FALSE;
    }
  } else {
    msvm_settings_set_string(settings, prop, (const char *)text);
  }
  xmlFree(text);
  return ok;
}

static gboolean
read_shielding(xmlNodePtr node, MsvmShieldRecord *rec, GError **error)
{
  rec->shielded = TRUE;
  for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || c->ns == NULL ||
        xmlStrcmp(c->ns->href, BAD_CAST MSVM_METADATA_NS) != 0)
      continue;
    if (xmlStrcmp(c->name, BAD_CAST "devices") == 0) {
      g_autofree char *removed = msvm_xml_prop(c, "removed");
      guint64 n = 0;
      if (removed == NULL ||
          !g_ascii_string_to_unsigned(removed, 10, 0, 100000, &n, NULL)) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                    "the domain's msvm metadata has a bad removed device count");
        return FALSE;
      }
      rec->removed_devices = (guint)n;
      continue;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(record_fields); i++) {
      const MsvmShieldRecordField *f = &record_fields[i];
      g_autofree char *name = f->name ? msvm_xml_prop(c, "name") : NULL;
      if (xmlStrcmp(c->name, BAD_CAST f->element) != 0 ||
          (f->name != NULL && g_strcmp0(name, f->name) != 0))
        continue;
      FIELD_CHANGED(rec, f) = TRUE;
      if (f->before_offset >= 0) {
        g_free(FIELD_BEFORE(rec, f));
        FIELD_BEFORE(rec, f) = msvm_xml_prop(c, "before");
      }
    }
  }
  return TRUE;
}

gboolean
msvm_domain_metadata_read(xmlDocPtr doc, MsvmSettings *ret_settings,
                          MsvmShieldRecord *ret_rec, GError **error)
{
  xmlNodePtr sec = msvm_domain_security_node(doc);

  if (sec == NULL)
    return TRUE;
  for (xmlNodePtr c = sec->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || c->ns == NULL ||
        xmlStrcmp(c->ns->href, BAD_CAST MSVM_METADATA_NS) != 0)
      continue;
    if (xmlStrcmp(c->name, BAD_CAST "setting") == 0) {
      if (!read_setting(c, ret_settings, error))
        return FALSE;
    } else if (xmlStrcmp(c->name, BAD_CAST "shielding") == 0) {
      if (!read_shielding(c, ret_rec, error))
        return FALSE;
    }
  }
  return TRUE;
}

gboolean
msvm_domain_read_settings(xmlDocPtr doc, MsvmSettings **ret_settings, GError **error)
{
  g_autoptr(MsvmSettings) settings = msvm_settings_new();
  MsvmShieldRecord rec = { 0 };
  guint8 uuid[16];
  gboolean ok;

  ok = msvm_domain_metadata_read(doc, settings, &rec, error);
  msvm_shield_record_clear(&rec);
  if (!ok)
    return FALSE;
  if (msvm_domain_get_uuid(doc, uuid, NULL)) {
    char text[37];
    g_autofree char *upper = NULL;
    g_autofree char *id = NULL;
    msvm_uuid_format(uuid, text);
    upper = g_ascii_strup(text, -1);
    id = g_strconcat("Microsoft:", upper, NULL);
    msvm_settings_set_string(settings, MSVM_PROP_INSTANCE_ID, id);
    settings->has_vm_uuid = TRUE;
    memcpy(settings->vm_uuid, uuid, 16);
  }
  if (!settings->values[MSVM_PROP_TPM_ENABLED].present)
    msvm_settings_set_boolean(settings, MSVM_PROP_TPM_ENABLED,
                              msvm_domain_tpm_kind(doc, NULL) != MSVM_TPM_NONE);
  *ret_settings = g_steal_pointer(&settings);
  return TRUE;
}

/* ---- format */

/* Where libvirt writes <metadata>: before all of these. */
static const char *const after_metadata[] = {
  "maxMemory", "memory", "currentMemory", "blkiotune", "memtune", "memoryBacking",
  "vcpu", "vcpus", "iothreads", "iothreadids", "defaultiothread", "cputune",
  "numatune", "resource", "sysinfo", "bootloader", "bootloader_args", "os",
  "idmap", "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash",
  "on_lockfailure", "pm", "perf", "devices", "seclabel", "keywrap", "launchSecurity",
  NULL
};

static xmlNodePtr
add_ns_child(xmlNodePtr parent, xmlNsPtr ns, const char *name)
{
  xmlNodePtr node = xmlNewDocNode(parent->doc, ns, BAD_CAST name, NULL);

  if (node == NULL)
    g_error("out of memory");
  msvm_xml_insert(parent, node, NULL);
  return node;
}

static void
write_shielding(xmlNodePtr sec, xmlNsPtr ns, const MsvmShieldRecord *rec)
{
  xmlNodePtr sh = add_ns_child(sec, ns, "shielding");

  for (gsize i = 0; i < G_N_ELEMENTS(record_fields); i++) {
    const MsvmShieldRecordField *f = &record_fields[i];
    xmlNodePtr n;
    if (!FIELD_CHANGED((MsvmShieldRecord *)rec, f))
      continue;
    n = add_ns_child(sh, ns, f->element);
    if (f->name != NULL)
      xmlNewProp(n, BAD_CAST "name", BAD_CAST f->name);
    if (f->before_offset >= 0 && FIELD_BEFORE((MsvmShieldRecord *)rec, f) != NULL)
      xmlNewProp(n, BAD_CAST "before", BAD_CAST FIELD_BEFORE((MsvmShieldRecord *)rec, f));
  }
  if (rec->removed_devices > 0) {
    g_autofree char *count = g_strdup_printf("%u", rec->removed_devices);
    xmlNodePtr n = add_ns_child(sh, ns, "devices");
    xmlNewProp(n, BAD_CAST "removed", BAD_CAST count);
  }
}

void
msvm_domain_metadata_write(xmlDocPtr doc, const MsvmSettings *settings,
                           const MsvmShieldRecord *rec)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr md = msvm_domain_metadata_node(doc);
  xmlNodePtr old = msvm_domain_security_node(doc);
  xmlNodePtr sec;
  xmlNsPtr ns;

  if (md == NULL)
    md = msvm_xml_add(root, "metadata", msvm_xml_first_of(root, after_metadata));
  sec = xmlNewDocNode(doc, NULL, BAD_CAST MSVM_METADATA_ELEMENT, NULL);
  if (sec == NULL)
    g_error("out of memory");
  ns = xmlNewNs(sec, BAD_CAST MSVM_METADATA_NS, BAD_CAST MSVM_METADATA_PREFIX);
  xmlSetNs(sec, ns);
  xmlNewProp(sec, BAD_CAST "version", BAD_CAST METADATA_VERSION);
  /* in place of the old element, else at the end of <metadata> */
  msvm_xml_insert(md, sec, old);
  if (old != NULL)
    msvm_xml_remove(old);

  for (int p = 0; p < MSVM_PROP_LAST; p++) {
    const MsvmValue *v = &settings->values[p];
    xmlNodePtr n;
    if (!v->present || p == MSVM_PROP_INSTANCE_ID)
      continue;
    n = add_ns_child(sec, ns, "setting");
    xmlNewProp(n, BAD_CAST "name", BAD_CAST msvm_settings_props[p].name);
    if (msvm_settings_props[p].type == MSVM_CIM_BOOLEAN)
      xmlAddChild(n, xmlNewDocText(doc, BAD_CAST(v->boolean ? "TRUE" : "FALSE")));
    else if (v->string != NULL && *v->string != '\0')
      xmlAddChild(n, xmlNewDocText(doc, BAD_CAST v->string));
  }
  if (rec->shielded)
    write_shielding(sec, ns, rec);
}
