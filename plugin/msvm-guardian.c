/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-guardian.c: a store's guardian, its trusted peers and the CMS
 * envelope of protector bundles (msvm-guardian.h, DESIGN.md section 10).
 *
 * Why EC P-256 for both key pairs: key generation is instant (RSA-3072
 * takes seconds on a small host, at the first `guardian show`), keys and
 * certificates are small, ECDSA signs CMS SignedData, and OpenSSL 3.0's CMS
 * encrypts AuthEnvelopedData for an EC certificate with ephemeral-static
 * ECDH (KeyAgreeRecipientInfo, RFC 5753), a fresh ephemeral key per bundle.
 * A peer is another msvm-security guardian: its certificates are EC P-256
 * too (anything else is refused when it is trusted).
 */
#include "config.h"

#include "msvm-guardian.h"
#include "msvm-guardian-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-file.h"
#include "msvm-secret.h"
#include "msvm-store.h"

#define GUARDIAN_DIR "guardian"
#define TRUSTED_DIR "trusted"
#define SIGNING_KEY "signing.key"
#define SIGNING_CERT "signing.pem"
#define ENCRYPTION_KEY "encryption.key"
#define ENCRYPTION_CERT "encryption.pem"
#define KEY_FILE_MAX (64 * 1024)


void
msvm_guardian_peer_certs_clear(PeerCerts *p)
{
  X509_free(p->sign);
  X509_free(p->enc);
  p->sign = p->enc = NULL;
}

/* --- small things ------------------------------------------------------------ */

gboolean
msvm_guardian_ossl_fail(GError **error, guint32 code, const char *what)
{
  unsigned long e = ERR_peek_last_error();
  char buf[256] = "";

  if (e != 0)
    ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  g_set_error(error, MSVM_ERROR, code, "%s%s%s", what, buf[0] ? ": " : "", buf);
  return FALSE;
}

void
msvm_guardian_peer_free(MsvmGuardianPeer *peer)
{
  if (peer == NULL)
    return;
  g_free(peer->name);
  g_free(peer->signing_fingerprint);
  g_free(peer->encryption_fingerprint);
  g_free(peer->subject);
  g_free(peer);
}

void
msvm_guardian_free(MsvmGuardian *g)
{
  if (g == NULL)
    return;
  g_free(g->dir);
  X509_free(g->sign_cert);
  X509_free(g->enc_cert);
  EVP_PKEY_free(g->sign_key);
  EVP_PKEY_free(g->enc_key);
  g_free(g);
}

gboolean
msvm_guardian_check_name(const char *name, GError **error)
{
  gsize len = name != NULL ? strlen(name) : 0;

  if (len == 0 || len > MSVM_GUARDIAN_NAME_MAX) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "a guardian name is 1 to %d characters", MSVM_GUARDIAN_NAME_MAX);
    return FALSE;
  }
  for (gsize i = 0; i < len; i++) {
    char c = name[i];
    if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "a guardian name holds only letters, digits, '.', '_' and '-' "
                  "(character %" G_GSIZE_FORMAT " is not one)", i + 1);
      return FALSE;
    }
  }
  if (name[0] == '.' || name[0] == '-') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "a guardian name does not start with '.' or '-'");
    return FALSE;
  }
  if (strcmp(name, MSVM_GUARDIAN_LOCAL) == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "'%s' names this host's own guardian; choose another name",
                MSVM_GUARDIAN_LOCAL);
    return FALSE;
  }
  return TRUE;
}

static char *
fingerprint(X509 *x)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  GString *s = g_string_new(NULL);

  if (X509_digest(x, EVP_sha256(), md, &n) != 1)
    n = 0;
  for (unsigned int i = 0; i < n; i++)
    g_string_append_printf(s, "%s%02X", i ? ":" : "", md[i]);
  ERR_clear_error();
  return g_string_free(s, FALSE);
}

static char *
subject_line(X509 *x)
{
  g_autoptr(BIO) b = BIO_new(BIO_s_mem());
  char *data = NULL;
  long n;

  X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  n = BIO_get_mem_data(b, &data);
  return g_strndup(data ? data : "", n > 0 ? (gsize)n : 0);
}

