/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-bundle.c: the protector bundle's payload (msvm-bundle.h).
 *
 * The payload is a GVariant of type a{sv} in normal form:
 *
 *   format            u       MSVM_BUNDLE_FORMAT_VERSION
 *   vm-uuid           s       the domain UUID
 *   kdf-version       u       derivation version (DESIGN.md section 5)
 *   seed              ay      32 bytes
 *   next-generation   u
 *   current           u       generation numbers (0: none / plaintext)
 *   state             u
 *   last-known-good   u
 *   last-known-good-from-start b
 *   generations       a(usmaymayx)  number, secret UUID, key-protector half,
 *                             policy half (nothing: unset), created (unix s)
 *   stash             ay      (optional) the devices shielding removed
 *   settings          s       (optional) the recorded settings, CIM-XML
 *   definition        ay      (optional) the persistent definition
 *   state-files       a(suay) (optional) name, mode, bytes on disk
 *   exported          x       unix seconds
 *   source-host       s
 *
 * Unknown keys are refused (a newer format says so in `format`).
 */
#include "config.h"

#include "msvm-bundle.h"

#include <string.h>

#include "msvm-error.h"
#include "msvm-kdf.h"
#include "msvm-secret.h"
#include "msvm-uuid.h"

#define GEN_TYPE "(usmaymayx)"
#define FILE_TYPE "(suay)"

void
msvm_bundle_file_free(MsvmBundleFile *f)
{
  if (f == NULL)
    return;
  g_free(f->name);
  if (f->data != NULL)
    g_bytes_unref(f->data);
  g_free(f);
}

MsvmBundle *
msvm_bundle_new(const guint8 uuid[16])
{
  MsvmBundle *b = g_new0(MsvmBundle, 1);

  b->store = msvm_store_new(NULL, uuid);
  return b;
}

void
msvm_bundle_free(MsvmBundle *b)
{
  if (b == NULL)
    return;
  msvm_store_free(b->store);
  g_free(b->settings);
  if (b->definition != NULL)
    g_bytes_unref(b->definition);
  if (b->state_files != NULL)
    g_ptr_array_unref(b->state_files);
  g_free(b->source_host);
  g_free(b->signer);
  g_free(b);
}

static guint8 *
dup_secret(const guint8 *data, gsize len)
{
  return g_memdup2(data != NULL ? data : (const guint8 *)"", len ? len : 1);
}

gboolean
msvm_bundle_set_protector(MsvmBundle *b, const MsvmStore *store, GPtrArray *numbers,
                          GError **error)
{
  MsvmStore *out = b->store;

  if (!store->has_seed) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "the store has no seed");
    return FALSE;
  }
  memcpy(out->seed, store->seed, sizeof(out->seed));
  out->has_seed = TRUE;
  out->kdf_version = store->kdf_version;
  out->next_generation = store->next_generation;
  out->current = store->current;
  out->state = store->state;
  out->last_known_good = store->last_known_good;
  out->lkg_from_start = store->lkg_from_start;
  msvm_secret_text_free(out->stash);
  out->stash = g_strdup(store->stash);
  for (guint i = 0; i < numbers->len; i++) {
    const MsvmGeneration *gen =
      msvm_store_get_generation(store, GPOINTER_TO_UINT(g_ptr_array_index(numbers, i)));
    MsvmGeneration *copy;

    if (gen == NULL)
      continue;
    if (gen->foreign) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "generation %u is the secret %s, which msvm-security did not create: its "
                  "passphrase cannot move with the protector; set a key protector first",
                  gen->number, gen->secret_uuid);
      return FALSE;
    }
    copy = g_new0(MsvmGeneration, 1);
    copy->number = gen->number;
    copy->secret_uuid = g_strdup(gen->secret_uuid);
    copy->created = gen->created;
    copy->has_key_protector = gen->has_key_protector;
    if (gen->has_key_protector) {
      copy->key_protector = dup_secret(gen->key_protector, gen->key_protector_len);
      copy->key_protector_len = gen->key_protector_len;
    }
    copy->has_policy = gen->has_policy;
    if (gen->has_policy) {
      copy->policy = dup_secret(gen->policy, gen->policy_len);
      copy->policy_len = gen->policy_len;
    }
    g_ptr_array_add(out->generations, copy);
  }
  return TRUE;
}

