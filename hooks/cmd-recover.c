/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-recover.c: `msvm-security recover --domain D`: finish an interrupted
 * or deferred change of a stopped VM (DESIGN.md section 6).
 */
#include "config.h"

#include "msvm-cli.h"
#include "msvm-error.h"
#include "msvm-cli-service.h"
#include "msvm-security.h"

int
msvm_cmd_recover(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *domain = NULL;
  const GOptionEntry entries[] = {
    { "domain", 0, 0, G_OPTION_ARG_STRING, &domain, "the VM (name or UUID)", "D" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(MsvmCallResult) result = NULL;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "Finish an interrupted or deferred change of a stopped VM: re-key its "
                      "vTPM state to the current key protector and retire what nothing "
                      "needs."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (domain == NULL)
    return msvm_cli_usage_error(cli, "--domain is required");

  svc = msvm_cli_open_service(cli, &error);
  if (svc == NULL || !msvm_service_recover(svc, domain, &result, &error))
    return msvm_cli_report_error(cli, error);
  return msvm_cli_report_result(cli, result);
}