static MsvmGuardianPeer *
peer_new(const char *name, gboolean local, X509 *sign, X509 *enc)
{
  MsvmGuardianPeer *p = g_new0(MsvmGuardianPeer, 1);

  p->name = g_strdup(name);
  p->local = local;
  p->signing_fingerprint = fingerprint(sign);
  p->encryption_fingerprint = fingerprint(enc);
  p->subject = subject_line(sign);
  return p;
}

gboolean
msvm_guardian_same_cert(X509 *a, X509 *b)
{
  return a != NULL && b != NULL && X509_cmp(a, b) == 0;
}

/* --- files ------------------------------------------------------------------ */

/* A key or certificate file of this user's alone, into a secret buffer. */
static gboolean
read_file(const char *path, gsize max, GBytes **ret, gboolean *ret_missing, GError **error)
{
  gboolean missing = FALSE;

  if (!msvm_store_read_file(path, max, "guardian", TRUE, ret, NULL, &missing, error))
    return FALSE;
  if (missing && ret_missing == NULL)
    return msvm_set_error_errno(error, ENOENT, "cannot open %s", path);
  if (ret_missing != NULL)
    *ret_missing = missing;
  return TRUE;
}

static gboolean
ensure_private_dir(const char *path, GError **error)
{
  struct stat st;

  if (!msvm_mkdir_with_parents_durable(path, 0700, error))
    return FALSE;
  if (lstat(path, &st) < 0)
    return msvm_set_error_errno(error, errno, "cannot stat %s", path);
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                "%s is not a directory of this user", path);
    return FALSE;
  }
  if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
    return msvm_set_error_errno(error, errno, "cannot set the mode of %s", path);
  return TRUE;
}

static int
lock_dir(const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename(dir, "lock", NULL);
  return msvm_store_lock_file(path, TRUE, "a guardian change", error);
}

/* msvm_atomic_write under the guardian's lock, which makes a leftover
 * "@path.tmp" (a writer killed before its rename) garbage to delete. */
static gboolean
write_locked(const char *path, const void *data, gsize len, mode_t mode, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);

  (void)unlink(tmp);
  return msvm_atomic_write(path, data, len, mode, MSVM_ATOMIC_WRITE_LOCKED, error);
}

static gboolean
bio_to_bytes_write(const char *path, BIO *b, mode_t mode, GError **error)
{
  char *data = NULL;
  long n = BIO_get_mem_data(b, &data);
  gboolean ok;

  if (n <= 0 || data == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot encode %s", path);
    return FALSE;
  }
  ok = write_locked(path, data, (gsize)n, mode, error);
  msvm_wipe(data, (gsize)n);
  return ok;
}

static gboolean
write_key(const char *path, EVP_PKEY *key, GError **error)
{
  g_autoptr(BIO) b = BIO_new(BIO_s_mem());

  if (b == NULL || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
    return msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encode a guardian key");
  return bio_to_bytes_write(path, b, 0600, error);
}

static gboolean
write_cert(const char *path, X509 *x, GError **error)
{
  g_autoptr(BIO) b = BIO_new(BIO_s_mem());

  if (b == NULL || PEM_write_bio_X509(b, x) != 1)
    return msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot encode a guardian certificate");
  return bio_to_bytes_write(path, b, 0600, error);
}

static EVP_PKEY *
read_key(const char *path, GError **error)
{
  g_autoptr(GBytes) data = NULL;
  g_autoptr(BIO) b = NULL;
  EVP_PKEY *key;
  gsize len = 0;
  const void *p;

  if (!read_file(path, KEY_FILE_MAX, &data, NULL, error))
    return NULL;
  p = g_bytes_get_data(data, &len);
  b = BIO_new_mem_buf(p, (int)len);
  key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
  if (key == NULL)
    msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, path);
  return key;
}

