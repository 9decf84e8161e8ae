/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "msvm-cli-service.h"

MsvmService *
msvm_cli_open_service(const MsvmCli *cli, GError **error)
{
  return cli->readonly ? msvm_service_open_read_only(cli->connect_uri, error)
                       : msvm_service_open(cli->connect_uri, error);
}
