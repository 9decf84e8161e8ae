/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-bundle.c: guardians and the protector bundle codec (DESIGN.md
 * section 10) on throwaway store roots: guardian creation, trust rules and
 * names, the round trip, every single-byte change of a bundle refused (and
 * nothing changed), a bundle for another guardian and one from an untrusted
 * signer refused, every truncation and the empty file refused.
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "msvm-bundle.h"
#include "msvm-error.h"
#include "msvm-guardian.h"
#include "msvm-uuid.h"

static char *
make_root(const char *tag)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmpl = g_strdup_printf("msvm-bundle-%s-XXXXXX", tag);
  char *dir = g_dir_make_tmp(tmpl, &error);
  g_assert_no_error(error);
  return dir;
}

static void
rm_rf(const char *path)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);
  g_assert_cmpint(system(cmd), ==, 0);
}

/* names, modes and contents of a tree: what "nothing changed" compares */
static char *
tree_of(const char *root)
{
  g_autofree char *cmd = g_strdup_printf(
    "cd '%s' && find . -printf '%%p %%m %%s\\n' | sort && find . -type f -exec sha256sum {} + | sort",
    root);
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  {
    const char *argv[] = { "sh", "-c", cmd, NULL };
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                 &status, &error);
    g_assert_no_error(error);
  }
  return g_steal_pointer(&out);
}

static MsvmGuardian *
open_guardian(const char *root)
{
  g_autoptr(GError) error = NULL;
  MsvmGuardian *g = msvm_guardian_open(root, &error);
  g_assert_no_error(error);
  g_assert_nonnull(g);
  return g;
}

/* @a trusts @b under @name */
static void
trust(MsvmGuardian *a, MsvmGuardian *b, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pem = msvm_guardian_certificates_pem(b);
  gboolean changed = FALSE;

  g_assert_true(msvm_guardian_trust(a, name, (const guint8 *)pem, strlen(pem), FALSE, &changed,
                                    NULL, &error));
  g_assert_no_error(error);
}

static const guint8 test_uuid[16] = { 0x5f, 0x2b, 0x7a, 0x1c, 0x3d, 0x4e, 0x4f, 0x60,
                                      0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b };

/* A protector with @n generations (and a state when @with_state). */
static MsvmBundle *
sample_bundle(guint n, gboolean with_state)
{
  g_autoptr(MsvmStore) store = msvm_store_new(NULL, test_uuid);
  g_autoptr(GPtrArray) numbers = g_ptr_array_new();
  g_autoptr(GError) error = NULL;
  MsvmBundle *b = msvm_bundle_new(test_uuid);

  for (guint i = 0; i < 32; i++)
    store->seed[i] = (guint8)i;
  store->has_seed = TRUE;
  for (guint i = 0; i < n; i++) {
    g_autofree char *kp = g_strdup_printf("key-protector-%u", i);
    MsvmGeneration *g = msvm_store_add_generation(store, (const guint8 *)kp, strlen(kp), i != 1,
                                                  (const guint8 *)"policy", 6, i != 0);
    g_ptr_array_add(numbers, GUINT_TO_POINTER(g->number));
  }
  store->current = n;
  store->state = n;
  store->last_known_good = n > 1 ? n - 1 : 0;
  if (with_state)
    store->stash = g_strdup("<graphics type='vnc' passwd='x'/>");
  g_assert_true(msvm_bundle_set_protector(b, store, numbers, &error));
  g_assert_no_error(error);
  b->exported = 1700000000;
  b->source_host = g_strdup("host-a");
  if (with_state) {
    static const char permall_bytes[] = "\0\2\0\1\0\12permall";
    g_autoptr(GBytes) permall = g_bytes_new(permall_bytes, sizeof(permall_bytes) - 1);
    g_autoptr(GBytes) vol = g_bytes_new("volatile", 8);
    const char *xml = "<domain type='kvm'><name>vm</name></domain>";
    b->settings = g_strdup("<INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\"/>");
    b->definition = g_bytes_new(xml, strlen(xml));
    msvm_bundle_add_state_file(b, MSVM_BUNDLE_PERMALL, 0600, permall);
    msvm_bundle_add_state_file(b, MSVM_BUNDLE_VOLATILE, 0640, vol);
  }
  return b;
}

