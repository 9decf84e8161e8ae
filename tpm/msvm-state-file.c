/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-state-file.c: swtpm 0.7 state-file codec (see msvm-state-file.h).
 *
 * All cryptography is OpenSSL libcrypto: EVP AES-CBC with its padding
 * disabled (swtpm pads by itself), EVP_MAC HMAC-SHA256, PKCS5_PBKDF2_HMAC
 * with SHA-512, SHA512, RAND_bytes, CRYPTO_memcmp.
 */
#include "config.h"

#include "msvm-state-file.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include "msvm-cause.h"
#include "msvm-error.h"
#include "msvm-kdf.h"

#define HMAC_LEN 32
#define AES_BLOCK 16
#define MAX_KEY_LEN 32

gsize
msvm_state_cipher_key_len(MsvmStateCipher cipher)
{
  return cipher == MSVM_CIPHER_AES_128_CBC ? 16 : 32;
}

const char *
msvm_state_cipher_name(MsvmStateCipher cipher)
{
  return cipher == MSVM_CIPHER_AES_128_CBC ? "aes-128-cbc" : "aes-256-cbc";
}

const char *
msvm_state_kdf_name(MsvmStateKdf kdf)
{
  return kdf == MSVM_KDF_SHA512 ? "sha512" : "pbkdf2";
}

static guint16
get_be16(const guint8 *p)
{
  return (guint16)((p[0] << 8) | p[1]);
}

static guint32
get_be32(const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static void
put_be16(guint8 *p, guint16 v)
{
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
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
msvm_state_derive_key(const guint8 *passphrase, gsize passphrase_len, MsvmStateKdf kdf,
                      gsize key_len, guint8 *ret_key, GError **error)
{
  static const unsigned char salt[] = { 's', 'w', 't', 'p', 'm' };

  if ((key_len != 16 && key_len != 32) || passphrase == NULL || passphrase_len > G_MAXINT) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "invalid key parameters");
    return FALSE;
  }
  if (kdf == MSVM_KDF_SHA512) {
    guint8 digest[SHA512_DIGEST_LENGTH];
    if (SHA512(passphrase, passphrase_len, digest) == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "SHA-512 failed in OpenSSL");
      return FALSE;
    }
    memcpy(ret_key, digest, key_len);
    msvm_wipe(digest, sizeof(digest));
    return TRUE;
  }
  if (kdf != MSVM_KDF_PBKDF2) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "unknown KDF");
    return FALSE;
  }
  /* OpenSSL wants a non-NULL password even for length 0. */
  if (PKCS5_PBKDF2_HMAC(passphrase_len ? (const char *)passphrase : "", (int)passphrase_len,
                        salt, sizeof(salt), 1000, EVP_sha512(), (int)key_len,
                        ret_key) != 1) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "PBKDF2-HMAC-SHA512 failed in OpenSSL");
    return FALSE;
  }
  return TRUE;
}

/* The parsed layout of a file: pointers into the caller's buffer. */
typedef struct {
  guint16 flags;
  const guint8 *rec[8];
  gsize rec_len[8];
  gboolean has[8];
} Parsed;

