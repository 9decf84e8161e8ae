/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-store.c: the per-VM store without libvirt: paths, lock, atomic save
 * and load, seed, generations and their passphrases, the journal, jobs,
 * retirement, and finishing a change when no vTPM state exists yet.
 */
#include "config.h"

#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "msvm-error.h"
#include "msvm-kdf.h"
#include "msvm-change.h"
#include "msvm-store.h"

static const guint8 vm_uuid[16] = { 0x5f, 0x2b, 0x7a, 0x1c, 0x3d, 0x4e, 0x4f, 0x60,
                                    0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b };

typedef struct {
  char *root;
} Fixture;

static void
setup(Fixture *f, gconstpointer data)
{
  g_autofree char *tmp = g_dir_make_tmp("msvm-store-XXXXXX", NULL);
  g_assert_nonnull(tmp);
  f->root = g_build_filename(tmp, "store-root", NULL);
}

static void
rm_rf(const char *path)
{
  g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
  const char *name;

  if (d != NULL) {
    while ((name = g_dir_read_name(d)) != NULL) {
      g_autofree char *p = g_build_filename(path, name, NULL);
      rm_rf(p);
    }
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static void
teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *tmp = g_path_get_dirname(f->root);
  rm_rf(tmp);
  g_free(f->root);
}

static MsvmStore *
load(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  MsvmStore *store = NULL;
  g_assert_true(msvm_store_load(f->root, vm_uuid, &store, &error));
  g_assert_no_error(error);
  return store;
}

static void
save(MsvmStore *store)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(msvm_store_save(store, &error));
  g_assert_no_error(error);
}

static void
test_paths(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *sys = msvm_store_root(TRUE, 0, &error);
  struct passwd *pw = getpwuid(getuid());
  g_autofree char *sess = NULL, *want = NULL, *tpm = NULL, *tpm12 = NULL, *u = NULL;
  guint8 back[16];

  g_assert_cmpstr(sys, ==, "/var/lib/msvm-security");
  g_assert_nonnull(pw);
  /* the session store follows the password database, never $HOME */
  g_setenv("HOME", "/nonexistent-home", TRUE);
  sess = msvm_store_root(FALSE, getuid(), &error);
  g_assert_no_error(error);
  want = g_build_filename(pw->pw_dir, ".local", "share", "msvm-security", NULL);
  g_assert_cmpstr(sess, ==, want);

  tpm = msvm_swtpm_state_dir(TRUE, 0, vm_uuid, "2.0", &error);
  g_assert_cmpstr(tpm, ==, "/var/lib/libvirt/swtpm/5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b/tpm2");
  tpm12 = msvm_swtpm_state_dir(TRUE, 0, vm_uuid, "1.2", &error);
  g_assert_true(g_str_has_suffix(tpm12, "/tpm1.2"));

  u = msvm_uuid_to_string(vm_uuid);
  g_assert_cmpstr(u, ==, "5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b");
  g_assert_true(msvm_uuid_parse("5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B", back));
  g_assert_cmpmem(back, 16, vm_uuid, 16);
  g_assert_false(msvm_uuid_parse("5f2b7a1c", back));
}

