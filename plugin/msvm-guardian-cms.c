/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-guardian-cms.c: sealing a bundle for a guardian and opening one
 * (msvm-guardian.h): CMS SignedData by this guardian inside CMS
 * AuthEnvelopedData (AES-256-GCM, ECDH key agreement) for the recipient,
 * through OpenSSL's CMS API, and the checks of the envelope OpenSSL does
 * not make.
 */
#include "config.h"

#include "msvm-guardian.h"
#include "msvm-guardian-private.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msvm-error.h"
#include "msvm-secret.h"

/* Largest sealed bundle opened (a state of a few MiB at most, plus XML). */
#define SEALED_MAX (256u * 1024u * 1024u)

/* --- CMS --------------------------------------------------------------------- */

/* Wipe the plaintext a CMS structure holds (its embedded content). */
static void
cms_wipe_content(CMS_ContentInfo *cms)
{
  ASN1_OCTET_STRING **pos = cms ? CMS_get0_content(cms) : NULL;

  if (pos != NULL && *pos != NULL && (*pos)->data != NULL)
    OPENSSL_cleanse((*pos)->data, (*pos)->length);
}

static GBytes *
cms_to_der(CMS_ContentInfo *cms, gboolean secret)
{
  unsigned char *der = NULL;
  int n = i2d_CMS_ContentInfo(cms, &der);
  GBytes *out;

  if (n <= 0)
    return NULL;
  out = secret ? msvm_secret_bytes_new(der, (gsize)n) : g_bytes_new(der, (gsize)n);
  OPENSSL_clear_free(der, (size_t)n);
  return out;
}

gboolean
msvm_guardian_seal(MsvmGuardian *g, const char *recipient, GBytes *payload,
                   GBytes **ret_sealed, GError **error)
{
  PeerCerts peer = { 0 };
  g_autoptr(BIO) in = NULL;
  g_autoptr(BIO) in2 = NULL;
  g_autoptr(CMS_ContentInfo) sig = NULL;
  g_autoptr(CMS_ContentInfo) env = NULL;
  g_autoptr(GBytes) sig_der = NULL;
  STACK_OF(X509) *recips = NULL;
  gsize len = 0;
  const void *p = g_bytes_get_data(payload, &len);
  GBytes *out = NULL;
  gboolean ok = FALSE;

  ERR_clear_error();
  if (!msvm_guardian_load_peer(g, recipient, &peer, error))
    return FALSE;
  do {
    in = BIO_new_mem_buf(p, (int)len);
    sig = in ? CMS_sign(g->sign_cert, g->sign_key, NULL, in,
                        CMS_BINARY | CMS_NOCERTS | CMS_NOSMIMECAP)
             : NULL;
    if (sig == NULL) {
      msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot sign the bundle");
      break;
    }
    sig_der = cms_to_der(sig, TRUE);
    if (sig_der == NULL) {
      msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encode the signed bundle");
      break;
    }
    {
      gsize slen = 0;
      const void *sp = g_bytes_get_data(sig_der, &slen);
      CMS_RecipientInfo *ri;
      EVP_PKEY_CTX *pctx;

      in2 = BIO_new_mem_buf(sp, (int)slen);
      recips = sk_X509_new_null();
      env = CMS_encrypt(NULL, NULL, EVP_aes_256_gcm(), CMS_BINARY | CMS_PARTIAL);
      if (in2 == NULL || recips == NULL || env == NULL) {
        msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encrypt the bundle");
        break;
      }
      ri = CMS_add1_recipient_cert(env, peer.enc, CMS_KEY_PARAM);
      if (ri == NULL) {
        msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encrypt the bundle for this guardian");
        break;
      }
      /* ECDH: X9.63 KDF with SHA-256 rather than OpenSSL's default SHA-1 */
      pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
      if (pctx != NULL && CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE)
        (void)EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256());
      if (CMS_final(env, in2, NULL, CMS_BINARY) != 1) {
        msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encrypt the bundle");
        break;
      }
    }
    out = cms_to_der(env, FALSE);
    if (out == NULL) {
      msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encode the encrypted bundle");
      break;
    }
    ok = TRUE;
  } while (0);
  cms_wipe_content(sig);
  sk_X509_free(recips);
  msvm_guardian_peer_certs_clear(&peer);
  ERR_clear_error();
  if (ok)
    *ret_sealed = out;
  return ok;
}

/* @issuer and @serial name @cert, the issuer byte for byte: OpenSSL keeps
 * the encoding a name was parsed from and compares names in a canonical
 * form, so a name whose encoding was altered would still match. */