/* Every certificate of a PEM text, in order. */
static gboolean
parse_certs(const guint8 *pem, gsize len, GPtrArray **ret, GError **error)
{
  g_autoptr(BIO) b = BIO_new_mem_buf(pem, (int)len);
  g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func((GDestroyNotify)X509_free);
  X509 *x;

  if (b == NULL || len > G_MAXINT)
    return msvm_guardian_ossl_fail(error, MSVM_RC_INVALID_PARAMETER, "cannot read the certificates");
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    g_ptr_array_add(certs, x);
    if (certs->len > 8)
      break;
  }
  ERR_clear_error(); /* (the end of the input is an error to PEM_read) */
  *ret = g_steal_pointer(&certs);
  return TRUE;
}

static X509 *
read_cert(const char *path, GError **error)
{
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GPtrArray) certs = NULL;
  gsize len = 0;
  const guint8 *p;

  if (!read_file(path, KEY_FILE_MAX, &data, NULL, error))
    return NULL;
  p = g_bytes_get_data(data, &len);
  if (!parse_certs(p, len, &certs, error))
    return NULL;
  if (certs->len != 1) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "%s does not hold one certificate", path);
    return NULL;
  }
  return X509_dup(g_ptr_array_index(certs, 0));
}

/* --- creation ---------------------------------------------------------------- */

static gboolean
add_ext(X509 *x, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  gboolean ok;

  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (ext == NULL)
    return FALSE;
  ok = X509_add_ext(x, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *usage)
{
  g_autoptr(X509) x = X509_new();
  X509_NAME *name;
  BIGNUM *bn = BN_new();
  gboolean ok;

  ok = x != NULL && bn != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
       BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
       BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
       X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
       X509_time_adj_ex(X509_getm_notAfter(x), 30 * 365, 0, NULL) != NULL;
  BN_free(bn);
  if (!ok)
    return NULL;
  name = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"msvm-security",
                                 -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, key) != 1 ||
      !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(x, NID_key_usage, usage) ||
      !add_ext(x, NID_subject_key_identifier, "hash") ||
      X509_sign(x, key, EVP_sha256()) <= 0)
    return NULL;
  return g_steal_pointer(&x);
}

static gboolean
create_guardian(MsvmGuardian *g, GError **error)
{
  g_autofree char *host = NULL;
  g_autofree char *who = NULL;
  g_autofree char *p = NULL;
  g_autoptr(EVP_PKEY) sk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  g_autoptr(EVP_PKEY) ek = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  g_autoptr(X509) sc = NULL;
  g_autoptr(X509) ec = NULL;
  g_autofree char *cn_s = NULL;
  g_autofree char *cn_e = NULL;

  if (sk == NULL || ek == NULL)
    return msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot generate the guardian's keys");
  host = g_strdup(g_get_host_name());
  who = geteuid() == 0 ? g_strdup(host) : g_strdup_printf("uid %u on %s", (guint)geteuid(), host);
  cn_s = g_strdup_printf("msvm-security guardian of %s (signing)", who);
  cn_e = g_strdup_printf("msvm-security guardian of %s (encryption)", who);
  sc = make_cert(sk, cn_s, "critical,digitalSignature");
  ec = make_cert(ek, cn_e, "critical,keyAgreement");
  if (sc == NULL || ec == NULL)
    return msvm_guardian_ossl_fail(error, MSVM_RC_FAILED, "cannot make the guardian's certificates");
  /* keys first, the signing certificate last: it marks a whole guardian */
  p = g_build_filename(g->dir, SIGNING_KEY, NULL);
  if (!write_key(p, sk, error))
    return FALSE;
  g_free(p);
  p = g_build_filename(g->dir, ENCRYPTION_KEY, NULL);
  if (!write_key(p, ek, error))
    return FALSE;
  g_free(p);
  p = g_build_filename(g->dir, ENCRYPTION_CERT, NULL);
  if (!write_cert(p, ec, error))
    return FALSE;
  g_free(p);
  p = g_build_filename(g->dir, SIGNING_CERT, NULL);
  if (!write_cert(p, sc, error))
    return FALSE;
  g->sign_key = g_steal_pointer(&sk);
  g->enc_key = g_steal_pointer(&ek);
  g->sign_cert = g_steal_pointer(&sc);
  g->enc_cert = g_steal_pointer(&ec);
  return TRUE;
}

