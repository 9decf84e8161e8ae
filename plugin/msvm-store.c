/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-store.c: the per-VM store: paths, lock, atomic load and save,
 * generations (see msvm-store.h and docs/msvm-security-store.rst).
 */
#include "config.h"

#include "msvm-store.h"
#include "msvm-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-secret.h"
#include "msvm-fault.h"
#include "msvm-kdf.h"
#include "msvm-keyfile.h"

#define STORE_FILE "store"
#define LOCK_FILE "lock"
#define STORE_FILE_MAX_SIZE (64 * 1024 * 1024)
#define SYSTEM_STORE_ROOT "/var/lib/msvm-security"
#define SYSTEM_SWTPM_ROOT "/var/lib/libvirt/swtpm"

/* ------------------------------------------------------------------------ */

static void
wipe_free(guint8 *buf, gsize len)
{
  if (buf == NULL)
    return;
  msvm_wipe(buf, len);
  g_free(buf);
}

void
msvm_generation_free(MsvmGeneration *gen)
{
  if (gen == NULL)
    return;
  g_free(gen->secret_uuid);
  wipe_free(gen->key_protector, gen->key_protector_len);
  wipe_free(gen->policy, gen->policy_len);
  wipe_free(gen->foreign_passphrase, gen->foreign_passphrase_len);
  g_free(gen);
}

void
msvm_store_job_free(MsvmStoreJob *job)
{
  if (job == NULL)
    return;
  g_free(job->id);
  g_free(job->method);
  g_free(job->error_description);
  g_free(job);
}

void
msvm_store_journal_clear(MsvmJournal *j)
{
  g_free(j->domain_xml);
  g_free(j->change_id);
  msvm_secret_text_free(j->stash);
  g_free(j->job_id);
  memset(j, 0, sizeof(*j));
}

void
msvm_store_free(MsvmStore *store)
{
  if (store == NULL)
    return;
  g_free(store->dir);
  msvm_wipe(store->seed, sizeof(store->seed));
  g_ptr_array_unref(store->generations);
  g_ptr_array_unref(store->jobs);
  msvm_secret_text_free(store->stash);
  msvm_store_journal_clear(&store->journal);
  g_free(store);
}

static MsvmStore *
store_new(const char *dir, const guint8 uuid[16])
{
  MsvmStore *store = g_new0(MsvmStore, 1);

  store->dir = g_strdup(dir);
  memcpy(store->uuid, uuid, 16);
  store->kdf_version = MSVM_KDF_VERSION;
  store->next_generation = 1;
  store->generations = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_generation_free);
  store->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_store_job_free);
  return store;
}

MsvmStore *
msvm_store_new(const char *dir, const guint8 uuid[16])
{
  return store_new(dir, uuid);
}

char *
msvm_store_secret_usage(const guint8 uuid[16], guint number)
{
  g_autofree char *u = msvm_uuid_to_string(uuid);
  return g_strdup_printf("msvm-security/%s/%u", u, number);
}

/* --- paths ----------------------------------------------------------------- */

char *
msvm_user_home(uid_t uid, GError **error)
{
  struct passwd pw, *res = NULL;
  g_autofree char *buf = NULL;
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  int rc;

  if (size < 4096)
    size = 16384;
  buf = g_malloc(size);
  rc = getpwuid_r(uid, &pw, buf, size, &res);
  if (rc != 0 || res == NULL || pw.pw_dir == NULL || pw.pw_dir[0] != '/') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "no home directory for user id %u in the password database", (guint)uid);
    return NULL;
  }
  return g_strdup(pw.pw_dir);
}

char *
msvm_store_root(gboolean system, uid_t uid, GError **error)
{
  g_autofree char *home = NULL;

  if (system)
    return g_strdup(SYSTEM_STORE_ROOT);
  home = msvm_user_home(uid, error);
  if (home == NULL)
    return NULL;
  return g_build_filename(home, ".local", "share", "msvm-security", NULL);
}

