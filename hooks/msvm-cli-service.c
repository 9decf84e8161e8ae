/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "msvm-cli-service.h"

MsvmService *
msvm_cli_open_service(const MsvmCli *cli, GError **error)
{
  return cli->readonly ? msvm_service_open_read_only(cli->connect_uri, error)
                       : msvm_service_open(cli->connect_uri, error);
}

int
msvm_cli_report_result(const MsvmCli *cli, const MsvmCallResult *result)
{
  MsvmReport report = { .return_value = result != NULL ? result->return_value : 0,
                        .job = result != NULL ? result->job : NULL,
                        .message = result != NULL ? result->message : NULL };

  return msvm_cli_report(cli, &report);
}
