/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate-core.c: the libtpms check of a decrypted TPM 2.0 state
 * (see msvm-tpm-validate.h).  Process-global: libtpms holds global state.
 */
#include "config.h"

#include "msvm-tpm-validate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>

#include "msvm-error.h"
#include "msvm-kdf.h"
#include "msvm-state-file.h"

/* The blobs the NVRAM load callback serves (libtpms has no user data). */
static GBytes *served_permall;
static GBytes *served_volatile;

static TPM_RESULT
cb_nvram_init(void)
{
  return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
                  const char *name)
{
  GBytes *b = NULL;
  gsize len = 0;
  const guint8 *p;

  if (g_strcmp0(name, TPM_PERMANENT_ALL_NAME) == 0)
    b = served_permall;
  else if (g_strcmp0(name, TPM_VOLATILESTATE_NAME) == 0)
    b = served_volatile;
  if (b == NULL || g_bytes_get_size(b) == 0)
    return TPM_RETRY; /* libtpms: "no such blob" */
  p = g_bytes_get_data(b, &len);
  /* libtpms frees it with free() */
  *data = malloc(len);
  if (*data == NULL)
    return TPM_FAIL;
  memcpy(*data, p, len);
  *length = (uint32_t)len;
  return TPM_SUCCESS;
}

static TPM_RESULT
cb_nvram_storedata(const unsigned char *data, uint32_t length, uint32_t tpm_number,
                   const char *name)
{
  /* Validation never writes; refuse if libtpms ever tries. */
  return TPM_FAIL;
}

static TPM_RESULT
cb_nvram_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
  return TPM_FAIL;
}

gboolean
msvm_tpm_validate_blobs(GBytes *permall, GBytes *volatilestate, GError **error)
{
  static struct libtpms_callbacks cbs = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = cb_nvram_init,
    .tpm_nvram_loaddata = cb_nvram_loaddata,
    .tpm_nvram_storedata = cb_nvram_storedata,
    .tpm_nvram_deletename = cb_nvram_deletename,
  };
  enum TPMLIB_StateType st = TPMLIB_STATE_PERMANENT;
  TPM_RESULT rc;
  gsize len;
  const guint8 *p;

  if (permall == NULL || g_bytes_get_size(permall) == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "no permanent state to validate");
    return FALSE;
  }
  if (g_bytes_get_size(permall) > G_MAXUINT32 ||
      (volatilestate != NULL && g_bytes_get_size(volatilestate) > G_MAXUINT32)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "state blob too large");
    return FALSE;
  }
  served_permall = permall;
  served_volatile = (volatilestate != NULL && g_bytes_get_size(volatilestate) > 0)
                        ? volatilestate : NULL;

  rc = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
  if (rc != TPM_SUCCESS) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "libtpms cannot select TPM 2.0 (error 0x%x)", rc);
    return FALSE;
  }
  rc = TPMLIB_RegisterCallbacks(&cbs);
  if (rc != TPM_SUCCESS) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "libtpms refused the callbacks (error 0x%x)", rc);
    return FALSE;
  }

  p = g_bytes_get_data(permall, &len);
  rc = TPMLIB_SetState(TPMLIB_STATE_PERMANENT, p, (uint32_t)len);
  if (rc != TPM_SUCCESS) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "libtpms rejects the permanent state (error 0x%x)", rc);
    return FALSE;
  }
  if (served_volatile != NULL) {
    p = g_bytes_get_data(served_volatile, &len);
    rc = TPMLIB_SetState(TPMLIB_STATE_VOLATILE, p, (uint32_t)len);
    if (rc != TPM_SUCCESS) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "libtpms rejects the volatile state (error 0x%x)", rc);
      return FALSE;
    }
    st |= TPMLIB_STATE_VOLATILE;
  }
  rc = TPMLIB_ValidateState(st, 0);
  if (rc != TPM_SUCCESS) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "libtpms does not validate the state (error 0x%x)", rc);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_exact(int fd, guint8 *buf, gsize len, GError **error)
{
  gsize done = 0;

  while (done < len) {
    ssize_t n = read(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "validation input: %s", n < 0 ? g_strerror(errno) : "unexpected end");
      return FALSE;
    }
    done += (gsize)n;
  }
  return TRUE;
}

