/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The swtpm state-file codec against states made by the real swtpm_setup /
 * swtpm 0.7.1 (tests/data/tpm2state-*, see their README.md), and against
 * damaged variants of them.
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <openssl/evp.h>

#include "msvm-cause.h"
#include "msvm-error.h"
#include "msvm-state-file.h"

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
  char *dir;          /* tests/data/tpm2state-NAME */
  char *file;         /* tpm2-00.permall or tpm2-00.volatilestate */
  gboolean encrypted;
  MsvmStateKdf kdf;
  MsvmStateCipher cipher;
  GBytes *passphrase; /* NULL for plaintext */
} GoldenCase;

static void
golden_case_free(gpointer p)
{
  GoldenCase *c = p;
  g_free(c->dir);
  g_free(c->file);
  if (c->passphrase)
    g_bytes_unref(c->passphrase);
  g_free(c);
}

static GBytes *
read_bytes(const char *path)
{
  char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_get_contents(path, &data, &len, &error));
  g_assert_no_error(error);
  return g_bytes_new_take(data, len);
}

static GoldenCase *
golden_case_new(const char *dir, const char *file)
{
  GoldenCase *c = g_new0(GoldenCase, 1);
  g_autofree char *params_path = g_build_filename(dir, "params", NULL);
  g_autofree char *params = NULL;
  g_autofree char *pass_path = g_build_filename(dir, "passphrase", NULL);

  c->dir = g_strdup(dir);
  c->file = g_strdup(file);
  g_assert_true(g_file_get_contents(params_path, &params, NULL, NULL));
  c->encrypted = strstr(params, "cipher=none") == NULL;
  c->kdf = strstr(params, "kdf=sha512") ? MSVM_KDF_SHA512 : MSVM_KDF_PBKDF2;
  c->cipher = strstr(params, "cipher=aes-128-cbc") ? MSVM_CIPHER_AES_128_CBC
                                                   : MSVM_CIPHER_AES_256_CBC;
  if (c->encrypted)
    c->passphrase = read_bytes(pass_path);
  return c;
}

static const guint8 *
pass_data(const GoldenCase *c, gsize *len)
{
  if (c->passphrase == NULL) {
    *len = 0;
    return NULL;
  }
  return g_bytes_get_data(c->passphrase, len);
}