char *
msvm_swtpm_state_dir(gboolean system, uid_t uid, const guint8 uuid[16], const char *version,
                     GError **error)
{
  g_autofree char *u = msvm_uuid_to_string(uuid);
  const char *leaf = g_strcmp0(version, "1.2") == 0 ? "tpm1.2" : "tpm2";
  g_autofree char *home = NULL;

  if (system)
    return g_build_filename(SYSTEM_SWTPM_ROOT, u, leaf, NULL);
  home = msvm_user_home(uid, error);
  if (home == NULL)
    return NULL;
  return g_build_filename(home, ".config", "libvirt", "qemu", "swtpm", u, leaf, NULL);
}

/* --- files ----------------------------------------------------------------- */

static gboolean
ensure_dir(const char *path, GError **error)
{
  struct stat st;

  /* (a new directory is fsync'ed into its parent: a crash must not lose
   * the store a change was just recorded in) */
  if (!msvm_mkdir_durable(path, 0700, NULL, error))
    return FALSE;
  if (lstat(path, &st) < 0)
    return msvm_set_error_errno(error, errno, "cannot stat %s", path);
  if (!S_ISDIR(st.st_mode)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "%s is not a directory", path);
    return FALSE;
  }
  if (st.st_uid != geteuid()) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                "%s belongs to another user", path);
    return FALSE;
  }
  if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
    return msvm_set_error_errno(error, errno, "cannot set the mode of %s", path);
  return TRUE;
}

static gboolean
ensure_root(const char *root, GError **error)
{
  g_autofree char *parent = g_path_get_dirname(root);

  /* Parents of a session root (~/.local/share) get the usual 0700/0755. */
  if (!msvm_mkdir_with_parents_durable(parent, 0700, error))
    return FALSE;
  return ensure_dir(root, error);
}

/* Lock files can go: `forget` removes a VM's entry, lock file and
 * directory while it holds the lock.  A process that waited for that lock
 * then holds it on a file no longer in the directory, which a newcomer does
 * not see: two holders.  So a lock counts only on the file still at @path
 * (same device and inode, linked); otherwise it is taken again on the new
 * one.  @ret_gone: the directory itself is gone (ENOENT). */
static int
lock_file_once(const char *path, gboolean wait, const char *what, gboolean *ret_gone,
               GError **error)
{
  for (guint attempt = 0; attempt < 100; attempt++) {
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    struct stat held, now;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
      *ret_gone = errno == ENOENT;
      msvm_set_error_errno(error, errno, "cannot open %s", path);
      return -1;
    }
    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
      int saved = errno;
      if (saved == EINTR)
        continue;
      close(fd);
      if (saved == EAGAIN || saved == EACCES) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_IN_USE, "%s is in progress", what);
        return -1;
      }
      msvm_set_error_errno(error, saved, "cannot lock %s", path);
      return -1;
    }
    if (fstat(fd, &held) == 0 && held.st_nlink > 0 && lstat(path, &now) == 0 &&
        now.st_dev == held.st_dev && now.st_ino == held.st_ino)
      return fd;
    /* removed (or replaced) while we waited: take the lock on what is there */
    close(fd);
  }
  g_set_error(error, MSVM_ERROR, MSVM_RC_IN_USE, "%s is in progress (its lock file keeps "
              "being replaced)", what);
  return -1;
}

int
msvm_store_lock_file(const char *path, gboolean wait, const char *what, GError **error)
{
  gboolean gone = FALSE;
  return lock_file_once(path, wait, what, &gone, error);
}