static gboolean
parse(const guint8 *data, gsize len, Parsed *p, GError **error)
{
  guint32 totlen;
  gsize off;

  memset(p, 0, sizeof(*p));
  if (data == NULL || len < MSVM_STATE_HEADER_SIZE) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                "not a swtpm state file: %" G_GSIZE_FORMAT " bytes, shorter than the header",
                data ? len : 0);
    return FALSE;
  }
  if (len > MSVM_STATE_FILE_MAX_SIZE) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                "state file too large (%" G_GSIZE_FORMAT " bytes)", len);
    return FALSE;
  }
  if (data[0] != 2) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_UNSUPPORTED,
                "unsupported state file header version %u (only version 2 is supported)",
                data[0]);
    return FALSE;
  }
  if (data[1] > 2) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_UNSUPPORTED,
                "state file needs header version %u or later", data[1]);
    return FALSE;
  }
  if (get_be16(data + 2) != MSVM_STATE_HEADER_SIZE) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                "bad state file header size %u", get_be16(data + 2));
    return FALSE;
  }
  p->flags = get_be16(data + 4);
  totlen = get_be32(data + 6);
  if (totlen != len) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                "state file length %" G_GSIZE_FORMAT " does not match its header (%u): "
                "truncated or damaged", len, totlen);
    return FALSE;
  }
  if (p->flags != 0 &&
      p->flags != MSVM_STATE_FLAG_ENCRYPTED &&
      p->flags != (MSVM_STATE_FLAG_ENCRYPTED | MSVM_STATE_FLAG_ENCRYPTED_256BIT)) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_UNSUPPORTED,
                "unsupported state file flags 0x%04x (migration blob or unknown format)",
                p->flags);
    return FALSE;
  }

  off = MSVM_STATE_HEADER_SIZE;
  while (off < len) {
    guint16 tag;
    guint32 rlen;

    if (len - off < 6) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "truncated record header at offset %" G_GSIZE_FORMAT, off);
      return FALSE;
    }
    tag = get_be16(data + off);
    rlen = get_be32(data + off + 2);
    off += 6;
    if (rlen > len - off) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "record (tag %u) of %u bytes runs past the end of the file", tag, rlen);
      return FALSE;
    }
    if (tag != MSVM_STATE_TAG_DATA && tag != MSVM_STATE_TAG_ENCRYPTED_DATA &&
        tag != MSVM_STATE_TAG_HMAC && tag != MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_UNSUPPORTED,
                  "unsupported record tag %u in a state file", tag);
      return FALSE;
    }
    if (p->has[tag]) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT, "duplicate record tag %u", tag);
      return FALSE;
    }
    p->has[tag] = TRUE;
    p->rec[tag] = data + off;
    p->rec_len[tag] = rlen;
    off += rlen;
  }

  if (p->flags == 0) {
    if (!p->has[MSVM_STATE_TAG_DATA] || p->has[MSVM_STATE_TAG_ENCRYPTED_DATA] ||
        p->has[MSVM_STATE_TAG_HMAC] || p->has[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA]) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "plaintext state file must hold exactly one data record (tag 1)");
      return FALSE;
    }
  } else {
    gsize key_len = (p->flags & MSVM_STATE_FLAG_ENCRYPTED_256BIT) ? 32 : 16;
    gsize ct_len = p->rec_len[MSVM_STATE_TAG_ENCRYPTED_DATA];

    if (p->has[MSVM_STATE_TAG_DATA] || !p->has[MSVM_STATE_TAG_ENCRYPTED_DATA] ||
        !p->has[MSVM_STATE_TAG_HMAC]) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "encrypted state file must hold an encrypted-data record (tag 2) and an "
                  "HMAC record (tag 3) and no plaintext record");
      return FALSE;
    }
    if (p->rec_len[MSVM_STATE_TAG_HMAC] != HMAC_LEN) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "HMAC record is %" G_GSIZE_FORMAT " bytes, expected %d",
                  p->rec_len[MSVM_STATE_TAG_HMAC], HMAC_LEN);
      return FALSE;
    }
    /* swtpm 0.7.1 rejects an IV record of any other length. */
    if (p->has[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA] &&
        p->rec_len[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA] != key_len) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "IV record is %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT
                  " for this key length",
                  p->rec_len[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA], key_len);
      return FALSE;
    }
    if (ct_len < key_len || ct_len % AES_BLOCK != 0) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "encrypted data of %" G_GSIZE_FORMAT " bytes is not a whole number of "
                  "AES blocks of at least the key length", ct_len);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
msvm_state_file_probe(const guint8 *data, gsize len, gboolean *ret_encrypted,
                      MsvmStateCipher *ret_cipher, GError **error)
{
  Parsed p;

  if (!parse(data, len, &p, error))
    return FALSE;
  if (ret_encrypted != NULL)
    *ret_encrypted = p.flags != 0;
  if (ret_cipher != NULL)
    *ret_cipher = (p.flags & MSVM_STATE_FLAG_ENCRYPTED_256BIT) ? MSVM_CIPHER_AES_256_CBC
                                                               : MSVM_CIPHER_AES_128_CBC;
  return TRUE;
}

/* HMAC-SHA256 keyed with the AES key over ciphertext || iv. */
static gboolean
compute_hmac(const guint8 *key, gsize key_len, const guint8 *ct, gsize ct_len,
             const guint8 *iv, gsize iv_len, guint8 out[HMAC_LEN], GError **error)
{
  EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  OSSL_PARAM params[2];
  size_t outl = 0;
  gboolean ok = FALSE;

  if (ctx != NULL) {
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = EVP_MAC_init(ctx, key, key_len, params) == 1 &&
         EVP_MAC_update(ctx, ct, ct_len) == 1 &&
         (iv_len == 0 || EVP_MAC_update(ctx, iv, iv_len) == 1) &&
         EVP_MAC_final(ctx, out, &outl, HMAC_LEN) == 1 && outl == HMAC_LEN;
  }
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok)
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "HMAC-SHA256 failed in OpenSSL");
  return ok;
}

