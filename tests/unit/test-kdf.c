/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vTPM passphrase derivation (DESIGN.md section 5) and the swtpm key
 * derivations, against published vectors. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "msvm-error.h"
#include "msvm-kdf.h"
#include "msvm-state-file.h"

static const guint8 test_uuid[16] = {
  0x5f, 0x2b, 0x7a, 0x1c, 0x3d, 0x4e, 0x4f, 0x60,
  0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b,
};

static void
test_seed(guint8 seed[MSVM_KDF_SEED_SIZE])
{
  for (int i = 0; i < MSVM_KDF_SEED_SIZE; i++)
    seed[i] = (guint8)i;
}

typedef struct {
  const char *kp;
  const char *policy;
  const char *expected;
} Vector;

static const Vector vectors[] = {
  { "key-protector", "policy",
    "8e88a3b30728b41185deac01e8f503460d1bae710d666968789a7e4487a10c79" },
  { NULL, "policy", "2376323d277495c836cecb525df74336f14402295cbe0acc4962dfaf73b3d751" },
  { "key-protector", NULL,
    "898a6ccd2b8d6b008c4c44699c25f676c2ab171c1e88a622ff284c99fbf671ad" },
};

static void
test_vector(gconstpointer data)
{
  const Vector *v = data;
  guint8 seed[MSVM_KDF_SEED_SIZE];
  char out[MSVM_KDF_PASSPHRASE_LEN + 1];
  g_autoptr(GError) error = NULL;

  test_seed(seed);
  memset(out, 'x', sizeof(out));
  g_assert_true(msvm_kdf_derive_passphrase(seed, (const guint8 *)v->kp,
                                           v->kp ? strlen(v->kp) : 0,
                                           (const guint8 *)v->policy,
                                           v->policy ? strlen(v->policy) : 0, test_uuid, out,
                                           &error));
  g_assert_no_error(error);
  g_assert_cmpstr(out, ==, v->expected);
  g_assert_cmpuint(strlen(out), ==, MSVM_KDF_PASSPHRASE_LEN);
}

/* An unset half (NULL) and an empty one (length 0) are the same input; a
 * non-NULL pointer with length 0 too. */
static void
test_unset_equals_empty(void)
{
  guint8 seed[MSVM_KDF_SEED_SIZE];
  char a[MSVM_KDF_PASSPHRASE_LEN + 1], b[MSVM_KDF_PASSPHRASE_LEN + 1];

  test_seed(seed);
  g_assert_true(msvm_kdf_derive_passphrase(seed, NULL, 0, (const guint8 *)"policy", 6,
                                           test_uuid, a, NULL));
  g_assert_true(msvm_kdf_derive_passphrase(seed, (const guint8 *)"", 0,
                                           (const guint8 *)"policy", 6, test_uuid, b, NULL));
  g_assert_cmpstr(a, ==, b);
  g_assert_cmpstr(a, ==, vectors[1].expected);
}

/* The length prefixes keep the halves apart: moving bytes from one half to
 * the other changes the passphrase; so does every input. */
static void
test_domain_separation(void)
{
  guint8 seed[MSVM_KDF_SEED_SIZE];
  guint8 uuid2[16];
  char base[MSVM_KDF_PASSPHRASE_LEN + 1], other[MSVM_KDF_PASSPHRASE_LEN + 1];

  test_seed(seed);
  g_assert_true(msvm_kdf_derive_passphrase(seed, (const guint8 *)"ab", 2,
                                           (const guint8 *)"c", 1, test_uuid, base, NULL));
  g_assert_true(msvm_kdf_derive_passphrase(seed, (const guint8 *)"a", 1,
                                           (const guint8 *)"bc", 2, test_uuid, other, NULL));
  g_assert_cmpstr(base, !=, other);

  memcpy(uuid2, test_uuid, 16);
  uuid2[15] ^= 1;
  g_assert_true(msvm_kdf_derive_passphrase(seed, (const guint8 *)"ab", 2,
                                           (const guint8 *)"c", 1, uuid2, other, NULL));
  g_assert_cmpstr(base, !=, other);

  seed[0] ^= 0x80;
  g_assert_true(msvm_kdf_derive_passphrase(seed, (const guint8 *)"ab", 2,
                                           (const guint8 *)"c", 1, test_uuid, other, NULL));
  g_assert_cmpstr(base, !=, other);
}