static guint32
be32(const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* Decode with the right passphrase; re-encode; the new file has exactly the
 * layout swtpm wrote (header, record tags and lengths) and decodes to the
 * same state; a plaintext file re-encodes byte for byte. */
static void
test_golden(gconstpointer data)
{
  const GoldenCase *c = data;
  g_autofree char *path = g_build_filename(c->dir, "tpm2", c->file, NULL);
  g_autoptr(GBytes) file = read_bytes(path);
  g_autoptr(GBytes) plain = NULL;
  g_autoptr(GBytes) again = NULL;
  g_autoptr(GBytes) plain2 = NULL;
  g_autoptr(GError) error = NULL;
  gsize flen, plen, alen, pass_len;
  const guint8 *f = g_bytes_get_data(file, &flen);
  const guint8 *pass = pass_data(c, &pass_len);
  const guint8 *a;
  gboolean encrypted = !c->encrypted;
  MsvmStateCipher cipher;

  g_assert_true(msvm_state_file_probe(f, flen, &encrypted, &cipher, &error));
  g_assert_no_error(error);
  g_assert_cmpint(encrypted, ==, c->encrypted);
  if (encrypted)
    g_assert_cmpint(cipher, ==, c->cipher);

  g_assert_true(msvm_state_file_decode(f, flen, pass, pass_len, c->kdf, &plain, &error));
  g_assert_no_error(error);
  plen = g_bytes_get_size(plain);
  g_assert_cmpuint(plen, >, 100);

  g_assert_true(msvm_state_file_encode(g_bytes_get_data(plain, NULL), plen, pass, pass_len,
                                       c->kdf, c->cipher, &again, &error));
  g_assert_no_error(error);
  a = g_bytes_get_data(again, &alen);
  g_assert_cmpuint(alen, ==, flen);
  if (!c->encrypted) {
    g_assert_cmpmem(a, alen, f, flen);
  } else {
    gsize off = 10;
    /* same header (version, min version, size, flags, total length) */
    g_assert_cmpmem(a, 10, f, 10);
    /* same records in the same order with the same lengths */
    while (off < flen) {
      g_assert_cmpmem(a + off, 6, f + off, 6);
      off += 6 + be32(f + off + 2);
    }
    g_assert_cmpuint(off, ==, flen);
    /* a fresh IV: the ciphertext differs */
    g_assert_true(memcmp(a + 16, f + 16, 16) != 0);
  }
  g_assert_true(msvm_state_file_decode(a, alen, pass, pass_len, c->kdf, &plain2, &error));
  g_assert_no_error(error);
  g_assert_true(g_bytes_equal(plain, plain2));
}

/* The wrong passphrase, the wrong KDF, a missing or an unexpected
 * passphrase: 32775, and nothing returned. */
static void
test_golden_wrong_key(gconstpointer data)
{
  const GoldenCase *c = data;
  g_autofree char *path = g_build_filename(c->dir, "tpm2", c->file, NULL);
  g_autoptr(GBytes) file = read_bytes(path);
  GBytes *plain = NULL;
  gsize flen, pass_len;
  const guint8 *f = g_bytes_get_data(file, &flen);
  const guint8 *pass = pass_data(c, &pass_len);

  if (!c->encrypted) {
    g_autoptr(GError) error = NULL;
    g_assert_false(msvm_state_file_decode(f, flen, (const guint8 *)"x", 1, MSVM_KDF_PBKDF2,
                                          &plain, &error));
    g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY);
    g_assert_nonnull(strstr(error->message, "not encrypted"));
    g_assert_null(plain);
    return;
  }
  {
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *wrong = g_memdup2(pass, pass_len);
    wrong[0] ^= 1;
    g_assert_false(msvm_state_file_decode(f, flen, wrong, pass_len, c->kdf, &plain, &error));
    g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY);
    g_assert_nonnull(strstr(error->message, "HMAC mismatch"));
    g_assert_null(plain);
  }
  {
    /* a passphrase file without (or with) the trailing newline is another key */
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *longer = g_malloc(pass_len + 1);
    memcpy(longer, pass, pass_len);
    longer[pass_len] = '\n';
    g_assert_false(msvm_state_file_decode(f, flen, longer, pass_len + 1, c->kdf, &plain,
                                          &error));
    g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY);
  }
  {
    g_autoptr(GError) error = NULL;
    MsvmStateKdf other = c->kdf == MSVM_KDF_PBKDF2 ? MSVM_KDF_SHA512 : MSVM_KDF_PBKDF2;
    g_assert_false(msvm_state_file_decode(f, flen, pass, pass_len, other, &plain, &error));
    g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY);
  }
  {
    g_autoptr(GError) error = NULL;
    g_assert_false(msvm_state_file_decode(f, flen, NULL, 0, c->kdf, &plain, &error));
    g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY);
    g_assert_nonnull(strstr(error->message, "no passphrase"));
  }
  g_assert_null(plain);
}

/* Damaged variants of the AES-256 permall. */
typedef struct {
  const char *name;
  void (*damage)(GByteArray *f);
  const char *expected; /* substring of the error message */
  MsvmCause cause;      /* what the codec says went wrong (the store's retry depends on it) */
} Damage;

static void
set_be32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

static void
fix_totlen(GByteArray *f)
{
  set_be32(f->data + 6, f->len);
}

