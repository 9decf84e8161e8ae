/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate-core.c: the libtpms check of a decrypted TPM 2.0 state
 * (see msvm-tpm-validate.h).  Process-global: libtpms holds global state.
 */
#include "config.h"

#include "msvm-tpm-validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>

#include "msvm-error.h"
#include "msvm-kdf.h"
#include "msvm-state-file.h"
#include "msvm-tpm-validate-priv.h"

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

static const char *const sandbox_steps[] = {
  "redirecting its standard streams", "closing descriptors", "setting resource limits",
  "dropping supplementary groups", "changing its group", "changing its user",
  "verifying its ids", "setting no_new_privs", "setting up its seccomp filter",
  "tracing (test build)", "its parent went away",
};

void
msvm_tpm_verdict_to_error(const MsvmVerdict *v, GError **error)
{
  switch ((MsvmVerdictKind)v->kind) {
  case MSVM_VERDICT_VALID:
    return;
  case MSVM_VERDICT_REJECT_PERMANENT:
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "libtpms rejects the permanent state (error 0x%x)", v->value);
    return;
  case MSVM_VERDICT_REJECT_VOLATILE:
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "libtpms rejects the volatile state (error 0x%x)", v->value);
    return;
  case MSVM_VERDICT_NOT_VALIDATED:
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "libtpms does not validate the state (error 0x%x)", v->value);
    return;
  case MSVM_VERDICT_LIBTPMS_SETUP:
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "libtpms cannot be set up for TPM 2.0 (error 0x%x)", v->value);
    return;
  case MSVM_VERDICT_SANDBOX_SETUP: {
    guint step = v->value >> 16;
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the sandbox of the libtpms check failed %s: %s",
                step < G_N_ELEMENTS(sandbox_steps) ? sandbox_steps[step] : "?",
                g_strerror((int)(v->value & 0xffff)));
    return;
  }
  }
  g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
              "the libtpms check answered an unknown verdict %u", v->kind);
}

gboolean
msvm_tpm_validate_prepare(GBytes *permall, GBytes *volatilestate, MsvmVerdict *ret)
{
  static struct libtpms_callbacks cbs = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = cb_nvram_init,
    .tpm_nvram_loaddata = cb_nvram_loaddata,
    .tpm_nvram_storedata = cb_nvram_storedata,
    .tpm_nvram_deletename = cb_nvram_deletename,
  };
  TPM_RESULT rc;

  served_permall = permall;
  served_volatile = (volatilestate != NULL && g_bytes_get_size(volatilestate) > 0)
                        ? volatilestate : NULL;
  /* libtpms prints its diagnostics (about bytes the swtpm user chose) on
   * its debug descriptor, standard error by default: off */
  TPMLIB_SetDebugLevel(0);
  TPMLIB_SetDebugFD(-1);
  rc = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
  if (rc == TPM_SUCCESS)
    rc = TPMLIB_RegisterCallbacks(&cbs);
  if (rc != TPM_SUCCESS) {
    *ret = (MsvmVerdict){ MSVM_VERDICT_LIBTPMS_SETUP, rc };
    return FALSE;
  }
  return TRUE;
}

void
msvm_tpm_validate_run(MsvmVerdict *ret)
{
  enum TPMLIB_StateType st = TPMLIB_STATE_PERMANENT;
  TPM_RESULT rc;
  gsize len;
  const guint8 *p;

  p = g_bytes_get_data(served_permall, &len);
  rc = TPMLIB_SetState(TPMLIB_STATE_PERMANENT, p, (uint32_t)len);
  if (rc != TPM_SUCCESS) {
    *ret = (MsvmVerdict){ MSVM_VERDICT_REJECT_PERMANENT, rc };
    return;
  }
  if (served_volatile != NULL) {
    p = g_bytes_get_data(served_volatile, &len);
    rc = TPMLIB_SetState(TPMLIB_STATE_VOLATILE, p, (uint32_t)len);
    if (rc != TPM_SUCCESS) {
      *ret = (MsvmVerdict){ MSVM_VERDICT_REJECT_VOLATILE, rc };
      return;
    }
    st |= TPMLIB_STATE_VOLATILE;
  }
  rc = TPMLIB_ValidateState(st, 0);
  if (rc != TPM_SUCCESS) {
    *ret = (MsvmVerdict){ MSVM_VERDICT_NOT_VALIDATED, rc };
    return;
  }
  *ret = (MsvmVerdict){ MSVM_VERDICT_VALID, 0 };
}