static const EVP_CIPHER *
aes_cbc(gsize key_len)
{
  return key_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
}

/* AES-CBC without OpenSSL's padding; in and out are @len bytes. */
static gboolean
aes_cbc_crypt(gboolean encrypt, const guint8 *key, gsize key_len, const guint8 iv[AES_BLOCK],
              const guint8 *in, gsize len, guint8 *out, GError **error)
{
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int outl1 = 0, outl2 = 0;
  gboolean ok;

  ok = ctx != NULL && len <= G_MAXINT &&
       EVP_CipherInit_ex(ctx, aes_cbc(key_len), NULL, key, iv, encrypt ? 1 : 0) == 1 &&
       EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
       EVP_CipherUpdate(ctx, out, &outl1, in, (int)len) == 1 &&
       EVP_CipherFinal_ex(ctx, out + outl1, &outl2) == 1 &&
       (gsize)outl1 + (gsize)outl2 == len;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok)
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "AES-CBC %s failed in OpenSSL",
                encrypt ? "encryption" : "decryption");
  return ok;
}

gboolean
msvm_state_file_decode(const guint8 *data, gsize len, const guint8 *passphrase,
                       gsize passphrase_len, MsvmStateKdf kdf, GBytes **ret_plain,
                       GError **error)
{
  Parsed p;
  guint8 key[MAX_KEY_LEN];
  guint8 mac[HMAC_LEN];
  guint8 iv[AES_BLOCK] = { 0 };
  const guint8 *ct, *ivrec;
  gsize key_len, ct_len, ivrec_len, pad, plain_len;
  guint8 *plain;
  guint8 bad;

  if (!parse(data, len, &p, error))
    return FALSE;

  if (p.flags == 0) {
    if (passphrase != NULL) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY,
                  "state file is not encrypted, but a passphrase was given");
      return FALSE;
    }
    plain = g_memdup2(p.rec[MSVM_STATE_TAG_DATA], p.rec_len[MSVM_STATE_TAG_DATA]);
    *ret_plain = msvm_secret_bytes_new_take(plain, p.rec_len[MSVM_STATE_TAG_DATA]);
    return TRUE;
  }
  if (passphrase == NULL) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY,
                "state file is encrypted, but no passphrase was given");
    return FALSE;
  }

  key_len = (p.flags & MSVM_STATE_FLAG_ENCRYPTED_256BIT) ? 32 : 16;
  ct = p.rec[MSVM_STATE_TAG_ENCRYPTED_DATA];
  ct_len = p.rec_len[MSVM_STATE_TAG_ENCRYPTED_DATA];
  /* No IV record (older swtpm): a zero IV and an HMAC over the ciphertext only. */
  ivrec = p.has[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA] ? p.rec[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA]
                                                    : NULL;
  ivrec_len = ivrec ? p.rec_len[MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA] : 0;
  if (ivrec != NULL)
    memcpy(iv, ivrec, AES_BLOCK);

  if (!msvm_state_derive_key(passphrase, passphrase_len, kdf, key_len, key, error))
    return FALSE;
  if (!compute_hmac(key, key_len, ct, ct_len, ivrec, ivrec_len, mac, error)) {
    msvm_wipe(key, sizeof(key));
    return FALSE;
  }
  if (CRYPTO_memcmp(mac, p.rec[MSVM_STATE_TAG_HMAC], HMAC_LEN) != 0) {
    msvm_wipe(key, sizeof(key));
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY,
                "HMAC mismatch: wrong passphrase or KDF, or the file was altered");
    return FALSE;
  }

  plain = g_malloc(ct_len);
  if (!aes_cbc_crypt(FALSE, key, key_len, iv, ct, ct_len, plain, error)) {
    msvm_wipe(key, sizeof(key));
    msvm_wipe(plain, ct_len);
    g_free(plain);
    return FALSE;
  }
  msvm_wipe(key, sizeof(key));

  /* swtpm's padding: 1..key_len bytes, each equal to the pad length. */
  pad = plain[ct_len - 1];
  bad = (guint8)(pad == 0 || pad > key_len);
  if (!bad) {
    for (gsize i = 0; i < pad; i++)
      bad |= (guint8)(plain[ct_len - 1 - i] != pad);
  }
  if (bad) {
    msvm_wipe(plain, ct_len);
    g_free(plain);
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                "bad padding in the decrypted state");
    return FALSE;
  }
  plain_len = ct_len - pad;
  msvm_wipe(plain + plain_len, pad);
  *ret_plain = msvm_secret_bytes_new_take(plain, plain_len);
  return TRUE;
}