static gboolean
rid_exact(X509_NAME *issuer, ASN1_INTEGER *serial, X509 *cert)
{
  unsigned char *a = NULL, *b = NULL;
  int na, nb;
  gboolean same;

  if (issuer == NULL || serial == NULL ||
      ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(cert)) != 0)
    return FALSE;
  na = i2d_X509_NAME(issuer, &a);
  nb = i2d_X509_NAME(X509_get_issuer_name(cert), &b);
  same = na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0;
  OPENSSL_free(a);
  OPENSSL_free(b);
  return same;
}

/* Is the envelope addressed to @cert? */
static gboolean
addressed_to(CMS_ContentInfo *env, X509 *cert)
{
  STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(env);

  for (int i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris); i++) {
    CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
    switch (CMS_RecipientInfo_type(ri)) {
    case CMS_RECIPINFO_AGREE: {
      STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
      for (int k = 0; reks != NULL && k < sk_CMS_RecipientEncryptedKey_num(reks); k++) {
        CMS_RecipientEncryptedKey *rek = sk_CMS_RecipientEncryptedKey_value(reks, k);
        X509_NAME *issuer = NULL;
        ASN1_INTEGER *serial = NULL;
        if (CMS_RecipientEncryptedKey_cert_cmp(rek, cert) == 0 &&
            CMS_RecipientEncryptedKey_get0_id(rek, NULL, NULL, NULL, &issuer,
                                              &serial) == 1 &&
            rid_exact(issuer, serial, cert))
          return TRUE;
      }
      break;
    }
    default:
      break;
    }
  }
  return FALSE;
}

/* The key-management algorithms are the ones msvm_guardian_seal() writes
 * (a one-byte change turns ECDH into cofactor ECDH, which is the same
 * computation on P-256). */
static gboolean
key_algorithms_ok(CMS_ContentInfo *env)
{
  STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(env);

  for (int i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris); i++) {
    CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
    X509_ALGOR *alg = NULL;
    ASN1_OCTET_STRING *ukm = NULL;

    switch (CMS_RecipientInfo_type(ri)) {
    case CMS_RECIPINFO_AGREE:
      if (CMS_RecipientInfo_kari_get0_alg(ri, &alg, &ukm) != 1 || alg == NULL ||
          OBJ_obj2nid(alg->algorithm) != NID_dhSinglePass_stdDH_sha256kdf_scheme ||
          ukm != NULL)
        return FALSE;
      break;
    default:
      return FALSE;
    }
  }
  return ris != NULL && sk_CMS_RecipientInfo_num(ris) > 0;
}

/* The name of the trusted guardian an envelope is addressed to, if any. */
static char *
addressee_name(MsvmGuardian *g, CMS_ContentInfo *env)
{
  g_autoptr(GPtrArray) peers = NULL;

  if (!msvm_guardian_list(g, &peers, NULL))
    return NULL;
  for (guint i = 0; i < peers->len; i++) {
    MsvmGuardianPeer *peer = g_ptr_array_index(peers, i);
    PeerCerts c = { 0 };
    gboolean hit;
    if (peer->local || !msvm_guardian_load_peer(g, peer->name, &c, NULL))
      continue;
    hit = addressed_to(env, c.enc);
    msvm_guardian_peer_certs_clear(&c);
    if (hit)
      return g_strdup(peer->name);
  }
  return NULL;
}

static gboolean
altered(GError **error, const char *what)
{
  ERR_clear_error();
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
              "the protector bundle is damaged or was altered (%s)", what);
  return FALSE;
}

/* One DER header at *@p (within @end): its tag and class, and the content
 * length; *@p moves to the content. */
static gboolean
der_enter(const unsigned char **p, const unsigned char *end, int want_tag, int want_class,
          long *ret_len)
{
  int tag = 0, cls = 0;
  long len = 0;
  int r = ASN1_get_object(p, &len, &tag, &cls, end - *p);

  if ((r & 0x80) || tag != want_tag || cls != want_class || len > end - *p)
    return FALSE;
  *ret_len = len;
  return TRUE;
}

/* The fields of the envelope OpenSSL's CMS parser does not check and that
 * no authentication covers (the unit test changes every byte to find
 * them): AuthEnvelopedData's version (0, RFC 5083), each
 * KeyAgreeRecipientInfo's (3, RFC 5652; nothing else is accepted), the
 * unused bits and the point form of the ephemeral key, and the
 * AES-GCM ICV length.  (@der was checked to be OpenSSL's own
 * canonical DER.) */