int
msvm_store_lock(const char *root, const guint8 uuid[16], gboolean wait, GError **error)
{
  g_autofree char *u = msvm_uuid_to_string(uuid);
  g_autofree char *dir = g_build_filename(root, u, NULL);
  g_autofree char *path = g_build_filename(dir, LOCK_FILE, NULL);
  g_autofree char *what = g_strdup_printf("another msvm-security change of VM %s", u);
  int fd;

  for (guint attempt = 0;; attempt++) {
    gboolean gone = FALSE;
    g_autoptr(GError) local = NULL;

    if (!ensure_root(root, error) || !ensure_dir(dir, error))
      return -1;
    fd = lock_file_once(path, wait, what, &gone, &local);
    if (fd >= 0)
      break;
    /* (the directory went between ensure_dir and the open: `forget`) */
    if (!gone || attempt >= 10) {
      g_propagate_error(error, g_steal_pointer(&local));
      return -1;
    }
  }
  {
    /* a write killed before its rename leaves store.tmp (it holds secrets):
     * under the lock nobody else is writing it */
    g_autofree char *tmp = g_build_filename(dir, STORE_FILE ".tmp", NULL);
    (void)unlink(tmp);
  }
  return fd;
}

/* --- (de)serialization ------------------------------------------------------ */

static char *
gen_group(guint n)
{
  return g_strdup_printf("generation %u", n);
}

static char *
job_group(const char *id)
{
  return g_strdup_printf("job %s", id);
}

/* (the store's secrets are base64 values of the key file, which wipes its
 * copies: msvm-keyfile.h) */
static gboolean
get_bytes(MsvmKeyFile *kf, const char *group, const char *key, guint8 **ret, gsize *ret_len,
          gboolean *ret_has)
{
  const char *v = msvm_key_file_get_string(kf, group, key);
  if (v == NULL) {
    *ret = NULL;
    *ret_len = 0;
    *ret_has = FALSE;
    return TRUE;
  }
  *ret = g_base64_decode(v, ret_len);
  *ret_has = TRUE;
  return TRUE;
}

static void
set_bytes(MsvmKeyFile *kf, const char *group, const char *key, const guint8 *data, gsize len)
{
  g_autofree char *b64 = g_base64_encode(data, len);
  msvm_key_file_set_string(kf, group, key, b64);
  msvm_wipe(b64, strlen(b64));
}

static char *
get_string(MsvmKeyFile *kf, const char *group, const char *key)
{
  return g_strdup(msvm_key_file_get_string(kf, group, key));
}

static guint
get_uint(MsvmKeyFile *kf, const char *group, const char *key, guint dflt)
{
  guint64 v = 0;
  return msvm_key_file_get_uint64(kf, group, key, &v) ? (guint)v : dflt;
}

static gint64
get_int64(MsvmKeyFile *kf, const char *group, const char *key)
{
  gint64 v = 0;
  return msvm_key_file_get_int64(kf, group, key, &v) ? v : 0;
}

