/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-validate.c: the libtpms check of a decrypted state in a forked
 * child (DESIGN.md 9: the hook is single-threaded, and under AppArmor it may
 * not execute the library's helper from libexecdir).  The child validates
 * (libtpms' global state dies with it) and reports one line over a pipe.
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-tpm-validate.h"

gboolean
msvm_hook_validate_in_child(GBytes *permall, GBytes *volatilestate, GError **error)
{
  int p[2];
  pid_t pid;
  char msg[512];
  gsize got = 0;
  int status = 0;

  if (pipe2(p, O_CLOEXEC) < 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot create a pipe: %s",
                g_strerror(errno));
    return FALSE;
  }
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    int saved = errno;
    close(p[0]);
    close(p[1]);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot fork: %s", g_strerror(saved));
    return FALSE;
  }
  if (pid == 0) {
    GError *e = NULL;
    int rc = 0;
    close(p[0]);
    if (!msvm_tpm_validate_blobs(permall, volatilestate, &e)) {
      gsize n = strlen(e->message);
      rc = e->code == MSVM_RC_INVALID_STATE ? 1 : 2;
      while (n > 0) {
        ssize_t w = write(p[1], e->message, n);
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0)
          break;
        n -= (gsize)w;
      }
    }
    _exit(rc);
  }
  close(p[1]);
  for (;;) {
    ssize_t n = read(p[0], msg + got, sizeof(msg) - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (gsize)n;
    if (got == sizeof(msg) - 1)
      break;
  }
  close(p[0]);
  msg[got] = '\0';
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return TRUE;
  if (WIFEXITED(status))
    g_set_error(error, MSVM_ERROR,
                WEXITSTATUS(status) == 1 ? MSVM_RC_INVALID_STATE : MSVM_RC_FAILED, "%s",
                got > 0 ? msg : "the TPM state does not validate");
  else
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the state validation child was killed by signal %d",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return FALSE;
}
