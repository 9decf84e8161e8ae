/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-move.c: moving a protected VM between hosts (DESIGN.md section 10):
 *
 *   export-protector --domain D --guardian NAME [--with-state] --output F
 *   import-protector --input F [--force]
 *   forget --domain UUID
 *
 * The bundle is binary (DER), written atomically with mode 0600; the report
 * goes to standard output (or one JSON object with --json).
 */
#include "config.h"

#include <string.h>

#include "msvm-cli-service.h"
#include "msvm-cli.h"
#include "msvm-error.h"
#include "msvm-file.h"
#include "msvm-security.h"

/* Largest bundle import-protector reads (a vTPM state is well under 1 MiB). */
#define BUNDLE_MAX (256u * 1024u * 1024u)

int
msvm_cmd_export_protector(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *domain = NULL;
  g_autofree char *guardian = NULL;
  g_autofree char *output = NULL;
  gboolean with_state = FALSE;
  const GOptionEntry entries[] = {
    { "domain", 0, 0, G_OPTION_ARG_STRING, &domain, "the VM (name or UUID)", "D" },
    { "guardian", 0, 0, G_OPTION_ARG_STRING, &guardian,
      "the trusted guardian to export for ('local': this host's own, a backup)", "NAME" },
    { "with-state", 0, 0, G_OPTION_ARG_NONE, &with_state,
      "also the persistent definition and the vTPM state (stopped VM): a cold move or a "
      "backup", NULL },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      "the bundle file to write (0600, replaced atomically)", "F" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(GBytes) bundle = NULL;
  g_autoptr(MsvmCallResult) result = NULL;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "Export the VM's key protector, signed by this host's guardian and "
                      "encrypted for another (Grant-HgsKeyProtectorAccess). Nothing on this "
                      "host changes."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (domain == NULL || guardian == NULL || output == NULL)
    return msvm_cli_usage_error(cli, "--domain, --guardian and --output are required");
  if (strcmp(output, "-") == 0)
    return msvm_cli_usage_error(cli, "--output needs a file (the bundle is binary)");

  svc = msvm_cli_open_service(cli, &error);
  if (svc == NULL ||
      !msvm_service_export_protector(svc, domain, guardian,
                                     with_state ? MSVM_EXPORT_WITH_STATE : MSVM_EXPORT_NONE,
                                     &bundle, &result, &error))
    return msvm_cli_report_error(cli, error);
  {
    gsize len = 0;
    const void *p = g_bytes_get_data(bundle, &len);
    if (!msvm_atomic_write(output, p, len, 0600, MSVM_ATOMIC_WRITE_UNIQUE_TEMP, &error))
      return msvm_cli_report_error(cli, error);
  }
  {
    g_autofree char *old = result->message;
    result->message = g_strdup_printf("%s: %s", output, old ? old : "");
  }
  return msvm_cli_report_result(cli, result);
}

int
msvm_cmd_import_protector(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *input = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &input,
      "the bundle export-protector wrote for this host's guardian", "F" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force,
      "replace an entry this store holds for the VM under another seed", NULL },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(GBytes) bundle = NULL;
  g_autoptr(MsvmCallResult) result = NULL;
  const guint8 *p;
  gsize len = 0;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "Import a VM's key protector exported for this host's guardian: its "
                      "store entry and libvirt secrets (same UUIDs and values) and, with a "
                      "state inside, its vTPM state and definition."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (input == NULL)
    return msvm_cli_usage_error(cli, "--input is required");
  if (!msvm_cli_read_input(input, BUNDLE_MAX, &bundle, &error))
    return msvm_cli_report_error(cli, error);
  svc = msvm_cli_open_service(cli, &error);
  p = g_bytes_get_data(bundle, &len);
  if (svc == NULL ||
      !msvm_service_import_protector(svc, p, len, force ? MSVM_CALL_FORCE : MSVM_CALL_NONE,
                                     &result, &error))
    return msvm_cli_report_error(cli, error);
  return msvm_cli_report_result(cli, result);
}

int
msvm_cmd_forget(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *domain = NULL;
  const GOptionEntry entries[] = {
    { "domain", 0, 0, G_OPTION_ARG_STRING, &domain, "the UUID of the VM that left", "UUID" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(MsvmCallResult) result = NULL;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "After a VM left this host (virsh migrate --undefinesource): undefine "
                      "its secrets and remove its store entry."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (domain == NULL)
    return msvm_cli_usage_error(cli, "--domain is required");
  svc = msvm_cli_open_service(cli, &error);
  if (svc == NULL || !msvm_service_forget(svc, domain, &result, &error))
    return msvm_cli_report_error(cli, error);
  return msvm_cli_report_result(cli, result);
}