static gboolean
parse_store(MsvmStore *store, MsvmKeyFile *kf, GError **error)
{
  const char *seed;
  guint version = get_uint(kf, "store", "version", 0);

  if (version != MSVM_STORE_FORMAT_VERSION) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "store %s has format version %u, this build reads %u", store->dir, version,
                MSVM_STORE_FORMAT_VERSION);
    return FALSE;
  }
  seed = msvm_key_file_get_string(kf, "store", "seed");
  if (seed != NULL) {
    gsize len = 0;
    guint8 *raw = g_base64_decode(seed, &len);
    if (len != sizeof(store->seed)) {
      wipe_free(raw, len);
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "store %s has a damaged seed",
                  store->dir);
      return FALSE;
    }
    memcpy(store->seed, raw, len);
    wipe_free(raw, len);
    store->has_seed = TRUE;
  }
  store->kdf_version = get_uint(kf, "store", "kdf-version", MSVM_KDF_VERSION);
  store->next_generation = get_uint(kf, "store", "next-generation", 1);
  store->current = get_uint(kf, "store", "current", 0);
  store->state = get_uint(kf, "store", "state", 0);
  store->last_known_good = get_uint(kf, "store", "last-known-good", 0);
  store->lkg_from_start = msvm_key_file_get_boolean(kf, "store", "last-known-good-from-start");
  store->stash = get_string(kf, "stash", "devices");

  if (msvm_key_file_has_group(kf, "journal")) {
    MsvmJournal *j = &store->journal;
    j->open = TRUE;
    j->target = get_uint(kf, "journal", "target", 0);
    j->new_generation = msvm_key_file_get_boolean(kf, "journal", "new-generation");
    j->prev_current = get_uint(kf, "journal", "previous-current", 0);
    j->prev_state = get_uint(kf, "journal", "previous-state", 0);
    j->domain_xml = get_string(kf, "journal", "domain-xml");
    j->change_id = get_string(kf, "journal", "change-id");
    j->stash = get_string(kf, "journal", "stash");
    j->has_stash = j->stash != NULL;
    j->job_id = get_string(kf, "journal", "job");
    if (j->stash != NULL && j->stash[0] == '\0')
      g_clear_pointer(&j->stash, msvm_secret_text_free);
  }

  for (guint i = 0; i < msvm_key_file_n_groups(kf); i++) {
    const char *g = msvm_key_file_group_name(kf, i);
    if (g_str_has_prefix(g, "generation ")) {
      MsvmGeneration *gen = g_new0(MsvmGeneration, 1);
      guint8 secret[16];
      guint64 number = 0;
      gboolean has_passphrase = FALSE;
      gboolean damaged;

      /* Only the name the store writes: "generation 1x" or "generation 01"
       * would be a second generation 1. */
      if (g_ascii_string_to_unsigned(g + strlen("generation "), 10, 1, G_MAXUINT, &number,
                                     NULL)) {
        g_autofree char *canonical = gen_group((guint)number);
        if (strcmp(canonical, g) != 0)
          number = 0;
      }
      gen->number = (guint)number;
      gen->secret_uuid = get_string(kf, g, "secret");
      gen->foreign = msvm_key_file_get_boolean(kf, g, "foreign");
      gen->created = get_int64(kf, g, "created");
      get_bytes(kf, g, "key-protector", &gen->key_protector, &gen->key_protector_len,
                &gen->has_key_protector);
      get_bytes(kf, g, "policy", &gen->policy, &gen->policy_len, &gen->has_policy);
      if (gen->foreign)
        get_bytes(kf, g, "passphrase", &gen->foreign_passphrase,
                  &gen->foreign_passphrase_len, &has_passphrase);
      /* Every generation is found by its secret, its own (the hook, the
       * provider), and a foreign one has the passphrase its secret holds. */
      damaged = gen->number == 0 || gen->secret_uuid == NULL ||
                !msvm_uuid_parse(gen->secret_uuid, secret) ||
                msvm_store_find_generation_by_secret(store, gen->secret_uuid) != NULL ||
                (gen->foreign && !has_passphrase);
      if (damaged) {
        msvm_generation_free(gen);
        g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "store %s: damaged [%s]",
                    store->dir, g);
        return FALSE;
      }
      g_ptr_array_add(store->generations, gen);
    } else if (g_str_has_prefix(g, "job ")) {
      MsvmStoreJob *job = g_new0(MsvmStoreJob, 1);
      job->id = g_strdup(g + strlen("job "));
      job->method = get_string(kf, g, "method");
      job->state = get_uint(kf, g, "state", MSVM_JOB_NEW);
      job->error_code = get_uint(kf, g, "error-code", 0);
      job->error_description = get_string(kf, g, "error-description");
      job->percent_complete = get_uint(kf, g, "percent-complete", 0);
      job->time_submitted = get_int64(kf, g, "time-submitted");
      job->time_changed = get_int64(kf, g, "time-of-last-state-change");
      job->target = get_uint(kf, g, "target", 0);
      g_ptr_array_add(store->jobs, job);
    }
  }
  /* A generation's passphrase derives from the seed: without it (a damaged
   * seed line reads as missing) a save would draw a new seed and every
   * passphrase would change, locking the VM out. */
  for (guint i = 0; !store->has_seed && i < store->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (!gen->foreign) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "store %s has generation %u but no seed: damaged", store->dir, gen->number);
      return FALSE;
    }
  }
  return TRUE;
}

