/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-job.c: the CIM_ConcreteJob records of the store (plugin/msvm-store-job.c
 * and the [job ID] groups of the store file) from arbitrary bytes.
 *
 * The input's first line is a job reference as a caller gives it (a bare id
 * or Msvm_ConcreteJob.InstanceID="<id>"): msvm_job_id_from_reference() must
 * give NULL or a lower-case UUID that its own reference, the bare id and the
 * upper-case id give back again.  The rest is the text of a store file
 * (msvm_store_parse(), no file opened): each job must be found by its id in
 * any case, be the one the reference names when it is named, and the
 * state changes must hold: finishing the jobs (with or without an error)
 * leaves none open, gives the error's return code and message to each job
 * that was open and to no other, and survives writing and parsing the store
 * again.
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

static void
check_reference(const char *ref)
{
  g_autofree char *id = msvm_job_id_from_reference(ref);
  g_autofree char *again = NULL;
  g_autofree char *bare = NULL;
  g_autofree char *upper = NULL;
  g_autofree char *upper_id = NULL;

  if (id == NULL)
    return;
  g_assert_true(g_uuid_string_is_valid(id));
  upper = g_ascii_strup(id, -1);
  for (const char *c = id; *c != '\0'; c++)
    g_assert_false(g_ascii_isupper(*c));
  {
    g_autofree char *reference = msvm_job_reference(id);
    again = msvm_job_id_from_reference(reference);
  }
  bare = msvm_job_id_from_reference(id);
  upper_id = msvm_job_id_from_reference(upper);
  g_assert_cmpstr(again, ==, id);
  g_assert_cmpstr(bare, ==, id);
  g_assert_cmpstr(upper_id, ==, id);
}

static void
check_jobs(MsvmStore *store, const char *ref, gboolean with_error)
{
  g_autofree char *ref_id = msvm_job_id_from_reference(ref);
  g_autoptr(GError) failure = NULL;
  g_autoptr(GArray) was_open = g_array_new(FALSE, FALSE, sizeof(gboolean));
  gboolean any_open = FALSE;

  for (guint i = 0; i < store->jobs->len; i++) {
    MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    g_autofree char *upper = g_ascii_strup(job->id, -1);
    MsvmStoreJob *found = msvm_store_get_job(store, job->id);
    gboolean open = job->state < MSVM_JOB_COMPLETED;

    g_assert_nonnull(found);
    g_assert_true(g_ascii_strcasecmp(found->id, job->id) == 0);
    g_assert_true(msvm_store_get_job(store, upper) == found);
    if (ref_id != NULL && g_ascii_strcasecmp(job->id, ref_id) == 0)
      g_assert_true(g_ascii_strcasecmp(msvm_store_get_job(store, ref_id)->id, ref_id) == 0);
    g_array_append_val(was_open, open);
    any_open |= open;
  }
  g_assert_true(msvm_store_has_open_jobs(store) == any_open);

  if (with_error)
    g_set_error(&failure, MSVM_ERROR, MSVM_RC_IN_USE, "fuzz: system is in use");
  {
    g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < store->jobs->len; i++) {
      MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
      g_ptr_array_add(before, g_strdup(job->error_description));
    }
    msvm_store_finish_jobs(store, failure);
    g_assert_false(msvm_store_has_open_jobs(store));
    for (guint i = 0; i < store->jobs->len; i++) {
      MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
      if (!g_array_index(was_open, gboolean, i)) {
        g_assert_cmpstr(job->error_description, ==, g_ptr_array_index(before, i));
        continue;
      }
      if (with_error) {
        g_assert_cmpuint(job->state, ==, MSVM_JOB_EXCEPTION);
        g_assert_cmpuint(job->error_code, ==, MSVM_RC_IN_USE);
        g_assert_cmpstr(job->error_description, ==, failure->message);
      } else {
        g_assert_cmpuint(job->state, ==, MSVM_JOB_COMPLETED);
        g_assert_cmpuint(job->error_code, ==, 0);
        g_assert_cmpuint(job->percent_complete, ==, 100);
        g_assert_null(job->error_description);
      }
    }
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *nl = memchr(data, '\n', size);
  gsize ref_len = nl != NULL ? (gsize)(nl - (const char *)data) : size;
  g_autofree char *ref = g_strndup((const char *)data, ref_len);
  const char *rest = nl != NULL ? nl + 1 : (const char *)data + size;
  gsize rest_len = size - (gsize)(rest - (const char *)data);
  g_autoptr(MsvmStore) store = NULL;
  g_autoptr(MsvmStore) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  check_reference(ref);
  if (!msvm_store_parse("/fuzz/store-dir", fuzz_uuid, rest, rest_len, &store, &error)) {
    g_assert_true(g_error_matches(error, MSVM_ERROR, MSVM_RC_FAILED));
    return 0;
  }
  check_jobs(store, ref, size > 0 && (data[0] & 1));

  text = msvm_store_to_data(store, &len);
  if (!msvm_store_parse("/fuzz/store-dir", fuzz_uuid, text, len, &again, &error))
    g_error("a store's own text does not parse: %s", error->message);
  g_assert_cmpuint(again->jobs->len, ==, store->jobs->len);
  for (guint i = 0; i < store->jobs->len; i++) {
    const MsvmStoreJob *x = g_ptr_array_index(store->jobs, i);
    const MsvmStoreJob *y = g_ptr_array_index(again->jobs, i);
    g_assert_cmpstr(x->id, ==, y->id);
    g_assert_cmpuint(x->state, ==, y->state);
    g_assert_cmpuint(x->error_code, ==, y->error_code);
    g_assert_cmpstr(x->error_description, ==, y->error_description);
  }
  return 0;
}
