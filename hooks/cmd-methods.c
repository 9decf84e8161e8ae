/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-methods.c: the five Msvm_SecurityService methods as CLI commands
 * (DESIGN.md section 8); they share their options:
 *
 *   set-security-policy       --settings F --policy F        [--domain D] [--defer] [--force] [--old-passphrase-file F]
 *   set-key-protector         --settings F --key-protector F [--domain D] [--defer] [--force] [--old-passphrase-file F]
 *   get-key-protector         --settings F [--domain D] [--output F]
 *   modify-security-settings  --settings F                   [--domain D] [--defer] [--force] [--old-passphrase-file F]
 *   restore-last-known-good-key-protector --settings F       [--domain D] [--defer] [--force]
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "msvm-cli.h"
#include "msvm-error.h"
#include "msvm-file.h"
#include "msvm-cli-service.h"
#include "msvm-security.h"
#include "msvm-settings.h"

typedef enum {
  M_SET_SECURITY_POLICY,
  M_SET_KEY_PROTECTOR,
  M_GET_KEY_PROTECTOR,
  M_MODIFY_SECURITY_SETTINGS,
  M_RESTORE_LKG,
} Method;

typedef struct {
  char *settings;
  char *policy;
  char *key_protector;
  char *domain;
  char *output;
  char *old_passphrase_file;
  gboolean defer;
  gboolean force;
} Options;

static void
options_clear(Options *o)
{
  g_free(o->settings);
  g_free(o->policy);
  g_free(o->key_protector);
  g_free(o->domain);
  g_free(o->output);
  g_free(o->old_passphrase_file);
}

/* Write @data to @path atomically, 0600 (the key protector is a secret);
 * nothing locks an administrator's path, so the temporary name is unique. */
static gboolean
write_output(const char *path, GBytes *data, GError **error)
{
  gsize len = 0;
  gconstpointer bytes = g_bytes_get_data(data, &len);

  return msvm_atomic_write(path, bytes, len, 0600, MSVM_ATOMIC_WRITE_UNIQUE_TEMP, error);
}

