/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-bundle.c: the protector bundle's payload (plugin/msvm-bundle.c) from
 * arbitrary bytes, through msvm_bundle_parse(), what import-protector reads
 * once the envelope was decrypted and its signature verified.  A payload
 * that parses must serialize (msvm_bundle_serialize(), what export-protector
 * writes) to one that parses back to the same bundle and serializes to the
 * same bytes; every generation it holds is found by its number and by its
 * secret, and current names one.  Never crash, never leak.
 *
 * Corpus (bundle-corpus/): payloads as export-protector makes them (one and
 * three generations, with and without a state), a few damaged ones.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "msvm-bundle.h"
#include "msvm-error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_bundle(const MsvmBundle *b)
{
  const MsvmStore *s = b->store;

  g_assert_true(s->has_seed);
  g_assert_nonnull(msvm_store_get_generation(s, s->current));
  for (guint i = 0; i < s->generations->len; i++) {
    const MsvmGeneration *g = g_ptr_array_index(s->generations, i);
    g_assert_true(msvm_store_get_generation(s, g->number) == g);
    g_assert_true(msvm_store_find_generation_by_secret(s, g->secret_uuid) == g);
    g_assert_true(g->has_key_protector || g->has_policy);
    g_assert_false(g->foreign);
    g_assert_cmpuint(g->number, <, s->next_generation);
  }
  if (b->state_files != NULL)
    g_assert_nonnull(b->definition);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) in = g_bytes_new(data, size);
  g_autoptr(MsvmBundle) b = NULL;
  g_autoptr(MsvmBundle) again = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) out2 = NULL;
  g_autoptr(GError) error = NULL;

  if (!msvm_bundle_parse(in, &b, &error)) {
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_assert_null(b);
    return 0;
  }
  check_bundle(b);
  out = msvm_bundle_serialize(b);
  g_assert_true(msvm_bundle_parse(out, &again, &error));
  g_assert_no_error(error);
  check_bundle(again);
  g_assert_cmpuint(again->store->generations->len, ==, b->store->generations->len);
  g_assert_true(memcmp(again->store->seed, b->store->seed, sizeof(b->store->seed)) == 0);
  g_assert_cmpuint(again->store->current, ==, b->store->current);
  g_assert_cmpuint(again->store->state, ==, b->store->state);
  g_assert_cmpstr(again->store->stash, ==, b->store->stash);
  g_assert_cmpstr(again->settings, ==, b->settings);
  out2 = msvm_bundle_serialize(again);
  g_assert_true(g_bytes_equal(out, out2));
  return 0;
}