gboolean
msvm_tpm_validate_blobs(GBytes *permall, GBytes *volatilestate, GError **error)
{
  MsvmVerdict v = { 0 };

  if (!msvm_tpm_validate_check_input(permall, volatilestate, error))
    return FALSE;
  if (msvm_tpm_validate_prepare(permall, volatilestate, &v))
    msvm_tpm_validate_run(&v);
  msvm_tpm_verdict_to_error(&v, error);
  return v.kind == MSVM_VERDICT_VALID;
}

static gboolean
take_u32(const guint8 **p, gsize *left, guint32 *ret, GError **error)
{
  if (*left < 4) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: unexpected end");
    return FALSE;
  }
  *ret = ((guint32)(*p)[0] << 24) | ((guint32)(*p)[1] << 16) | ((guint32)(*p)[2] << 8) |
         (*p)[3];
  *p += 4;
  *left -= 4;
  return TRUE;
}

static gboolean
take_blob(const guint8 **p, gsize *left, GBytes **ret, GError **error)
{
  guint32 len;
  guint8 *data;

  if (!take_u32(p, left, &len, error))
    return FALSE;
  if (len > MSVM_STATE_FILE_MAX_SIZE) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: blob of %u bytes is too large", len);
    return FALSE;
  }
  if (*left < len) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: unexpected end");
    return FALSE;
  }
  data = g_malloc(len ? len : 1);
  memcpy(data, *p, len);
  *p += len;
  *left -= len;
  *ret = msvm_secret_bytes_new_take(data, len);
  return TRUE;
}

gboolean
msvm_tpm_validate_parse_request(const guint8 *buf, gsize len, GBytes **ret_permall,
                                GBytes **ret_volatile, uid_t *ret_uid, gid_t *ret_gid,
                                GError **error)
{
  g_autoptr(GBytes) permall = NULL;
  g_autoptr(GBytes) vol = NULL;
  const guint8 *p = buf;
  gsize left = len;
  guint32 uid, gid;

  if (len < 8 || memcmp(buf, MSVM_TPM_VALIDATE_MAGIC, 8) != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: bad magic");
    return FALSE;
  }
  p += 8;
  left -= 8;
  if (!take_u32(&p, &left, &uid, error) || !take_u32(&p, &left, &gid, error) ||
      !take_blob(&p, &left, &permall, error) || !take_blob(&p, &left, &vol, error))
    return FALSE;
  if (left != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: trailing data");
    return FALSE;
  }
  if (uid == (guint32)-1 || gid == (guint32)-1) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "validation input: no owner");
    return FALSE;
  }
  *ret_permall = g_steal_pointer(&permall);
  *ret_volatile = g_steal_pointer(&vol);
  *ret_uid = (uid_t)uid;
  *ret_gid = (gid_t)gid;
  return TRUE;
}

gboolean
msvm_tpm_validate_read_request(int fd, GBytes **ret_permall, GBytes **ret_volatile,
                               uid_t *ret_uid, gid_t *ret_gid, GError **error)
{
  g_autoptr(GBytes) request = NULL;
  gboolean more = FALSE;
  gsize len = 0;
  const guint8 *data;

  /* straight into a secret buffer: the request is a plaintext TPM state */
  if (!msvm_secret_read_fd_bounded(fd, MSVM_TPM_VALIDATE_REQUEST_MAX, &request, &more)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "validation input: %s",
                g_strerror(errno));
    return FALSE;
  }
  if (more) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "validation input: too large");
    return FALSE;
  }
  data = g_bytes_get_data(request, &len);
  return msvm_tpm_validate_parse_request(data != NULL ? data : (const guint8 *)"", len,
                                         ret_permall, ret_volatile, ret_uid, ret_gid, error);
}