void
msvm_bundle_add_state_file(MsvmBundle *b, const char *name, guint32 mode, GBytes *data)
{
  MsvmBundleFile *f = g_new0(MsvmBundleFile, 1);

  if (b->state_files == NULL)
    b->state_files = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_bundle_file_free);
  f->name = g_strdup(name);
  f->mode = mode & 0777;
  f->data = g_bytes_ref(data);
  g_ptr_array_add(b->state_files, f);
}

/* --- serialization ------------------------------------------------------------ */

/* An "ay" over a copy of @data in a secret buffer: GVariant keeps the
 * GBytes, and stores it into the payload without another copy. */
static GVariant *
secret_ay(const void *data, gsize len)
{
  g_autoptr(GBytes) bytes = msvm_secret_bytes_new(data, len);
  return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

static GVariant *
maybe_ay(gboolean has, const guint8 *data, gsize len)
{
  return g_variant_new_maybe(G_VARIANT_TYPE_BYTESTRING, has ? secret_ay(data, len) : NULL);
}

GBytes *
msvm_bundle_serialize(const MsvmBundle *b)
{
  const MsvmStore *s = b->store;
  g_autofree char *uuid = msvm_uuid_to_string(s->uuid);
  GVariantBuilder dict, gens;
  g_autoptr(GVariant) v = NULL;
  gsize size;
  guint8 *buf;
  GBytes *out;

  g_variant_builder_init(&dict, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add(&dict, "{sv}", "format", g_variant_new_uint32(MSVM_BUNDLE_FORMAT_VERSION));
  g_variant_builder_add(&dict, "{sv}", "vm-uuid", g_variant_new_string(uuid));
  g_variant_builder_add(&dict, "{sv}", "kdf-version", g_variant_new_uint32(s->kdf_version));
  g_variant_builder_add(&dict, "{sv}", "seed", secret_ay(s->seed, sizeof(s->seed)));
  g_variant_builder_add(&dict, "{sv}", "next-generation",
                        g_variant_new_uint32(s->next_generation));
  g_variant_builder_add(&dict, "{sv}", "current", g_variant_new_uint32(s->current));
  g_variant_builder_add(&dict, "{sv}", "state", g_variant_new_uint32(s->state));
  g_variant_builder_add(&dict, "{sv}", "last-known-good",
                        g_variant_new_uint32(s->last_known_good));
  g_variant_builder_add(&dict, "{sv}", "last-known-good-from-start",
                        g_variant_new_boolean(s->lkg_from_start));
  g_variant_builder_init(&gens, G_VARIANT_TYPE("a" GEN_TYPE));
  for (guint i = 0; i < s->generations->len; i++) {
    const MsvmGeneration *g = g_ptr_array_index(s->generations, i);
    GVariant *kids[5] = {
      g_variant_new_uint32(g->number),
      g_variant_new_string(g->secret_uuid),
      maybe_ay(g->has_key_protector, g->key_protector, g->key_protector_len),
      maybe_ay(g->has_policy, g->policy, g->policy_len),
      g_variant_new_int64(g->created),
    };
    g_variant_builder_add_value(&gens, g_variant_new_tuple(kids, 5));
  }
  g_variant_builder_add(&dict, "{sv}", "generations", g_variant_builder_end(&gens));
  if (s->stash != NULL)
    g_variant_builder_add(&dict, "{sv}", "stash", secret_ay(s->stash, strlen(s->stash)));
  if (b->settings != NULL)
    g_variant_builder_add(&dict, "{sv}", "settings", g_variant_new_string(b->settings));
  if (b->definition != NULL)
    g_variant_builder_add(&dict, "{sv}", "definition",
                          g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b->definition,
                                                   TRUE));
  if (b->state_files != NULL) {
    GVariantBuilder files;
    g_variant_builder_init(&files, G_VARIANT_TYPE("a" FILE_TYPE));
    for (guint i = 0; i < b->state_files->len; i++) {
      const MsvmBundleFile *f = g_ptr_array_index(b->state_files, i);
      GVariant *kids[3] = {
        g_variant_new_string(f->name),
        g_variant_new_uint32(f->mode),
        g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, f->data, TRUE),
      };
      g_variant_builder_add_value(&files, g_variant_new_tuple(kids, 3));
    }
    g_variant_builder_add(&dict, "{sv}", "state-files", g_variant_builder_end(&files));
  }
  g_variant_builder_add(&dict, "{sv}", "exported", g_variant_new_int64(b->exported));
  g_variant_builder_add(&dict, "{sv}", "source-host",
                        g_variant_new_string(b->source_host ? b->source_host : ""));
  v = g_variant_ref_sink(g_variant_builder_end(&dict));

  /* straight into a secret buffer: the tree is serialized there, its
   * secret leaves copied from their own secret buffers */
  size = g_variant_get_size(v);
  buf = msvm_secret_alloc(size);
  g_variant_store(v, buf);
  out = msvm_secret_bytes_new(buf, size);
  msvm_secret_free(buf, size);
  return out;
}

