/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate-client.c: run the libtpms check in the helper process
 * (see msvm-tpm-validate.h).  The plaintext goes only over the helper's
 * standard input pipe.
 */
#include "config.h"

#include "msvm-tpm-validate.h"

#include <string.h>
#include <unistd.h>

#include <gio/gio.h>

#include "msvm-error.h"
#include "msvm-trust.h"
#include "msvm-kdf.h"
#include "msvm-state-file.h"

static MsvmTpmValidator current_validator = msvm_tpm_validate_in_helper;

void
msvm_tpm_set_validator(MsvmTpmValidator validator)
{
  current_validator = validator ? validator : msvm_tpm_validate_in_helper;
}

MsvmTpmValidator
msvm_tpm_get_validator(void)
{
  return current_validator;
}

/* The helper runs with the caller's privileges (root, for the system
 * daemon's VMs) on bytes the swtpm user wrote: only a file that the
 * owner-and-mode rule of the hook's module trusts (msvm-trust.h) is run,
 * wherever it was found. */
static char *
trusted_helper(char *path, GError **error)
{
  if (msvm_path_is_trusted(path))
    return path;
  g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
              "the state validation helper %s is not trusted: it (or its directory) "
              "belongs to another user than root or this one, or others can write it",
              path);
  g_free(path);
  return NULL;
}

char *
msvm_tpm_validate_helper_path(GError **error)
{
  const char *override = secure_getenv("MSVM_SECURITY_LIBEXECDIR");
  g_autofree char *installed = g_build_filename(MSVM_LIBEXECDIR, MSVM_TPM_VALIDATE_HELPER,
                                                NULL);
  g_autofree char *built = g_build_filename(MSVM_BUILDDIR, "tpm", MSVM_TPM_VALIDATE_HELPER,
                                            NULL);

  if (override != NULL && *override != '\0') {
    g_autofree char *p = g_build_filename(override, MSVM_TPM_VALIDATE_HELPER, NULL);
    if (access(p, X_OK) != 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "the state validation helper %s is missing", p);
      return NULL;
    }
    return trusted_helper(g_steal_pointer(&p), error);
  }
  if (access(installed, X_OK) == 0)
    return trusted_helper(g_steal_pointer(&installed), error);
  if (access(built, X_OK) == 0)
    return trusted_helper(g_steal_pointer(&built), error);
  g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
              "the state validation helper %s is not installed", installed);
  return NULL;
}

static void
append_blob(guint8 *out, gsize *off, GBytes *b)
{
  gsize len = b ? g_bytes_get_size(b) : 0;
  out[*off] = (guint8)(len >> 24);
  out[*off + 1] = (guint8)(len >> 16);
  out[*off + 2] = (guint8)(len >> 8);
  out[*off + 3] = (guint8)len;
  *off += 4;
  if (len > 0)
    memcpy(out + *off, g_bytes_get_data(b, NULL), len);
  *off += len;
}

GBytes *
msvm_tpm_validate_serialize(GBytes *permall, GBytes *volatilestate)
{
  gsize plen = permall ? g_bytes_get_size(permall) : 0;
  gsize vlen = volatilestate ? g_bytes_get_size(volatilestate) : 0;
  gsize total = 8 + 4 + plen + 4 + vlen;
  guint8 *out = g_malloc(total);
  gsize off = 8;

  memcpy(out, MSVM_TPM_VALIDATE_MAGIC, 8);
  append_blob(out, &off, permall);
  append_blob(out, &off, volatilestate);
  return msvm_secret_bytes_new_take(out, total);
}

gboolean
msvm_tpm_validate_in_helper(GBytes *permall, GBytes *volatilestate, GError **error)
{
  g_autofree char *helper = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GBytes) err_out = NULL;
  g_autoptr(GError) local = NULL;
  int status;

  if (permall == NULL || g_bytes_get_size(permall) == 0 ||
      g_bytes_get_size(permall) > MSVM_STATE_FILE_MAX_SIZE ||
      (volatilestate != NULL && g_bytes_get_size(volatilestate) > MSVM_STATE_FILE_MAX_SIZE)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "no valid state blob to validate");
    return FALSE;
  }
  helper = msvm_tpm_validate_helper_path(error);
  if (helper == NULL)
    return FALSE;

  input = msvm_tpm_validate_serialize(permall, volatilestate);
  launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                       G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                       G_SUBPROCESS_FLAGS_STDERR_PIPE);
  proc = g_subprocess_launcher_spawn(launcher, &local, helper, NULL);
  if (proc == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "cannot run the state validation helper: %s", local->message);
    return FALSE;
  }
  if (!g_subprocess_communicate(proc, input, NULL, NULL, &err_out, &local)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "state validation helper failed: %s", local->message);
    g_subprocess_force_exit(proc);
    g_subprocess_wait(proc, NULL, NULL);
    return FALSE;
  }
  if (!g_subprocess_get_if_exited(proc)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "state validation helper was killed by signal %d",
                g_subprocess_get_term_sig(proc));
    return FALSE;
  }
  status = g_subprocess_get_exit_status(proc);
  if (status != 0) {
    g_autofree char *msg = NULL;
    if (err_out != NULL && g_bytes_get_size(err_out) > 0) {
      msg = g_strndup(g_bytes_get_data(err_out, NULL), MIN(g_bytes_get_size(err_out), 400));
      g_strchomp(msg);
      for (char *c = msg; *c; c++)
        if (*c == '\n' || !g_ascii_isprint(*c))
          *c = ' ';
    }
    g_set_error(error, MSVM_ERROR, status == 1 ? MSVM_RC_INVALID_STATE : MSVM_RC_FAILED,
                "%s", msg && *msg ? msg : "the TPM state does not validate");
    return FALSE;
  }
  return TRUE;
}
