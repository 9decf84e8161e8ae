/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-store-job.c: CIM_ConcreteJob records kept in the per-VM store, and
 * finishing an unfinished change (re-key from `state` to `current`).
 */
#include "config.h"

#include "msvm-store.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-kdf.h"
#include "msvm-rekey.h"

MsvmStoreJob *
msvm_store_add_job(MsvmStore *store, const char *method, guint target)
{
  MsvmStoreJob *job = g_new0(MsvmStoreJob, 1);

  job->id = msvm_store_uuid_generate();
  job->method = g_strdup(method);
  job->state = MSVM_JOB_RUNNING;
  job->time_submitted = g_get_real_time();
  job->time_changed = job->time_submitted;
  job->target = target;
  g_ptr_array_add(store->jobs, job);
  return job;
}

MsvmStoreJob *
msvm_store_get_job(const MsvmStore *store, const char *id)
{
  for (guint i = 0; i < store->jobs->len; i++) {
    MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    if (g_ascii_strcasecmp(job->id, id) == 0)
      return job;
  }
  return NULL;
}

void
msvm_store_job_set_state(MsvmStoreJob *job, guint state, const GError *error)
{
  job->state = state;
  job->time_changed = g_get_real_time();
  g_clear_pointer(&job->error_description, g_free);
  if (state == MSVM_JOB_COMPLETED) {
    job->percent_complete = 100;
    job->error_code = 0;
  } else if (state == MSVM_JOB_EXCEPTION) {
    job->error_code = error ? msvm_error_to_return_code(error) : MSVM_RC_FAILED;
    job->error_description = g_strdup(error ? error->message : "failed");
  }
}

void
msvm_store_finish_jobs(MsvmStore *store, const GError *error)
{
  for (guint i = 0; i < store->jobs->len; i++) {
    MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    if (job->state >= MSVM_JOB_COMPLETED)
      continue;
    msvm_store_job_set_state(job, error ? MSVM_JOB_EXCEPTION : MSVM_JOB_COMPLETED, error);
  }
}

gboolean
msvm_store_has_open_jobs(const MsvmStore *store)
{
  for (guint i = 0; i < store->jobs->len; i++) {
    const MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    if (job->state < MSVM_JOB_COMPLETED)
      return TRUE;
  }
  return FALSE;
}

char *
msvm_job_reference(const char *id)
{
  return g_strdup_printf("Msvm_ConcreteJob.InstanceID=\"%s\"", id);
}

char *
msvm_job_id_from_reference(const char *ref)
{
  const char *p;
  g_autofree char *id = NULL;

  if (ref == NULL)
    return NULL;
  p = strstr(ref, "InstanceID=\"");
  if (p != NULL) {
    const char *end;
    p += strlen("InstanceID=\"");
    end = strchr(p, '"');
    if (end == NULL)
      return NULL;
    id = g_strndup(p, end - p);
  } else {
    id = g_strdup(ref);
  }
  if (!g_uuid_string_is_valid(id))
    return NULL;
  return g_ascii_strdown(id, -1);
}

static MsvmStoreJob *
job_copy(const MsvmStoreJob *job)
{
  MsvmStoreJob *c = g_memdup2(job, sizeof(*job));
  c->id = g_strdup(job->id);
  c->method = g_strdup(job->method);
  c->error_description = g_strdup(job->error_description);
  return c;
}

gboolean
msvm_store_list_jobs(const char *root, GPtrArray **ret_jobs, GPtrArray **ret_vm_uuids,
                     GError **error)
{
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_store_job_free);
  g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GError) local = NULL;
  const char *name;

  dir = g_dir_open(root, 0, &local);
  if (dir == NULL) {
    if (!g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_set_error(error, MSVM_ERROR,
                  g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_ACCES)
                    ? MSVM_RC_ACCESS_DENIED : MSVM_RC_FAILED,
                  "%s", local->message);
      return FALSE;
    }
  } else {
    while ((name = g_dir_read_name(dir)) != NULL) {
      guint8 uuid[16];
      g_autoptr(MsvmStore) store = NULL;
      g_autoptr(GError) e = NULL;
      if (!msvm_store_uuid_parse(name, uuid))
        continue;
      if (!msvm_store_load(root, uuid, &store, &e))
        continue; /* a damaged entry does not hide the others' jobs */
      for (guint i = 0; i < store->jobs->len; i++) {
        g_ptr_array_add(jobs, job_copy(g_ptr_array_index(store->jobs, i)));
        g_ptr_array_add(vms, msvm_store_uuid_format(uuid));
      }
    }
  }
  *ret_jobs = g_steal_pointer(&jobs);
  if (ret_vm_uuids != NULL)
    *ret_vm_uuids = g_steal_pointer(&vms);
  return TRUE;
}

gboolean
msvm_store_find_job(const char *root, const char *id, MsvmStoreJob **ret_job,
                    char **ret_vm_uuid, GError **error)
{
  g_autoptr(GPtrArray) jobs = NULL;
  g_autoptr(GPtrArray) vms = NULL;

  *ret_job = NULL;
  if (!msvm_store_list_jobs(root, &jobs, &vms, error))
    return FALSE;
  for (guint i = 0; i < jobs->len; i++) {
    MsvmStoreJob *job = g_ptr_array_index(jobs, i);
    if (g_ascii_strcasecmp(job->id, id) == 0) {
      *ret_job = job_copy(job);
      if (ret_vm_uuid != NULL)
        *ret_vm_uuid = g_strdup(g_ptr_array_index(vms, i));
      return TRUE;
    }
  }
  return TRUE;
}

