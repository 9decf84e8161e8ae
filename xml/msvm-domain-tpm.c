/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain-tpm.c: TpmEnabled on the domain's <tpm> device.
 *
 * TRUE: an emulator TPM 2.0 whose <encryption secret=.../> names the current
 * protector generation's secret; an existing emulator TPM 2.0 keeps its model
 * and everything else, any other TPM (1.2, passthrough, external) is refused.
 * FALSE: the <tpm> device goes (libvirt keeps the state on disk).
 */
#include "config.h"

#include <string.h>

#include "msvm-domain-priv.h"
#include "msvm-error.h"

/* The architecture's usual TPM model for a new device. */
static const struct {
  const char *arch_prefix;
  const char *model;
} default_models[] = {
  { "x86_64", "tpm-crb" },
  { "i686", "tpm-crb" },
  { "ppc64", "tpm-spapr" },  /* ppc64 and ppc64le */
  { "", "tpm-tis" },         /* aarch64 (tpm-tis-device) and the rest */
};

/* Elements libvirt writes after <tpm> in <devices>. */
static const char *const after_tpm[] = {
  "graphics", "sound", "audio", "video", "hostdev", "redirdev", "redirfilter",
  "hub", "watchdog", "memballoon", "rng", "nvram", "panic", "shmem", "memory",
  "iommu", "vsock", "crypto", NULL
};

static const char *
domain_arch(xmlDocPtr doc, char **owned)
{
  xmlNodePtr type = msvm_xml_child(msvm_xml_child(xmlDocGetRootElement(doc), "os"), "type");

  *owned = msvm_xml_prop(type, "arch");
  /* without arch= libvirt takes the host's; this project runs on x86_64 */
  return *owned ? *owned : "x86_64";
}

const char *
msvm_tpm_default_model(const char *arch)
{
  if (arch == NULL)
    arch = "x86_64";
  for (gsize i = 0; i < G_N_ELEMENTS(default_models); i++) {
    if (g_str_has_prefix(arch, default_models[i].arch_prefix))
      return default_models[i].model;
  }
  return "tpm-tis";
}

const char *
msvm_tpm_kind_describe(MsvmTpmKind kind)
{
  switch (kind) {
  case MSVM_TPM_NONE: return "no";
  case MSVM_TPM_EMULATOR_2_0: return "an emulated TPM 2.0";
  case MSVM_TPM_EMULATOR_1_2: return "an emulated TPM 1.2";
  case MSVM_TPM_PASSTHROUGH: return "a passthrough (host) TPM";
  case MSVM_TPM_EXTERNAL: return "an external TPM";
  case MSVM_TPM_OTHER: return "an unknown kind of TPM";
  }
  return "an unknown kind of TPM";
}

static MsvmTpmKind
tpm_kind_of(xmlNodePtr tpm, const char *arch)
{
  xmlNodePtr backend = msvm_xml_child(tpm, "backend");
  g_autofree char *type = msvm_xml_prop(backend, "type");
  g_autofree char *version = NULL;
  g_autofree char *model = NULL;

  if (g_strcmp0(type, "passthrough") == 0)
    return MSVM_TPM_PASSTHROUGH;
  if (g_strcmp0(type, "external") == 0)
    return MSVM_TPM_EXTERNAL;
  if (g_strcmp0(type, "emulator") != 0)
    return MSVM_TPM_OTHER;
  version = msvm_xml_prop(backend, "version");
  if (g_strcmp0(version, "2.0") == 0)
    return MSVM_TPM_EMULATOR_2_0;
  if (version != NULL)
    return MSVM_TPM_EMULATOR_1_2;
  /* libvirt 9.0 (qemuDomainTPMDefPostParse, checked with virsh define): an
   * emulator without version= is TPM 2.0 for tpm-crb and tpm-spapr, TPM 1.2
   * otherwise; the model defaults to tpm-spapr on ppc64, tpm-tis elsewhere. */
  model = msvm_xml_prop(tpm, "model");
  if (model == NULL)
    model = g_strdup(g_str_has_prefix(arch, "ppc64") ? "tpm-spapr" : "tpm-tis");
  if (g_strcmp0(model, "tpm-crb") == 0 || g_strcmp0(model, "tpm-spapr") == 0)
    return MSVM_TPM_EMULATOR_2_0;
  return MSVM_TPM_EMULATOR_1_2;
}

MsvmTpmKind
msvm_domain_tpm_kind(xmlDocPtr doc, xmlNodePtr *ret_tpm)
{
  xmlNodePtr devices = msvm_xml_child(xmlDocGetRootElement(doc), "devices");
  g_autofree char *arch_owned = NULL;
  const char *arch = domain_arch(doc, &arch_owned);
  MsvmTpmKind found = MSVM_TPM_NONE;
  xmlNodePtr found_node = NULL;

  for (xmlNodePtr t = msvm_xml_child(devices, "tpm"); t != NULL; t = msvm_xml_next(t, "tpm")) {
    MsvmTpmKind k = tpm_kind_of(t, arch);
    /* anything but an emulated TPM 2.0 decides */
    if (found == MSVM_TPM_NONE || k != MSVM_TPM_EMULATOR_2_0) {
      found = k;
      found_node = t;
    }
    if (k != MSVM_TPM_EMULATOR_2_0)
      break;
  }
  if (ret_tpm != NULL)
    *ret_tpm = found_node;
  return found;
}

