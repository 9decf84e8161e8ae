/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-get-security-settings.c: `msvm-security get-security-settings --domain D
 * [--format cim-xml|mof]`: the VM's Msvm_SecuritySettingData as applied (the
 * project's metadata in the definition) on standard output, the report on
 * standard error.
 */
#include "config.h"

#include <string.h>

#include "msvm-cli.h"
#include "msvm-error.h"
#include "msvm-cli-service.h"
#include "msvm-security.h"

int
msvm_cmd_get_security_settings(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *domain = NULL;
  g_autofree char *format = NULL;
  const GOptionEntry entries[] = {
    { "domain", 0, 0, G_OPTION_ARG_STRING, &domain, "the VM (name or UUID)", "D" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &format, "cim-xml (default) or mof", "FORMAT" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autofree char *text = NULL;
  MsvmSettingsFormat fmt = MSVM_SETTINGS_FORMAT_CIM_XML;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "The VM's Msvm_SecuritySettingData as applied."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (domain == NULL)
    return msvm_cli_usage_error(cli, "--domain is required");
  if (format != NULL && strcmp(format, "mof") == 0)
    fmt = MSVM_SETTINGS_FORMAT_MOF;
  else if (format != NULL && strcmp(format, "cim-xml") != 0)
    return msvm_cli_usage_error(cli, "--format is cim-xml or mof, not '%s'", format);

  svc = msvm_cli_open_service(cli, &error);
  if (svc == NULL || !msvm_service_get_security_settings(svc, domain, fmt, &text, &error))
    return msvm_cli_report_error(cli, error);
  {
    g_autoptr(GBytes) payload = g_bytes_new(text, strlen(text));
    MsvmReport report = { .return_value = 0, .payload_kind = MSVM_PAYLOAD_TEXT,
                          .payload = payload};
    return msvm_cli_report(cli, &report);
  }
}