/* --- finishing --------------------------------------------------------------- */

static gboolean
make_key(const MsvmStore *store, guint number, MsvmStateKey *key, char **ret_pass,
         gsize *ret_len, GError **error)
{
  const MsvmGeneration *gen;

  memset(key, 0, sizeof(*key));
  key->kdf = MSVM_KDF_PBKDF2;
  key->cipher = MSVM_CIPHER_AES_256_CBC;
  *ret_pass = NULL;
  *ret_len = 0;
  if (number == 0)
    return TRUE; /* plaintext */
  gen = msvm_store_get_generation(store, number);
  if (gen == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "store %s names generation %u, which it does not hold", store->dir, number);
    return FALSE;
  }
  if (!msvm_store_generation_passphrase(store, gen, ret_pass, ret_len, error))
    return FALSE;
  key->passphrase = (const guint8 *)*ret_pass;
  key->passphrase_len = *ret_len;
  return TRUE;
}

/* A re-key killed after its directory swap leaves the side directory with
 * the old-key copy: remove it (under swtpm's lock, like a re-key; skipped
 * while swtpm or another re-key runs) so that no copy under a retired
 * passphrase stays behind. */
static void
remove_rekey_leftover(const char *state_dir)
{
  (void)msvm_rekey_remove_leftover(state_dir, NULL);
}

static gboolean
state_opens_under(const MsvmStore *store, const char *state_dir, guint number)
{
  MsvmStateKey key;
  char *pass = NULL;
  gsize len = 0;
  gboolean ok;

  if (!make_key(store, number, &key, &pass, &len, NULL))
    return FALSE;
  ok = msvm_state_dir_check(state_dir, &key, NULL);
  msvm_passphrase_free(pass, len);
  return ok;
}

gboolean
msvm_store_locate_state(MsvmStore *store, const char *state_dir, gboolean *ret_changed,
                        GError **error)
{
  struct stat st;
  g_autoptr(GError) first = NULL;
  MsvmStateKey key;
  char *pass = NULL;
  gsize len = 0;
  gboolean ok;

  if (ret_changed != NULL)
    *ret_changed = FALSE;
  remove_rekey_leftover(state_dir);
  if (lstat(state_dir, &st) < 0 && errno == ENOENT)
    return TRUE;
  if (!make_key(store, store->state, &key, &pass, &len, error))
    return FALSE;
  ok = msvm_state_dir_check(state_dir, &key, &first);
  msvm_passphrase_free(pass, len);
  if (ok)
    return TRUE;
  if (first->domain != MSVM_ERROR || first->code != MSVM_RC_INVALID_STATE) {
    g_propagate_error(error, g_steal_pointer(&first));
    return FALSE;
  }
  /* A save image or snapshot restored with --force, or a state put back
   * from a backup: find the generation the state is really under. */
  for (guint i = 0; i <= store->generations->len; i++) {
    guint n = i < store->generations->len
                ? ((MsvmGeneration *)g_ptr_array_index(store->generations, i))->number : 0;
    if (n == store->state || !state_opens_under(store, state_dir, n))
      continue;
    store->state = n;
    if (ret_changed != NULL)
      *ret_changed = TRUE;
    return msvm_store_save(store, error);
  }
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
              "the vTPM state %s opens under none of the key protectors msvm-security holds "
              "for this VM (%s)", state_dir, first->message);
  return FALSE;
}

gboolean
msvm_store_rekey_to_current(MsvmStore *store, const char *state_dir, GError **error)
{
  MsvmStateKey old_key, new_key;
  char *old_pass = NULL, *new_pass = NULL;
  gsize old_len = 0, new_len = 0;
  struct stat st;
  gboolean ok;

  if (store->current == 0 || store->state == store->current)
    return TRUE; /* nothing to do; never re-key to plaintext */
  if (lstat(state_dir, &st) < 0 && errno == ENOENT) {
    /* No TPM yet: libvirt creates it encrypted under `current` at the first start. */
    store->state = store->current;
    return TRUE;
  }
  if (!make_key(store, store->state, &old_key, &old_pass, &old_len, error))
    return FALSE;
  if (!make_key(store, store->current, &new_key, &new_pass, &new_len, error)) {
    msvm_passphrase_free(old_pass, old_len);
    return FALSE;
  }
  ok = msvm_rekey_state_dir(state_dir, &old_key, &new_key, error);
  if (!ok && !g_error_matches(*error, MSVM_ERROR, MSVM_RC_IN_USE)) {
    /* Perhaps an earlier run re-keyed and died before recording it. */
    g_autoptr(GError) e = NULL;
    if (msvm_state_dir_check(state_dir, &new_key, &e)) {
      g_clear_error(error);
      ok = TRUE;
    }
  }
  msvm_passphrase_free(old_pass, old_len);
  msvm_passphrase_free(new_pass, new_len);
  if (!ok) {
    g_prefix_error(error, "re-keying the vTPM state %s from key protector generation %u to %u: ",
                   state_dir, store->state, store->current);
    return FALSE;
  }
  remove_rekey_leftover(state_dir);
  msvm_fault_point("after-rekey");
  store->state = store->current;
  return TRUE;
}

gboolean
msvm_store_finish_rekey(MsvmStore *store, const char *state_dir, GError **error)
{
  if (store->current == 0)
    return TRUE;
  if (store->state == store->current && !msvm_store_has_open_jobs(store))
    return TRUE;
  if (!msvm_store_rekey_to_current(store, state_dir, error))
    return FALSE;
  msvm_store_finish_jobs(store, NULL);
  return msvm_store_save(store, error);
}