static gint
gen_cmp(gconstpointer a, gconstpointer b)
{
  const MsvmGeneration *ga = *(MsvmGeneration *const *)a;
  const MsvmGeneration *gb = *(MsvmGeneration *const *)b;
  return ga->number < gb->number ? -1 : ga->number > gb->number;
}

void
msvm_store_sort_generations(MsvmStore *store)
{
  g_ptr_array_sort(store->generations, gen_cmp);
}

static gint
job_cmp(gconstpointer a, gconstpointer b)
{
  const MsvmStoreJob *ja = *(MsvmStoreJob *const *)a;
  const MsvmStoreJob *jb = *(MsvmStoreJob *const *)b;
  return ja->time_submitted < jb->time_submitted ? -1 : ja->time_submitted > jb->time_submitted;
}

gboolean
msvm_store_read_file(const char *path, gsize max, const char *kind, gboolean private_file,
                     GBytes **ret, guint32 *ret_mode, gboolean *ret_missing, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  gboolean too_long = FALSE;
  gboolean ok;
  int saved;

  *ret_missing = FALSE;
  if (fd < 0) {
    if (errno == ENOENT) {
      *ret_missing = TRUE;
      return TRUE;
    }
    return msvm_set_error_errno(error, errno, "cannot open %s", path);
  }
  if (fstat(fd, &st) < 0) {
    saved = errno;
    close(fd);
    return msvm_set_error_errno(error, saved, "cannot stat %s", path);
  }
  if (!S_ISREG(st.st_mode) || (gsize)st.st_size > max) {
    close(fd);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "%s is not a %s file", path, kind);
    return FALSE;
  }
  if (private_file && (st.st_uid != geteuid() || (st.st_mode & 0077) != 0)) {
    close(fd);
    g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
                "%s must belong to this user and be readable by it alone", path);
    return FALSE;
  }
  ok = msvm_secret_read_fd(fd, max, ret, &too_long);
  saved = errno;
  close(fd);
  if (ok && ret_mode != NULL)
    *ret_mode = st.st_mode & 07777;
  if (ok)
    return TRUE;
  if (too_long) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "%s is not a %s file", path, kind);
    return FALSE;
  }
  return msvm_set_error_errno(error, saved, "cannot read %s", path);
}

gboolean
msvm_store_parse(const char *dir, const guint8 uuid[16], const char *data, gsize len,
                 MsvmStore **ret_store, GError **error)
{
  g_autoptr(MsvmStore) store = store_new(dir, uuid);
  g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();
  g_autoptr(GError) local = NULL;

  if (!msvm_key_file_load(kf, data, len, &local)) {
    g_autofree char *path = g_build_filename(dir, STORE_FILE, NULL);
    /* (the key file's message names the line by its number, never its
     * text, which may hold a secret) */
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "store %s is damaged: not a key file (%s)",
                path, local->message);
    return FALSE;
  }
  if (!parse_store(store, kf, error))
    return FALSE;
  msvm_store_sort_generations(store);
  g_ptr_array_sort(store->jobs, job_cmp);
  store->exists = TRUE;
  *ret_store = g_steal_pointer(&store);
  return TRUE;
}

