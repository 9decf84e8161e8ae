/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate-client.c: run the libtpms check in the helper process
 * (see msvm-tpm-validate.h).  The plaintext goes only over the helper's
 * standard input pipe.
 */
#include "config.h"

#include "msvm-tpm-validate.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <sys/socket.h>

#include <gio/gio.h>

#include "msvm-errno.h"
#include "msvm-io.h"
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

guint
msvm_tpm_validate_timeout_ms(void)
{
#ifdef MSVM_FAULT_INJECTION
  const char *s = secure_getenv("MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS");
  if (s != NULL && *s != '\0') {
    guint64 v = g_ascii_strtoull(s, NULL, 10);
    if (v > 0 && v <= 600000)
      return (guint)v;
  }
#endif
  return MSVM_TPM_VALIDATE_TIMEOUT_MS;
}

gboolean
msvm_tpm_validate_check_input(GBytes *permall, GBytes *volatilestate, GError **error)
{
  if (permall == NULL || g_bytes_get_size(permall) == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "no permanent state to validate");
    return FALSE;
  }
  if (g_bytes_get_size(permall) > MSVM_STATE_FILE_MAX_SIZE ||
      (volatilestate != NULL && g_bytes_get_size(volatilestate) > MSVM_STATE_FILE_MAX_SIZE)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "state blob too large");
    return FALSE;
  }
  return TRUE;
}