/* offset of the record with @tag */
static gsize
record_offset(GByteArray *f, guint16 tag)
{
  gsize off = 10;
  while (off + 6 <= f->len) {
    if (((f->data[off] << 8) | f->data[off + 1]) == tag)
      return off;
    off += 6 + be32(f->data + off + 2);
  }
  g_assert_not_reached();
  return 0;
}

static void dmg_truncate_one(GByteArray *f) { g_byte_array_set_size(f, f->len - 1); }
static void dmg_truncate_fixed(GByteArray *f) { g_byte_array_set_size(f, f->len - 1); fix_totlen(f); }
static void dmg_header_only(GByteArray *f) { g_byte_array_set_size(f, 5); }
static void dmg_empty(GByteArray *f) { g_byte_array_set_size(f, 0); }
static void dmg_flip_ct(GByteArray *f) { f->data[record_offset(f, 2) + 6 + 100] ^= 0x04; }
static void dmg_flip_hmac(GByteArray *f) { f->data[record_offset(f, 3) + 6 + 31] ^= 0x80; }
static void dmg_flip_iv(GByteArray *f) { f->data[record_offset(f, 6) + 6 + 20] ^= 0x01; }
static void dmg_flip_flags(GByteArray *f) { f->data[5] = 0x01; /* claims AES-128 */ }
static void dmg_version(GByteArray *f) { f->data[0] = 1; }
static void dmg_min_version(GByteArray *f) { f->data[1] = 3; }
static void dmg_hdrsize(GByteArray *f) { f->data[3] = 12; }
static void dmg_migration_flag(GByteArray *f) { f->data[5] |= 0x02; }

static void
dmg_iv_short(GByteArray *f)
{
  /* an IV record of 16 bytes with a 256-bit key (swtpm 0.7.1 rejects it) */
  gsize off = record_offset(f, 6);
  set_be32(f->data + off + 2, 16);
  g_byte_array_set_size(f, off + 6 + 16);
  fix_totlen(f);
}

static void
dmg_bogus_length(GByteArray *f)
{
  set_be32(f->data + record_offset(f, 3) + 2, 0xffffffffu);
}

static void
dmg_bogus_length_small(GByteArray *f)
{
  /* the ciphertext record claims 6 bytes less: the rest parses as garbage */
  gsize off = record_offset(f, 2);
  set_be32(f->data + off + 2, be32(f->data + off + 2) - 6);
}

static void
dmg_unknown_tag(GByteArray *f)
{
  static const guint8 rec[] = { 0x00, 0x09, 0x00, 0x00, 0x00, 0x01, 0xaa };
  g_byte_array_append(f, rec, sizeof(rec));
  fix_totlen(f);
}

static void
dmg_duplicate_tag(GByteArray *f)
{
  gsize off = record_offset(f, 3);
  g_autofree guint8 *copy = g_memdup2(f->data + off, 6 + 32);
  g_byte_array_append(f, copy, 6 + 32);
  fix_totlen(f);
}

static void
dmg_hmac_short(GByteArray *f)
{
  gsize off = record_offset(f, 3);
  set_be32(f->data + off + 2, 31);
  g_byte_array_remove_index(f, off + 6);
  fix_totlen(f);
}

static void
dmg_ct_not_block(GByteArray *f)
{
  gsize off = record_offset(f, 2);
  set_be32(f->data + off + 2, be32(f->data + off + 2) - 1);
  g_byte_array_remove_index(f, off + 6);
  fix_totlen(f);
}

static void
dmg_no_hmac(GByteArray *f)
{
  gsize off = record_offset(f, 3);
  g_byte_array_remove_range(f, off, 6 + 32);
  fix_totlen(f);
}

static void
dmg_plain_and_encrypted(GByteArray *f)
{
  static const guint8 rec[] = { 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xaa };
  g_byte_array_append(f, rec, sizeof(rec));
  fix_totlen(f);
}

