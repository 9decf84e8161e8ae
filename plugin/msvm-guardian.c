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
 * Peers with RSA encryption certificates (RSA-OAEP key transport) are
 * accepted too.
 */
#include "config.h"

#include "msvm-guardian.h"

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

#define GUARDIAN_DIR "guardian"
#define TRUSTED_DIR "trusted"
#define SIGNING_KEY "signing.key"
#define SIGNING_CERT "signing.pem"
#define ENCRYPTION_KEY "encryption.key"
#define ENCRYPTION_CERT "encryption.pem"
#define KEY_FILE_MAX (64 * 1024)
/* Largest sealed bundle opened (a state of a few MiB at most, plus XML). */
#define SEALED_MAX (256u * 1024u * 1024u)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CMS_ContentInfo, CMS_ContentInfo_free)

struct _MsvmGuardian {
  char *dir;               /* <root>/guardian */
  X509 *sign_cert;
  EVP_PKEY *sign_key;
  X509 *enc_cert;
  EVP_PKEY *enc_key;
};

typedef struct {
  X509 *sign;
  X509 *enc;
} PeerCerts;

static void
peer_certs_clear(PeerCerts *p)
{
  X509_free(p->sign);
  X509_free(p->enc);
  p->sign = p->enc = NULL;
}

/* --- small things ------------------------------------------------------------ */

static gboolean
ossl_fail(GError **error, guint32 code, const char *what)
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

static gboolean
same_cert(X509 *a, X509 *b)
{
  return a != NULL && b != NULL && X509_cmp(a, b) == 0;
}

/* --- files ------------------------------------------------------------------ */

/* A whole file into a secret buffer, bounded. */
static gboolean
read_file(const char *path, gsize max, GBytes **ret, gboolean *ret_missing, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  gboolean too_long = FALSE, ok;
  int saved;

  if (ret_missing != NULL)
    *ret_missing = FALSE;
  if (fd < 0) {
    if (errno == ENOENT && ret_missing != NULL) {
      *ret_missing = TRUE;
      return TRUE;
    }
    return msvm_set_error_errno(error, errno, "cannot open %s", path);
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "%s is not a regular file", path);
    return FALSE;
  }
  /* key files are this user's alone */
  if (st.st_uid != geteuid() || (st.st_mode & 0077) != 0) {
    close(fd);
    g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                "%s must belong to this user and be readable by it alone", path);
    return FALSE;
  }
  ok = msvm_secret_read_fd(fd, max, ret, &too_long);
  saved = errno;
  close(fd);
  if (ok)
    return TRUE;
  if (too_long) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "%s is too large", path);
    return FALSE;
  }
  return msvm_set_error_errno(error, saved, "cannot read %s", path);
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
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0) {
    msvm_set_error_errno(error, errno, "cannot open %s", path);
    return -1;
  }
  while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
    int saved = errno;
    if (saved == EINTR)
      continue;
    close(fd);
    msvm_set_error_errno(error, saved, "cannot lock %s", path);
    return -1;
  }
  return fd;
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
    return ossl_fail(error, MSVM_RC_FAILED, "cannot encode a guardian key");
  return bio_to_bytes_write(path, b, 0600, error);
}