static gboolean
read_blob(int fd, GBytes **ret, GError **error)
{
  guint8 lenbuf[4];
  guint32 len;
  guint8 *data;

  if (!read_exact(fd, lenbuf, sizeof(lenbuf), error))
    return FALSE;
  len = ((guint32)lenbuf[0] << 24) | ((guint32)lenbuf[1] << 16) |
        ((guint32)lenbuf[2] << 8) | lenbuf[3];
  if (len > MSVM_STATE_FILE_MAX_SIZE) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: blob of %u bytes is too large", len);
    return FALSE;
  }
  data = g_malloc(len ? len : 1);
  if (!read_exact(fd, data, len, error)) {
    msvm_wipe(data, len);
    g_free(data);
    return FALSE;
  }
  *ret = msvm_secret_bytes_new_take(data, len);
  return TRUE;
}

gboolean
msvm_tpm_validate_fd(int fd, GError **error)
{
  char magic[8];
  g_autoptr(GBytes) permall = NULL;
  g_autoptr(GBytes) vol = NULL;
  guint8 extra;
  ssize_t n;

  if (!read_exact(fd, (guint8 *)magic, sizeof(magic), error))
    return FALSE;
  if (memcmp(magic, MSVM_TPM_VALIDATE_MAGIC, sizeof(magic)) != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: bad magic");
    return FALSE;
  }
  if (!read_blob(fd, &permall, error) || !read_blob(fd, &vol, error))
    return FALSE;
  do
    n = read(fd, &extra, 1);
  while (n < 0 && errno == EINTR);
  if (n != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: trailing data");
    return FALSE;
  }
  return msvm_tpm_validate_blobs(permall, vol, error);
}

gboolean
msvm_tpm_validate_in_child(GBytes *permall, GBytes *volatilestate, GError **error)
{
  int msg_pipe[2];
  pid_t pid;
  char msg[512];
  gsize got = 0;
  int status = 0;
  pid_t w;

  if (pipe2(msg_pipe, O_CLOEXEC) != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot create a pipe: %s",
                g_strerror(errno));
    return FALSE;
  }
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(msg_pipe[0]);
    close(msg_pipe[1]);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot fork: %s", g_strerror(e));
    return FALSE;
  }
  if (pid == 0) {
    GError *local = NULL;
    close(msg_pipe[0]);
    if (msvm_tpm_validate_blobs(permall, volatilestate, &local))
      _exit(0);
    if (write(msg_pipe[1], local->message, MIN(strlen(local->message), sizeof(msg) - 1)) < 0)
      _exit(3);
    _exit(local->code == MSVM_RC_INVALID_STATE ? 1 : 2);
  }
  close(msg_pipe[1]);
  for (;;) {
    ssize_t n = read(msg_pipe[0], msg + got, sizeof(msg) - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (gsize)n;
    if (got == sizeof(msg) - 1)
      break;
  }
  msg[got] = '\0';
  close(msg_pipe[0]);
  do
    w = waitpid(pid, &status, 0);
  while (w < 0 && errno == EINTR);
  if (w != pid || !WIFEXITED(status)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the state validation child did not finish normally");
    return FALSE;
  }
  if (WEXITSTATUS(status) != 0) {
    for (char *c = msg; *c; c++)
      if (*c == '\n' || !g_ascii_isprint(*c))
        *c = ' ';
    g_set_error(error, MSVM_ERROR,
                WEXITSTATUS(status) == 1 ? MSVM_RC_INVALID_STATE : MSVM_RC_FAILED, "%s",
                got > 0 ? msg : "the TPM state does not validate");
    return FALSE;
  }
  return TRUE;
}