static const Damage damages[] = {
  { "truncated-by-one", dmg_truncate_one, "does not match its header", MSVM_CAUSE_CORRUPT },
  { "truncated-length-fixed", dmg_truncate_fixed, "runs past the end", MSVM_CAUSE_CORRUPT },
  { "header-only", dmg_header_only, "shorter than the header", MSVM_CAUSE_CORRUPT },
  { "empty", dmg_empty, "shorter than the header", MSVM_CAUSE_CORRUPT },
  { "flipped-ciphertext-bit", dmg_flip_ct, "HMAC mismatch", MSVM_CAUSE_WRONG_KEY },
  { "flipped-hmac-bit", dmg_flip_hmac, "HMAC mismatch", MSVM_CAUSE_WRONG_KEY },
  { "flipped-iv-bit", dmg_flip_iv, "HMAC mismatch", MSVM_CAUSE_WRONG_KEY },
  { "flags-claim-aes128", dmg_flip_flags, "IV record is 32 bytes", MSVM_CAUSE_CORRUPT },
  { "iv-record-16-bytes", dmg_iv_short, "IV record is 16 bytes", MSVM_CAUSE_CORRUPT },
  { "bogus-record-length", dmg_bogus_length, "runs past the end", MSVM_CAUSE_CORRUPT },
  { "bogus-record-length-small", dmg_bogus_length_small, "record", MSVM_CAUSE_CORRUPT },
  { "header-version-1", dmg_version, "header version 1", MSVM_CAUSE_UNSUPPORTED },
  { "min-version-3", dmg_min_version, "needs header version 3", MSVM_CAUSE_UNSUPPORTED },
  { "header-size-12", dmg_hdrsize, "header size", MSVM_CAUSE_CORRUPT },
  { "migration-flag", dmg_migration_flag, "flags 0x000b", MSVM_CAUSE_UNSUPPORTED },
  { "unknown-tag", dmg_unknown_tag, "tag 9", MSVM_CAUSE_UNSUPPORTED },
  { "duplicate-hmac", dmg_duplicate_tag, "duplicate record tag 3", MSVM_CAUSE_CORRUPT },
  { "hmac-31-bytes", dmg_hmac_short, "HMAC record is 31 bytes", MSVM_CAUSE_CORRUPT },
  { "ciphertext-not-blocks", dmg_ct_not_block, "AES blocks", MSVM_CAUSE_CORRUPT },
  { "no-hmac", dmg_no_hmac, "HMAC record", MSVM_CAUSE_CORRUPT },
  { "plain-and-encrypted", dmg_plain_and_encrypted, "no plaintext record", MSVM_CAUSE_CORRUPT },
};

static void
test_damaged(gconstpointer data)
{
  const Damage *d = data;
  g_autofree char *dir = g_build_filename(g_getenv("MSVM_TEST_DATADIR"),
                                          "tpm2state-aes256-pbkdf2", NULL);
  g_autofree char *path = g_build_filename(dir, "tpm2", "tpm2-00.permall", NULL);
  g_autofree char *pass_path = g_build_filename(dir, "passphrase", NULL);
  g_autoptr(GBytes) file = read_bytes(path);
  g_autoptr(GBytes) pass = read_bytes(pass_path);
  g_autoptr(GByteArray) f = g_byte_array_new();
  g_autoptr(GError) error = NULL;
  GBytes *plain = NULL;

  g_byte_array_append(f, g_bytes_get_data(file, NULL), (guint)g_bytes_get_size(file));
  d->damage(f);
  g_assert_false(msvm_state_file_decode(f->data, f->len, g_bytes_get_data(pass, NULL),
                                        g_bytes_get_size(pass), MSVM_KDF_PBKDF2, &plain,
                                        &error));
  g_assert_error(error, MSVM_CAUSE_ERROR, (gint)d->cause);
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
  if (strstr(error->message, d->expected) == NULL)
    g_error("%s: expected \"%s\" in \"%s\"", d->name, d->expected, error->message);
  g_assert_null(plain);
}