static guint8 *
put_record(guint8 *p, guint16 tag, const guint8 *value, gsize len)
{
  put_be16(p, tag);
  put_be32(p + 2, (guint32)len);
  if (len > 0)
    memcpy(p + 6, value, len);
  return p + 6 + len;
}

gboolean
msvm_state_file_encode(const guint8 *plain, gsize plain_len, const guint8 *passphrase,
                       gsize passphrase_len, MsvmStateKdf kdf, MsvmStateCipher cipher,
                       GBytes **ret_file, GError **error)
{
  guint8 key[MAX_KEY_LEN];
  guint8 ivrec[MAX_KEY_LEN];
  guint8 mac[HMAC_LEN];
  guint8 *padded, *ct, *out, *p;
  gsize key_len, pad, ct_len, total;
  guint16 flags;

  if (plain == NULL && plain_len > 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "no data to encode");
    return FALSE;
  }
  if (plain_len > MSVM_STATE_FILE_MAX_SIZE - 256) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "state too large to encode");
    return FALSE;
  }

  if (passphrase == NULL) {
    total = MSVM_STATE_HEADER_SIZE + 6 + plain_len;
    out = g_malloc(total);
    out[0] = 2;
    out[1] = 1;
    put_be16(out + 2, MSVM_STATE_HEADER_SIZE);
    put_be16(out + 4, 0);
    put_be32(out + 6, (guint32)total);
    put_record(out + MSVM_STATE_HEADER_SIZE, MSVM_STATE_TAG_DATA, plain, plain_len);
    /* plaintext TPM state: wipe it when freed too */
    *ret_file = msvm_secret_bytes_new_take(out, total);
    return TRUE;
  }

  key_len = msvm_state_cipher_key_len(cipher);
  flags = MSVM_STATE_FLAG_ENCRYPTED |
          (key_len == 32 ? MSVM_STATE_FLAG_ENCRYPTED_256BIT : 0);
  pad = key_len - (plain_len % key_len);
  ct_len = plain_len + pad;

  if (!msvm_random_bytes(ivrec, key_len, error))
    return FALSE;
  if (!msvm_state_derive_key(passphrase, passphrase_len, kdf, key_len, key, error))
    return FALSE;

  padded = g_malloc(ct_len);
  if (plain_len > 0)
    memcpy(padded, plain, plain_len);
  memset(padded + plain_len, (int)pad, pad);
  ct = g_malloc(ct_len);
  if (!aes_cbc_crypt(TRUE, key, key_len, ivrec, padded, ct_len, ct, error) ||
      !compute_hmac(key, key_len, ct, ct_len, ivrec, key_len, mac, error)) {
    msvm_wipe(key, sizeof(key));
    msvm_wipe(padded, ct_len);
    g_free(padded);
    g_free(ct);
    return FALSE;
  }
  msvm_wipe(key, sizeof(key));
  msvm_wipe(padded, ct_len);
  g_free(padded);

  total = MSVM_STATE_HEADER_SIZE + 6 + ct_len + 6 + HMAC_LEN + 6 + key_len;
  out = g_malloc(total);
  out[0] = 2;
  out[1] = 1;
  put_be16(out + 2, MSVM_STATE_HEADER_SIZE);
  put_be16(out + 4, flags);
  put_be32(out + 6, (guint32)total);
  p = out + MSVM_STATE_HEADER_SIZE;
  p = put_record(p, MSVM_STATE_TAG_ENCRYPTED_DATA, ct, ct_len);
  p = put_record(p, MSVM_STATE_TAG_HMAC, mac, HMAC_LEN);
  p = put_record(p, MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA, ivrec, key_len);
  g_assert((gsize)(p - out) == total);
  g_free(ct);
  *ret_file = g_bytes_new_take(out, total);
  return TRUE;
}
