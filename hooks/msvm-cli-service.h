/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-cli-service.h: the libvirt-backed commands open the provider here. */
#pragma once

#include "msvm-cli.h"
#include "msvm-security.h"

/* The provider on --connect's URI (libvirt's default without it), over a
 * read-only connection with --readonly. */
MsvmService *msvm_cli_open_service(const MsvmCli *cli, GError **error);

/* Report a method's result (ReturnValue, Job, Message); NULL (a call that
 * succeeded with nothing to say, as get-key-protector --output) reports 0. */
int msvm_cli_report_result(const MsvmCli *cli, const MsvmCallResult *result);
