/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "msvm-cli.h"


#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-secret.h"

static MsvmCli *parsing_cli;

static gboolean
set_connect(const char *name, const char *value, gpointer data, GError **error)
{
  g_free(parsing_cli->connect_uri);
  parsing_cli->connect_uri = g_strdup(value);
  return TRUE;
}

gboolean
msvm_cli_parse(MsvmCli *cli, int *argc, char ***argv, const GOptionEntry *entries,
               const char *parameter_string, const char *summary)
{
  const GOptionEntry global_entries[] = {
    { "connect", 'c', 0, G_OPTION_ARG_CALLBACK, set_connect,
      "libvirt connection URI (default: libvirt's own default)", "URI" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &cli->json,
      "write one JSON object on standard output", NULL },
    { "readonly", 'r', 0, G_OPTION_ARG_NONE, &cli->readonly,
      "connect to libvirt read-only (changes then answer 32769)", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *param = g_strdup_printf("%s%s%s", cli->command,
                                           parameter_string ? " " : "",
                                           parameter_string ? parameter_string : "");

  parsing_cli = cli;
  context = g_option_context_new(param);
  g_option_context_set_summary(context, summary);
  g_option_context_add_main_entries(context, global_entries, NULL);
  if (entries != NULL)
    g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, argc, argv, &error)) {
    msvm_cli_usage_error(cli, "%s", error->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
msvm_cli_read_input(const char *path, gsize max_size, GBytes **ret_bytes, GError **error)
{
  int fd;
  gboolean is_stdin = g_strcmp0(path, "-") == 0;
  const char *what = is_stdin ? "standard input" : path;
  gboolean too_long = FALSE;
  gboolean ok;
  int saved;

  if (path == NULL || *path == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "no input file given");
    return FALSE;
  }
  fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    saved = errno;
    g_set_error(error, MSVM_ERROR,
                msvm_return_code_from_errno(saved) == MSVM_RC_ACCESS_DENIED
                  ? MSVM_RC_ACCESS_DENIED : MSVM_RC_INVALID_PARAMETER,
                "cannot open %s: %s", path, g_strerror(saved));
    return FALSE;
  }
  /* straight into a wiped, undumpable buffer: inputs hold key protectors,
   * policies and passphrases */
  ok = msvm_secret_read_fd(fd, max_size, ret_bytes, &too_long);
  saved = errno;
  if (!is_stdin)
    close(fd);
  if (ok)
    return TRUE;
  if (too_long)
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s is larger than the limit of %" G_GSIZE_FORMAT " bytes", what, max_size);
  else
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "cannot read %s: %s", what,
                g_strerror(saved));
  return FALSE;
}

static void
write_all(FILE *f, const void *data, gsize len)
{
  if (len > 0 && fwrite(data, 1, len, f) != len)
    g_printerr("msvm-security: short write\n");
  fflush(f);
}

int
msvm_cli_report(const MsvmCli *cli, const MsvmReport *report)
{
  const char *name = msvm_return_code_name(report->return_value);
  int status = (report->return_value == MSVM_RC_COMPLETED ||
                report->return_value == MSVM_RC_JOB_STARTED) ? MSVM_EXIT_OK : MSVM_EXIT_FAILED;
  gboolean has_payload = report->payload_kind != MSVM_PAYLOAD_NONE && report->payload != NULL;

  if (name == NULL)
    name = "Unknown";

  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "ReturnValue");
    json_builder_add_int_value(b, report->return_value);
    json_builder_set_member_name(b, "ReturnName");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "Job");
    if (report->job != NULL)
      json_builder_add_string_value(b, report->job);
    else
      json_builder_add_null_value(b);
    json_builder_set_member_name(b, "Message");
    if (report->message != NULL)
      json_builder_add_string_value(b, report->message);
    else
      json_builder_add_null_value(b);
    if (report->payload_json != NULL) {
      json_builder_set_member_name(b, report->payload_key ? report->payload_key : "Payload");
      json_builder_add_value(b, json_node_copy(report->payload_json));
    } else if (has_payload) {
      gsize len = 0;
      const guint8 *data = g_bytes_get_data(report->payload, &len);
      json_builder_set_member_name(b, report->payload_key ? report->payload_key : "Payload");
      if (report->payload_kind == MSVM_PAYLOAD_BYTES) {
        g_autofree char *b64 = g_base64_encode(data, len);
        json_builder_add_string_value(b, b64);
      } else {
        g_autofree char *s = g_strndup((const char *)data, len);
        json_builder_add_string_value(b, s);
      }
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    text = json_generator_to_data(gen, NULL);
    printf("%s\n", text);
    fflush(stdout);
    return status;
  }

  {
    FILE *rf = has_payload ? stderr : stdout;
    if (has_payload) {
      gsize len = 0;
      const guint8 *data = g_bytes_get_data(report->payload, &len);
      write_all(stdout, data, len);
    }
    fprintf(rf, "ReturnValue: %u (%s)\n", report->return_value, name);
    if (report->job != NULL)
      fprintf(rf, "Job: %s\n", report->job);
    if (report->message != NULL)
      fprintf(rf, "%s\n", report->message);
    fflush(rf);
  }
  return status;
}

int
msvm_cli_report_error(const MsvmCli *cli, const GError *error)
{
  MsvmReport report = {
    .return_value = msvm_error_to_return_code(error),
    .message = error ? error->message : NULL,
  };
  return msvm_cli_report(cli, &report);
}

int
msvm_cli_usage_error(const MsvmCli *cli, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start(ap, fmt);
  msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_printerr("msvm-security %s: %s\n", cli->command ? cli->command : "", msg);
  g_printerr("Try 'msvm-security %s --help'.\n", cli->command ? cli->command : "");
  return MSVM_EXIT_USAGE;
}