static gboolean
load_guardian(MsvmGuardian *g, GError **error)
{
  g_autofree char *sk = g_build_filename(g->dir, SIGNING_KEY, NULL);
  g_autofree char *sc = g_build_filename(g->dir, SIGNING_CERT, NULL);
  g_autofree char *ek = g_build_filename(g->dir, ENCRYPTION_KEY, NULL);
  g_autofree char *ec = g_build_filename(g->dir, ENCRYPTION_CERT, NULL);

  if ((g->sign_key = read_key(sk, error)) == NULL ||
      (g->sign_cert = read_cert(sc, error)) == NULL ||
      (g->enc_key = read_key(ek, error)) == NULL ||
      (g->enc_cert = read_cert(ec, error)) == NULL)
    return FALSE;
  if (X509_check_private_key(g->sign_cert, g->sign_key) != 1 ||
      X509_check_private_key(g->enc_cert, g->enc_key) != 1)
    return msvm_guardian_ossl_fail(error, MSVM_RC_FAILED,
                     "the guardian's keys do not match its certificates");
  return TRUE;
}

MsvmGuardian *
msvm_guardian_open(const char *store_root, GError **error)
{
  g_autoptr(MsvmGuardian) g = g_new0(MsvmGuardian, 1);
  g_autofree char *marker = NULL;
  int fd;
  gboolean ok;

  g->dir = g_build_filename(store_root, GUARDIAN_DIR, NULL);
  if (!ensure_private_dir(store_root, error) || !ensure_private_dir(g->dir, error))
    return NULL;
  fd = lock_dir(g->dir, error);
  if (fd < 0)
    return NULL;
  marker = g_build_filename(g->dir, SIGNING_CERT, NULL);
  if (g_file_test(marker, G_FILE_TEST_EXISTS)) {
    ok = load_guardian(g, error);
  } else {
    /* first use (or a creation that was killed before its last file) */
    ok = create_guardian(g, error);
  }
  close(fd);
  ERR_clear_error();
  if (!ok)
    return NULL;
  return g_steal_pointer(&g);
}

/* --- peers ---------------------------------------------------------------- */

static char *
pem_of(X509 *sign, X509 *enc)
{
  g_autoptr(BIO) b = BIO_new(BIO_s_mem());
  char *data = NULL;
  long n;

  if (b == NULL || PEM_write_bio_X509(b, sign) != 1 || PEM_write_bio_X509(b, enc) != 1) {
    ERR_clear_error();
    return NULL;
  }
  n = BIO_get_mem_data(b, &data);
  return g_strndup(data, n > 0 ? (gsize)n : 0);
}

char *
msvm_guardian_certificates_pem(const MsvmGuardian *g)
{
  return pem_of(g->sign_cert, g->enc_cert);
}

MsvmGuardianPeer *
msvm_guardian_describe(const MsvmGuardian *g)
{
  return peer_new(MSVM_GUARDIAN_LOCAL, TRUE, g->sign_cert, g->enc_cert);
}

static gboolean
is_p256(EVP_PKEY *pk)
{
  char group[64] = "";
  size_t n = 0;

  if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
      EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &n) != 1) {
    ERR_clear_error();
    return FALSE;
  }
  return strcmp(group, "prime256v1") == 0;
}

/* Sort a peer's certificates out of @certs: exactly two, self-signed, EC
 * P-256, one for signatures and one for key agreement. */