static int
run_method(MsvmCli *cli, int argc, char **argv, Method m)
{
  Options o = { 0 };
  GOptionEntry entries[10];
  int n = 0;
  int status;
  const char *summary = NULL;
  g_autoptr(GBytes) settings = NULL;
  GBytes *payload = NULL;
  GBytes *old_pass = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(MsvmCallOptions) opts = msvm_call_options_new();
  g_autoptr(MsvmCallResult) result = NULL;
  gboolean ok = FALSE;

  entries[n++] = (GOptionEntry){ "settings", 0, 0, G_OPTION_ARG_FILENAME, &o.settings,
                                 "the embedded Msvm_SecuritySettingData instance (file, or - "
                                 "for standard input)", "F" };
  if (m == M_SET_SECURITY_POLICY)
    entries[n++] = (GOptionEntry){ "policy", 0, 0, G_OPTION_ARG_FILENAME, &o.policy,
                                   "the security policy bytes", "F" };
  if (m == M_SET_KEY_PROTECTOR)
    entries[n++] = (GOptionEntry){ "key-protector", 0, 0, G_OPTION_ARG_FILENAME,
                                   &o.key_protector,
                                   "the key protector bytes (00 00 00 04 clears it)", "F" };
  entries[n++] = (GOptionEntry){ "domain", 0, 0, G_OPTION_ARG_STRING, &o.domain,
                                 "the VM (name or UUID); must agree with the InstanceID",
                                 "D" };
  if (m == M_GET_KEY_PROTECTOR) {
    entries[n++] = (GOptionEntry){ "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output,
                                   "write the key protector to this file (0600) instead of "
                                   "standard output", "F" };
  } else {
    entries[n++] = (GOptionEntry){ "defer", 0, 0, G_OPTION_ARG_NONE, &o.defer,
                                   "running VM: re-key before its next start (a job, 4096); "
                                   "needs the hook installed and loaded", NULL };
    entries[n++] = (GOptionEntry){ "force", 0, 0, G_OPTION_ARG_NONE, &o.force,
                                   "go ahead despite a managed-save image, memory snapshots "
                                   "or nova's metadata", NULL };
    if (m != M_RESTORE_LKG)
      entries[n++] = (GOptionEntry){ "old-passphrase-file", 0, 0, G_OPTION_ARG_FILENAME,
                                     &o.old_passphrase_file,
                                     "passphrase of a TPM secret msvm-security did not create",
                                     "F" };
  }
  entries[n] = (GOptionEntry){ NULL };

  switch (m) {
  case M_SET_SECURITY_POLICY:
    summary = "Msvm_SecurityService.SetSecurityPolicy: apply the settings and set the "
              "policy half of the VM's vTPM key protector (re-keys the vTPM state).";
    break;
  case M_SET_KEY_PROTECTOR:
    summary = "Msvm_SecurityService.SetKeyProtector: set the key-protector half of the VM's "
              "vTPM key protector (re-keys the vTPM state).";
    break;
  case M_GET_KEY_PROTECTOR:
    summary = "Msvm_SecurityService.GetKeyProtector: write the key-protector bytes "
              "(00 00 00 04 when none is set).";
    break;
  case M_MODIFY_SECURITY_SETTINGS:
    summary = "Msvm_SecurityService.ModifySecuritySettings: apply the settings.";
    break;
  case M_RESTORE_LKG:
    summary = "Msvm_SecurityService.RestoreLastKnownGoodKeyProtector: re-key the vTPM state "
              "back to the last known good key protector.";
    break;
  }

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL, summary)) {
    options_clear(&o);
    return MSVM_EXIT_USAGE;
  }
  if (argc > 1) {
    status = msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
    options_clear(&o);
    return status;
  }
  if (o.settings == NULL) {
    options_clear(&o);
    return msvm_cli_usage_error(cli, "--settings is required");
  }
  if (m == M_SET_SECURITY_POLICY && o.policy == NULL) {
    options_clear(&o);
    return msvm_cli_usage_error(cli, "--policy is required");
  }
  if (m == M_SET_KEY_PROTECTOR && o.key_protector == NULL) {
    options_clear(&o);
    return msvm_cli_usage_error(cli, "--key-protector is required");
  }

  do {
    if (!msvm_cli_read_input(o.settings, MSVM_SETTINGS_MAX_SIZE, &settings, &error))
      break;
    if (o.policy != NULL &&
        !msvm_cli_read_input(o.policy, MSVM_SECURITY_PROTECTOR_MAX_SIZE, &payload, &error))
      break;
    if (o.key_protector != NULL &&
        !msvm_cli_read_input(o.key_protector, MSVM_SECURITY_PROTECTOR_MAX_SIZE, &payload,
                             &error))
      break;
    if (o.old_passphrase_file != NULL) {
      if (!msvm_cli_read_input(o.old_passphrase_file, 4096, &old_pass, &error))
        break;
      gsize len = 0;
      const guint8 *pass = g_bytes_get_data(old_pass, &len);
      /* (an empty file is an empty passphrase, not none) */
      msvm_call_options_set_old_passphrase(opts, pass ? pass : (const guint8 *)"", len);
    }
    msvm_call_options_set_domain(opts, o.domain);
    msvm_call_options_set_flags(opts, (o.defer ? MSVM_CALL_DEFER : 0) |
                                        (o.force ? MSVM_CALL_FORCE : 0));

    svc = msvm_cli_open_service(cli, &error);
    if (svc == NULL)
      break;
    {
      gsize slen = 0, plen = 0;
      const guint8 *sdata = g_bytes_get_data(settings, &slen);
      const guint8 *pdata = payload ? g_bytes_get_data(payload, &plen) : NULL;

      switch (m) {
      case M_SET_SECURITY_POLICY:
        ok = msvm_service_set_security_policy(svc, sdata, slen, pdata, plen, opts, &result,
                                              &error);
        break;
      case M_SET_KEY_PROTECTOR:
        ok = msvm_service_set_key_protector(svc, sdata, slen, pdata, plen, opts, &result,
                                            &error);
        break;
      case M_MODIFY_SECURITY_SETTINGS:
        ok = msvm_service_modify_security_settings(svc, sdata, slen, opts, &result, &error);
        break;
      case M_RESTORE_LKG:
        ok = msvm_service_restore_last_known_good_key_protector(svc, sdata, slen, opts,
                                                                &result, &error);
        break;
      case M_GET_KEY_PROTECTOR: {
        GBytes *kp = NULL;
        ok = msvm_service_get_key_protector(svc, sdata, slen, opts, &kp, &error);
        if (ok && o.output != NULL) {
          ok = write_output(o.output, kp, &error);
          g_clear_pointer(&kp, g_bytes_unref);
          kp = NULL;
        }
        if (ok && kp != NULL) {
          MsvmReport report = { .return_value = 0, .payload_kind = MSVM_PAYLOAD_BYTES,
                                .payload = kp};
          status = msvm_cli_report(cli, &report);
          g_clear_pointer(&kp, g_bytes_unref);
          g_clear_pointer(&payload, g_bytes_unref);
          g_clear_pointer(&old_pass, g_bytes_unref);
          options_clear(&o);
          return status;
        }
        break;
      }
      }
    }
  } while (0);

  if (!ok) {
    status = msvm_cli_report_error(cli, error);
  } else {
    /* (GetKeyProtector with --output has no result: its bytes went to the file) */
    status = msvm_cli_report_result(cli, result);
  }
  g_clear_pointer(&payload, g_bytes_unref);
  g_clear_pointer(&old_pass, g_bytes_unref);
  options_clear(&o);
  return status;
}

int
msvm_cmd_set_security_policy(MsvmCli *cli, int argc, char **argv)
{
  return run_method(cli, argc, argv, M_SET_SECURITY_POLICY);
}

int
msvm_cmd_set_key_protector(MsvmCli *cli, int argc, char **argv)
{
  return run_method(cli, argc, argv, M_SET_KEY_PROTECTOR);
}

int
msvm_cmd_get_key_protector(MsvmCli *cli, int argc, char **argv)
{
  return run_method(cli, argc, argv, M_GET_KEY_PROTECTOR);
}

int
msvm_cmd_modify_security_settings(MsvmCli *cli, int argc, char **argv)
{
  return run_method(cli, argc, argv, M_MODIFY_SECURITY_SETTINGS);
}

int
msvm_cmd_restore_last_known_good_key_protector(MsvmCli *cli, int argc, char **argv)
{
  return run_method(cli, argc, argv, M_RESTORE_LKG);
}