gboolean
msvm_store_load(const char *root, const guint8 uuid[16], MsvmStore **ret_store, GError **error)
{
  g_autofree char *u = msvm_uuid_to_string(uuid);
  g_autofree char *dir = g_build_filename(root, u, NULL);
  g_autofree char *path = g_build_filename(dir, STORE_FILE, NULL);
  g_autoptr(GBytes) data = NULL;
  gboolean missing = FALSE;
  gsize len = 0;
  const char *text;

  /* (straight into a secret buffer: it holds the seed and every
   * generation's key protector and policy) */
  if (!msvm_store_read_file(path, STORE_FILE_MAX_SIZE, "store", FALSE, &data, NULL, &missing,
                            error))
    return FALSE;
  if (missing) {
    *ret_store = store_new(dir, uuid);
    return TRUE;
  }
  text = g_bytes_get_data(data, &len);
  return msvm_store_parse(dir, uuid, text != NULL ? text : "", len, ret_store, error);
}

/* Finished jobs are kept a week for pollers, and at most the newest 64. */
static void
prune_jobs(MsvmStore *store)
{
  gint64 cutoff = g_get_real_time() - (gint64)7 * 24 * 3600 * G_USEC_PER_SEC;
  guint finished = 0;

  for (guint i = store->jobs->len; i > 0; i--) {
    MsvmStoreJob *job = g_ptr_array_index(store->jobs, i - 1);
    if (job->state < MSVM_JOB_COMPLETED)
      continue;
    finished++;
    if (job->time_changed < cutoff || finished > 64)
      g_ptr_array_remove_index(store->jobs, i - 1);
  }
}

char *
msvm_store_to_data(const MsvmStore *store, gsize *ret_len)
{
  g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();

  msvm_key_file_set_uint64(kf, "store", "version", MSVM_STORE_FORMAT_VERSION);
  {
    g_autofree char *u = msvm_uuid_to_string(store->uuid);
    msvm_key_file_set_string(kf, "store", "uuid", u);
  }
  if (store->has_seed)
    set_bytes(kf, "store", "seed", store->seed, sizeof(store->seed));
  msvm_key_file_set_uint64(kf, "store", "kdf-version", store->kdf_version);
  msvm_key_file_set_uint64(kf, "store", "next-generation", store->next_generation);
  msvm_key_file_set_uint64(kf, "store", "current", store->current);
  msvm_key_file_set_uint64(kf, "store", "state", store->state);
  msvm_key_file_set_uint64(kf, "store", "last-known-good", store->last_known_good);
  msvm_key_file_set_boolean(kf, "store", "last-known-good-from-start", store->lkg_from_start);

  for (guint i = 0; i < store->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    g_autofree char *g = gen_group(gen->number);
    msvm_key_file_set_string(kf, g, "secret", gen->secret_uuid);
    msvm_key_file_set_int64(kf, g, "created", gen->created);
    if (gen->has_key_protector)
      set_bytes(kf, g, "key-protector", gen->key_protector, gen->key_protector_len);
    if (gen->has_policy)
      set_bytes(kf, g, "policy", gen->policy, gen->policy_len);
    if (gen->foreign) {
      msvm_key_file_set_boolean(kf, g, "foreign", TRUE);
      set_bytes(kf, g, "passphrase", gen->foreign_passphrase, gen->foreign_passphrase_len);
    }
  }
  if (store->journal.open) {
    const MsvmJournal *j = &store->journal;
    msvm_key_file_set_uint64(kf, "journal", "target", j->target);
    msvm_key_file_set_boolean(kf, "journal", "new-generation", j->new_generation);
    msvm_key_file_set_uint64(kf, "journal", "previous-current", j->prev_current);
    msvm_key_file_set_uint64(kf, "journal", "previous-state", j->prev_state);
    if (j->change_id != NULL)
      msvm_key_file_set_string(kf, "journal", "change-id", j->change_id);
    if (j->has_stash)
      msvm_key_file_set_string(kf, "journal", "stash", j->stash ? j->stash : "");
    if (j->job_id != NULL)
      msvm_key_file_set_string(kf, "journal", "job", j->job_id);
  }
  if (store->stash != NULL)
    msvm_key_file_set_string(kf, "stash", "devices", store->stash);
  for (guint i = 0; i < store->jobs->len; i++) {
    const MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    g_autofree char *g = job_group(job->id);
    if (job->method != NULL)
      msvm_key_file_set_string(kf, g, "method", job->method);
    msvm_key_file_set_uint64(kf, g, "state", job->state);
    msvm_key_file_set_uint64(kf, g, "error-code", job->error_code);
    if (job->error_description != NULL)
      msvm_key_file_set_string(kf, g, "error-description", job->error_description);
    msvm_key_file_set_uint64(kf, g, "percent-complete", job->percent_complete);
    msvm_key_file_set_int64(kf, g, "time-submitted", job->time_submitted);
    msvm_key_file_set_int64(kf, g, "time-of-last-state-change", job->time_changed);
    msvm_key_file_set_uint64(kf, g, "target", job->target);
  }

  return msvm_key_file_to_data(kf, ret_len);
}

