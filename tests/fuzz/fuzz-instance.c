/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-instance.c: msvm_instance_parse() on arbitrary bytes.  It must never
 * crash, hang or leak; when it accepts, both formatters' output must parse
 * back to the same model.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msvm-instance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gboolean
settings_equal(const MsvmSettings *a, const MsvmSettings *b)
{
  if (a->has_vm_uuid != b->has_vm_uuid ||
      (a->has_vm_uuid && memcmp(a->vm_uuid, b->vm_uuid, 16) != 0))
    return FALSE;
  for (int p = 0; p < MSVM_PROP_LAST; p++) {
    const MsvmValue *x = &a->values[p], *y = &b->values[p];
    if (x->present != y->present)
      return FALSE;
    if (x->present && (msvm_settings_props[p].type == MSVM_CIM_BOOLEAN
                         ? x->boolean != y->boolean
                         : g_strcmp0(x->string, y->string) != 0))
      return FALSE;
  }
  return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(MsvmSettings) settings = NULL;
  g_autoptr(GError) error = NULL;

  if (!msvm_instance_parse(data, size, &settings, &error)) {
    if (error == NULL || error->message == NULL)
      abort();
    return 0;
  }
  if (error != NULL)
    abort();
  for (int i = 0; i < 2; i++) {
    g_autofree char *text = i == 0 ? msvm_settings_format_mof(settings)
                                   : msvm_settings_format_cim_xml(settings);
    g_autoptr(MsvmSettings) again = NULL;
    g_autoptr(GError) again_error = NULL;

    if (strlen(text) > MSVM_SETTINGS_MAX_SIZE)
      continue;  /* escaping can make a near-limit instance too large */
    if (!msvm_instance_parse((const guint8 *)text, strlen(text), &again, &again_error) ||
        !settings_equal(settings, again))
      abort();
  }
  return 0;
}
