/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-cli.h: what every command of the `msvm-security` helper shares: the
 * global options, option parsing, reading inputs, and the report of DESIGN.md
 * section 8 ("ReturnValue: N (Name)", optional "Job: ref", the message; or
 * one JSON object with --json), and the exit status (0 for 0/4096, 1 for any
 * other return value, 2 for a usage error).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define MSVM_EXIT_OK 0
#define MSVM_EXIT_FAILED 1
#define MSVM_EXIT_USAGE 2

typedef struct {
  char *connect_uri;   /* --connect, NULL for libvirt's default */
  gboolean json;       /* --json */
  gboolean readonly;   /* --readonly: a read-only libvirt connection */
  const char *command; /* name of the command being run */
} MsvmCli;

typedef enum {
  MSVM_PAYLOAD_NONE,
  MSVM_PAYLOAD_TEXT,   /* XML or MOF text: written raw, JSON key "Payload" as a string */
  MSVM_PAYLOAD_BYTES,  /* bytes: written raw, JSON key "Payload" as base64 */
} MsvmPayloadKind;

typedef struct {
  guint32 return_value;
  char *job;           /* job reference or NULL */
  char *message;       /* NULL or one human line */
  MsvmPayloadKind payload_kind;
  GBytes *payload;     /* NULL unless the method produced one */
  const char *payload_key; /* JSON key for the payload, default "Payload" */
  JsonNode *payload_json;  /* with --json, written under payload_key instead of
                            * @payload (e.g. CIM_ConcreteJob objects) */
} MsvmReport;

/* Parse the command's own options (the global ones are accepted too).
 * Returns FALSE on a usage error, having printed it. */
gboolean msvm_cli_parse(MsvmCli *cli, int *argc, char ***argv,
                        const GOptionEntry *entries, const char *parameter_string,
                        const char *summary);

/* Read a whole file, or standard input for "-", bounded by @max_size.
 * Errors carry MSVM_RC_INVALID_PARAMETER naming the file. */
gboolean msvm_cli_read_input(const char *path, gsize max_size, GBytes **ret_bytes,
                             GError **error);

/* Report an outcome and return the exit status.  With a payload, the payload
 * goes alone to stdout and the report to stderr; without one, the report goes
 * to stdout.  With --json one object goes to stdout either way. */
int msvm_cli_report(const MsvmCli *cli, const MsvmReport *report);

/* Shorthand: report the return code an error stands for, with its message. */
int msvm_cli_report_error(const MsvmCli *cli, const GError *error);

/* A usage error: the message on stderr, exit 2. */
int msvm_cli_usage_error(const MsvmCli *cli, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* The commands; each returns the exit status. */
typedef int (*MsvmCommandFunc)(MsvmCli *cli, int argc, char **argv);

int msvm_cmd_set_security_policy(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_set_key_protector(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_get_key_protector(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_modify_security_settings(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_restore_last_known_good_key_protector(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_get_security_settings(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_recover(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_job(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_translate(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_rekey(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_guardian(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_export_protector(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_import_protector(MsvmCli *cli, int argc, char **argv);
int msvm_cmd_forget(MsvmCli *cli, int argc, char **argv);

G_END_DECLS