gboolean
msvm_store_save(MsvmStore *store, GError **error)
{
  g_autofree char *path = g_build_filename(store->dir, STORE_FILE, NULL);
  char *data;
  gsize len = 0;
  gboolean ok;

  prune_jobs(store);
  if (!store->has_seed) {
    if (!msvm_random_bytes(store->seed, sizeof(store->seed), error))
      return FALSE;
    store->has_seed = TRUE;
  }
  data = msvm_store_to_data(store, &len);
  {
    g_autofree char *root = g_path_get_dirname(store->dir);
    if (!ensure_root(root, error) || !ensure_dir(store->dir, error)) {
      msvm_wipe(data, len);
      g_free(data);
      return FALSE;
    }
  }
  ok = msvm_atomic_write(path, data, len, 0600, MSVM_ATOMIC_WRITE_LOCKED, error);
  msvm_wipe(data, len);
  g_free(data);
  if (ok)
    store->exists = TRUE;
  return ok;
}

/* --- generations ------------------------------------------------------------ */

MsvmGeneration *
msvm_store_get_generation(const MsvmStore *store, guint number)
{
  if (number == 0)
    return NULL;
  for (guint i = 0; i < store->generations->len; i++) {
    MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (gen->number == number)
      return gen;
  }
  return NULL;
}

MsvmGeneration *
msvm_store_find_generation_by_secret(const MsvmStore *store, const char *secret_uuid)
{
  guint8 want[16], have[16];

  if (secret_uuid == NULL || !msvm_uuid_parse(secret_uuid, want))
    return NULL;
  for (guint i = 0; i < store->generations->len; i++) {
    MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (msvm_uuid_parse(gen->secret_uuid, have) && memcmp(want, have, 16) == 0)
      return gen;
  }
  return NULL;
}

static MsvmGeneration *
add_generation(MsvmStore *store)
{
  MsvmGeneration *gen = g_new0(MsvmGeneration, 1);

  gen->number = store->next_generation++;
  gen->created = g_get_real_time() / G_USEC_PER_SEC;
  g_ptr_array_add(store->generations, gen);
  return gen;
}

MsvmGeneration *
msvm_store_add_generation(MsvmStore *store, const guint8 *key_protector, gsize kp_len,
                          gboolean has_key_protector, const guint8 *policy, gsize policy_len,
                          gboolean has_policy)
{
  MsvmGeneration *gen = add_generation(store);

  gen->secret_uuid = g_uuid_string_random();
  gen->has_key_protector = has_key_protector;
  if (has_key_protector) {
    gen->key_protector = g_memdup2(key_protector ? key_protector : (const guint8 *)"",
                                   kp_len ? kp_len : 1);
    gen->key_protector_len = kp_len;
  }
  gen->has_policy = has_policy;
  if (has_policy) {
    gen->policy = g_memdup2(policy ? policy : (const guint8 *)"", policy_len ? policy_len : 1);
    gen->policy_len = policy_len;
  }
  return gen;
}