static void
assert_same_bundle(const MsvmBundle *x, const MsvmBundle *y)
{
  const MsvmStore *a = x->store, *b = y->store;

  g_assert_cmpmem(a->uuid, 16, b->uuid, 16);
  g_assert_cmpmem(a->seed, 32, b->seed, 32);
  g_assert_cmpuint(a->current, ==, b->current);
  g_assert_cmpuint(a->state, ==, b->state);
  g_assert_cmpuint(a->last_known_good, ==, b->last_known_good);
  g_assert_cmpuint(a->next_generation, ==, b->next_generation);
  g_assert_cmpuint(a->kdf_version, ==, b->kdf_version);
  g_assert_cmpstr(a->stash, ==, b->stash);
  g_assert_cmpuint(a->generations->len, ==, b->generations->len);
  for (guint i = 0; i < a->generations->len; i++) {
    const MsvmGeneration *ga = g_ptr_array_index(a->generations, i);
    const MsvmGeneration *gb = g_ptr_array_index(b->generations, i);
    g_assert_cmpuint(ga->number, ==, gb->number);
    g_assert_cmpstr(ga->secret_uuid, ==, gb->secret_uuid);
    g_assert_cmpint(ga->has_key_protector, ==, gb->has_key_protector);
    g_assert_cmpint(ga->has_policy, ==, gb->has_policy);
    if (ga->has_key_protector)
      g_assert_cmpmem(ga->key_protector, ga->key_protector_len, gb->key_protector,
                      gb->key_protector_len);
    if (ga->has_policy)
      g_assert_cmpmem(ga->policy, ga->policy_len, gb->policy, gb->policy_len);
    g_assert_cmpint(ga->created, ==, gb->created);
  }
  g_assert_cmpstr(x->settings, ==, y->settings);
  g_assert_cmpint(x->exported, ==, y->exported);
  g_assert_cmpstr(x->source_host, ==, y->source_host);
  g_assert_true((x->definition == NULL) == (y->definition == NULL));
  if (x->definition != NULL)
    g_assert_true(g_bytes_equal(x->definition, y->definition));
  g_assert_true((x->state_files == NULL) == (y->state_files == NULL));
  if (x->state_files != NULL) {
    g_assert_cmpuint(x->state_files->len, ==, y->state_files->len);
    for (guint i = 0; i < x->state_files->len; i++) {
      const MsvmBundleFile *fa = g_ptr_array_index(x->state_files, i);
      const MsvmBundleFile *fb = g_ptr_array_index(y->state_files, i);
      g_assert_cmpstr(fa->name, ==, fb->name);
      g_assert_cmpuint(fa->mode, ==, fb->mode);
      g_assert_true(g_bytes_equal(fa->data, fb->data));
    }
  }
}

/* --- guardians -------------------------------------------------------------- */