/* swtpm's padding: to a multiple of the key length (not of the AES block),
 * 1..key-length bytes each equal to the pad length; a whole key length of
 * padding when the data already fits.  Checked by decrypting the output
 * with plain OpenSSL. */
static void
check_padding(MsvmStateCipher cipher, gsize plain_len)
{
  const guint8 *pass = (const guint8 *)"pad test";
  gsize key_len = msvm_state_cipher_key_len(cipher);
  g_autofree guint8 *plain = g_malloc0(plain_len + 1);
  g_autoptr(GBytes) file = NULL;
  g_autoptr(GError) error = NULL;
  guint8 key[32];
  gsize flen, ct_len, pad;
  const guint8 *f;
  g_autofree guint8 *out = NULL;
  EVP_CIPHER_CTX *ctx;
  int l1 = 0, l2 = 0;

  for (gsize i = 0; i < plain_len; i++)
    plain[i] = (guint8)(i * 7);
  g_assert_true(msvm_state_file_encode(plain, plain_len, pass, 8, MSVM_KDF_PBKDF2, cipher,
                                       &file, &error));
  g_assert_no_error(error);
  f = g_bytes_get_data(file, &flen);
  g_assert_cmpuint(f[5], ==, key_len == 32 ? 0x09 : 0x01);
  /* tag 2 first */
  g_assert_cmpuint(f[11], ==, 2);
  ct_len = be32(f + 12);
  pad = key_len - plain_len % key_len;
  g_assert_cmpuint(ct_len, ==, plain_len + pad);
  g_assert_cmpuint(ct_len % key_len, ==, 0);
  /* then tag 3 (32 bytes), then tag 6 (key-length bytes) */
  g_assert_cmpuint(f[16 + ct_len + 1], ==, 3);
  g_assert_cmpuint(be32(f + 16 + ct_len + 2), ==, 32);
  g_assert_cmpuint(f[16 + ct_len + 38 + 1], ==, 6);
  g_assert_cmpuint(be32(f + 16 + ct_len + 38 + 2), ==, key_len);
  g_assert_cmpuint(flen, ==, 10 + 6 + ct_len + 6 + 32 + 6 + key_len);

  g_assert_true(msvm_state_derive_key(pass, 8, MSVM_KDF_PBKDF2, key_len, key, NULL));
  out = g_malloc(ct_len);
  ctx = EVP_CIPHER_CTX_new();
  g_assert_cmpint(EVP_DecryptInit_ex(ctx, key_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(),
                                     NULL, key, f + 16 + ct_len + 38 + 6), ==, 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  g_assert_cmpint(EVP_DecryptUpdate(ctx, out, &l1, f + 16, (int)ct_len), ==, 1);
  g_assert_cmpint(EVP_DecryptFinal_ex(ctx, out + l1, &l2), ==, 1);
  EVP_CIPHER_CTX_free(ctx);
  g_assert_cmpuint((gsize)(l1 + l2), ==, ct_len);
  g_assert_cmpmem(out, plain_len, plain, plain_len);
  for (gsize i = plain_len; i < ct_len; i++)
    g_assert_cmpuint(out[i], ==, pad);
}

static void
test_padding(void)
{
  const gsize lens[] = { 0, 1, 15, 16, 17, 31, 32, 33, 64, 1000 };
  for (gsize i = 0; i < G_N_ELEMENTS(lens); i++) {
    check_padding(MSVM_CIPHER_AES_256_CBC, lens[i]);
    check_padding(MSVM_CIPHER_AES_128_CBC, lens[i]);
  }
}

/* An authentic file (right HMAC) whose padding is wrong is refused. */
static void
test_bad_padding(void)
{
  const guint8 *pass = (const guint8 *)"pad test";
  guint8 plain[32];
  g_autoptr(GBytes) file = NULL;
  g_autoptr(GError) error = NULL;
  GBytes *out = NULL;
  guint8 key[32], iv[32], ct[32], mac[32];
  g_autofree guint8 *bad = NULL;
  gsize flen;
  EVP_CIPHER_CTX *ctx;
  int l1 = 0, l2 = 0;
  size_t maclen = 0;

  /* a 32-byte plaintext ending in 0x00 (pad length 0 is illegal),
   * encrypted by hand and given a correct HMAC */
  memset(plain, 0x41, sizeof(plain));
  plain[31] = 0;
  g_assert_true(msvm_state_file_encode(plain, 1, pass, 8, MSVM_KDF_PBKDF2,
                                       MSVM_CIPHER_AES_256_CBC, &file, NULL));
  flen = g_bytes_get_size(file);
  bad = g_memdup2(g_bytes_get_data(file, NULL), flen);
  g_assert_cmpuint(flen, ==, 10 + 6 + 32 + 6 + 32 + 6 + 32);
  memcpy(iv, bad + 10 + 6 + 32 + 6 + 32 + 6, 32);
  g_assert_true(msvm_state_derive_key(pass, 8, MSVM_KDF_PBKDF2, 32, key, NULL));
  ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  g_assert_cmpint(EVP_EncryptUpdate(ctx, ct, &l1, plain, 32), ==, 1);
  g_assert_cmpint(EVP_EncryptFinal_ex(ctx, ct + l1, &l2), ==, 1);
  EVP_CIPHER_CTX_free(ctx);
  memcpy(bad + 16, ct, 32);
  {
    guint8 buf[64];
    memcpy(buf, ct, 32);
    memcpy(buf + 32, iv, 32);
    g_assert_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, buf, 64, mac,
                               sizeof(mac), &maclen));
  }
  memcpy(bad + 10 + 6 + 32 + 6, mac, 32);
  g_assert_false(msvm_state_file_decode(bad, flen, pass, 8, MSVM_KDF_PBKDF2, &out, &error));
  g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT);
  g_assert_nonnull(strstr(error->message, "padding"));
  g_assert_null(out);
}

