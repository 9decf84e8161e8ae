/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-store.c: the per-VM store file and its journal (plugin/msvm-store.c)
 * from arbitrary bytes, through msvm_store_parse(), the text that
 * msvm_store_load() reads; no file is opened.  A text that parses must give
 * a store that writes (msvm_store_to_data(), what msvm_store_save() writes)
 * to a text that parses back to the same store and writes the same text
 * again; the lookups the hook and the provider make on a loaded store must
 * hold on it (every generation found by its number and by its own secret, the
 * unneeded ones not needed by anything, the passphrase derived or refused
 * with an error).  Never crash, never leak.
 *
 * Corpus (store-corpus/): stores as the provider writes them (seed,
 * generations with halves, a foreign one, an open journal with stash and
 * job, finished and open jobs), a journal of an older version (domain-xml),
 * damaged variants.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "msvm-error.h"
#include "msvm-store-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const guint8 fuzz_uuid[16] = { 0x5f, 0x2b, 0x7a, 0x1c, 0x3d, 0x4e, 0x4f, 0x60,
                                      0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8 };

static gboolean
bytes_equal(gboolean has_a, const guint8 *a, gsize la, gboolean has_b, const guint8 *b, gsize lb)
{
  return has_a == has_b && la == lb && (la == 0 || memcmp(a, b, la) == 0);
}

static void
assert_same_store(const MsvmStore *a, const MsvmStore *b)
{
  g_assert_true(a->has_seed == b->has_seed);
  if (a->has_seed)
    g_assert_true(memcmp(a->seed, b->seed, sizeof(a->seed)) == 0);
  g_assert_cmpuint(a->kdf_version, ==, b->kdf_version);
  g_assert_cmpuint(a->next_generation, ==, b->next_generation);
  g_assert_cmpuint(a->current, ==, b->current);
  g_assert_cmpuint(a->state, ==, b->state);
  g_assert_cmpuint(a->last_known_good, ==, b->last_known_good);
  g_assert_true(a->lkg_from_start == b->lkg_from_start);
  g_assert_cmpstr(a->stash, ==, b->stash);

  g_assert_true(a->journal.open == b->journal.open);
  g_assert_cmpuint(a->journal.target, ==, b->journal.target);
  g_assert_true(a->journal.new_generation == b->journal.new_generation);
  g_assert_cmpuint(a->journal.prev_current, ==, b->journal.prev_current);
  g_assert_cmpuint(a->journal.prev_state, ==, b->journal.prev_state);
  g_assert_cmpstr(a->journal.change_id, ==, b->journal.change_id);
  g_assert_true(a->journal.has_stash == b->journal.has_stash);
  g_assert_cmpstr(a->journal.stash, ==, b->journal.stash);
  g_assert_cmpstr(a->journal.job_id, ==, b->journal.job_id);
  /* journal.domain_xml is read from older versions only, never written */
  g_assert_null(b->journal.domain_xml);

  g_assert_cmpuint(a->generations->len, ==, b->generations->len);
  for (guint i = 0; i < a->generations->len; i++) {
    const MsvmGeneration *x = g_ptr_array_index(a->generations, i);
    const MsvmGeneration *y = g_ptr_array_index(b->generations, i);
    g_assert_cmpuint(x->number, ==, y->number);
    g_assert_cmpstr(x->secret_uuid, ==, y->secret_uuid);
    g_assert_true(bytes_equal(x->has_key_protector, x->key_protector, x->key_protector_len,
                              y->has_key_protector, y->key_protector, y->key_protector_len));
    g_assert_true(bytes_equal(x->has_policy, x->policy, x->policy_len, y->has_policy,
                              y->policy, y->policy_len));
    g_assert_true(x->foreign == y->foreign);
    if (x->foreign)
      g_assert_true(bytes_equal(TRUE, x->foreign_passphrase, x->foreign_passphrase_len, TRUE,
                                y->foreign_passphrase, y->foreign_passphrase_len));
    g_assert_cmpint(x->created, ==, y->created);
  }

  g_assert_cmpuint(a->jobs->len, ==, b->jobs->len);
  for (guint i = 0; i < a->jobs->len; i++) {
    const MsvmStoreJob *x = g_ptr_array_index(a->jobs, i);
    const MsvmStoreJob *y = g_ptr_array_index(b->jobs, i);
    g_assert_cmpstr(x->id, ==, y->id);
    g_assert_cmpstr(x->method, ==, y->method);
    g_assert_cmpuint(x->state, ==, y->state);
    g_assert_cmpuint(x->error_code, ==, y->error_code);
    g_assert_cmpstr(x->error_description, ==, y->error_description);
    g_assert_cmpuint(x->percent_complete, ==, y->percent_complete);
    g_assert_cmpint(x->time_submitted, ==, y->time_submitted);
    g_assert_cmpint(x->time_changed, ==, y->time_changed);
    g_assert_cmpuint(x->target, ==, y->target);
  }
}

static void
check_lookups(const MsvmStore *store)
{
  g_autoptr(GPtrArray) unneeded = msvm_store_unneeded_generations(store, NULL);

  for (guint i = 0; i < store->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    const MsvmGeneration *by_secret;
    g_autoptr(GError) error = NULL;
    char *pass = NULL;
    gsize pass_len = 0;

    g_assert_true(msvm_store_get_generation(store, gen->number) == gen);
    g_assert_true(!gen->foreign || gen->foreign_passphrase != NULL);
    by_secret = msvm_store_find_generation_by_secret(store, gen->secret_uuid);
    g_assert_true(by_secret == gen);
    if (msvm_store_generation_passphrase(store, gen, &pass, &pass_len, &error)) {
      g_assert_nonnull(pass);
      g_assert_cmpuint(strlen(pass), <=, pass_len);
      msvm_passphrase_free(pass, pass_len);
    } else {
      g_assert_nonnull(error);
      g_assert_null(pass);
    }
  }
  for (guint i = 0; i < unneeded->len; i++) {
    guint n = GPOINTER_TO_UINT(g_ptr_array_index(unneeded, i));
    g_assert_nonnull(msvm_store_get_generation(store, n));
    g_assert_cmpuint(n, !=, store->current);
    g_assert_cmpuint(n, !=, store->state);
    g_assert_cmpuint(n, !=, store->last_known_good);
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(MsvmStore) store = NULL;
  g_autoptr(MsvmStore) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *text2 = NULL;
  gsize len = 0, len2 = 0;

  if (!msvm_store_parse("/fuzz/store-dir", fuzz_uuid, (const char *)data, size, &store,
                        &error)) {
    g_assert_true(g_error_matches(error, MSVM_ERROR, MSVM_RC_FAILED));
    g_assert_null(store);
    return 0;
  }
  g_assert_no_error(error);
  g_assert_true(store->exists);
  check_lookups(store);

  text = msvm_store_to_data(store, &len);
  if (!msvm_store_parse("/fuzz/store-dir", fuzz_uuid, text, len, &again, &error))
    g_error("a store's own text does not parse: %s\n%s", error->message, text);
  assert_same_store(store, again);
  text2 = msvm_store_to_data(again, &len2);
  g_assert_cmpstr(text, ==, text2);
  g_assert_cmpuint(len, ==, len2);
  return 0;
}
