/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain-shielding.c: ShieldingRequested on the domain.
 *
 * TRUE (a UEFI q35 VM with a TPM): secure boot with enrolled keys (firmware
 * autoselection features, or secure='yes' on an explicit loader), SMM on,
 * and the host-side interactive devices moved out of the definition into
 * the stash.  Every change is recorded (MsvmShieldRecord, written to the
 * metadata) so that FALSE undoes exactly what shielding did and puts the
 * stashed devices back where they were.
 *
 * The stash (kept by the caller, root-only: devices may carry passwords):
 *
 *   <msvm:stash xmlns:msvm='urn:x-msvm-security:stash:1' domain='UUID'>
 *     <msvm:device index='12'><graphics type='vnc' .../></msvm:device>
 *   </msvm:stash>
 *
 * index is the device's position among the element children of <devices>
 * with every stashed device put back (see stash_devices()).
 */
#include "config.h"

#include <string.h>

#include "msvm-domain-priv.h"
#include "msvm-error.h"

/* Character device source types through which a host-side process talks to
 * the guest.  "file" (output only) and "null" are kept. */
static const char *const chardev_interactive[] = {
  "pty", "vc", "tcp", "udp", "telnet", "unix", "pipe", "dev", "stdio",
  "spiceport", "spicevmc", "qemu-vdagent", "dbus", "nmdm", NULL
};
/* Channels of the remote display (the guest agent's unix channel is kept:
 * backups and quiescing depend on it). */
static const char *const channel_interactive[] = {
  "spicevmc", "spiceport", "qemu-vdagent", "dbus", NULL
};
/* Audio that only travels over the removed display. */
static const char *const audio_display[] = { "spice", "dbus", NULL };
static const char *const smartcard_passthrough[] = { "passthrough", NULL };

/* Which devices shielding removes: element, and the attribute whose value
 * must be in @values (NULL attr: every such device). */
static const struct {
  const char *element;
  const char *attr;
  const char *const *values;
} interactive_devices[] = {
  { "graphics", NULL, NULL },
  { "serial", "type", chardev_interactive },
  { "parallel", "type", chardev_interactive },
  { "console", "type", chardev_interactive },
  { "channel", "type", channel_interactive },
  { "redirdev", NULL, NULL },
  { "smartcard", "mode", smartcard_passthrough },
  { "audio", "type", audio_display },
};

/* Firmware features shielding turns on, in the order libvirt writes them,
 * with where their record lives. */
static const struct {
  const char *name;
  gsize changed_offset;
  gsize before_offset;
} firmware_features[] = {
  { "enrolled-keys", G_STRUCT_OFFSET(MsvmShieldRecord, enrolled_keys_changed),
    G_STRUCT_OFFSET(MsvmShieldRecord, enrolled_keys_before) },
  { "secure-boot", G_STRUCT_OFFSET(MsvmShieldRecord, secure_boot_changed),
    G_STRUCT_OFFSET(MsvmShieldRecord, secure_boot_before) },
};

/* What libvirt writes after <os><firmware>, after <features>, after <smm>. */
static const char *const after_firmware[] = {
  "loader", "nvram", "kernel", "initrd", "cmdline", "dtb", "acpi", "boot",
  "bootmenu", "smbios", "bios", "init", "initarg", "initenv", "initdir",
  "inituser", "initgroup", NULL
};
static const char *const after_features[] = {
  "cpu", "clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm",
  "perf", "devices", "seclabel", "keywrap", "launchSecurity", NULL
};
static const char *const after_smm[] = {
  "ioapic", "hpt", "vmcoreinfo", "htm", "nested-hv", "msrs", "ccf-assist", "cfpc",
  "sbbc", "ibs", "tcg", "async-teardown", NULL
};

#define REC_CHANGED(rec, off) G_STRUCT_MEMBER(gboolean, (rec), (off))
#define REC_BEFORE(rec, off) G_STRUCT_MEMBER(char *, (rec), (off))

static gboolean
is_interactive(xmlNodePtr dev)
{
  if (dev->type != XML_ELEMENT_NODE || dev->ns != NULL)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS(interactive_devices); i++) {
    g_autofree char *v = NULL;
    if (xmlStrcmp(dev->name, BAD_CAST interactive_devices[i].element) != 0)
      continue;
    if (interactive_devices[i].attr == NULL)
      return TRUE;
    v = msvm_xml_prop(dev, interactive_devices[i].attr);
    return v != NULL && g_strv_contains(interactive_devices[i].values, v);
  }
  return FALSE;
}