static void
test_empty_and_modes(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autofree char *dir = NULL, *file = NULL;
  struct stat st;

  g_assert_false(store->exists);
  g_assert_false(store->has_seed);
  g_assert_cmpuint(store->current, ==, 0);
  /* loading creates nothing */
  g_assert_false(g_file_test(f->root, G_FILE_TEST_EXISTS));

  save(store);
  dir = g_build_filename(f->root, "5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b", NULL);
  file = g_build_filename(dir, "store", NULL);
  g_assert_cmpint(stat(f->root, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0700);
  g_assert_cmpint(stat(dir, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0700);
  g_assert_cmpint(stat(file, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0600);
  g_assert_true(store->has_seed);
}

static void
test_roundtrip(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(MsvmStore) again = NULL;
  guint8 seed[32];
  MsvmGeneration *g1, *g2, *g3, *r;
  MsvmStoreJob *job;
  g_autofree char *job_id = NULL;

  g1 = msvm_store_add_generation(store, (const guint8 *)"kp", 2, TRUE, NULL, 0, FALSE);
  g2 = msvm_store_add_generation(store, (const guint8 *)"kp", 2, TRUE,
                                 (const guint8 *)"po\0licy\n", 8, TRUE);
  /* an empty half that is set is not the same as an unset one */
  g3 = msvm_store_add_foreign_generation(store, "11111111-2222-3333-4444-555555555555",
                                         (const guint8 *)"old pass", 8);
  g_assert_cmpuint(g1->number, ==, 1);
  g_assert_cmpuint(g2->number, ==, 2);
  g_assert_cmpuint(g3->number, ==, 3);
  store->current = 2;
  store->state = 1;
  store->last_known_good = 1;
  store->stash = g_strdup("<graphics type='vnc' passwd='x'/>\n<console type='pty'/>");
  store->journal.open = TRUE;
  store->journal.target = 2;
  store->journal.new_generation = TRUE;
  store->journal.prev_current = 1;
  store->journal.prev_state = 1;
  store->journal.change_id = g_strdup("0a1b2c3d-0000-4000-8000-00000000c1d0");
  store->journal.has_stash = TRUE;
  store->journal.stash = NULL;
  job = msvm_store_add_job(store, "SetSecurityPolicy", 2);
  job_id = g_strdup(job->id);
  store->journal.job_id = g_strdup(job->id);
  save(store);
  memcpy(seed, store->seed, 32);

  again = load(f);
  g_assert_true(again->exists);
  g_assert_cmpmem(again->seed, 32, seed, 32);
  g_assert_cmpuint(again->generations->len, ==, 3);
  g_assert_cmpuint(again->next_generation, ==, 4);
  g_assert_cmpuint(again->current, ==, 2);
  g_assert_cmpuint(again->state, ==, 1);
  g_assert_cmpuint(again->last_known_good, ==, 1);
  g_assert_cmpstr(again->stash, ==, store->stash);
  r = msvm_store_get_generation(again, 2);
  g_assert_nonnull(r);
  g_assert_cmpstr(r->secret_uuid, ==, g2->secret_uuid);
  g_assert_true(r->has_key_protector);
  g_assert_cmpmem(r->key_protector, r->key_protector_len, "kp", 2);
  g_assert_true(r->has_policy);
  g_assert_cmpmem(r->policy, r->policy_len, "po\0licy\n", 8);
  r = msvm_store_get_generation(again, 1);
  g_assert_false(r->has_policy);
  r = msvm_store_find_generation_by_secret(again, "11111111-2222-3333-4444-555555555555");
  g_assert_nonnull(r);
  g_assert_true(r->foreign);
  g_assert_cmpmem(r->foreign_passphrase, r->foreign_passphrase_len, "old pass", 8);
  /* secret UUIDs compare as UUIDs, not strings */
  g_assert_true(msvm_store_find_generation_by_secret(
                  again, "11111111-2222-3333-4444-555555555555") ==
                msvm_store_find_generation_by_secret(
                  again, "11111111-2222-3333-4444-555555555555"));
  {
    g_autofree char *upper = g_ascii_strup(g2->secret_uuid, -1);
    g_assert_nonnull(msvm_store_find_generation_by_secret(again, upper));
  }
  g_assert_true(again->journal.open);
  g_assert_cmpuint(again->journal.target, ==, 2);
  g_assert_true(again->journal.new_generation);
  g_assert_cmpstr(again->journal.change_id, ==, store->journal.change_id);
  g_assert_null(again->journal.domain_xml); /* never written: it may hold passwords */
  g_assert_true(again->journal.has_stash);
  g_assert_null(again->journal.stash);
  g_assert_cmpstr(again->journal.job_id, ==, job_id);
  job = msvm_store_get_job(again, job_id);
  g_assert_nonnull(job);
  g_assert_cmpuint(job->state, ==, MSVM_JOB_RUNNING);
  g_assert_cmpuint(job->target, ==, 2);
  g_assert_cmpstr(job->method, ==, "SetSecurityPolicy");

  /* the seed is created once */
  save(again);
  {
    g_autoptr(MsvmStore) third = load(f);
    g_assert_cmpmem(third->seed, 32, seed, 32);
  }
}

static void
test_passphrase_vector(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(GError) error = NULL;
  MsvmGeneration *both, *no_kp, *no_pol, *foreign;
  char *pass = NULL;
  gsize len = 0;

  for (int i = 0; i < 32; i++)
    store->seed[i] = (guint8)i;
  store->has_seed = TRUE;
  both = msvm_store_add_generation(store, (const guint8 *)"key-protector", 13, TRUE,
                                   (const guint8 *)"policy", 6, TRUE);
  no_kp = msvm_store_add_generation(store, NULL, 0, FALSE, (const guint8 *)"policy", 6, TRUE);
  no_pol = msvm_store_add_generation(store, (const guint8 *)"key-protector", 13, TRUE, NULL, 0,
                                     FALSE);
  foreign = msvm_store_add_foreign_generation(store, "11111111-2222-3333-4444-555555555555",
                                              (const guint8 *)"abc", 3);

  g_assert_true(msvm_store_generation_passphrase(store, both, &pass, &len, &error));
  g_assert_cmpuint(len, ==, 64);
  g_assert_cmpstr(pass, ==, "8e88a3b30728b41185deac01e8f503460d1bae710d666968789a7e4487a10c79");
  msvm_passphrase_free(pass, len);
  g_assert_true(msvm_store_generation_passphrase(store, no_kp, &pass, &len, &error));
  g_assert_cmpstr(pass, ==, "2376323d277495c836cecb525df74336f14402295cbe0acc4962dfaf73b3d751");
  msvm_passphrase_free(pass, len);
  g_assert_true(msvm_store_generation_passphrase(store, no_pol, &pass, &len, &error));
  g_assert_cmpstr(pass, ==, "898a6ccd2b8d6b008c4c44699c25f676c2ab171c1e88a622ff284c99fbf671ad");
  msvm_passphrase_free(pass, len);
  g_assert_true(msvm_store_generation_passphrase(store, foreign, &pass, &len, &error));
  g_assert_cmpstr(pass, ==, "abc");
  g_assert_cmpuint(len, ==, 3);
  msvm_passphrase_free(pass, len);

  /* a derivation version this build does not know is refused */
  store->kdf_version = 99;
  g_assert_false(msvm_store_generation_passphrase(store, both, &pass, &len, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED);
}

static gboolean
listed(GPtrArray *a, guint n)
{
  for (guint i = 0; i < a->len; i++) {
    if (GPOINTER_TO_UINT(g_ptr_array_index(a, i)) == n)
      return TRUE;
  }
  return FALSE;
}

static void
test_retirement(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(GPtrArray) un = NULL;
  MsvmGeneration *gens[8];
  MsvmStoreJob *job;
  const char *refs[3] = { NULL, NULL, NULL };

  for (int i = 0; i < 8; i++)
    gens[i] = msvm_store_add_generation(store, (const guint8 *)&i, sizeof(i), TRUE, NULL, 0,
                                        FALSE);
  /* 1 current, 2 state, 3 last known good, 4 a running job's target,
   * 5 named by a snapshot, 6 a finished job's target, 7 and 8 nothing */
  store->current = 1;
  store->state = 2;
  store->last_known_good = 3;
  msvm_store_add_job(store, "SetKeyProtector", 4);
  job = msvm_store_add_job(store, "SetKeyProtector", 6);
  msvm_store_job_set_state(job, MSVM_JOB_COMPLETED, NULL);
  {
    g_autofree char *upper = g_ascii_strup(gens[4]->secret_uuid, -1);
    refs[0] = upper;
    un = msvm_store_unneeded_generations(store, refs);
  }
  g_assert_cmpuint(un->len, ==, 3);
  g_assert_true(listed(un, 6));
  g_assert_true(listed(un, 7));
  g_assert_true(listed(un, 8));
  g_clear_pointer(&un, g_ptr_array_unref);

  /* an open journal keeps its target and the generations in force */
  store->journal.open = TRUE;
  store->journal.target = 8;
  store->journal.prev_current = 7;
  store->journal.prev_state = 2;
  un = msvm_store_unneeded_generations(store, NULL);
  g_assert_cmpuint(un->len, ==, 2);
  g_assert_true(listed(un, 5));
  g_assert_true(listed(un, 6));
  g_clear_pointer(&un, g_ptr_array_unref);

  /* dropping wipes and removes */
  msvm_store_drop_generation(store, 6);
  g_assert_null(msvm_store_get_generation(store, 6));
  g_assert_cmpuint(store->generations->len, ==, 7);
}

static void
test_record_started(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  MsvmGeneration *a = msvm_store_add_generation(store, (const guint8 *)"a", 1, TRUE, NULL, 0,
                                                FALSE);
  MsvmGeneration *b = msvm_store_add_generation(store, (const guint8 *)"b", 1, TRUE, NULL, 0,
                                                FALSE);

  store->current = b->number;
  store->last_known_good = a->number;
  g_assert_false(msvm_store_record_started(store, "00000000-0000-0000-0000-000000000000"));
  g_assert_cmpuint(store->last_known_good, ==, a->number);
  g_assert_true(msvm_store_record_started(store, b->secret_uuid));
  g_assert_cmpuint(store->last_known_good, ==, b->number);
  g_assert_true(store->lkg_from_start);
}

static void
test_lock(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  int fd1, fd2;

  fd1 = msvm_store_lock(f->root, vm_uuid, TRUE, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fd1, >=, 0);
  g_assert_cmpint(fcntl(fd1, F_GETFD) & FD_CLOEXEC, !=, 0);
  /* an open-file-description lock conflicts even within one process */
  fd2 = msvm_store_lock(f->root, vm_uuid, FALSE, &error);
  g_assert_cmpint(fd2, ==, -1);
  g_assert_error(error, MSVM_ERROR, MSVM_RC_IN_USE);
  g_clear_error(&error);
  close(fd1);
  fd2 = msvm_store_lock(f->root, vm_uuid, FALSE, &error);
  g_assert_no_error(error);
  g_assert_cmpint(fd2, >=, 0);
  close(fd2);
}

/* `forget` removes the lock file and the directory while it holds the lock.
 * A process that was waiting for the lock must not then hold it on the
 * removed file, which a newcomer does not see (two holders): it takes the
 * lock again on the file now at the path.  Fails without that retry. */
static void
test_lock_removed_while_waiting(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *u = msvm_uuid_to_string(vm_uuid);
  g_autofree char *dir = g_build_filename(f->root, u, NULL);
  g_autofree char *path = g_build_filename(dir, "lock", NULL);
  int ready[2], release[2];
  int fd, status = 0;
  char byte = 0;
  pid_t child;

  fd = msvm_store_lock(f->root, vm_uuid, TRUE, &error);
  g_assert_no_error(error);
  g_assert_cmpint(pipe(ready), ==, 0);
  g_assert_cmpint(pipe(release), ==, 0);
  child = fork();
  g_assert_cmpint(child, >=, 0);
  if (child == 0) {
    /* waits for the parent's lock; then says so and holds it until told
     * (the parent's descriptor first: fork shares its open file
     * description, and with it the lock) */
    int held;
    close(fd);
    held = msvm_store_lock(f->root, vm_uuid, TRUE, NULL);
    struct stat st;
    char ok = held >= 0 && fstat(held, &st) == 0 && st.st_nlink > 0 ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1 || read(release[0], &byte, 1) != 1)
      _exit(2);
    _exit(0);
  }
  /* (the child is blocked in the lock by now, or soon: either way it must
   * end up with the new file's lock) */
  g_usleep(200 * 1000);
  g_assert_cmpint(unlink(path), ==, 0);
  g_assert_cmpint(rmdir(dir), ==, 0);
  close(fd);

  g_assert_cmpint(read(ready[0], &byte, 1), ==, 1);
  g_assert_cmpint(byte, ==, 'y');
  /* the child holds the lock: a newcomer must find it taken */
  fd = msvm_store_lock(f->root, vm_uuid, FALSE, &error);
  g_assert_cmpint(fd, ==, -1);
  g_assert_error(error, MSVM_ERROR, MSVM_RC_IN_USE);
  g_assert_cmpint(write(release[1], "x", 1), ==, 1);
  g_assert_cmpint(waitpid(child, &status, 0), ==, child);
  g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(ready[0]);
  close(ready[1]);
  close(release[0]);
  close(release[1]);
}

static void
test_jobs(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStoreJob) found = NULL;
  g_autofree char *vm = NULL, *ref = NULL, *id = NULL, *upper = NULL;
  g_autoptr(GPtrArray) jobs = NULL;
  MsvmStoreJob *a, *b;
  g_autoptr(GError) failure = g_error_new(MSVM_ERROR, MSVM_RC_INVALID_STATE, "wrong key");

  a = msvm_store_add_job(store, "SetKeyProtector", 1);
  b = msvm_store_add_job(store, "SetSecurityPolicy", 2);
  g_assert_true(msvm_store_has_open_jobs(store));
  save(store);

  ref = msvm_job_reference(a->id);
  g_assert_true(g_str_has_prefix(ref, "Msvm_ConcreteJob.InstanceID=\""));
  id = msvm_job_id_from_reference(ref);
  g_assert_cmpstr(id, ==, a->id);
  upper = g_ascii_strup(a->id, -1);
  g_clear_pointer(&id, g_free);
  id = msvm_job_id_from_reference(upper);
  g_assert_cmpstr(id, ==, a->id);
  g_assert_null(msvm_job_id_from_reference("not-a-job"));
  g_assert_null(msvm_job_id_from_reference("Msvm_ConcreteJob.InstanceID=\"x"));

  /* any process finds a job by id under the root, without the VM */
  g_assert_true(msvm_store_find_job(f->root, b->id, &found, &vm, &error));
  g_assert_no_error(error);
  g_assert_nonnull(found);
  g_assert_cmpstr(found->method, ==, "SetSecurityPolicy");
  g_assert_cmpstr(vm, ==, "5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b");
  g_clear_pointer(&found, msvm_store_job_free);
  g_assert_true(msvm_store_find_job(f->root, "00000000-0000-0000-0000-000000000000", &found,
                                    NULL, &error));
  g_assert_null(found);

  msvm_store_finish_jobs(store, failure);
  g_assert_cmpuint(a->state, ==, MSVM_JOB_EXCEPTION);
  g_assert_cmpuint(a->error_code, ==, MSVM_RC_INVALID_STATE);
  g_assert_cmpstr(a->error_description, ==, "wrong key");
  g_assert_false(msvm_store_has_open_jobs(store));
  save(store);
  g_assert_true(msvm_store_list_jobs(f->root, &jobs, NULL, &error));
  g_assert_cmpuint(jobs->len, ==, 2);
  g_assert_cmpuint(((MsvmStoreJob *)g_ptr_array_index(jobs, 0))->state, ==,
                   MSVM_JOB_EXCEPTION);
}

/* The hook's side of the change protocol (no host: nothing defined). */
static MsvmChange
hook_change(MsvmStore *store, const char *state_dir, const char *secret, const char *change_id)
{
  MsvmChange change = {
    .actor = MSVM_CHANGE_BY_HOOK,
    .store = store,
    .state_dir = state_dir,
    .vm_name = "test-vm",
  };
  change.definition.secret = g_strdup(secret);
  change.definition.change_id = g_strdup(change_id);
  return change;
}

static void
test_finish_without_state(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(MsvmStore) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename(f->root, "no-such-tpm2", NULL);
  MsvmGeneration *g = msvm_store_add_generation(store, (const guint8 *)"a", 1, TRUE, NULL, 0,
                                                FALSE);
  MsvmStoreJob *job = msvm_store_add_job(store, "SetKeyProtector", g->number);
  MsvmChange change;

  store->current = g->number;
  store->state = 0;
  save(store);
  /* no state yet: libvirt creates it under `current`; the job completes */
  change = hook_change(store, missing, g->secret_uuid, NULL);
  g_assert_true(msvm_change_finish(&change, NULL, &error));
  msvm_change_clear(&change);
  g_assert_no_error(error);
  g_assert_cmpuint(store->state, ==, g->number);
  g_assert_cmpuint(job->state, ==, MSVM_JOB_COMPLETED);
  g_assert_cmpuint(job->error_code, ==, 0);
  again = load(f);
  g_assert_cmpuint(again->state, ==, g->number);
}

/* Two generations, the state under the first and `current` the second
 * (a re-key is due), saved; @state_dir created, empty. */
static void
pending_rekey(MsvmStore *store, const char *state_dir, MsvmGeneration **ret_g1,
              MsvmGeneration **ret_g2)
{
  MsvmGeneration *g1 = msvm_store_add_generation(store, (const guint8 *)"a", 1, TRUE, NULL, 0,
                                                 FALSE);
  MsvmGeneration *g2 = msvm_store_add_generation(store, (const guint8 *)"b", 1, TRUE, NULL, 0,
                                                 FALSE);

  store->current = g2->number;
  store->state = g1->number;
  save(store);
  g_assert_cmpint(g_mkdir(state_dir, 0700), ==, 0);
  *ret_g1 = g1;
  *ret_g2 = g2;
}

/* libvirt 9.6+ leaves an empty tpm2 directory for "no TPM yet" (issue 8,
 * finding 5): finishing takes it as a new TPM, never as a damaged state. */
static void
test_finish_empty_state_dir(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(GError) error = NULL;
  g_autofree char *state_dir = g_build_filename(f->root, "tpm2", NULL);
  g_autofree char *lock = g_build_filename(state_dir, ".lock", NULL);
  MsvmGeneration *g1, *g2;
  MsvmChange change;

  pending_rekey(store, state_dir, &g1, &g2);
  g_assert_true(msvm_change_state_is_new(state_dir));
  change = hook_change(store, state_dir, g2->secret_uuid, NULL);
  g_assert_true(msvm_change_finish(&change, NULL, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(store->state, ==, g2->number);
  /* only swtpm's .lock in it: still no TPM */
  g_assert_true(g_file_set_contents(lock, "", 0, NULL));
  g_assert_true(msvm_change_state_is_new(state_dir));
  g_assert_true(msvm_change_finish(&change, NULL, &error));
  g_assert_no_error(error);
  msvm_change_clear(&change);
}

/* A damaged state (here a truncated permall) is not a wrong key (issue 9):
 * finishing says it cannot be opened whatever the key, without trying
 * every generation and blaming the key protectors, and moves nothing. */
static void
test_finish_damaged_state(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(MsvmStore) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state_dir = g_build_filename(f->root, "tpm2", NULL);
  g_autofree char *permall = g_build_filename(state_dir, "tpm2-00.permall", NULL);
  MsvmGeneration *g1, *g2;
  MsvmChange change;

  pending_rekey(store, state_dir, &g1, &g2);
  g_assert_true(g_file_set_contents(permall, "\x02\x01\x00", 3, NULL));
  change = hook_change(store, state_dir, g2->secret_uuid, NULL);
  g_assert_false(msvm_change_finish(&change, NULL, &error));
  msvm_change_clear(&change);
  g_assert_nonnull(error);
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
  if (strstr(error->message, "whatever the key") == NULL ||
      strstr(error->message, "shorter than the header") == NULL)
    g_error("unexpected message: %s", error->message);
  g_assert_cmpuint(store->state, ==, g1->number);
  again = load(f);
  g_assert_cmpuint(again->state, ==, g1->number);
}

/* An open journal is resolved by the definition, whoever finishes: it
 * carries the journal's change id (the define took effect) or not. */
static void
test_journal_resolved_by_definition(Fixture *f, gconstpointer data)
{
  const gboolean took_effect = GPOINTER_TO_INT(data);
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(MsvmStore) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename(f->root, "no-such-tpm2", NULL);
  MsvmGeneration *g1 = msvm_store_add_generation(store, (const guint8 *)"a", 1, TRUE, NULL, 0,
                                                 FALSE);
  MsvmGeneration *g2 = msvm_store_add_generation(store, (const guint8 *)"b", 1, TRUE, NULL, 0,
                                                 FALSE);
  const char *id = "6b1f3c7e-8a0d-4c59-9e21-3f4a5b6c7d8e";
  MsvmStoreJob *job = msvm_store_add_job(store, "SetKeyProtector", g2->number);
  MsvmChange change;
  gboolean did = FALSE;

  store->current = store->state = g1->number;
  store->journal.open = TRUE;
  store->journal.target = g2->number;
  store->journal.new_generation = TRUE;
  store->journal.prev_current = store->journal.prev_state = g1->number;
  store->journal.change_id = g_strdup(id);
  store->journal.job_id = g_strdup(job->id);
  save(store);

  change = took_effect ? hook_change(store, missing, g2->secret_uuid, id)
                       : hook_change(store, missing, g1->secret_uuid, NULL);
  g_assert_true(msvm_change_finish(&change, &did, &error));
  g_assert_no_error(error);
  msvm_change_clear(&change);
  g_assert_true(did);
  again = load(f);
  g_assert_false(again->journal.open); /* I4: no journal after finishing */
  g_assert_cmpuint(again->current, ==, took_effect ? g2->number : g1->number);
  g_assert_cmpuint(again->state, ==, again->current);
  /* the target stays until retire asks the daemon what still names it */
  g_assert_nonnull(msvm_store_get_generation(again, g2->number));
  job = msvm_store_get_job(again, job->id);
  g_assert_cmpuint(job->state, ==, took_effect ? MSVM_JOB_COMPLETED : MSVM_JOB_EXCEPTION);
}

static void
test_leftovers(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = NULL, *side = NULL, *side_file = NULL, *state_dir = NULL;
  MsvmChange change;
  int fd;

  save(store);
  /* a store write killed before its rename leaves store.tmp (secrets):
   * taking the lock clears it */
  tmp = g_build_filename(store->dir, "store.tmp", NULL);
  g_assert_true(g_file_set_contents(tmp, "[store]\nseed=secret\n", -1, NULL));
  fd = msvm_store_lock(f->root, vm_uuid, TRUE, &error);
  g_assert_no_error(error);
  g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
  close(fd);

  /* a re-key killed after its swap leaves the side directory with the
   * old-key copy: finishing removes it, even with nothing to re-key */
  state_dir = g_build_filename(f->root, "tpm2", NULL);
  side = g_build_filename(f->root, ".tpm2.msvm-rekey", NULL);
  side_file = g_build_filename(side, "tpm2-00.permall", NULL);
  g_assert_cmpint(g_mkdir(side, 0700), ==, 0);
  g_assert_true(g_file_set_contents(side_file, "old key copy", -1, NULL));
  {
    g_autofree char *lock = g_build_filename(state_dir, ".lock", NULL);
    g_autofree char *side_lock = g_build_filename(side, ".lock", NULL);
    g_assert_cmpint(g_mkdir(state_dir, 0700), ==, 0);
    g_assert_true(g_file_set_contents(lock, "", 0, NULL));
    g_assert_true(g_file_set_contents(side_lock, "", 0, NULL));
  }
  change = hook_change(store, state_dir, NULL, NULL);
  g_assert_true(msvm_change_finish(&change, NULL, &error));
  g_assert_no_error(error);
  msvm_change_clear(&change);
  g_assert_false(g_file_test(side, G_FILE_TEST_EXISTS));
}

static void
test_damaged(Fixture *f, gconstpointer data)
{
  g_autoptr(MsvmStore) store = load(f);
  g_autoptr(GError) error = NULL;
  g_autofree char *file = NULL;
  MsvmStore *bad = NULL;

  save(store);
  file = g_build_filename(store->dir, "store", NULL);
  g_assert_true(g_file_set_contents(file, "[store]\nversion=7\n", -1, NULL));
  g_assert_false(msvm_store_load(f->root, vm_uuid, &bad, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_null(bad);
  g_clear_error(&error);
  g_assert_true(g_file_set_contents(file, "\x01\x02 not a key file", -1, NULL));
  g_assert_false(msvm_store_load(f->root, vm_uuid, &bad, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_clear_error(&error);
  /* a seed that does not read (not UTF-8: it reads as missing) under a
   * generation: refused, not a new seed drawn at the next save */
  g_assert_true(g_file_set_contents(file,
                                    "[store]\nversion=1\nseed=\xff\xfe\n\n"
                                    "[generation 1]\nsecret=0b9e2c4a-1d3f-4a5b-8c7d-9e0f1a2b3c4d\n",
                                    -1, NULL));
  g_assert_false(msvm_store_load(f->root, vm_uuid, &bad, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_nonnull(strstr(error->message, "no seed"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/store/paths", test_paths);
#define ADD(name, fn) g_test_add("/store/" name, Fixture, NULL, setup, fn, teardown)
  ADD("empty-and-modes", test_empty_and_modes);
  ADD("roundtrip", test_roundtrip);
  ADD("passphrase-vector", test_passphrase_vector);
  ADD("retirement", test_retirement);
  ADD("record-started", test_record_started);
  ADD("lock", test_lock);
  ADD("lock-removed-while-waiting", test_lock_removed_while_waiting);
  ADD("jobs", test_jobs);
  ADD("finish-without-state", test_finish_without_state);
  ADD("finish-empty-state-dir", test_finish_empty_state_dir);
  ADD("finish-damaged-state", test_finish_damaged_state);
  g_test_add("/store/journal-took-effect", Fixture, GINT_TO_POINTER(TRUE), setup,
             test_journal_resolved_by_definition, teardown);
  g_test_add("/store/journal-abandoned", Fixture, GINT_TO_POINTER(FALSE), setup,
             test_journal_resolved_by_definition, teardown);
  ADD("leftovers", test_leftovers);
  ADD("damaged", test_damaged);
  return g_test_run();
}