static gboolean
peer_from_certs(GPtrArray *certs, const char *what, PeerCerts *ret, GError **error)
{
  PeerCerts p = { 0 };

  if (certs->len != 2) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s holds %u certificates; a guardian is two (signing and encryption, "
                "what 'msvm-security guardian show' writes)", what, certs->len);
    return FALSE;
  }
  for (guint i = 0; i < 2; i++) {
    X509 *x = g_ptr_array_index(certs, i);
    uint32_t ku = X509_get_key_usage(x);
    EVP_PKEY *pk = X509_get0_pubkey(x);

    if (pk == NULL || X509_verify(x, pk) != 1) {
      msvm_guardian_peer_certs_clear(&p);
      ERR_clear_error();
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "%s: certificate %u is not self-signed by its own key", what, i + 1);
      return FALSE;
    }
    if (!is_p256(pk)) {
      msvm_guardian_peer_certs_clear(&p);
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "%s: certificate %u's key is not EC P-256, what guardians use", what, i + 1);
      return FALSE;
    }
    if (ku != UINT32_MAX && (ku & KU_DIGITAL_SIGNATURE) && p.sign == NULL &&
        !(ku & (KU_KEY_AGREEMENT | KU_KEY_ENCIPHERMENT))) {
      p.sign = X509_dup(x);
    } else if (ku != UINT32_MAX && (ku & KU_KEY_AGREEMENT) && p.enc == NULL &&
               !(ku & KU_DIGITAL_SIGNATURE)) {
      p.enc = X509_dup(x);
    }
  }
  ERR_clear_error();
  if (p.sign == NULL || p.enc == NULL) {
    msvm_guardian_peer_certs_clear(&p);
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s: need one certificate whose key usage is digitalSignature alone and one "
                "whose key usage is keyAgreement alone", what);
    return FALSE;
  }
  *ret = p;
  return TRUE;
}

static char *
peer_path(const MsvmGuardian *g, const char *name)
{
  g_autofree char *file = g_strconcat(name, ".pem", NULL);
  return g_build_filename(g->dir, TRUSTED_DIR, file, NULL);
}

/* The certificates of @name (or of this guardian); unknown: 32777. */
gboolean
msvm_guardian_load_peer(const MsvmGuardian *g, const char *name, PeerCerts *ret, GError **error)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GPtrArray) certs = NULL;
  gboolean missing = FALSE;
  const guint8 *p;
  gsize len = 0;

  if (g_strcmp0(name, MSVM_GUARDIAN_LOCAL) == 0) {
    ret->sign = X509_dup(g->sign_cert);
    ret->enc = X509_dup(g->enc_cert);
    return TRUE;
  }
  if (!msvm_guardian_check_name(name, error))
    return FALSE;
  path = peer_path(g, name);
  if (!read_file(path, MSVM_GUARDIAN_BUNDLE_MAX, &data, &missing, error))
    return FALSE;
  if (missing) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE,
                "no trusted guardian '%s' (msvm-security guardian list shows them; "
                "guardian trust adds one)", name);
    return FALSE;
  }
  p = g_bytes_get_data(data, &len);
  if (!parse_certs(p, len, &certs, error))
    return FALSE;
  if (!peer_from_certs(certs, path, ret, error)) {
    g_prefix_error(error, "trusted guardian '%s' is damaged: ", name);
    if (*error != NULL)
      (*error)->code = MSVM_RC_FAILED;
    return FALSE;
  }
  return TRUE;
}