/* A file without the IV record (older swtpm): zero IV, HMAC over the
 * ciphertext alone. */
static void
test_no_iv_record(void)
{
  const guint8 *pass = (const guint8 *)"old swtpm";
  const guint8 plain[] = "TPM state written by an old swtpm";
  guint8 key[16], zero_iv[16] = { 0 }, padded[48], ct[48], mac[32];
  guint8 file[10 + 6 + 48 + 6 + 32];
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GError) error = NULL;
  EVP_CIPHER_CTX *ctx;
  int l1 = 0, l2 = 0;
  size_t maclen = 0;
  gsize plen = sizeof(plain) - 1; /* 34 -> pad 14 to 48 */

  memcpy(padded, plain, plen);
  memset(padded + plen, (int)(48 - plen), 48 - plen);
  g_assert_true(msvm_state_derive_key(pass, 9, MSVM_KDF_PBKDF2, 16, key, NULL));
  ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, zero_iv);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EVP_EncryptUpdate(ctx, ct, &l1, padded, 48);
  EVP_EncryptFinal_ex(ctx, ct + l1, &l2);
  EVP_CIPHER_CTX_free(ctx);
  g_assert_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 16, ct, 48, mac,
                             sizeof(mac), &maclen));
  file[0] = 2; file[1] = 1; file[2] = 0; file[3] = 10; file[4] = 0; file[5] = 1;
  set_be32(file + 6, sizeof(file));
  file[10] = 0; file[11] = 2; set_be32(file + 12, 48); memcpy(file + 16, ct, 48);
  file[64] = 0; file[65] = 3; set_be32(file + 66, 32); memcpy(file + 70, mac, 32);
  g_assert_true(msvm_state_file_decode(file, sizeof(file), pass, 9, MSVM_KDF_PBKDF2, &out,
                                       &error));
  g_assert_no_error(error);
  g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), plain, plen);
}