MsvmGeneration *
msvm_store_add_foreign_generation(MsvmStore *store, const char *secret_uuid,
                                  const guint8 *passphrase, gsize len)
{
  MsvmGeneration *gen = add_generation(store);

  gen->secret_uuid = g_strdup(secret_uuid);
  gen->foreign = TRUE;
  gen->foreign_passphrase = g_memdup2(passphrase, len ? len : 1);
  gen->foreign_passphrase_len = len;
  return gen;
}

void
msvm_passphrase_free(char *passphrase, gsize len)
{
  wipe_free((guint8 *)passphrase, len + 1);
}

gboolean
msvm_store_generation_passphrase(const MsvmStore *store, const MsvmGeneration *gen,
                                 char **ret_passphrase, gsize *ret_len, GError **error)
{
  char *pass;

  if (gen->foreign) {
    pass = g_malloc(gen->foreign_passphrase_len + 1);
    memcpy(pass, gen->foreign_passphrase, gen->foreign_passphrase_len);
    pass[gen->foreign_passphrase_len] = '\0';
    *ret_passphrase = pass;
    *ret_len = gen->foreign_passphrase_len;
    return TRUE;
  }
  if (!store->has_seed) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "store %s has no seed", store->dir);
    return FALSE;
  }
  if (store->kdf_version != MSVM_KDF_VERSION) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                "store %s uses derivation version %u, this build knows %u", store->dir,
                store->kdf_version, MSVM_KDF_VERSION);
    return FALSE;
  }
  pass = g_malloc0(MSVM_KDF_PASSPHRASE_LEN + 1);
  if (!msvm_kdf_derive_passphrase(store->seed,
                                  gen->has_key_protector ? gen->key_protector : NULL,
                                  gen->has_key_protector ? gen->key_protector_len : 0,
                                  gen->has_policy ? gen->policy : NULL,
                                  gen->has_policy ? gen->policy_len : 0,
                                  store->uuid, pass, error)) {
    msvm_passphrase_free(pass, MSVM_KDF_PASSPHRASE_LEN);
    return FALSE;
  }
  *ret_passphrase = pass;
  *ret_len = MSVM_KDF_PASSPHRASE_LEN;
  return TRUE;
}

void
msvm_store_drop_generation(MsvmStore *store, guint number)
{
  for (guint i = 0; i < store->generations->len; i++) {
    MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (gen->number == number) {
      g_ptr_array_remove_index(store->generations, i);
      return;
    }
  }
}

static gboolean
secret_listed(const char *secret, const char *const *list)
{
  if (list == NULL)
    return FALSE;
  for (gsize i = 0; list[i] != NULL; i++) {
    if (msvm_uuid_equal_text(secret, list[i]))
      return TRUE;
  }
  return FALSE;
}

GPtrArray *
msvm_store_unneeded_generations(const MsvmStore *store, const char *const *referenced_secrets)
{
  GPtrArray *out = g_ptr_array_new();

  for (guint i = 0; i < store->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    guint n = gen->number;
    gboolean needed = n == store->current || n == store->state || n == store->last_known_good;

    if (store->journal.open &&
        (n == store->journal.target || n == store->journal.prev_current ||
         n == store->journal.prev_state))
      needed = TRUE;
    for (guint k = 0; !needed && k < store->jobs->len; k++) {
      const MsvmStoreJob *job = g_ptr_array_index(store->jobs, k);
      if (job->state < MSVM_JOB_COMPLETED && job->target == n)
        needed = TRUE;
    }
    if (!needed && secret_listed(gen->secret_uuid, referenced_secrets))
      needed = TRUE;
    if (!needed)
      g_ptr_array_add(out, GUINT_TO_POINTER(n));
  }
  return out;
}

gboolean
msvm_store_record_started(MsvmStore *store, const char *secret_uuid)
{
  MsvmGeneration *gen = msvm_store_find_generation_by_secret(store, secret_uuid);

  if (gen == NULL)
    return FALSE;
  store->last_known_good = gen->number;
  store->lkg_from_start = TRUE;
  return TRUE;
}
