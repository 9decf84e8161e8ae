/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security: the helper CLI (DESIGN.md section 8).
 *
 *   msvm-security [--connect URI] [--json] COMMAND [OPTIONS]
 *
 * The global options may stand before or after the command word; each
 * command parses the rest with its own GOptionContext.
 */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "msvm-cli.h"
#include "msvm-fault.h"
#include "msvm-secret.h"

typedef struct {
  const char *name;
  MsvmCommandFunc func;
  const char *summary;
} MsvmCommand;

static const MsvmCommand commands[] = {
  /* one row per command, in the order of DESIGN.md section 8 */
  { "set-security-policy", msvm_cmd_set_security_policy, "SetSecurityPolicy: apply settings, set the policy half of the vTPM key protector" },
  { "set-key-protector", msvm_cmd_set_key_protector, "SetKeyProtector: set the key-protector half" },
  { "get-key-protector", msvm_cmd_get_key_protector, "GetKeyProtector: the key-protector bytes" },
  { "modify-security-settings", msvm_cmd_modify_security_settings, "ModifySecuritySettings: apply settings" },
  { "restore-last-known-good-key-protector", msvm_cmd_restore_last_known_good_key_protector, "RestoreLastKnownGoodKeyProtector" },
  { "get-security-settings", msvm_cmd_get_security_settings, "the VM's Msvm_SecuritySettingData as applied" },
  { "recover", msvm_cmd_recover, "finish an interrupted or deferred change of a stopped VM" },
  { "job", msvm_cmd_job, "show ID | wait ID [--timeout S] | list: CIM_ConcreteJob of deferred changes" },
  { "translate", msvm_cmd_translate, "offline: print the domain XML with the settings applied" },
  { "rekey", msvm_cmd_rekey, "offline: re-key a swtpm TPM 2.0 state directory" },
  { "guardian", msvm_cmd_guardian, "show [--output F] | trust --name N --certificate F [--force] | list | forget --name N" },
  { "export-protector", msvm_cmd_export_protector, "a VM's key protector for a trusted guardian (--with-state: and its vTPM state)" },
  { "import-protector", msvm_cmd_import_protector, "import a key protector exported for this host's guardian" },
  { "forget", msvm_cmd_forget, "after a VM left: undefine its secrets, remove its store entry" },
  { NULL, NULL, NULL }
};

static void
print_help(FILE *f)
{
  fprintf(f, "Usage: msvm-security [--connect URI] [--json] COMMAND [OPTIONS]\n\n"
             "Commands:\n");
  for (gsize i = 0; commands[i].name != NULL; i++)
    fprintf(f, "  %-40s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nRun 'msvm-security COMMAND --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
  MsvmCli cli = { 0 };
  int cmd_index = -1;
  int status;

  setlocale(LC_ALL, "");
  /* a helper that exits before reading its input (the libtpms check) must
   * fail the step, not kill the command in the middle of a change */
  signal(SIGPIPE, SIG_IGN);
  /* Before any input is read: inputs and the store hold key protectors,
   * policies and passphrases (DESIGN.md section 11). */
  if (!msvm_secret_protect_process()) {
    fprintf(stderr, "msvm-security: cannot keep secrets out of core dumps: %s\n",
            g_strerror(errno));
    return MSVM_EXIT_FAILED;
  }
  msvm_fault_point("process-protected");

  /* Find the command word: the first argument that is not an option or the
   * value of --connect/-c. */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--connect") == 0 || strcmp(argv[i], "-c") == 0) {
      i++;
      continue;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      print_help(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("msvm-security %s\n", PACKAGE_VERSION);
      return 0;
    }
    if (argv[i][0] != '-') {
      cmd_index = i;
      break;
    }
  }
  if (cmd_index < 0) {
    print_help(stderr);
    return MSVM_EXIT_USAGE;
  }

  for (gsize c = 0; commands[c].name != NULL; c++) {
    if (strcmp(commands[c].name, argv[cmd_index]) == 0) {
      /* argv for the command: program name, then everything but the
       * command word, so global options before it are parsed too. */
      g_autofree char **sub = g_new0(char *, argc + 1);
      int n = 0;
      for (int i = 0; i < argc; i++) {
        if (i != cmd_index)
          sub[n++] = argv[i];
      }
      cli.command = commands[c].name;
      status = commands[c].func(&cli, n, sub);
      g_free(cli.connect_uri);
      return status;
    }
  }
  cli.command = argv[cmd_index];
  fprintf(stderr, "msvm-security: unknown command '%s'\n\n", argv[cmd_index]);
  print_help(stderr);
  return MSVM_EXIT_USAGE;
}