/* ---- facts */

static xmlNodePtr
os_node(xmlDocPtr doc)
{
  return msvm_xml_child(xmlDocGetRootElement(doc), "os");
}

static gboolean
loader_has_path(xmlNodePtr loader)
{
  xmlChar *text;
  gboolean has;

  if (loader == NULL)
    return FALSE;
  text = xmlNodeGetContent(loader);
  has = text != NULL && *g_strstrip((char *)text) != '\0';
  xmlFree(text);
  return has;
}

static gboolean
boots_uefi(xmlDocPtr doc)
{
  xmlNodePtr os = os_node(doc);

  return msvm_xml_prop_is(os, "firmware", "efi") ||
         msvm_xml_prop_is(msvm_xml_child(os, "loader"), "type", "pflash");
}

/* Firmware autoselection (<os firmware='efi'> without a loader path) rather
 * than an explicit loader. */
static gboolean
uses_autoselection(xmlDocPtr doc)
{
  xmlNodePtr os = os_node(doc);

  return msvm_xml_prop_is(os, "firmware", "efi") &&
         !loader_has_path(msvm_xml_child(os, "loader"));
}

static char *
machine_type(xmlDocPtr doc)
{
  return msvm_xml_prop(msvm_xml_child(os_node(doc), "type"), "machine");
}

static gboolean
is_q35(const char *machine)
{
  return machine != NULL &&
         (g_strcmp0(machine, "q35") == 0 || g_str_has_prefix(machine, "pc-q35-"));
}

/* ---- validate */

static xmlDocPtr
parse_stash(xmlDocPtr doc, const char *stash, const MsvmShieldRecord *rec,
            gboolean force, GError **error)
{
  xmlDocPtr sdoc;
  xmlNodePtr root;
  g_autofree char *domain = NULL;
  guint8 want[16], have[16];
  guint count = 0;

  sdoc = msvm_xml_parse(stash, strlen(stash), "the stash", MSVM_STASH_NS, "stash", error);
  if (sdoc == NULL)
    return NULL;
  root = xmlDocGetRootElement(sdoc);
  domain = msvm_xml_prop(root, "domain");
  if (!msvm_domain_get_uuid(doc, want, error) ||
      domain == NULL || !msvm_uuid_parse(domain, have) || memcmp(want, have, 16) != 0) {
    if (error != NULL && *error == NULL)
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "the stash belongs to another domain (%s)", domain ? domain : "none");
    xmlFreeDoc(sdoc);
    return NULL;
  }
  for (xmlNodePtr e = root->children; e != NULL; e = e->next) {
    g_autofree char *index = NULL;
    guint64 n;
    if (e->type != XML_ELEMENT_NODE)
      continue;
    index = msvm_xml_prop(e, "index");
    if (e->ns == NULL || xmlStrcmp(e->ns->href, BAD_CAST MSVM_STASH_NS) != 0 ||
        xmlStrcmp(e->name, BAD_CAST "device") != 0 || index == NULL ||
        !g_ascii_string_to_unsigned(index, 10, 0, 100000, &n, NULL) ||
        msvm_xml_count_elements(e) != 1) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "the stash has an entry that is not <msvm:device index='N'> holding one device");
      xmlFreeDoc(sdoc);
      return NULL;
    }
    count++;
  }
  if (count != rec->removed_devices && !force) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "the stash holds %u device(s) but the domain's metadata records %u removed by "
                "shielding; use the stash that belongs to this definition (or force)",
                count, rec->removed_devices);
    xmlFreeDoc(sdoc);
    return NULL;
  }
  return sdoc;
}