/* Only lowercase hex, and binary halves with NUL bytes work. */
static void
test_binary_input(void)
{
  guint8 seed[MSVM_KDF_SEED_SIZE];
  const guint8 kp[] = { 0x00, 0x00, 0x00, 0x04 };
  const guint8 policy[] = { 0x00, 0xff, 0x00 };
  char out[MSVM_KDF_PASSPHRASE_LEN + 1];

  test_seed(seed);
  g_assert_true(msvm_kdf_derive_passphrase(seed, kp, sizeof(kp), policy, sizeof(policy),
                                           test_uuid, out, NULL));
  for (int i = 0; i < MSVM_KDF_PASSPHRASE_LEN; i++)
    g_assert_true(g_ascii_isxdigit(out[i]) && !g_ascii_isupper(out[i]));
}

static void
test_random_and_wipe(void)
{
  guint8 a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };
  g_autoptr(GError) error = NULL;

  g_assert_true(msvm_random_bytes(a, sizeof(a), &error));
  g_assert_no_error(error);
  g_assert_true(msvm_random_bytes(b, sizeof(b), NULL));
  g_assert_true(memcmp(a, b, sizeof(a)) != 0);
  g_assert_true(msvm_random_bytes(a, 0, NULL));
  msvm_wipe(a, sizeof(a));
  g_assert_true(memcmp(a, zero, sizeof(a)) == 0);
  msvm_wipe(NULL, 10);
}

static char *
bin2hex(const guint8 *p, gsize n)
{
  GString *s = g_string_new(NULL);
  for (gsize i = 0; i < n; i++)
    g_string_append_printf(s, "%02x", p[i]);
  return g_string_free(s, FALSE);
}

/* swtpm's key derivations, with keys computed independently (Python's
 * hashlib.pbkdf2_hmac('sha512', pw, b'swtpm', 1000, n) and sha512). */
static void
test_swtpm_kdf(void)
{
  guint8 key[32];
  g_autofree char *hex = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *pw = (const guint8 *)"correct horse\n";

  g_assert_true(msvm_state_derive_key(pw, strlen((const char *)pw), MSVM_KDF_PBKDF2, 32, key,
                                      &error));
  g_assert_no_error(error);
  hex = bin2hex(key, 32);
  g_assert_cmpstr(hex, ==, "4f9b96b90f7bc96f6ee8e918ce26c00584a0b57eba0519e72aac452eb293defd");
  g_clear_pointer(&hex, g_free);
  /* an empty passphrase is a valid swtpm passphrase */
  g_assert_true(msvm_state_derive_key((const guint8 *)"", 0, MSVM_KDF_PBKDF2, 16, key, &error));
  hex = bin2hex(key, 16);
  g_assert_cmpstr(hex, ==, "c55dfd0c4fbdffdf11d67b7016497837");
  g_assert_true(msvm_state_derive_key(pw, strlen((const char *)pw), MSVM_KDF_SHA512, 16, key,
                                      &error));
  {
    /* kdf=sha512: the first 16 bytes of SHA-512(passphrase) */
    g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA512);
    guint8 digest[64];
    gsize dlen = sizeof(digest);
    g_checksum_update(c, pw, strlen((const char *)pw));
    g_checksum_get_digest(c, digest, &dlen);
    g_assert_cmpmem(key, 16, digest, 16);
  }
  /* invalid key lengths are refused */
  g_assert_false(msvm_state_derive_key(pw, 3, MSVM_KDF_PBKDF2, 24, key, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS(vectors); i++) {
    g_autofree char *name = g_strdup_printf("/kdf/vector/%" G_GSIZE_FORMAT, i + 1);
    g_test_add_data_func(name, &vectors[i], test_vector);
  }
  g_test_add_func("/kdf/unset-equals-empty", test_unset_equals_empty);
  g_test_add_func("/kdf/domain-separation", test_domain_separation);
  g_test_add_func("/kdf/binary-input", test_binary_input);
  g_test_add_func("/kdf/random-and-wipe", test_random_and_wipe);
  g_test_add_func("/kdf/swtpm", test_swtpm_kdf);
  return g_test_run();
}