/* --- parsing -------------------------------------------------------------------- */

static gboolean
invalid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
invalid(GError **error, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start(ap, fmt);
  msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
              "the protector bundle is not valid: %s", msg);
  return FALSE;
}

static const char *const known_keys[] = {
  "format", "vm-uuid", "kdf-version", "seed", "next-generation", "current", "state",
  "last-known-good", "last-known-good-from-start", "generations", "stash", "settings",
  "definition", "state-files", "exported", "source-host", NULL,
};

static gboolean
get_u32(GVariant *v, const char *key, guint32 *ret, GError **error)
{
  g_autoptr(GVariant) x = g_variant_lookup_value(v, key, G_VARIANT_TYPE_UINT32);
  if (x == NULL)
    return invalid(error, "'%s' is missing or not a uint32", key);
  *ret = g_variant_get_uint32(x);
  return TRUE;
}

/* The bytes of an "ay" child, in place (the payload's buffer). */
static const guint8 *
ay_data(GVariant *x, gsize *ret_len)
{
  const guint8 *p = g_variant_get_fixed_array(x, ret_len, 1);
  return p != NULL ? p : (const guint8 *)"";
}

static gboolean
parse_generation(MsvmStore *s, GVariant *t, GError **error)
{
  g_autoptr(GVariant) num = g_variant_get_child_value(t, 0);
  g_autoptr(GVariant) sec = g_variant_get_child_value(t, 1);
  g_autoptr(GVariant) kp = g_variant_get_child_value(t, 2);
  g_autoptr(GVariant) pol = g_variant_get_child_value(t, 3);
  g_autoptr(GVariant) created = g_variant_get_child_value(t, 4);
  g_autoptr(GVariant) kpv = g_variant_get_maybe(kp);
  g_autoptr(GVariant) polv = g_variant_get_maybe(pol);
  const char *secret = g_variant_get_string(sec, NULL);
  guint number = g_variant_get_uint32(num);
  guint8 raw[16];
  MsvmGeneration *g;

  if (number == 0 || msvm_store_get_generation(s, number) != NULL)
    return invalid(error, "generation number %u is zero or repeated", number);
  if (!msvm_uuid_parse(secret, raw) || msvm_store_find_generation_by_secret(s, secret) != NULL)
    return invalid(error, "generation %u: secret UUID missing, malformed or repeated", number);
  if (kpv == NULL && polv == NULL)
    return invalid(error, "generation %u has neither half of a protector", number);
  g = g_new0(MsvmGeneration, 1);
  g->number = number;
  g->secret_uuid = msvm_uuid_to_string(raw);
  g->created = g_variant_get_int64(created);
  g_ptr_array_add(s->generations, g);
  if (kpv != NULL) {
    gsize len = 0;
    const guint8 *p = ay_data(kpv, &len);
    if (len == 0 || len > MSVM_PROTECTOR_MAX_SIZE)
      return invalid(error, "generation %u: key protector of %" G_GSIZE_FORMAT " bytes",
                     number, len);
    g->has_key_protector = TRUE;
    g->key_protector = dup_secret(p, len);
    g->key_protector_len = len;
  }
  if (polv != NULL) {
    gsize len = 0;
    const guint8 *p = ay_data(polv, &len);
    if (len == 0 || len > MSVM_PROTECTOR_MAX_SIZE)
      return invalid(error, "generation %u: policy of %" G_GSIZE_FORMAT " bytes", number, len);
    g->has_policy = TRUE;
    g->policy = dup_secret(p, len);
    g->policy_len = len;
  }
  return TRUE;
}

static gboolean
known_generation(const MsvmStore *s, guint n, gboolean zero_ok)
{
  return (n == 0 && zero_ok) || msvm_store_get_generation(s, n) != NULL;
}