gboolean
msvm_domain_shielding_validate(xmlDocPtr doc, const MsvmSettings *merged,
                               const MsvmShieldRecord *rec,
                               const MsvmTranslateOptions *opts,
                               const char *stash, xmlDocPtr *ret_stash, GError **error)
{
  const MsvmValue *v = &merged->values[MSVM_PROP_SHIELDING_REQUESTED];
  gboolean shield = v->present && v->boolean;
  xmlDocPtr sdoc = NULL;

  if (shield) {
    g_autofree char *machine = machine_type(doc);
    if (!boots_uefi(doc)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "ShieldingRequested: the VM does not boot UEFI (neither <os firmware='efi'> "
                  "nor a pflash <loader>); like Hyper-V, which shields only Generation 2 VMs, "
                  "only UEFI VMs on a q35 machine can be shielded");
      return FALSE;
    }
    if (!is_q35(machine)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "ShieldingRequested: the machine type is %s%s%s, not q35; secure boot with "
                  "SMM needs a q35 machine",
                  machine ? "'" : "", machine ? machine : "not given (libvirt's default)",
                  machine ? "'" : "");
      return FALSE;
    }
    if (opts->check_host && !opts->host_has_secure_boot) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                  "ShieldingRequested: this host has no secure-boot UEFI firmware for the VM "
                  "(domain capabilities)");
      return FALSE;
    }
  }

  if (stash != NULL && *stash != '\0') {
    if (!rec->shielded || rec->removed_devices == 0) {
      if (!opts->force) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                    "a stash of removed devices was given but the domain's metadata records "
                    "none removed by shielding; it would be lost (force to discard it)");
        return FALSE;
      }
    } else {
      sdoc = parse_stash(doc, stash, rec, opts->force, error);
      if (sdoc == NULL)
        return FALSE;
    }
  } else if (rec->shielded && rec->removed_devices > 0 && !opts->force) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "the stash of the %u device(s) that shielding removed is missing; pass it, "
                "or force to %s", rec->removed_devices,
                shield ? "go on without it" : "unshield without restoring them");
    return FALSE;
  }
  *ret_stash = sdoc;
  return TRUE;
}

/* ---- apply */

static void
record_change(MsvmShieldRecord *rec, gsize changed_off, gsize before_off, const char *before)
{
  if (REC_CHANGED(rec, changed_off))
    return; /* the first change keeps the original value */
  REC_CHANGED(rec, changed_off) = TRUE;
  if (before_off != 0)
    REC_BEFORE(rec, before_off) = g_strdup(before);
}

static gboolean
enable_firmware_features(xmlDocPtr doc, MsvmShieldRecord *rec)
{
  xmlNodePtr os = os_node(doc);
  xmlNodePtr fw = msvm_xml_child(os, "firmware");
  gboolean changed = FALSE;

  if (fw == NULL) {
    xmlNodePtr type = msvm_xml_child(os, "type");
    xmlNodePtr before = msvm_xml_first_of(os, after_firmware);
    if (before == NULL && type != NULL)
      before = msvm_xml_next(type, NULL);
    fw = msvm_xml_add(os, "firmware", before);
    if (!rec->added_firmware)
      rec->added_firmware = TRUE;
  }
  for (gsize i = 0; i < G_N_ELEMENTS(firmware_features); i++) {
    xmlNodePtr f;
    g_autofree char *enabled = NULL;
    for (f = msvm_xml_child(fw, "feature"); f != NULL; f = msvm_xml_next(f, "feature")) {
      if (msvm_xml_prop_is(f, "name", firmware_features[i].name))
        break;
    }
    if (f == NULL) {
      /* enrolled-keys goes first, as libvirt writes them */
      f = msvm_xml_add(fw, "feature", i == 0 ? msvm_xml_child(fw, "feature") : NULL);
      xmlNewProp(f, BAD_CAST "enabled", BAD_CAST "yes");
      xmlNewProp(f, BAD_CAST "name", BAD_CAST firmware_features[i].name);
      record_change(rec, firmware_features[i].changed_offset,
                    firmware_features[i].before_offset, NULL);
      changed = TRUE;
      continue;
    }
    enabled = msvm_xml_prop(f, "enabled");
    if (g_strcmp0(enabled, "yes") != 0) {
      record_change(rec, firmware_features[i].changed_offset,
                    firmware_features[i].before_offset, enabled);
      xmlSetProp(f, BAD_CAST "enabled", BAD_CAST "yes");
      changed = TRUE;
    }
  }
  return changed;
}