gboolean
msvm_guardian_trust(MsvmGuardian *g, const char *name, const guint8 *pem, gsize len,
                    gboolean force, gboolean *ret_changed, MsvmGuardianPeer **ret_peer,
                    GError **error)
{
  g_autoptr(GPtrArray) certs = NULL;
  PeerCerts given = { 0 }, old = { 0 };
  g_autoptr(GError) e = NULL;
  g_autofree char *dir = g_build_filename(g->dir, TRUSTED_DIR, NULL);
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  gboolean ok = FALSE, changed = TRUE;
  int fd = -1;

  if (!msvm_guardian_check_name(name, error))
    return FALSE;
  if (pem == NULL || len == 0 || len > MSVM_GUARDIAN_BUNDLE_MAX) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the certificate bundle is empty or larger than %u bytes",
                MSVM_GUARDIAN_BUNDLE_MAX);
    return FALSE;
  }
  if (!parse_certs(pem, len, &certs, error) ||
      !peer_from_certs(certs, "the certificate bundle", &given, error))
    return FALSE;
  if (msvm_guardian_same_cert(given.sign, g->sign_cert) || msvm_guardian_same_cert(given.enc, g->enc_cert)) {
    msvm_guardian_peer_certs_clear(&given);
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "these are this host's own guardian certificates: it is trusted already, "
                "as '%s'", MSVM_GUARDIAN_LOCAL);
    return FALSE;
  }
  do {
    if (!ensure_private_dir(dir, error))
      break;
    if ((fd = lock_dir(g->dir, error)) < 0)
      break;
    path = peer_path(g, name);
    if (msvm_guardian_load_peer(g, name, &old, &e)) {
      if (msvm_guardian_same_cert(old.sign, given.sign) && msvm_guardian_same_cert(old.enc, given.enc)) {
        changed = FALSE;
        ok = TRUE;
        break;
      }
      if (!force) {
        g_autofree char *fp = fingerprint(old.sign);
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                    "guardian '%s' is already trusted with other certificates (signing "
                    "certificate SHA-256 %s); forget it first, or force", name, fp);
        break;
      }
    } else if (!g_error_matches(e, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE) && !force) {
      g_propagate_error(error, g_steal_pointer(&e));
      break;
    }
    text = pem_of(given.sign, given.enc);
    if (text == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot encode the certificates");
      break;
    }
    ok = write_locked(path, text, strlen(text), 0600, error);
  } while (0);
  if (ok && ret_peer != NULL)
    *ret_peer = peer_new(name, FALSE, given.sign, given.enc);
  if (ok && ret_changed != NULL)
    *ret_changed = changed;
  if (fd >= 0)
    close(fd);
  msvm_guardian_peer_certs_clear(&given);
  msvm_guardian_peer_certs_clear(&old);
  return ok;
}

static gint
peer_cmp(gconstpointer a, gconstpointer b)
{
  const MsvmGuardianPeer *pa = *(MsvmGuardianPeer *const *)a;
  const MsvmGuardianPeer *pb = *(MsvmGuardianPeer *const *)b;
  if (pa->local != pb->local)
    return pa->local ? -1 : 1;
  return strcmp(pa->name, pb->name);
}

gboolean
msvm_guardian_list(MsvmGuardian *g, GPtrArray **ret_peers, GError **error)
{
  g_autofree char *dir = g_build_filename(g->dir, TRUSTED_DIR, NULL);
  g_autoptr(GPtrArray) out =
    g_ptr_array_new_with_free_func((GDestroyNotify)msvm_guardian_peer_free);
  g_autoptr(GDir) d = NULL;
  g_autoptr(GError) e = NULL;
  const char *f;

  g_ptr_array_add(out, msvm_guardian_describe(g));
  d = g_dir_open(dir, 0, &e);
  if (d == NULL && !g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_set_error(error, MSVM_ERROR, msvm_error_to_return_code(e), "cannot read %s: %s", dir,
                e->message);
    return FALSE;
  }
  while (d != NULL && (f = g_dir_read_name(d)) != NULL) {
    g_autofree char *name = NULL;
    PeerCerts p = { 0 };
    if (!g_str_has_suffix(f, ".pem"))
      continue;
    name = g_strndup(f, strlen(f) - 4);
    if (!msvm_guardian_check_name(name, NULL))
      continue;
    if (!msvm_guardian_load_peer(g, name, &p, error))
      return FALSE;
    g_ptr_array_add(out, peer_new(name, FALSE, p.sign, p.enc));
    msvm_guardian_peer_certs_clear(&p);
  }
  g_ptr_array_sort(out, peer_cmp);
  *ret_peers = g_steal_pointer(&out);
  return TRUE;
}

gboolean
msvm_guardian_forget(MsvmGuardian *g, const char *name, GError **error)
{
  g_autofree char *path = NULL;
  g_autofree char *dir = g_build_filename(g->dir, TRUSTED_DIR, NULL);
  int fd;
  gboolean ok = TRUE;

  if (!msvm_guardian_check_name(name, error))
    return FALSE;
  path = peer_path(g, name);
  if ((fd = lock_dir(g->dir, error)) < 0)
    return FALSE;
  if (unlink(path) < 0) {
    if (errno == ENOENT)
      g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE, "no trusted guardian '%s'", name);
    else
      msvm_set_error_errno(error, errno, "cannot remove %s", path);
    ok = FALSE;
  } else {
    ok = msvm_fsync_dir(dir, error);
  }
  close(fd);
  return ok;
}