static gboolean
envelope_versions_ok(const unsigned char *der, gsize len)
{
  const unsigned char *p = der, *end = der + len, *set_end;
  long l = 0;

  if (!der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &l) ||
      !der_enter(&p, end, V_ASN1_OBJECT, V_ASN1_UNIVERSAL, &l))
    return FALSE;
  p += l;
  if (!der_enter(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &l) ||
      !der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &l) ||
      !der_enter(&p, end, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, &l) || l != 1 || p[0] != 0)
    return FALSE;
  p += l;
  if (!der_enter(&p, end, V_ASN1_SET, V_ASN1_UNIVERSAL, &l))
    return FALSE;
  set_end = p + l;
  while (p < set_end) {
    const unsigned char *ri = p;
    int tag = 0, cls = 0;
    long rl = 0;
    int r = ASN1_get_object(&ri, &rl, &tag, &cls, set_end - p);
    if ((r & 0x80) || rl > set_end - ri)
      return FALSE;
    if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 1) {          /* kari */
      const unsigned char *q = ri;
      const unsigned char *qe = ri + rl;
      if (!der_enter(&q, qe, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, &l) || l != 1 || q[0] != 3)
        return FALSE;
      q += l;
      /* originator [0] { originatorKey [1] { algorithm, publicKey BIT STRING } }:
       * the key's unused-bits octet is 0 */
      if (!der_enter(&q, qe, 0, V_ASN1_CONTEXT_SPECIFIC, &l) ||
          !der_enter(&q, qe, 1, V_ASN1_CONTEXT_SPECIFIC, &l) ||
          !der_enter(&q, qe, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &l))
        return FALSE;
      q += l;
      if (!der_enter(&q, qe, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, &l) || l < 2 || q[0] != 0)
        return FALSE;
      /* ... and the point is in uncompressed form (04 X Y), as OpenSSL
       * writes it: its hybrid form (06/07 X Y) is the same key */
      if (q[1] != 0x04)
        return FALSE;
    } else {
      return FALSE;
    }
    p = ri + rl;
  }
  /* authEncryptedContentInfo: contentType, then AES-GCM's parameters:
   * a 12-byte nonce and the ICV length OpenSSL writes, 16 (OpenSSL takes
   * the tag's length from the mac itself) */
  if (!der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &l) ||
      !der_enter(&p, end, V_ASN1_OBJECT, V_ASN1_UNIVERSAL, &l))
    return FALSE;
  p += l;
  if (!der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &l) ||
      !der_enter(&p, end, V_ASN1_OBJECT, V_ASN1_UNIVERSAL, &l))
    return FALSE;
  p += l;
  if (!der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &l) ||
      !der_enter(&p, end, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, &l) || l != 12)
    return FALSE;
  p += l;
  if (!der_enter(&p, end, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, &l) || l != 1 || p[0] != 16)
    return FALSE;
  return TRUE;
}

/* DER of exactly @len bytes, of the content type @nid. */
static CMS_ContentInfo *
parse_cms(const guint8 *data, gsize len, int nid, const char *what, GError **error)
{
  const unsigned char *p = data;
  CMS_ContentInfo *cms;

  if (len == 0 || len > SEALED_MAX) {
    altered(error, len == 0 ? "it is empty" : "it is too large");
    return NULL;
  }
  cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
  if (cms == NULL) {
    altered(error, what);
    return NULL;
  }
  if (p != data + len || OBJ_obj2nid(CMS_get0_type(cms)) != nid) {
    CMS_ContentInfo_free(cms);
    altered(error, what);
    return NULL;
  }
  {
    /* the DER must be what OpenSSL writes back, byte for byte */
    unsigned char *again = NULL;
    int n = i2d_CMS_ContentInfo(cms, &again);
    gboolean same = n > 0 && (gsize)n == len && memcmp(again, data, len) == 0;
    OPENSSL_clear_free(again, n > 0 ? (size_t)n : 0);
    if (!same) {
      CMS_ContentInfo_free(cms);
      altered(error, what);
      return NULL;
    }
  }
  return cms;
}