static gboolean
write_cert(const char *path, X509 *x, GError **error)
{
  g_autoptr(BIO) b = BIO_new(BIO_s_mem());

  if (b == NULL || PEM_write_bio_X509(b, x) != 1)
    return ossl_fail(error, MSVM_RC_FAILED, "cannot encode a guardian certificate");
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
    ossl_fail(error, MSVM_RC_FAILED, path);
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
    return ossl_fail(error, MSVM_RC_INVALID_PARAMETER, "cannot read the certificates");
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
    return ossl_fail(error, MSVM_RC_FAILED, "cannot generate the guardian's keys");
  host = g_strdup(g_get_host_name());
  who = geteuid() == 0 ? g_strdup(host) : g_strdup_printf("uid %u on %s", (guint)geteuid(), host);
  cn_s = g_strdup_printf("msvm-security guardian of %s (signing)", who);
  cn_e = g_strdup_printf("msvm-security guardian of %s (encryption)", who);
  sc = make_cert(sk, cn_s, "critical,digitalSignature");
  ec = make_cert(ek, cn_e, "critical,keyAgreement");
  if (sc == NULL || ec == NULL)
    return ossl_fail(error, MSVM_RC_FAILED, "cannot make the guardian's certificates");
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
    return ossl_fail(error, MSVM_RC_FAILED,
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

/* Sort a peer's certificates out of @certs: exactly two, self-signed, one
 * for signatures and one for key agreement or key transport. */
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
    int bits = pk ? EVP_PKEY_get_bits(pk) : 0;

    if (pk == NULL || X509_verify(x, pk) != 1) {
      peer_certs_clear(&p);
      ERR_clear_error();
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "%s: certificate %u is not self-signed by its own key", what, i + 1);
      return FALSE;
    }
    if ((EVP_PKEY_is_a(pk, "EC") && bits < 256) || (EVP_PKEY_is_a(pk, "RSA") && bits < 3072) ||
        (!EVP_PKEY_is_a(pk, "EC") && !EVP_PKEY_is_a(pk, "RSA"))) {
      peer_certs_clear(&p);
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "%s: certificate %u has a key too weak or of an unknown type (EC P-256 "
                  "or RSA-3072 and up)", what, i + 1);
      return FALSE;
    }
    if (ku != UINT32_MAX && (ku & KU_DIGITAL_SIGNATURE) && p.sign == NULL &&
        !(ku & (KU_KEY_AGREEMENT | KU_KEY_ENCIPHERMENT))) {
      p.sign = X509_dup(x);
    } else if (ku != UINT32_MAX && (ku & (KU_KEY_AGREEMENT | KU_KEY_ENCIPHERMENT)) &&
               p.enc == NULL && !(ku & KU_DIGITAL_SIGNATURE)) {
      if ((ku & KU_KEY_AGREEMENT) && !EVP_PKEY_is_a(pk, "EC")) {
        peer_certs_clear(&p);
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "%s: certificate %u is for key agreement but its key is not EC", what,
                    i + 1);
        return FALSE;
      }
      p.enc = X509_dup(x);
    }
  }
  ERR_clear_error();
  if (p.sign == NULL || p.enc == NULL) {
    peer_certs_clear(&p);
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s: need one certificate whose key usage is digitalSignature alone and one "
                "whose key usage is keyAgreement or keyEncipherment", what);
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
static gboolean
load_peer(const MsvmGuardian *g, const char *name, PeerCerts *ret, GError **error)
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
  if (same_cert(given.sign, g->sign_cert) || same_cert(given.enc, g->enc_cert)) {
    peer_certs_clear(&given);
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
    if (load_peer(g, name, &old, &e)) {
      if (same_cert(old.sign, given.sign) && same_cert(old.enc, given.enc)) {
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
  peer_certs_clear(&given);
  peer_certs_clear(&old);
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
    if (!load_peer(g, name, &p, error))
      return FALSE;
    g_ptr_array_add(out, peer_new(name, FALSE, p.sign, p.enc));
    peer_certs_clear(&p);
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
  if (!load_peer(g, recipient, &peer, error))
    return FALSE;
  do {
    in = BIO_new_mem_buf(p, (int)len);
    sig = in ? CMS_sign(g->sign_cert, g->sign_key, NULL, in,
                        CMS_BINARY | CMS_NOCERTS | CMS_NOSMIMECAP)
             : NULL;
    if (sig == NULL) {
      ossl_fail(error, MSVM_RC_FAILED, "cannot sign the bundle");
      break;
    }
    sig_der = cms_to_der(sig, TRUE);
    if (sig_der == NULL) {
      ossl_fail(error, MSVM_RC_FAILED, "cannot encode the signed bundle");
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
        ossl_fail(error, MSVM_RC_FAILED, "cannot encrypt the bundle");
        break;
      }
      ri = CMS_add1_recipient_cert(env, peer.enc, CMS_KEY_PARAM);
      if (ri == NULL) {
        ossl_fail(error, MSVM_RC_FAILED, "cannot encrypt the bundle for this guardian");
        break;
      }
      /* ECDH: X9.63 KDF with SHA-256 rather than OpenSSL's default SHA-1 */
      pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
      if (pctx != NULL && CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE)
        (void)EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256());
      if (pctx != NULL && CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS)
        (void)EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING);
      if (CMS_final(env, in2, NULL, CMS_BINARY) != 1) {
        ossl_fail(error, MSVM_RC_FAILED, "cannot encrypt the bundle");
        break;
      }
    }
    out = cms_to_der(env, FALSE);
    if (out == NULL) {
      ossl_fail(error, MSVM_RC_FAILED, "cannot encode the encrypted bundle");
      break;
    }
    ok = TRUE;
  } while (0);
  cms_wipe_content(sig);
  sk_X509_free(recips);
  peer_certs_clear(&peer);
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
    case CMS_RECIPINFO_TRANS: {
      X509_NAME *issuer = NULL;
      ASN1_INTEGER *serial = NULL;
      if (CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0 &&
          CMS_RecipientInfo_ktri_get0_signer_id(ri, NULL, &issuer, &serial) == 1 &&
          rid_exact(issuer, serial, cert))
        return TRUE;
      break;
    }
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
    case CMS_RECIPINFO_TRANS:
      if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) != 1 || alg == NULL ||
          OBJ_obj2nid(alg->algorithm) != NID_rsaesOaep)
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
    if (peer->local || !load_peer(g, peer->name, &c, NULL))
      continue;
    hit = addressed_to(env, c.enc);
    peer_certs_clear(&c);
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
 * KeyAgreeRecipientInfo's (3, RFC 5652) or KeyTransRecipientInfo's (0 or
 * 2), the unused bits and the point form of the ephemeral key, and the
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
    } else if (cls == V_ASN1_UNIVERSAL && tag == V_ASN1_SEQUENCE) { /* ktri */
      const unsigned char *q = ri;
      if (!der_enter(&q, ri + rl, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, &l) || l != 1 ||
          (q[0] != 0 && q[0] != 2))
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
    return ossl_fail(error, MSVM_RC_OUT_OF_MEMORY, "cannot decrypt the bundle");
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
      if (peer->local || !load_peer(g, peer->name, &c, NULL))
        continue;
      sk_X509_push(signers_trusted, c.sign);
      c.sign = NULL;
      peer_certs_clear(&c);
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
        if (same_cert(sk_X509_value(signers, i), sk_X509_value(signers_trusted, k))) {
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