char *
msvm_tpm_validate_helper_path(GError **error)
{
  const char *override = secure_getenv("MSVM_SECURITY_LIBEXECDIR");
  g_autofree char *installed = g_build_filename(MSVM_LIBEXECDIR, MSVM_TPM_VALIDATE_HELPER,
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
#ifdef MSVM_FAULT_INJECTION
  {
    /* (test builds only: production ones never run a helper from a build tree) */
    g_autofree char *built = g_build_filename(MSVM_BUILDDIR, "tpm", MSVM_TPM_VALIDATE_HELPER,
                                              NULL);
    if (access(built, X_OK) == 0)
      return trusted_helper(g_steal_pointer(&built), error);
  }
#endif
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

static void
append_u32(guint8 *out, gsize *off, guint32 v)
{
  out[*off] = (guint8)(v >> 24);
  out[*off + 1] = (guint8)(v >> 16);
  out[*off + 2] = (guint8)(v >> 8);
  out[*off + 3] = (guint8)v;
  *off += 4;
}

GBytes *
msvm_tpm_validate_serialize(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                            gid_t owner_gid)
{
  gsize plen = permall ? g_bytes_get_size(permall) : 0;
  gsize vlen = volatilestate ? g_bytes_get_size(volatilestate) : 0;
  gsize total = 8 + 8 + 4 + plen + 4 + vlen;
  guint8 *out = g_malloc(total);
  gsize off = 8;

  memcpy(out, MSVM_TPM_VALIDATE_MAGIC, 8);
  append_u32(out, &off, (guint32)owner_uid);
  append_u32(out, &off, (guint32)owner_gid);
  append_blob(out, &off, permall);
  append_blob(out, &off, volatilestate);
  return msvm_secret_bytes_new_take(out, total);
}

typedef struct {
  gboolean done;
  gboolean ok;
  GBytes *out;
  GError *error;
} Communicated;

static void
communicated(GObject *source, GAsyncResult *res, gpointer user_data)
{
  Communicated *c = user_data;

  c->ok = g_subprocess_communicate_finish(G_SUBPROCESS(source), res, &c->out, NULL,
                                          &c->error);
  c->done = TRUE;
}

static gboolean
timed_out(gpointer user_data)
{
  *(gboolean *)user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* The helper kills its sandboxed child after msvm_tpm_validate_timeout_ms();
 * the helper itself is killed HELPER_MARGIN_MS later. */
#define HELPER_MARGIN_MS 2000

gboolean
msvm_tpm_validate_in_helper(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                            gid_t owner_gid, GError **error)
{
  g_autofree char *helper = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(GMainContext) ctx = NULL;
  g_autoptr(GCancellable) cancel = NULL;
  g_autoptr(GSource) timer = NULL;
  Communicated c = { 0 };
  int pair[2];
  gint64 deadline_us;
  gint64 left_ms;
  gboolean fed;
  int saved;
  gboolean expired = FALSE;
  guint timeout_ms = msvm_tpm_validate_timeout_ms() + HELPER_MARGIN_MS;
  int status;

  if (!msvm_tpm_validate_check_input(permall, volatilestate, error))
    return FALSE;
  helper = msvm_tpm_validate_helper_path(error);
  if (helper == NULL)
    return FALSE;

  input = msvm_tpm_validate_serialize(permall, volatilestate, owner_uid, owner_gid);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return msvm_set_error_errno(error, errno, "cannot make the validation helper's input");
  /* its standard error is not read: the verdict is its one line on stdout */
  launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                       G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_take_stdin_fd(launcher, pair[0]);
  proc = g_subprocess_launcher_spawn(launcher, &local, helper, NULL);
  /* (the launcher owns the helper's end of the pair: closed with it) */
  g_clear_object(&launcher);
  if (proc == NULL) {
    close(pair[1]);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "cannot run the state validation helper: %s", local->message);
    return FALSE;
  }
  /* The request goes straight from its secret buffer into the helper's
   * stdin, one end of a socket pair: not through g_subprocess_communicate(),
   * whose splice copies it through an 8 KiB buffer that GIO frees without
   * wiping (the decrypted state; found by the freed-secrets test).  A socket
   * so that send() takes MSG_NOSIGNAL: a helper gone early is EPIPE, not a
   * SIGPIPE that would kill the hook.  The helper reads its whole request
   * before it writes anything, so the answer waits until it is in. */
  deadline_us = msvm_monotonic_us() + (gint64)timeout_ms * 1000;
  fed = msvm_write_full_until(pair[1], g_bytes_get_data(input, NULL), g_bytes_get_size(input),
                              deadline_us, TRUE);
  saved = errno;
  close(pair[1]);
  if (!fed && saved == ETIMEDOUT) {
    g_subprocess_force_exit(proc);
    g_subprocess_wait(proc, NULL, NULL);
    g_set_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT,
                "the state validation helper did not answer within %u ms and was stopped",
                timeout_ms);
    return FALSE;
  }
  /* (any other failure: the helper is gone, and its exit status says why) */
  left_ms = MAX(0, (deadline_us - msvm_monotonic_us()) / 1000);

  /* wait at most the rest of timeout_ms, in a context of our own (any
   * thread) */
  ctx = g_main_context_new();
  cancel = g_cancellable_new();
  g_main_context_push_thread_default(ctx);
  g_subprocess_communicate_async(proc, NULL, cancel, communicated, &c);
  timer = g_timeout_source_new((guint)left_ms);
  g_source_set_callback(timer, timed_out, &expired, NULL);
  g_source_attach(timer, ctx);
  while (!c.done && !expired)
    g_main_context_iteration(ctx, TRUE);
  if (!c.done) {
    g_subprocess_force_exit(proc);
    g_cancellable_cancel(cancel);
    while (!c.done)
      g_main_context_iteration(ctx, TRUE);
  }
  g_source_destroy(timer);
  g_main_context_pop_thread_default(ctx);
  if (expired && !(c.ok && g_subprocess_get_if_exited(proc))) {
    g_subprocess_wait(proc, NULL, NULL);
    g_clear_error(&c.error);
    g_clear_pointer(&c.out, g_bytes_unref);
    g_set_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT,
                "the state validation helper did not answer within %u ms and was stopped",
                timeout_ms);
    return FALSE;
  }
  if (!c.ok) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "state validation helper failed: %s", c.error->message);
    g_clear_error(&c.error);
    g_subprocess_force_exit(proc);
    g_subprocess_wait(proc, NULL, NULL);
    return FALSE;
  }
  if (!g_subprocess_get_if_exited(proc)) {
    g_clear_pointer(&c.out, g_bytes_unref);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "state validation helper was killed by signal %d",
                g_subprocess_get_term_sig(proc));
    return FALSE;
  }
  status = g_subprocess_get_exit_status(proc);
  if (status != MSVM_TPM_VALIDATE_EXIT_VALID) {
    g_autofree char *msg = NULL;
    int code;
    if (c.out != NULL && g_bytes_get_size(c.out) > 0) {
      msg = g_strndup(g_bytes_get_data(c.out, NULL), MIN(g_bytes_get_size(c.out), 400));
      g_strchomp(msg);
      for (char *ch = msg; *ch; ch++)
        if (*ch == '\n' || !g_ascii_isprint(*ch))
          *ch = ' ';
    }
    g_clear_pointer(&c.out, g_bytes_unref);
    code = status == MSVM_TPM_VALIDATE_EXIT_INVALID   ? MSVM_RC_INVALID_STATE
           : status == MSVM_TPM_VALIDATE_EXIT_TIMEOUT ? MSVM_RC_TIMEOUT
                                                      : MSVM_RC_FAILED;
    g_set_error(error, MSVM_ERROR, code, "%s",
                msg && *msg ? msg : "the TPM state does not validate");
    return FALSE;
  }
  g_clear_pointer(&c.out, g_bytes_unref);
  return TRUE;
}