gboolean
msvm_bundle_parse(GBytes *payload, MsvmBundle **ret_bundle, GError **error)
{
  g_autoptr(GVariant) v = NULL;
  g_autoptr(MsvmBundle) b = NULL;
  g_autoptr(GVariant) x = NULL;
  GVariantIter iter;
  const char *key;
  GVariant *val;
  guint32 format = 0, kdf = 0, next = 0, cur = 0, state = 0, lkg = 0;
  guint8 uuid[16];
  MsvmStore *s;

  if (payload == NULL || g_bytes_get_size(payload) == 0)
    return invalid(error, "empty");
  v = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, payload, FALSE));
  if (!g_variant_is_normal_form(v))
    return invalid(error, "not a GVariant dictionary in normal form");
  g_variant_iter_init(&iter, v);
  while (g_variant_iter_loop(&iter, "{&sv}", &key, &val)) {
    if (!g_strv_contains(known_keys, key)) {
      g_variant_unref(val);
      return invalid(error, "unknown key '%s'", key);
    }
  }
  if (!get_u32(v, "format", &format, error))
    return FALSE;
  if (format != MSVM_BUNDLE_FORMAT_VERSION)
    return invalid(error, "format version %u, this build reads %u", format,
                   MSVM_BUNDLE_FORMAT_VERSION);
  x = g_variant_lookup_value(v, "vm-uuid", G_VARIANT_TYPE_STRING);
  if (x == NULL || !msvm_uuid_parse(g_variant_get_string(x, NULL), uuid))
    return invalid(error, "'vm-uuid' is missing or not a UUID");
  g_clear_pointer(&x, g_variant_unref);
  b = msvm_bundle_new(uuid);
  s = b->store;
  if (!get_u32(v, "kdf-version", &kdf, error) || !get_u32(v, "next-generation", &next, error) ||
      !get_u32(v, "current", &cur, error) || !get_u32(v, "state", &state, error) ||
      !get_u32(v, "last-known-good", &lkg, error))
    return FALSE;
  if (kdf != MSVM_KDF_VERSION)
    return invalid(error, "derivation version %u, this build knows %u", kdf, MSVM_KDF_VERSION);
  s->kdf_version = kdf;
  x = g_variant_lookup_value(v, "seed", G_VARIANT_TYPE_BYTESTRING);
  {
    gsize len = 0;
    const guint8 *p = x ? ay_data(x, &len) : NULL;
    if (p == NULL || len != sizeof(s->seed))
      return invalid(error, "'seed' is missing or not %u bytes", (guint)sizeof(s->seed));
    memcpy(s->seed, p, len);
    s->has_seed = TRUE;
  }
  g_clear_pointer(&x, g_variant_unref);
  x = g_variant_lookup_value(v, "last-known-good-from-start", G_VARIANT_TYPE_BOOLEAN);
  s->lkg_from_start = x != NULL && g_variant_get_boolean(x);
  g_clear_pointer(&x, g_variant_unref);

  x = g_variant_lookup_value(v, "generations", G_VARIANT_TYPE("a" GEN_TYPE));
  if (x == NULL)
    return invalid(error, "'generations' is missing");
  for (gsize i = 0; i < g_variant_n_children(x); i++) {
    g_autoptr(GVariant) t = g_variant_get_child_value(x, i);
    if (!parse_generation(s, t, error))
      return FALSE;
  }
  g_clear_pointer(&x, g_variant_unref);
  if (s->generations->len == 0)
    return invalid(error, "no generation");
  msvm_store_sort_generations(s);
  s->current = cur;
  s->state = state;
  s->last_known_good = lkg;
  s->next_generation = next;
  if (!known_generation(s, cur, FALSE) || !known_generation(s, state, TRUE) ||
      !known_generation(s, lkg, TRUE))
    return invalid(error, "current, state or last known good names no generation carried");
  {
    const MsvmGeneration *last = g_ptr_array_index(s->generations, s->generations->len - 1);
    if (next <= last->number)
      return invalid(error, "next-generation %u is not above generation %u", next,
                     last->number);
  }

  x = g_variant_lookup_value(v, "stash", G_VARIANT_TYPE_BYTESTRING);
  if (x != NULL) {
    gsize len = 0;
    const guint8 *p = ay_data(x, &len);
    if (memchr(p, '\0', len) != NULL || !g_utf8_validate((const char *)p, len, NULL))
      return invalid(error, "'stash' is not UTF-8 text");
    s->stash = g_strndup((const char *)p, len);
  }
  g_clear_pointer(&x, g_variant_unref);
  x = g_variant_lookup_value(v, "settings", G_VARIANT_TYPE_STRING);
  if (x != NULL)
    b->settings = g_variant_dup_string(x, NULL);
  g_clear_pointer(&x, g_variant_unref);
  x = g_variant_lookup_value(v, "definition", G_VARIANT_TYPE_BYTESTRING);
  if (x != NULL) {
    gsize len = 0;
    const guint8 *p = ay_data(x, &len);
    if (len == 0 || len > MSVM_BUNDLE_FILE_MAX || memchr(p, '\0', len) != NULL)
      return invalid(error, "'definition' is empty, too large or not text");
    b->definition = msvm_secret_bytes_new(p, len);
  }
  g_clear_pointer(&x, g_variant_unref);
  x = g_variant_lookup_value(v, "state-files", G_VARIANT_TYPE("a" FILE_TYPE));
  if (x != NULL) {
    gboolean has_permall = FALSE;
    if (b->definition == NULL)
      return invalid(error, "state files without a definition");
    b->state_files = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_bundle_file_free);
    for (gsize i = 0; i < g_variant_n_children(x); i++) {
      g_autoptr(GVariant) t = g_variant_get_child_value(x, i);
      g_autoptr(GVariant) name = g_variant_get_child_value(t, 0);
      g_autoptr(GVariant) mode = g_variant_get_child_value(t, 1);
      g_autoptr(GVariant) data = g_variant_get_child_value(t, 2);
      const char *n = g_variant_get_string(name, NULL);
      gsize len = 0;
      const guint8 *p = ay_data(data, &len);
      g_autoptr(GBytes) bytes = NULL;

      if (g_strcmp0(n, MSVM_BUNDLE_PERMALL) != 0 && g_strcmp0(n, MSVM_BUNDLE_VOLATILE) != 0)
        return invalid(error, "state file '%s' is not one of a TPM 2.0 state", n);
      for (guint k = 0; k < b->state_files->len; k++) {
        if (strcmp(((MsvmBundleFile *)g_ptr_array_index(b->state_files, k))->name, n) == 0)
          return invalid(error, "state file '%s' twice", n);
      }
      if (len == 0 || len > MSVM_BUNDLE_FILE_MAX)
        return invalid(error, "state file '%s' is empty or too large", n);
      has_permall |= g_strcmp0(n, MSVM_BUNDLE_PERMALL) == 0;
      bytes = g_bytes_new(p, len);
      msvm_bundle_add_state_file(b, n, g_variant_get_uint32(mode), bytes);
    }
    if (b->state_files->len > 0 && !has_permall)
      return invalid(error, "a state without %s", MSVM_BUNDLE_PERMALL);
  }
  g_clear_pointer(&x, g_variant_unref);
  x = g_variant_lookup_value(v, "exported", G_VARIANT_TYPE_INT64);
  b->exported = x != NULL ? g_variant_get_int64(x) : 0;
  g_clear_pointer(&x, g_variant_unref);
  x = g_variant_lookup_value(v, "source-host", G_VARIANT_TYPE_STRING);
  b->source_host = x != NULL ? g_variant_dup_string(x, NULL) : g_strdup("");
  *ret_bundle = g_steal_pointer(&b);
  return TRUE;
}

gboolean
msvm_bundle_seal(const MsvmBundle *b, MsvmGuardian *guardian, const char *recipient,
                 GBytes **ret_sealed, GError **error)
{
  g_autoptr(GBytes) payload = msvm_bundle_serialize(b);

  return msvm_guardian_seal(guardian, recipient, payload, ret_sealed, error);
}

gboolean
msvm_bundle_open(MsvmGuardian *guardian, const guint8 *sealed, gsize len,
                 MsvmBundle **ret_bundle, GError **error)
{
  g_autoptr(GBytes) payload = NULL;
  g_autofree char *signer = NULL;
  MsvmBundle *b = NULL;

  if (!msvm_guardian_unseal(guardian, sealed, len, &payload, &signer, error))
    return FALSE;
  if (!msvm_bundle_parse(payload, &b, error))
    return FALSE;
  b->signer = g_steal_pointer(&signer);
  *ret_bundle = b;
  return TRUE;
}
