/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-kdf.c: the vTPM passphrase derivation of DESIGN.md section 5, with
 * OpenSSL's HKDF (EVP_KDF "HKDF", SHA-256); random bytes and wiping.
 */
#include "config.h"

#include "msvm-kdf.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "msvm-error.h"

#define MSVM_KDF_INFO "msvm-security vtpm passphrase v1"

gboolean
msvm_random_bytes(guint8 *buf, gsize len, GError **error)
{
  if (len == 0)
    return TRUE;
  if (len > G_MAXINT || RAND_bytes(buf, (int)len) != 1) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "cannot get %" G_GSIZE_FORMAT " random bytes from OpenSSL", len);
    return FALSE;
  }
  return TRUE;
}

static void
put_be32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

gboolean
msvm_kdf_derive_passphrase(const guint8 seed[MSVM_KDF_SEED_SIZE],
                           const guint8 *key_protector, gsize key_protector_len,
                           const guint8 *policy, gsize policy_len,
                           const guint8 uuid[16],
                           char ret_passphrase[MSVM_KDF_PASSPHRASE_LEN + 1],
                           GError **error)
{
  static const char hex[] = "0123456789abcdef";
  EVP_KDF *kdf = NULL;
  EVP_KDF_CTX *ctx = NULL;
  OSSL_PARAM params[5];
  guint8 *ikm = NULL;
  gsize ikm_len;
  guint8 out[32];
  gboolean ok = FALSE;

  if (key_protector == NULL)
    key_protector_len = 0;
  if (policy == NULL)
    policy_len = 0;
  if (key_protector_len > G_MAXUINT32 || policy_len > G_MAXUINT32 ||
      key_protector_len + policy_len > G_MAXSIZE - MSVM_KDF_SEED_SIZE - 8) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "key protector or policy too large");
    return FALSE;
  }

  /* IKM = seed || be32(len kp) || kp || be32(len policy) || policy */
  ikm_len = MSVM_KDF_SEED_SIZE + 4 + key_protector_len + 4 + policy_len;
  ikm = g_malloc(ikm_len);
  memcpy(ikm, seed, MSVM_KDF_SEED_SIZE);
  put_be32(ikm + MSVM_KDF_SEED_SIZE, (guint32)key_protector_len);
  if (key_protector_len > 0)
    memcpy(ikm + MSVM_KDF_SEED_SIZE + 4, key_protector, key_protector_len);
  put_be32(ikm + MSVM_KDF_SEED_SIZE + 4 + key_protector_len, (guint32)policy_len);
  if (policy_len > 0)
    memcpy(ikm + MSVM_KDF_SEED_SIZE + 8 + key_protector_len, policy, policy_len);

  kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
  if (kdf != NULL)
    ctx = EVP_KDF_CTX_new(kdf);
  if (ctx != NULL) {
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm, ikm_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)uuid, 16);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  (void *)MSVM_KDF_INFO,
                                                  strlen(MSVM_KDF_INFO));
    params[4] = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(ctx, out, sizeof(out), params) == 1;
  }
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  msvm_wipe(ikm, ikm_len);
  g_free(ikm);

  if (!ok) {
    msvm_wipe(out, sizeof(out));
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "HKDF-SHA256 failed in OpenSSL");
    return FALSE;
  }
  for (gsize i = 0; i < sizeof(out); i++) {
    ret_passphrase[2 * i] = hex[out[i] >> 4];
    ret_passphrase[2 * i + 1] = hex[out[i] & 0x0f];
  }
  ret_passphrase[MSVM_KDF_PASSPHRASE_LEN] = '\0';
  msvm_wipe(out, sizeof(out));
  return TRUE;
}