char *
msvm_domain_get_tpm_secret(xmlDocPtr doc)
{
  xmlNodePtr devices = msvm_xml_child(xmlDocGetRootElement(doc), "devices");

  for (xmlNodePtr t = msvm_xml_child(devices, "tpm"); t != NULL; t = msvm_xml_next(t, "tpm")) {
    xmlNodePtr backend = msvm_xml_child(t, "backend");
    if (!msvm_xml_prop_is(backend, "type", "emulator"))
      continue;
    return msvm_xml_prop(msvm_xml_child(backend, "encryption"), "secret");
  }
  return NULL;
}

gboolean
msvm_domain_tpm_validate(xmlDocPtr doc, const MsvmSettings *merged, GError **error)
{
  MsvmTpmKind kind;
  xmlNodePtr tpm = NULL;
  gboolean implicit;

  if (!msvm_settings_is_true(merged, MSVM_PROP_TPM_ENABLED))
    return TRUE;
  kind = msvm_domain_tpm_kind(doc, &tpm);
  if (kind == MSVM_TPM_NONE || kind == MSVM_TPM_EMULATOR_2_0)
    return TRUE;
  implicit = kind == MSVM_TPM_EMULATOR_1_2 &&
             !xmlHasProp(msvm_xml_child(tpm, "backend"), BAD_CAST "version");
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
              "TpmEnabled: the domain has %s%s, which is not replaced; "
              "remove it first (virsh edit) to get an emulated TPM 2.0",
              msvm_tpm_kind_describe(kind),
              implicit ? " (libvirt takes an emulator TPM without version= on this model "
                         "as TPM 1.2)" : "");
  return FALSE;
}

static void
set_secret(xmlNodePtr backend, const char *secret_uuid)
{
  xmlNodePtr enc = msvm_xml_child(backend, "encryption");

  if (enc == NULL) {
    static const char *const after_encryption[] = { "active_pcr_banks", NULL };
    enc = msvm_xml_add(backend, "encryption", msvm_xml_first_of(backend, after_encryption));
  }
  xmlSetProp(enc, BAD_CAST "secret", BAD_CAST secret_uuid);
}

static void
add_tpm(xmlDocPtr doc, const char *secret_uuid)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr devices = msvm_xml_child(root, "devices");
  g_autofree char *arch_owned = NULL;
  xmlNodePtr tpm, backend;

  if (devices == NULL)
    devices = msvm_xml_add(root, "devices", NULL);
  tpm = msvm_xml_add(devices, "tpm", msvm_xml_first_of(devices, after_tpm));
  xmlNewProp(tpm, BAD_CAST "model",
             BAD_CAST msvm_tpm_default_model(domain_arch(doc, &arch_owned)));
  backend = msvm_xml_add(tpm, "backend", NULL);
  xmlNewProp(backend, BAD_CAST "type", BAD_CAST "emulator");
  xmlNewProp(backend, BAD_CAST "version", BAD_CAST "2.0");
  set_secret(backend, secret_uuid);
}

void
msvm_domain_tpm_apply(xmlDocPtr doc, const MsvmSettings *merged, const char *secret_uuid)
{
  const MsvmValue *v = &merged->values[MSVM_PROP_TPM_ENABLED];
  xmlNodePtr devices = msvm_xml_child(xmlDocGetRootElement(doc), "devices");
  xmlNodePtr tpm = NULL;

  if (!v->present)
    return;
  if (!v->boolean) {
    xmlNodePtr t = msvm_xml_child(devices, "tpm");
    while (t != NULL) {
      xmlNodePtr next = msvm_xml_next(t, "tpm");
      msvm_xml_remove(t);
      t = next;
    }
    return;
  }
  /* validated: none, or emulated TPM 2.0 */
  if (msvm_domain_tpm_kind(doc, &tpm) == MSVM_TPM_NONE) {
    add_tpm(doc, secret_uuid);
    return;
  }
  for (xmlNodePtr t = msvm_xml_child(devices, "tpm"); t != NULL; t = msvm_xml_next(t, "tpm")) {
    xmlNodePtr backend = msvm_xml_child(t, "backend");
    if (!msvm_xml_prop_is(backend, "type", "emulator"))
      continue;
    if (!msvm_xml_prop_is(backend, "version", "2.0"))
      xmlSetProp(backend, BAD_CAST "version", BAD_CAST "2.0");
    set_secret(backend, secret_uuid);
  }
}