static gboolean
enable_loader_secure(xmlDocPtr doc, MsvmShieldRecord *rec, gboolean always)
{
  xmlNodePtr loader = msvm_xml_child(os_node(doc), "loader");
  g_autofree char *secure = msvm_xml_prop(loader, "secure");

  if (loader == NULL || g_strcmp0(secure, "yes") == 0)
    return FALSE;
  /* with autoselection only an explicit secure='no' stands in the way */
  if (!always && secure == NULL)
    return FALSE;
  record_change(rec, G_STRUCT_OFFSET(MsvmShieldRecord, loader_secure_changed),
                G_STRUCT_OFFSET(MsvmShieldRecord, loader_secure_before), secure);
  xmlSetProp(loader, BAD_CAST "secure", BAD_CAST "yes");
  return TRUE;
}

static void
enable_smm(xmlDocPtr doc, MsvmShieldRecord *rec)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr features = msvm_xml_child(root, "features");
  xmlNodePtr smm;
  g_autofree char *state = NULL;

  if (features == NULL) {
    features = msvm_xml_add(root, "features", msvm_xml_first_of(root, after_features));
    rec->added_features = TRUE;
  }
  smm = msvm_xml_child(features, "smm");
  if (smm == NULL) {
    smm = msvm_xml_add(features, "smm", msvm_xml_first_of(features, after_smm));
    xmlNewProp(smm, BAD_CAST "state", BAD_CAST "on");
    record_change(rec, G_STRUCT_OFFSET(MsvmShieldRecord, smm_changed),
                  G_STRUCT_OFFSET(MsvmShieldRecord, smm_before), NULL);
    return;
  }
  state = msvm_xml_prop(smm, "state");
  if (state == NULL || g_strcmp0(state, "on") == 0)
    return; /* <smm/> is on */
  record_change(rec, G_STRUCT_OFFSET(MsvmShieldRecord, smm_changed),
                G_STRUCT_OFFSET(MsvmShieldRecord, smm_before), state);
  xmlSetProp(smm, BAD_CAST "state", BAD_CAST "on");
}

static xmlDocPtr
new_stash(xmlDocPtr doc)
{
  xmlDocPtr sdoc = xmlNewDoc(BAD_CAST "1.0");
  xmlNodePtr root = xmlNewDocNode(sdoc, NULL, BAD_CAST "stash", NULL);
  xmlNsPtr ns = xmlNewNs(root, BAD_CAST MSVM_STASH_NS, BAD_CAST "msvm");
  char uuid[37] = "";

  xmlSetNs(root, ns);
  msvm_domain_uuid_string(doc, uuid);
  xmlNewProp(root, BAD_CAST "domain", BAD_CAST uuid);
  xmlDocSetRootElement(sdoc, root);
  xmlAddChild(root, xmlNewDocText(sdoc, BAD_CAST "\n"));
  return sdoc;
}

static void
stash_append(xmlDocPtr sdoc, xmlNodePtr device, guint index)
{
  xmlNodePtr root = xmlDocGetRootElement(sdoc);
  xmlNodePtr entry = xmlNewDocNode(sdoc, root->ns, BAD_CAST "device", NULL);
  g_autofree char *idx = g_strdup_printf("%u", index);

  xmlNewProp(entry, BAD_CAST "index", BAD_CAST idx);
  xmlAddChild(entry, xmlDocCopyNode(device, sdoc, 1));
  if (root->last != NULL && root->last->type == XML_TEXT_NODE) {
    xmlAddPrevSibling(root->last, entry);
    xmlAddPrevSibling(entry, xmlNewDocText(sdoc, BAD_CAST "\n  "));
  } else {
    xmlAddChild(root, xmlNewDocText(sdoc, BAD_CAST "\n  "));
    xmlAddChild(root, entry);
    xmlAddChild(root, xmlNewDocText(sdoc, BAD_CAST "\n"));
  }
}

static gint
compare_index(gconstpointer a, gconstpointer b)
{
  xmlNodePtr x = *(xmlNodePtr *)a, y = *(xmlNodePtr *)b;
  g_autofree char *xs = msvm_xml_prop(x, "index");
  g_autofree char *ys = msvm_xml_prop(y, "index");
  guint64 xi = g_ascii_strtoull(xs, NULL, 10), yi = g_ascii_strtoull(ys, NULL, 10);

  return xi < yi ? -1 : xi > yi ? 1 : 0;
}

static guint
entry_index(xmlNodePtr entry)
{
  g_autofree char *idx = msvm_xml_prop(entry, "index");

  return (guint)g_ascii_strtoull(idx, NULL, 10);
}

