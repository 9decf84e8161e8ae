/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-translate.c: `msvm-security translate`, the offline translation of an
 * Msvm_SecuritySettingData instance onto a domain XML file (DESIGN.md
 * sections 4 and 8).
 *
 *   msvm-security translate --settings F --domain-xml F [--secret UUID]
 *                           [--stash F] [--force]
 *
 * No libvirt connection and no store: --secret stands in for the VM's key
 * protector (the UUID of the libvirt secret the TPM's <encryption> names),
 * host checks are skipped, and the devices that shielding removes are kept
 * in the --stash file (0600, written atomically; removed once nothing is
 * stashed any more).  The new domain XML goes alone to standard output.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-cli.h"
#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-file.h"
#include "msvm-instance.h"

#define DOMAIN_XML_MAX (16u * 1024u * 1024u)

static gboolean
remove_stash(const char *path, GError **error)
{
  msvm_fault_point("translate-stash-unlink");
  if (unlink(path) < 0) {
    if (errno == ENOENT)
      return TRUE;
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot remove %s: %s", path,
                g_strerror(errno));
    return FALSE;
  }
  {
    g_autofree char *dir = g_path_get_dirname(path);
    return msvm_fsync_dir(dir, error);
  }
}

/* The stash file's text, NULL when it does not exist. */
static gboolean
read_stash(const char *path, char **ret_text, GError **error)
{
  g_autoptr(GBytes) bytes = NULL;
  struct stat st;
  gsize len;
  const char *data;

  if (stat(path, &st) < 0 && errno == ENOENT) {
    *ret_text = NULL;
    return TRUE;
  }
  if (!msvm_cli_read_input(path, DOMAIN_XML_MAX, &bytes, error))
    return FALSE;
  data = g_bytes_get_data(bytes, &len);
  if (memchr(data, '\0', len) != NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "%s holds a NUL byte", path);
    return FALSE;
  }
  *ret_text = g_strndup(data, len);
  return TRUE;
}

/* A payload command reports a failure on standard error and leaves standard
 * output empty (DESIGN.md section 8); with --json the one object goes to
 * standard output as always. */
static int
report_failure(const MsvmCli *cli, const GError *error)
{
  g_autoptr(GBytes) empty = NULL;
  MsvmReport report = {
    .return_value = msvm_error_to_return_code(error),
    .message = error ? error->message : NULL,
  };

  if (cli->json)
    return msvm_cli_report(cli, &report);
  empty = g_bytes_new_static("", 0);
  report.payload_kind = MSVM_PAYLOAD_TEXT;
  report.payload = empty;
  return msvm_cli_report(cli, &report);
}

int
msvm_cmd_translate(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *settings_path = NULL;
  g_autofree char *domain_path = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *stash_path = NULL;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "settings", 's', 0, G_OPTION_ARG_FILENAME, &settings_path,
      "the Msvm_SecuritySettingData instance (CIM-XML or MOF; - for standard input)", "F" },
    { "domain-xml", 'x', 0, G_OPTION_ARG_FILENAME, &domain_path,
      "the libvirt domain XML to translate onto (- for standard input)", "F" },
    { "secret", 0, 0, G_OPTION_ARG_STRING, &secret,
      "UUID of the libvirt secret that stands for the VM's key protector", "UUID" },
    { "stash", 0, 0, G_OPTION_ARG_FILENAME, &stash_path,
      "file that keeps the devices shielding removed (read if present, rewritten)", "F" },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force,
      "translate a domain that nova manages; go on without a missing stash", NULL },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) settings_bytes = NULL;
  g_autoptr(GBytes) domain_bytes = NULL;
  g_autoptr(MsvmSettings) settings = NULL;
  g_autofree char *stash_in = NULL;
  g_autofree char *stash_out = NULL;
  g_autofree char *message = NULL;
  g_autofree char *xml = NULL;
  xmlDocPtr doc;
  MsvmTranslateOptions opts = { 0 };
  gsize len;
  const guint8 *data;
  gboolean ok;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "Offline: print the domain XML with the settings applied."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (settings_path == NULL)
    return msvm_cli_usage_error(cli, "--settings is required");
  if (domain_path == NULL)
    return msvm_cli_usage_error(cli, "--domain-xml is required");
  if (g_strcmp0(settings_path, "-") == 0 && g_strcmp0(domain_path, "-") == 0)
    return msvm_cli_usage_error(cli, "--settings and --domain-xml cannot both be standard input");

  if (!msvm_cli_read_input(settings_path, MSVM_SETTINGS_MAX_SIZE, &settings_bytes, &error))
    return report_failure(cli, error);
  data = g_bytes_get_data(settings_bytes, &len);
  if (!msvm_instance_parse(data, len, &settings, &error))
    return report_failure(cli, error);

  if (!msvm_cli_read_input(domain_path, DOMAIN_XML_MAX, &domain_bytes, &error))
    return report_failure(cli, error);
  data = g_bytes_get_data(domain_bytes, &len);
  doc = msvm_domain_parse((const char *)data, len, &error);
  if (doc == NULL)
    return report_failure(cli, error);

  if (stash_path != NULL && !read_stash(stash_path, &stash_in, &error)) {
    xmlFreeDoc(doc);
    return report_failure(cli, error);
  }

  opts.secret_uuid = secret;
  opts.force = force;
  opts.check_host = FALSE;
  ok = msvm_domain_apply(doc, settings, &opts, stash_in, &stash_out, &message, &error);
  if (ok)
    xml = msvm_domain_format(doc);
  xmlFreeDoc(doc);
  if (!ok)
    return report_failure(cli, error);

  if (stash_path == NULL && stash_out != NULL) {
    g_set_error(&error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "shielding removes devices that would be lost: give --stash F to keep them");
    return report_failure(cli, error);
  }
  if (stash_path != NULL) {
    if (stash_out != NULL ? !msvm_atomic_write(stash_path, stash_out, strlen(stash_out), 0600,
                                            MSVM_ATOMIC_WRITE_UNIQUE_TEMP, &error)
                          : !remove_stash(stash_path, &error))
      return report_failure(cli, error);
  }

  {
    gsize xml_len = strlen(xml);
    g_autoptr(GBytes) payload = g_bytes_new_take(g_steal_pointer(&xml), xml_len);
    MsvmReport report = {
      .return_value = MSVM_RC_COMPLETED,
      .message = message,
      .payload_kind = MSVM_PAYLOAD_TEXT,
      .payload = payload,
    };
    return msvm_cli_report(cli, &report);
  }
}
