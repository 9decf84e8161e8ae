/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-store-job.c: CIM_ConcreteJob records kept in the per-VM store.
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

  job->id = g_uuid_string_random();
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
      if (!msvm_uuid_parse(name, uuid))
        continue;
      if (!msvm_store_load(root, uuid, &store, &e))
        continue; /* a damaged entry does not hide the others' jobs */
      for (guint i = 0; i < store->jobs->len; i++) {
        g_ptr_array_add(jobs, job_copy(g_ptr_array_index(store->jobs, i)));
        g_ptr_array_add(vms, msvm_uuid_to_string(uuid));
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