/* Move the interactive devices into the stash.  Indices are positions in
 * the list the devices would form with everything stashed put back, so a
 * later removal (while shielded) and earlier ones restore consistently:
 * the stash's entries are first placed among the current devices at their
 * indices, then every entry is renumbered by its place in that list. */
static guint
stash_devices(xmlDocPtr doc, xmlDocPtr sdoc)
{
  xmlNodePtr devices = msvm_xml_child(xmlDocGetRootElement(doc), "devices");
  g_autoptr(GPtrArray) entries = g_ptr_array_new();
  g_autoptr(GPtrArray) full = g_ptr_array_new();
  g_autoptr(GPtrArray) found = g_ptr_array_new();

  if (devices == NULL)
    return 0;
  for (xmlNodePtr e = xmlDocGetRootElement(sdoc)->children; e != NULL; e = e->next) {
    if (e->type == XML_ELEMENT_NODE)
      g_ptr_array_add(entries, e);
  }
  g_ptr_array_sort(entries, compare_index);
  for (xmlNodePtr c = devices->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE)
      g_ptr_array_add(full, c);
  }
  for (guint i = 0; i < entries->len; i++) {
    guint at = MIN(entry_index(entries->pdata[i]), full->len);
    g_ptr_array_insert(full, (gint)at, entries->pdata[i]);
  }
  for (guint i = 0; i < full->len; i++) {
    xmlNodePtr n = full->pdata[i];
    g_autofree char *idx = g_strdup_printf("%u", i);
    if (n->doc == sdoc) {
      xmlSetProp(n, BAD_CAST "index", BAD_CAST idx);
    } else if (is_interactive(n)) {
      stash_append(sdoc, n, i);
      g_ptr_array_add(found, n);
    }
  }
  for (guint i = 0; i < found->len; i++)
    msvm_xml_remove(found->pdata[i]);
  return found->len;
}

static guint
restore_devices(xmlDocPtr doc, xmlDocPtr sdoc)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr devices = msvm_xml_child(root, "devices");
  g_autoptr(GPtrArray) entries = g_ptr_array_new();

  if (sdoc == NULL)
    return 0;
  for (xmlNodePtr e = xmlDocGetRootElement(sdoc)->children; e != NULL; e = e->next) {
    if (e->type == XML_ELEMENT_NODE)
      g_ptr_array_add(entries, e);
  }
  /* stable: entries with the same index keep their order */
  g_ptr_array_sort(entries, compare_index);
  if (devices == NULL && entries->len > 0)
    devices = msvm_xml_add(root, "devices", NULL);
  for (guint i = 0; i < entries->len; i++) {
    xmlNodePtr e = entries->pdata[i];
    g_autofree char *idx = msvm_xml_prop(e, "index");
    guint64 index = g_ascii_strtoull(idx, NULL, 10);
    xmlNodePtr dev = msvm_xml_nth_element(e, 0);
    xmlNodePtr copy = xmlDocCopyNode(dev, doc, 1);
    msvm_xml_insert(devices, copy, msvm_xml_nth_element(devices, (guint)index));
  }
  return entries->len;
}

static void
note(GString *notes, const char *text)
{
  if (notes->len > 0)
    g_string_append(notes, "; ");
  g_string_append(notes, text);
}

static void
shield(xmlDocPtr doc, MsvmShieldRecord *rec, xmlDocPtr *sdoc, GString *notes)
{
  gboolean firmware_changed;
  guint removed;

  rec->shielded = TRUE;
  if (uses_autoselection(doc)) {
    firmware_changed = enable_firmware_features(doc, rec);
    firmware_changed |= enable_loader_secure(doc, rec, FALSE);
  } else {
    firmware_changed = enable_loader_secure(doc, rec, TRUE);
    if (firmware_changed)
      note(notes, "ShieldingRequested: secure='yes' was set on the explicit <loader>; secure "
                  "boot is enforced only when that loader is a secure-boot build and its "
                  "varstore template has enrolled keys (e.g. OVMF_CODE_4M.ms.fd with "
                  "OVMF_VARS_4M.ms.fd)");
  }
  enable_smm(doc, rec);
  if (*sdoc == NULL)
    *sdoc = new_stash(doc);
  removed = stash_devices(doc, *sdoc);
  rec->removed_devices += removed;
  if (removed > 0) {
    g_autofree char *text = g_strdup_printf(
      "ShieldingRequested: %u host-side interactive device(s) removed and kept in the stash; "
      "they come back when shielding is turned off", removed);
    note(notes, text);
  }
  if (firmware_changed)
    note(notes, "ShieldingRequested: the firmware selection changed to secure boot with "
                "enrolled keys; if the VM has started before, its next start needs "
                "`virsh start --reset-nvram` so that the UEFI variable store is recreated from "
                "the template with the enrolled keys");
}