/* Empty data encodes and decodes (as plaintext and encrypted). */
static void
test_empty_data(void)
{
  g_autoptr(GBytes) plain_file = NULL;
  g_autoptr(GBytes) enc_file = NULL;
  g_autoptr(GBytes) back = NULL;
  g_autoptr(GBytes) back2 = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 expected[] = { 2, 1, 0, 10, 0, 0, 0, 0, 0, 16, 0, 1, 0, 0, 0, 0 };

  g_assert_true(msvm_state_file_encode(NULL, 0, NULL, 0, MSVM_KDF_PBKDF2,
                                       MSVM_CIPHER_AES_256_CBC, &plain_file, &error));
  g_assert_no_error(error);
  g_assert_cmpmem(g_bytes_get_data(plain_file, NULL), g_bytes_get_size(plain_file), expected,
                  sizeof(expected));
  g_assert_true(msvm_state_file_decode(g_bytes_get_data(plain_file, NULL),
                                       g_bytes_get_size(plain_file), NULL, 0, MSVM_KDF_PBKDF2,
                                       &back, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(back), ==, 0);
  g_assert_true(msvm_state_file_encode(NULL, 0, (const guint8 *)"p", 1, MSVM_KDF_PBKDF2,
                                       MSVM_CIPHER_AES_128_CBC, &enc_file, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(enc_file), ==, 10 + 6 + 16 + 6 + 32 + 6 + 16);
  g_assert_true(msvm_state_file_decode(g_bytes_get_data(enc_file, NULL),
                                       g_bytes_get_size(enc_file), (const guint8 *)"p", 1,
                                       MSVM_KDF_PBKDF2, &back2, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(back2), ==, 0);
}

int
main(int argc, char **argv)
{
  const char *datadir;
  g_autoptr(GDir) d = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;

  g_test_init(&argc, &argv, NULL);
  datadir = g_getenv("MSVM_TEST_DATADIR");
  g_assert_nonnull(datadir);
  d = g_dir_open(datadir, 0, NULL);
  g_assert_nonnull(d);
  while ((name = g_dir_read_name(d)) != NULL) {
    if (g_str_has_prefix(name, "tpm2state-"))
      g_ptr_array_add(names, g_strdup(name));
  }
  g_ptr_array_sort(names, compare_names);
  g_assert_cmpuint(names->len, >=, 4);
  for (guint i = 0; i < names->len; i++) {
    const char *n = g_ptr_array_index(names, i);
    g_autofree char *dir = g_build_filename(datadir, n, NULL);
    const char *files[] = { "tpm2-00.permall", "tpm2-00.volatilestate" };
    for (gsize j = 0; j < G_N_ELEMENTS(files); j++) {
      g_autofree char *p = g_build_filename(dir, "tpm2", files[j], NULL);
      g_autofree char *t1 = g_strdup_printf("/state-file/golden/%s/%s", n + 10, files[j]);
      g_autofree char *t2 = g_strdup_printf("/state-file/wrong-key/%s/%s", n + 10, files[j]);
      if (!g_file_test(p, G_FILE_TEST_EXISTS))
        continue;
      g_test_add_data_func_full(t1, golden_case_new(dir, files[j]), test_golden,
                                golden_case_free);
      g_test_add_data_func_full(t2, golden_case_new(dir, files[j]), test_golden_wrong_key,
                                golden_case_free);
    }
  }
  for (gsize i = 0; i < G_N_ELEMENTS(damages); i++) {
    g_autofree char *t = g_strdup_printf("/state-file/damaged/%s", damages[i].name);
    g_test_add_data_func(t, &damages[i], test_damaged);
  }
  g_test_add_func("/state-file/padding", test_padding);
  g_test_add_func("/state-file/bad-padding", test_bad_padding);
  g_test_add_func("/state-file/no-iv-record", test_no_iv_record);
  g_test_add_func("/state-file/empty-data", test_empty_data);
  return g_test_run();
}