static void
test_guardian_create(void)
{
  g_autofree char *root = make_root("create");
  g_autofree char *gdir = g_build_filename(root, "guardian", NULL);
  g_autoptr(MsvmGuardian) g = open_guardian(root);
  g_autoptr(MsvmGuardian) again = NULL;
  g_autofree char *pem = msvm_guardian_certificates_pem(g);
  g_autofree char *pem2 = NULL;
  const char *files[] = { "signing.key", "encryption.key", "signing.pem", "encryption.pem" };
  struct stat st;

  g_assert_cmpint(stat(gdir, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0700);
  for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *p = g_build_filename(gdir, files[i], NULL);
    g_assert_cmpint(stat(p, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
  }
  g_assert_nonnull(strstr(pem, "BEGIN CERTIFICATE"));
  g_assert_nonnull(strstr(strstr(pem, "END CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
  /* the second open loads the same guardian */
  again = open_guardian(root);
  pem2 = msvm_guardian_certificates_pem(again);
  g_assert_cmpstr(pem, ==, pem2);
  /* a key file others can read is refused */
  {
    g_autofree char *p = g_build_filename(gdir, "signing.key", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(MsvmGuardian) bad = NULL;
    g_assert_cmpint(chmod(p, 0644), ==, 0);
    bad = msvm_guardian_open(root, &error);
    g_assert_null(bad);
    g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
    g_assert_cmpint(chmod(p, 0600), ==, 0);
  }
  g_assert_cmpint(ERR_peek_error(), ==, 0);
  rm_rf(root);
}

static void
test_guardian_names(void)
{
  const char *bad[] = { "", "a/b", "..", ".hidden", "-x", "a b", "local", "x\n", "é",
                        "0123456789012345678901234567890123456789012345678901234567890123456789" };
  const char *good[] = { "host-b", "B", "nova.compute-1_x", "0" };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_false(msvm_guardian_check_name(bad[i], &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(good); i++)
    g_assert_true(msvm_guardian_check_name(good[i], NULL));
}

static void
test_guardian_trust(void)
{
  g_autofree char *ra = make_root("trust-a");
  g_autofree char *rb = make_root("trust-b");
  g_autofree char *rc = make_root("trust-c");
  g_autoptr(MsvmGuardian) a = open_guardian(ra);
  g_autoptr(MsvmGuardian) b = open_guardian(rb);
  g_autoptr(MsvmGuardian) c = open_guardian(rc);
  g_autofree char *pb = msvm_guardian_certificates_pem(b);
  g_autofree char *pc = msvm_guardian_certificates_pem(c);
  g_autofree char *pa = msvm_guardian_certificates_pem(a);
  g_autoptr(GPtrArray) peers = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed = FALSE;

  g_assert_true(msvm_guardian_trust(a, "host-b", (const guint8 *)pb, strlen(pb), FALSE,
                                    &changed, NULL, &error));
  g_assert_true(changed);
  /* the same bundle again: 0, nothing changed */
  g_assert_true(msvm_guardian_trust(a, "host-b", (const guint8 *)pb, strlen(pb), FALSE,
                                    &changed, NULL, &error));
  g_assert_false(changed);
  /* the same name with other certificates: 32775, unless forced */
  g_assert_false(msvm_guardian_trust(a, "host-b", (const guint8 *)pc, strlen(pc), FALSE,
                                     &changed, NULL, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE);
  g_clear_error(&error);
  g_assert_true(msvm_guardian_trust(a, "host-b", (const guint8 *)pc, strlen(pc), TRUE,
                                    &changed, NULL, &error));
  g_assert_true(changed);
  g_assert_true(msvm_guardian_trust(a, "host-b", (const guint8 *)pb, strlen(pb), TRUE,
                                    &changed, NULL, &error));
  /* its own certificates, one certificate, garbage, a bad name: 32773 */
  g_assert_false(msvm_guardian_trust(a, "self", (const guint8 *)pa, strlen(pa), FALSE, NULL,
                                     NULL, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  g_clear_error(&error);
  {
    char *end = strstr(pb, "-----END CERTIFICATE-----");
    gsize one = (gsize)(end - pb) + strlen("-----END CERTIFICATE-----\n");
    g_assert_false(msvm_guardian_trust(a, "half", (const guint8 *)pb, one, FALSE, NULL, NULL,
                                       &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_clear_error(&error);
  }
  g_assert_false(msvm_guardian_trust(a, "junk", (const guint8 *)"junk", 4, FALSE, NULL, NULL,
                                     &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  g_clear_error(&error);
  g_assert_false(msvm_guardian_trust(a, "../x", (const guint8 *)pb, strlen(pb), FALSE, NULL,
                                     NULL, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  g_clear_error(&error);
  /* certificates made elsewhere: two self-signed ones with the right key
   * usages but not EC P-256 (RSA, P-384), and P-256 ones with other key
   * usages: 32773 */
  {
#define KU(x) " -addext keyUsage=critical," x
    const char *cases[][2] = {
      { "-newkey rsa:2048" KU("digitalSignature"), "-newkey rsa:2048" KU("keyAgreement") },
      { "-newkey ec -pkeyopt ec_paramgen_curve:P-384" KU("digitalSignature"),
        "-newkey ec -pkeyopt ec_paramgen_curve:P-384" KU("keyAgreement") },
      { "-newkey ec -pkeyopt ec_paramgen_curve:P-256" KU("digitalSignature,keyAgreement"),
        "-newkey ec -pkeyopt ec_paramgen_curve:P-256" KU("keyAgreement") },
      { "-newkey ec -pkeyopt ec_paramgen_curve:P-256" KU("digitalSignature"),
        "-newkey ec -pkeyopt ec_paramgen_curve:P-256" KU("keyEncipherment") },
      /* the last one is right: accepted (so the others fail for their reason) */
      { "-newkey ec -pkeyopt ec_paramgen_curve:P-256" KU("digitalSignature"),
        "-newkey ec -pkeyopt ec_paramgen_curve:P-256" KU("keyAgreement") },
    };
#undef KU
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
      g_autofree char *dir = make_root("foreign");
      g_autofree char *cmd = g_strdup_printf(
        "cd '%s' && "
        "openssl req -x509 %s -nodes -keyout k1 -subj /CN=s -days 2 -out c 2>/dev/null && "
        "openssl req -x509 %s -nodes -keyout k2 -subj /CN=e -days 2 -out c2 2>/dev/null && "
        "cat c2 >> c", dir, cases[i][0], cases[i][1]);
      g_autofree char *path = g_build_filename(dir, "c", NULL);
      g_autofree char *pem = NULL;
      gsize len = 0;
      g_assert_cmpint(system(cmd), ==, 0);
      g_assert_true(g_file_get_contents(path, &pem, &len, NULL));
      if (i + 1 == G_N_ELEMENTS(cases)) {
        g_assert_true(msvm_guardian_trust(a, "foreign", (const guint8 *)pem, len, FALSE, NULL,
                                          NULL, &error));
        g_assert_no_error(error);
        g_assert_true(msvm_guardian_forget(a, "foreign", &error));
      } else {
        g_assert_false(msvm_guardian_trust(a, "foreign", (const guint8 *)pem, len, FALSE, NULL,
                                           NULL, &error));
        g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
        g_clear_error(&error);
      }
      rm_rf(dir);
    }
  }
  /* the list: this guardian first, then host-b */
  g_assert_true(msvm_guardian_list(a, &peers, &error));
  g_assert_cmpuint(peers->len, ==, 2);
  g_assert_true(((MsvmGuardianPeer *)g_ptr_array_index(peers, 0))->local);
  g_assert_cmpstr(((MsvmGuardianPeer *)g_ptr_array_index(peers, 1))->name, ==, "host-b");
  g_assert_cmpuint(strlen(((MsvmGuardianPeer *)g_ptr_array_index(peers, 1))->signing_fingerprint),
                   ==, 95);
  g_assert_true(msvm_guardian_forget(a, "host-b", &error));
  g_assert_false(msvm_guardian_forget(a, "host-b", &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_clear_error(&error);
  g_assert_cmpint(ERR_peek_error(), ==, 0);
  rm_rf(ra);
  rm_rf(rb);
  rm_rf(rc);
}

/* --- the codec -------------------------------------------------------------------- */

typedef struct {
  char *ra, *rb, *rc;
  MsvmGuardian *a, *b, *c;
} Hosts;

static void
hosts_setup(Hosts *h)
{
  h->ra = make_root("a");
  h->rb = make_root("b");
  h->rc = make_root("c");
  h->a = open_guardian(h->ra);
  h->b = open_guardian(h->rb);
  h->c = open_guardian(h->rc);
  trust(h->a, h->b, "host-b");
  trust(h->b, h->a, "host-a");
  trust(h->a, h->c, "host-c");
  trust(h->c, h->b, "host-b");
}

static void
hosts_teardown(Hosts *h)
{
  msvm_guardian_free(h->a);
  msvm_guardian_free(h->b);
  msvm_guardian_free(h->c);
  rm_rf(h->ra);
  rm_rf(h->rb);
  rm_rf(h->rc);
  g_free(h->ra);
  g_free(h->rb);
  g_free(h->rc);
}

static GBytes *
seal(MsvmGuardian *from, const char *to, const MsvmBundle *bundle)
{
  g_autoptr(GError) error = NULL;
  GBytes *sealed = NULL;

  g_assert_true(msvm_bundle_seal(bundle, from, to, &sealed, &error));
  g_assert_no_error(error);
  return sealed;
}

static void
test_round_trip(void)
{
  Hosts h;
  gboolean with_state[] = { FALSE, TRUE };

  hosts_setup(&h);
  for (gsize i = 0; i < G_N_ELEMENTS(with_state); i++) {
    g_autoptr(MsvmBundle) in = sample_bundle(3, with_state[i]);
    g_autoptr(GBytes) sealed = seal(h.a, "host-b", in);
    g_autoptr(MsvmBundle) out = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;
    const guint8 *p = g_bytes_get_data(sealed, &len);

    /* nothing of the seed or a half in the clear */
    g_assert_null(memmem(p, len, "key-protector-0", 15));
    g_assert_null(memmem(p, len, "policy", 6));
    g_assert_null(memmem(p, len, "\0\1\2\3\4\5\6\7", 8));
    g_assert_true(msvm_bundle_open(h.b, p, len, &out, &error));
    g_assert_no_error(error);
    assert_same_bundle(in, out);
    g_assert_cmpstr(out->signer, ==, "host-a");
  }
  /* a backup: for this host's own guardian, opened by it */
  {
    g_autoptr(MsvmBundle) in = sample_bundle(1, TRUE);
    g_autoptr(GBytes) sealed = seal(h.a, MSVM_GUARDIAN_LOCAL, in);
    g_autoptr(MsvmBundle) out = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;
    const guint8 *p = g_bytes_get_data(sealed, &len);
    g_assert_true(msvm_bundle_open(h.a, p, len, &out, &error));
    g_assert_no_error(error);
    assert_same_bundle(in, out);
    g_assert_cmpstr(out->signer, ==, MSVM_GUARDIAN_LOCAL);
  }
  /* an unknown recipient */
  {
    g_autoptr(MsvmBundle) in = sample_bundle(1, FALSE);
    g_autoptr(GError) error = NULL;
    GBytes *sealed = NULL;
    g_assert_false(msvm_bundle_seal(in, h.a, "nobody", &sealed, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  }
  g_assert_cmpint(ERR_peek_error(), ==, 0);
  hosts_teardown(&h);
}

static void
assert_refused(MsvmGuardian *g, const guint8 *p, gsize len, gsize pos)
{
  g_autoptr(GError) error = NULL;
  MsvmBundle *out = NULL;

  if (msvm_bundle_open(g, p, len, &out, &error)) {
    msvm_bundle_free(out);
    g_error("a bundle changed at byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " was accepted",
            pos, len);
  }
  g_assert_null(out);
  g_assert_nonnull(error);
  if (!g_error_matches(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER) &&
      !g_error_matches(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED))
    g_error("byte %" G_GSIZE_FORMAT ": refused with %d (%s), not 32773 or 32769", pos,
            error->code, error->message);
  g_assert_cmpint(ERR_peek_error(), ==, 0);
}

/* Where the ciphertext starts: after the [0] tag and length of
 * encryptedContent, found as the first 830-odd-byte primitive [0]... simply:
 * the AES-GCM parameters end with the ICV length INTEGER 02 01 10, then the
 * content's [0] IMPLICIT OCTET STRING header. */
static gsize
header_len(const guint8 *p, gsize len)
{
  for (gsize i = 0; i + 4 < len; i++) {
    if (p[i] == 0x02 && p[i + 1] == 0x01 && p[i + 2] == 0x10 && p[i + 3] == 0x80)
      return i + 3 + 4; /* 80 82 HH LL */
  }
  g_assert_not_reached();
  return 0;
}

static void
test_every_byte(void)
{
  Hosts h;
  g_autoptr(MsvmBundle) in = NULL;
  g_autoptr(GBytes) sealed = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  const guint8 *p;
  gsize len = 0;
  guint altered = 0, denied = 0;
  const guint8 flips[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff, 0x05 };
  gboolean exhaustive = g_strcmp0(g_getenv("MSVM_TEST_BUNDLE_EXHAUSTIVE"), "1") == 0;

  hosts_setup(&h);
  in = sample_bundle(1, FALSE);
  sealed = seal(h.a, "host-b", in);
  p = g_bytes_get_data(sealed, &len);
  g_test_message("the bundle is %" G_GSIZE_FORMAT " bytes", len);
  if (g_getenv("MSVM_TEST_BUNDLE_DUMP") != NULL)
    g_assert_true(g_file_set_contents(g_getenv("MSVM_TEST_BUNDLE_DUMP"), (const char *)p,
                                      (gssize)len, NULL));
  before = tree_of(h.rb);
  /* At every byte: each single-bit flip, the complement, and xor 05 (the
   * change that turns ECDH into cofactor ECDH).  MSVM_TEST_BUNDLE_EXHAUSTIVE=1:
   * every value at each byte of the envelope's header (all that precedes
   * the ciphertext, which no authentication covers) and of its GCM tag (the
   * last 16 bytes); about 95000 openings, minutes. */
  for (gsize pos = 0; pos < len; pos++) {
    gboolean all = exhaustive && (pos < header_len(p, len) || pos >= len - 16);
    for (guint f = 0; f < (all ? 255u : G_N_ELEMENTS(flips)); f++) {
      g_autofree guint8 *copy = g_memdup2(p, len);
      g_autoptr(GError) error = NULL;
      MsvmBundle *out = NULL;
      copy[pos] ^= all ? (guint8)(f + 1) : flips[f];
      assert_refused(h.b, copy, len, pos);
      (void)msvm_bundle_open(h.b, copy, len, &out, &error);
      if (error != NULL && error->code == MSVM_RC_ACCESS_DENIED)
        denied++;
      else
        altered++;
    }
  }
  g_test_message("%u changes refused as altered (32773), %u as not addressed to this "
                 "guardian (32769)", altered, denied);
  g_assert_cmpuint(altered, >, denied);
  after = tree_of(h.rb);
  g_assert_cmpstr(before, ==, after);
  /* and the original still opens */
  {
    g_autoptr(MsvmBundle) out = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(msvm_bundle_open(h.b, p, len, &out, &error));
    g_assert_no_error(error);
  }
  hosts_teardown(&h);
}

static void
test_truncated(void)
{
  Hosts h;
  g_autoptr(MsvmBundle) in = NULL;
  g_autoptr(GBytes) sealed = NULL;
  const guint8 *p;
  gsize len = 0;

  hosts_setup(&h);
  in = sample_bundle(2, TRUE);
  sealed = seal(h.a, "host-b", in);
  p = g_bytes_get_data(sealed, &len);
  for (gsize n = 0; n < len; n++) {
    g_autoptr(GError) error = NULL;
    MsvmBundle *out = NULL;
    g_autofree guint8 *copy = g_memdup2(p, len);
    g_assert_false(msvm_bundle_open(h.b, copy, n, &out, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  }
  /* trailing bytes are an alteration too */
  {
    g_autofree guint8 *longer = g_malloc0(len + 1);
    g_autoptr(GError) error = NULL;
    MsvmBundle *out = NULL;
    memcpy(longer, p, len);
    g_assert_false(msvm_bundle_open(h.b, longer, len + 1, &out, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  }
  g_assert_cmpint(ERR_peek_error(), ==, 0);
  hosts_teardown(&h);
}

static void
test_other_guardian(void)
{
  Hosts h;
  g_autoptr(MsvmBundle) in = NULL;
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  MsvmBundle *out = NULL;
  const guint8 *p;
  gsize len = 0;

  hosts_setup(&h);
  in = sample_bundle(1, FALSE);
  /* A exports for C; B (which trusts A) must not open it */
  sealed = seal(h.a, "host-c", in);
  p = g_bytes_get_data(sealed, &len);
  before = tree_of(h.rb);
  g_assert_false(msvm_bundle_open(h.b, p, len, &out, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  g_assert_null(out);
  after = tree_of(h.rb);
  g_assert_cmpstr(before, ==, after);
  /* A's backup (for itself) does not open at B either */
  g_clear_pointer(&sealed, g_bytes_unref);
  g_clear_error(&error);
  sealed = seal(h.a, MSVM_GUARDIAN_LOCAL, in);
  p = g_bytes_get_data(sealed, &len);
  g_assert_false(msvm_bundle_open(h.b, p, len, &out, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  hosts_teardown(&h);
}

static void
test_untrusted_signer(void)
{
  Hosts h;
  g_autoptr(MsvmBundle) in = NULL;
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GError) error = NULL;
  MsvmBundle *out = NULL;
  const guint8 *p;
  gsize len = 0;

  hosts_setup(&h);
  in = sample_bundle(1, FALSE);
  /* C trusts B and encrypts for it, but B does not trust C */
  sealed = seal(h.c, "host-b", in);
  p = g_bytes_get_data(sealed, &len);
  g_assert_false(msvm_bundle_open(h.b, p, len, &out, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  g_assert_nonnull(strstr(error->message, "does not trust"));
  g_clear_error(&error);
  /* once B forgets A, A's bundles are refused the same way */
  g_clear_pointer(&sealed, g_bytes_unref);
  sealed = seal(h.a, "host-b", in);
  p = g_bytes_get_data(sealed, &len);
  g_assert_true(msvm_guardian_forget(h.b, "host-a", &error));
  g_assert_false(msvm_bundle_open(h.b, p, len, &out, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  g_assert_cmpint(ERR_peek_error(), ==, 0);
  hosts_teardown(&h);
}

/* MSVM_TEST_PAYLOAD_DUMP=DIR: the payloads of the sample bundles as files
 * (how tests/fuzz/bundle-corpus was made). */
static void
dump_payloads(void)
{
  const char *dir = g_getenv("MSVM_TEST_PAYLOAD_DUMP");
  const struct { guint n; gboolean state; const char *name; } samples[] = {
    { 1, FALSE, "one-generation" }, { 3, FALSE, "three-generations" },
    { 2, TRUE, "with-state" },
  };

  if (dir == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS(samples); i++) {
    g_autoptr(MsvmBundle) b = sample_bundle(samples[i].n, samples[i].state);
    g_autoptr(GBytes) p = msvm_bundle_serialize(b);
    g_autofree char *path = g_build_filename(dir, samples[i].name, NULL);
    gsize len = 0;
    const char *d = g_bytes_get_data(p, &len);
    g_assert_true(g_file_set_contents(path, d, (gssize)len, NULL));
  }
}

static void
test_payload_invalid(void)
{
  g_autoptr(MsvmBundle) in = sample_bundle(2, FALSE);
  g_autoptr(GBytes) payload = msvm_bundle_serialize(in);

  dump_payloads();
  g_autoptr(MsvmBundle) out = NULL;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  const guint8 *p = g_bytes_get_data(payload, &len);

  g_assert_true(msvm_bundle_parse(payload, &out, &error));
  g_assert_no_error(error);
  assert_same_bundle(in, out);
  /* random bytes, an empty payload, another GVariant: 32773 */
  {
    g_autoptr(GBytes) junk = g_bytes_new("\xde\xad\xbe\xef", 4);
    MsvmBundle *x = NULL;
    g_assert_false(msvm_bundle_parse(junk, &x, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_clear_error(&error);
    g_assert_false(msvm_bundle_parse(NULL, &x, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_clear_error(&error);
  }
  /* every truncation of the payload */
  for (gsize n = 0; n < len; n++) {
    g_autoptr(GBytes) cut = g_bytes_new(p, n);
    MsvmBundle *x = NULL;
    if (msvm_bundle_parse(cut, &x, &error)) {
      msvm_bundle_free(x);
      g_error("a payload cut to %" G_GSIZE_FORMAT " bytes was accepted", n);
    }
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_clear_error(&error);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/bundle/guardian-create", test_guardian_create);
  g_test_add_func("/bundle/guardian-names", test_guardian_names);
  g_test_add_func("/bundle/guardian-trust", test_guardian_trust);
  g_test_add_func("/bundle/round-trip", test_round_trip);
  g_test_add_func("/bundle/every-byte", test_every_byte);
  g_test_add_func("/bundle/truncated", test_truncated);
  g_test_add_func("/bundle/other-guardian", test_other_guardian);
  g_test_add_func("/bundle/untrusted-signer", test_untrusted_signer);
  g_test_add_func("/bundle/payload-invalid", test_payload_invalid);
  return g_test_run();
}
