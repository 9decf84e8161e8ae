/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The settings model: property table, merge, InstanceID. */
#include "config.h"

#include <string.h>

#include "msvm-error.h"
#include "msvm-settings.h"

static void
test_prop_lookup(void)
{
  g_assert_cmpint(msvm_settings_prop_lookup("TpmEnabled"), ==, MSVM_PROP_TPM_ENABLED);
  g_assert_cmpint(msvm_settings_prop_lookup("tpmenabled"), ==, MSVM_PROP_TPM_ENABLED);
  g_assert_cmpint(msvm_settings_prop_lookup("INSTANCEID"), ==, MSVM_PROP_INSTANCE_ID);
  g_assert_cmpint(msvm_settings_prop_lookup("__PATH"), ==, MSVM_PROP_LAST);
  for (int p = 0; p < MSVM_PROP_LAST; p++)
    g_assert_nonnull(msvm_settings_props[p].name);
}

static void
test_merge(void)
{
  g_autoptr(MsvmSettings) base = msvm_settings_new();
  g_autoptr(MsvmSettings) update = msvm_settings_new();

  msvm_settings_set_boolean(base, MSVM_PROP_TPM_ENABLED, TRUE);
  msvm_settings_set_boolean(base, MSVM_PROP_SHIELDING_REQUESTED, TRUE);
  msvm_settings_set_string(base, MSVM_PROP_CAPTION, "old");
  msvm_settings_set_boolean(update, MSVM_PROP_SHIELDING_REQUESTED, FALSE);
  msvm_settings_set_string(update, MSVM_PROP_CAPTION, "new");
  msvm_settings_merge(base, update);
  g_assert_true(msvm_settings_is_true(base, MSVM_PROP_TPM_ENABLED));
  g_assert_true(base->values[MSVM_PROP_SHIELDING_REQUESTED].present);
  g_assert_false(msvm_settings_is_true(base, MSVM_PROP_SHIELDING_REQUESTED));
  g_assert_cmpstr(base->values[MSVM_PROP_CAPTION].string, ==, "new");
  g_assert_false(base->values[MSVM_PROP_KSD_ENABLED].present);
}

static void
test_instance_id(void)
{
  static const guint8 want[16] = { 0x5f, 0x2b, 0x7a, 0x1c, 0x3d, 0x4e, 0x4f, 0x60,
                                   0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b };
  static const char *bad[] = {
    "", "Microsoft:", "Microsoft:5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5", "Hyper-V:5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B",
    "Microsoft:5F2B7A1C3D4E4F608A9B0C1D2E3F4A5B", "Microsoft:5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5BX",
    "Microsoft:{5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B", "Microsoft:ZF2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B",
  };
  guint8 uuid[16];

  g_assert_true(msvm_settings_parse_instance_id("Microsoft:5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B", uuid, NULL));
  g_assert_cmpmem(uuid, 16, want, 16);
  g_assert_true(msvm_settings_parse_instance_id("microsoft:5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b\\Security", uuid, NULL));
  g_assert_cmpmem(uuid, 16, want, 16);
  g_assert_true(msvm_settings_parse_instance_id("Microsoft:{5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b}", uuid, NULL));
  g_assert_cmpmem(uuid, 16, want, 16);
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    memset(uuid, 0xaa, sizeof(uuid));
    g_assert_false(msvm_settings_parse_instance_id(bad[i], uuid, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_assert_nonnull(strstr(error->message, "InstanceID"));
    g_assert_cmpint(uuid[0], ==, 0xaa); /* untouched on failure */
  }
}

static void
test_return_codes(void)
{
  g_assert_cmpstr(msvm_return_code_name(32776), ==, "Incorrect data type");
  g_assert_cmpstr(msvm_return_code_name(4096), ==, "Method Parameters Checked - Job Started");
  g_assert_null(msvm_return_code_name(1));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/settings/prop-lookup", test_prop_lookup);
  g_test_add_func("/settings/merge", test_merge);
  g_test_add_func("/settings/instance-id", test_instance_id);
  g_test_add_func("/settings/return-codes", test_return_codes);
  return g_test_run();
}
