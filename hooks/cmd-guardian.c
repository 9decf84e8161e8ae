/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-guardian.c: `msvm-security guardian show [--output F] | trust --name
 * NAME --certificate F [--force] | list | forget --name NAME` (DESIGN.md
 * section 10): this store's guardian and the guardians it trusts.
 *
 * show writes the two certificates (PEM) on standard output and the report
 * on standard error, or with --output into F and the report on standard
 * output; list writes one line per guardian (name, signing and encryption
 * certificate SHA-256 fingerprints) the same way.  --json: one object,
 * "Certificates" (show) or "Guardians" (list) beside the report.
 */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "msvm-cli-service.h"
#include "msvm-cli.h"
#include "msvm-error.h"
#include "msvm-file.h"
#include "msvm-security.h"

static int
guardian_show(MsvmCli *cli, MsvmService *svc, const char *output)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pem = NULL;
  g_autoptr(GBytes) payload = NULL;
  MsvmReport report = { .return_value = 0, .payload_kind = MSVM_PAYLOAD_TEXT,
                        .payload_key = "Certificates" };

  if (!msvm_service_guardian_show(svc, &pem, &error))
    return msvm_cli_report_error(cli, error);
  if (output != NULL) {
    g_autofree char *msg = NULL;
    /* certificates are public; written whole or not at all */
    if (!msvm_atomic_write(output, pem, strlen(pem), 0644, MSVM_ATOMIC_WRITE_UNIQUE_TEMP,
                           &error))
      return msvm_cli_report_error(cli, error);
    msg = g_strdup_printf("this host's guardian certificates are in %s: give them to the "
                          "other host's 'msvm-security guardian trust'", output);
    report.message = msg;
    report.payload_kind = MSVM_PAYLOAD_NONE;
    return msvm_cli_report(cli, &report);
  }
  payload = g_bytes_new(pem, strlen(pem));
  report.payload = payload;
  return msvm_cli_report(cli, &report);
}

static int
guardian_list(MsvmCli *cli, MsvmService *svc)
{
  g_autoptr(GError) error = NULL;
  g_autolist(MsvmGuardianInfo) list = NULL;
  g_autoptr(GString) text = g_string_new(NULL);
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonNode) json = NULL;
  g_autoptr(GBytes) payload = NULL;
  MsvmReport report = { .return_value = 0, .payload_kind = MSVM_PAYLOAD_TEXT,
                        .payload_key = "Guardians" };

  if (!msvm_service_guardian_list(svc, &list, &error))
    return msvm_cli_report_error(cli, error);
  json_builder_begin_array(b);
  for (const GList *l = list; l != NULL; l = l->next) {
    const MsvmGuardianInfo *g = l->data;
    g_string_append_printf(text, "%s%s\n  signing    SHA-256 %s\n  encryption SHA-256 %s\n",
                           g->name, g->local ? " (this host's own guardian)" : "",
                           g->signing_fingerprint, g->encryption_fingerprint);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "Name");
    json_builder_add_string_value(b, g->name);
    json_builder_set_member_name(b, "Local");
    json_builder_add_boolean_value(b, g->local);
    json_builder_set_member_name(b, "SigningFingerprint");
    json_builder_add_string_value(b, g->signing_fingerprint);
    json_builder_set_member_name(b, "EncryptionFingerprint");
    json_builder_add_string_value(b, g->encryption_fingerprint);
    json_builder_set_member_name(b, "Subject");
    json_builder_add_string_value(b, g->subject);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json = json_builder_get_root(b);
  payload = g_bytes_new(text->str, text->len);
  report.payload = payload;
  report.payload_json = json;
  return msvm_cli_report(cli, &report);
}

int
msvm_cmd_guardian(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *name = NULL;
  g_autofree char *certificate = NULL;
  g_autofree char *output = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name,
      "trust, forget: the guardian's name (letters, digits, '.', '_', '-')", "NAME" },
    { "certificate", 0, 0, G_OPTION_ARG_FILENAME, &certificate,
      "trust: the guardian's certificates, as its 'guardian show' wrote them", "F" },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force,
      "trust: replace the certificates of a guardian trusted under this name", NULL },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      "show: write the certificates to this file instead of standard output", "F" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(MsvmCallResult) result = NULL;
  const char *sub;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, "show | trust | list | forget",
                      "This host's guardian (what another host trusts to send it a VM's key "
                      "protector) and the guardians it trusts."))
    return MSVM_EXIT_USAGE;
  if (argc < 2)
    return msvm_cli_usage_error(cli, "which: show, trust, list or forget?");
  sub = argv[1];
  if (argc > 2)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[2]);
  if (strcmp(sub, "show") != 0 && strcmp(sub, "trust") != 0 && strcmp(sub, "list") != 0 &&
      strcmp(sub, "forget") != 0)
    return msvm_cli_usage_error(cli, "unknown guardian command '%s'", sub);
  if ((strcmp(sub, "trust") == 0 || strcmp(sub, "forget") == 0) && name == NULL)
    return msvm_cli_usage_error(cli, "guardian %s needs --name", sub);
  if (strcmp(sub, "trust") == 0 && certificate == NULL)
    return msvm_cli_usage_error(cli, "guardian trust needs --certificate");
  if (strcmp(sub, "trust") != 0 && (certificate != NULL || force))
    return msvm_cli_usage_error(cli, "--certificate and --force go with guardian trust");
  if (strcmp(sub, "show") != 0 && output != NULL)
    return msvm_cli_usage_error(cli, "--output goes with guardian show");
  if ((strcmp(sub, "show") == 0 || strcmp(sub, "list") == 0) && name != NULL)
    return msvm_cli_usage_error(cli, "--name goes with guardian trust and forget");

  svc = msvm_cli_open_service(cli, &error);
  if (svc == NULL)
    return msvm_cli_report_error(cli, error);
  if (strcmp(sub, "show") == 0)
    return guardian_show(cli, svc, output);
  if (strcmp(sub, "list") == 0)
    return guardian_list(cli, svc);
  if (strcmp(sub, "trust") == 0) {
    g_autoptr(GBytes) pem = NULL;
    gsize len = 0;
    const guint8 *p;
    if (!msvm_cli_read_input(certificate, 64 * 1024, &pem, &error))
      return msvm_cli_report_error(cli, error);
    p = g_bytes_get_data(pem, &len);
    if (!msvm_service_guardian_trust(svc, name, p, len,
                                     force ? MSVM_CALL_FORCE : MSVM_CALL_NONE, &result, &error))
      return msvm_cli_report_error(cli, error);
  } else if (!msvm_service_guardian_forget(svc, name, &result, &error)) {
    return msvm_cli_report_error(cli, error);
  }
  return msvm_cli_report_result(cli, result);
}