gboolean
msvm_guardian_unseal(MsvmGuardian *g, const guint8 *sealed, gsize len, GBytes **ret_payload,
                     char **ret_signer, GError **error)
{
  g_autoptr(CMS_ContentInfo) env = NULL;
  g_autoptr(CMS_ContentInfo) sig = NULL;
  g_autoptr(BIO) dec = NULL;
  g_autoptr(BIO) out = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  STACK_OF(X509) *signers_trusted = NULL;
  STACK_OF(X509) *signers = NULL;
  char *signer = NULL;
  gboolean ok = FALSE;

  ERR_clear_error();
  env = parse_cms(sealed, len, NID_id_smime_ct_authEnvelopedData,
                  "not a CMS AuthEnvelopedData", error);
  if (env == NULL)
    return FALSE;
  if (!envelope_versions_ok(sealed, len))
    return altered(error, "unexpected version or parameters");
  if (!key_algorithms_ok(env))
    return altered(error, "unexpected key management algorithm");
  if (!addressed_to(env, g->enc_cert)) {
    g_autofree char *to = addressee_name(g, env);
    ERR_clear_error();
    if (to != NULL)
      g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                  "the protector bundle is for guardian '%s', not for this host's guardian",
                  to);
    else
      g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                  "the protector bundle is for another guardian, not for this host's");
    return FALSE;
  }
  {
    const ASN1_OBJECT *inner = CMS_get0_eContentType(env);
    if (inner == NULL || OBJ_obj2nid(inner) != NID_pkcs7_data)
      return altered(error, "unexpected content type");
  }
  dec = BIO_new(BIO_s_mem());
  if (dec == NULL)
    return msvm_guardian_ossl_fail(error, MSVM_RC_OUT_OF_MEMORY, "cannot decrypt the bundle");
  if (CMS_decrypt(env, g->enc_key, g->enc_cert, NULL, dec, CMS_BINARY) != 1) {
    char *d = NULL;
    long n = BIO_get_mem_data(dec, &d);
    if (n > 0 && d != NULL)
      msvm_wipe(d, (gsize)n);
    return altered(error, "decryption failed");
  }

  do {
    char *d = NULL;
    long n = BIO_get_mem_data(dec, &d);
    g_autoptr(GBytes) inner = msvm_secret_bytes_new(d, n > 0 ? (gsize)n : 0);
    gsize ilen = 0;
    const guint8 *ip = g_bytes_get_data(inner, &ilen);

    if (n > 0)
      msvm_wipe(d, (gsize)n);
    sig = parse_cms(ip, ilen, NID_pkcs7_signed, "not a CMS SignedData", error);
    if (sig == NULL)
      break;
    {
      const ASN1_OBJECT *ct = CMS_get0_eContentType(sig);
      if (ct == NULL || OBJ_obj2nid(ct) != NID_pkcs7_data) {
        altered(error, "unexpected signed content type");
        break;
      }
    }
    /* the signing certificates of this guardian and of every trusted one */
    signers_trusted = sk_X509_new_null();
    sk_X509_push(signers_trusted, X509_dup(g->sign_cert));
    g_ptr_array_add(names, g_strdup(MSVM_GUARDIAN_LOCAL));
    if (!msvm_guardian_list(g, &peers, error))
      break;
    for (guint i = 0; i < peers->len; i++) {
      MsvmGuardianPeer *peer = g_ptr_array_index(peers, i);
      PeerCerts c = { 0 };
      if (peer->local || !msvm_guardian_load_peer(g, peer->name, &c, NULL))
        continue;
      sk_X509_push(signers_trusted, c.sign);
      c.sign = NULL;
      msvm_guardian_peer_certs_clear(&c);
      g_ptr_array_add(names, g_strdup(peer->name));
    }
    out = BIO_new(BIO_s_mem());
    ERR_clear_error();
    if (CMS_verify(sig, signers_trusted, NULL, NULL, out,
                   CMS_BINARY | CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
      unsigned long e = ERR_peek_last_error();
      char *od = NULL;
      long on = BIO_get_mem_data(out, &od);
      if (on > 0 && od != NULL)
        msvm_wipe(od, (gsize)on);
      cms_wipe_content(sig);
      ERR_clear_error();
      if (ERR_GET_LIB(e) == ERR_LIB_CMS &&
          ERR_GET_REASON(e) == CMS_R_SIGNER_CERTIFICATE_NOT_FOUND) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                    "the protector bundle is signed by a guardian this host does not trust "
                    "(msvm-security guardian trust adds one)");
      } else {
        altered(error, "bad signature");
      }
      break;
    }
    /* which one signed it */
    signers = CMS_get0_signers(sig);
    for (int i = 0; signers != NULL && signer == NULL && i < sk_X509_num(signers); i++) {
      for (int k = 0; k < sk_X509_num(signers_trusted); k++) {
        if (msvm_guardian_same_cert(sk_X509_value(signers, i), sk_X509_value(signers_trusted, k))) {
          signer = g_strdup(g_ptr_array_index(names, k));
          break;
        }
      }
    }
    if (signer == NULL) {
      char *od = NULL;
      long on = BIO_get_mem_data(out, &od);
      if (on > 0 && od != NULL)
        msvm_wipe(od, (gsize)on);
      g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                  "the protector bundle is signed by a guardian this host does not trust");
      break;
    }
    {
      char *od = NULL;
      long on = BIO_get_mem_data(out, &od);
      *ret_payload = msvm_secret_bytes_new(od, on > 0 ? (gsize)on : 0);
      if (on > 0 && od != NULL)
        msvm_wipe(od, (gsize)on);
    }
    *ret_signer = signer;
    signer = NULL;
    ok = TRUE;
  } while (0);
  cms_wipe_content(sig);
  sk_X509_free(signers);
  sk_X509_pop_free(signers_trusted, X509_free);
  g_free(signer);
  ERR_clear_error();
  return ok;
}
