/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-domain.c: the domain side of the translation.  The first input byte
 * chooses which properties the update sets (TpmEnabled, ShieldingRequested,
 * EncryptStateAndVmMigrationTraffic, each TRUE/FALSE/absent); the rest is
 * the domain XML.  A domain that parses must apply or be refused with a set
 * error; an applied domain must format to XML that parses again, give its
 * settings back, and accept the same update a second time.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "msvm-domain.h"
#include "msvm-error.h"

static void
set_tristate(MsvmSettings *s, MsvmProp prop, unsigned v)
{
  if (v % 3 == 1)
    msvm_settings_set_boolean(s, prop, TRUE);
  else if (v % 3 == 2)
    msvm_settings_set_boolean(s, prop, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(MsvmSettings) update = msvm_settings_new();
  MsvmTranslateOptions opts = { .secret_uuid = "3a1f6c2e-9b4d-4e8a-a7c5-0d2b4f6e8a1c" };
  g_autoptr(GError) error = NULL;
  g_autofree char *stash = NULL;
  g_autofree char *message = NULL;
  g_autofree char *text = NULL;
  xmlDocPtr doc;
  unsigned sel;

  if (size < 1)
    return 0;
  sel = data[0];
  set_tristate(update, MSVM_PROP_TPM_ENABLED, sel);
  set_tristate(update, MSVM_PROP_SHIELDING_REQUESTED, sel / 3);
  set_tristate(update, MSVM_PROP_ENCRYPT_STATE_AND_VM_MIGRATION_TRAFFIC, sel / 9);
  opts.force = (sel / 27) % 2;

  doc = msvm_domain_parse((const char *)data + 1, size - 1, &error);
  if (doc == NULL) {
    g_assert(error != NULL);
    return 0;
  }
  if (!msvm_domain_apply(doc, update, &opts, NULL, &stash, &message, &error)) {
    g_assert(error != NULL && error->domain == MSVM_ERROR);
    g_assert(msvm_return_code_name((guint32)error->code) != NULL);
    xmlFreeDoc(doc);
    return 0;
  }
  text = msvm_domain_format(doc);
  xmlFreeDoc(doc);
  g_assert(text != NULL);
  {
    g_autoptr(GError) again_error = NULL;
    g_autoptr(MsvmSettings) back = NULL;
    g_autofree char *stash2 = NULL;
    g_autofree char *message2 = NULL;
    xmlDocPtr again = msvm_domain_parse(text, strlen(text), &again_error);

    g_assert(again != NULL);
    g_assert(msvm_domain_read_settings(again, &back, &again_error));
    g_assert(msvm_domain_is_managed(again));
    g_assert(msvm_domain_apply(again, update, &opts, stash, &stash2, &message2, &again_error));
    xmlFreeDoc(again);
  }
  return 0;
}