static void
revert_attr(xmlNodePtr node, const char *attr, const char *before)
{
  if (before == NULL)
    xmlUnsetProp(node, BAD_CAST attr);
  else
    xmlSetProp(node, BAD_CAST attr, BAD_CAST before);
}

static void
unshield(xmlDocPtr doc, MsvmShieldRecord *rec, xmlDocPtr sdoc, GString *notes)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr os = os_node(doc);
  xmlNodePtr fw = msvm_xml_child(os, "firmware");
  xmlNodePtr features = msvm_xml_child(root, "features");
  gboolean firmware_changed = FALSE;
  guint restored;

  for (gsize i = 0; i < G_N_ELEMENTS(firmware_features) && fw != NULL; i++) {
    const char *before = REC_BEFORE(rec, firmware_features[i].before_offset);
    xmlNodePtr f;
    if (!REC_CHANGED(rec, firmware_features[i].changed_offset))
      continue;
    for (f = msvm_xml_child(fw, "feature"); f != NULL; f = msvm_xml_next(f, "feature")) {
      if (msvm_xml_prop_is(f, "name", firmware_features[i].name))
        break;
    }
    if (f == NULL)
      continue;
    if (before == NULL)
      msvm_xml_remove(f);
    else
      xmlSetProp(f, BAD_CAST "enabled", BAD_CAST before);
    firmware_changed = TRUE;
  }
  if (rec->added_firmware && fw != NULL && msvm_xml_count_elements(fw) == 0)
    msvm_xml_remove(fw);
  if (rec->loader_secure_changed && msvm_xml_child(os, "loader") != NULL) {
    revert_attr(msvm_xml_child(os, "loader"), "secure", rec->loader_secure_before);
    firmware_changed = TRUE;
  }
  if (rec->smm_changed && msvm_xml_child(features, "smm") != NULL) {
    if (rec->smm_before == NULL)
      msvm_xml_remove(msvm_xml_child(features, "smm"));
    else
      xmlSetProp(msvm_xml_child(features, "smm"), BAD_CAST "state", BAD_CAST rec->smm_before);
  }
  if (rec->added_features && features != NULL && msvm_xml_count_elements(features) == 0)
    msvm_xml_remove(features);

  restored = restore_devices(doc, sdoc);
  if (restored > 0) {
    g_autofree char *text = g_strdup_printf(
      "ShieldingRequested: %u device(s) restored from the stash", restored);
    note(notes, text);
  }
  if (restored < rec->removed_devices) {
    g_autofree char *text = g_strdup_printf(
      "ShieldingRequested: %u device(s) removed by shielding were not restored (no stash)",
      rec->removed_devices - restored);
    note(notes, text);
  }
  if (firmware_changed)
    note(notes, "ShieldingRequested: the secure-boot selection that shielding made was undone; "
                "if the VM has started since, its next start needs `virsh start --reset-nvram` "
                "to recreate the UEFI variable store from the firmware's template");
  msvm_shield_record_clear(rec);
}

xmlDocPtr
msvm_domain_shielding_apply(xmlDocPtr doc, const MsvmSettings *merged,
                            MsvmShieldRecord *rec, xmlDocPtr stash, GString *notes)
{
  const MsvmValue *v = &merged->values[MSVM_PROP_SHIELDING_REQUESTED];

  if (v->present && v->boolean) {
    shield(doc, rec, &stash, notes);
    if (rec->removed_devices == 0 || stash == NULL ||
        msvm_xml_count_elements(xmlDocGetRootElement(stash)) == 0) {
      xmlFreeDoc(stash);
      return NULL;
    }
    /* force without the old stash: count only what it holds */
    rec->removed_devices = msvm_xml_count_elements(xmlDocGetRootElement(stash));
    return stash;
  }
  if (rec->shielded)
    unshield(doc, rec, stash, notes);
  xmlFreeDoc(stash);
  return NULL;
}
