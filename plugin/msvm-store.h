/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-store.h: the per-VM store of DESIGN.md section 5 (docs/msvm-security-store.rst).
 *
 * One directory per VM (0700) holding a `lock` file (open-file-description
 * lock) and a `store` file (GKeyFile, 0600, replaced atomically): the random
 * seed, the derivation version, the generations (each a key-protector half
 * and a policy half, the libvirt secret holding its passphrase), the
 * `current`, `state` and last-known-good generations, the journal of an
 * unfinished change, the stash of devices that shielding removed, and the
 * jobs.
 *
 * Nothing here talks to libvirt: the hook (which must not call the libvirt
 * API) uses this module as it is.  Library code: never prints, never exits.
 */
#pragma once

#include <glib.h>

#include "msvm-file.h"
#include "msvm-uuid.h"

G_BEGIN_DECLS

/* Largest key protector or policy accepted, in bytes. */
#define MSVM_PROTECTOR_MAX_SIZE (64u * 1024u)

#define MSVM_STORE_FORMAT_VERSION 1

/* Job states (CIM_ConcreteJob.JobState). */
typedef enum {
  MSVM_JOB_NEW = 2,
  MSVM_JOB_STARTING = 3,
  MSVM_JOB_RUNNING = 4,
  MSVM_JOB_COMPLETED = 7,
  MSVM_JOB_EXCEPTION = 10,
} MsvmJobState;

/* One protector generation.  Number 0 is never a generation: as a `state`
 * it means "plaintext (or no state yet)", as `current` "no protector". */
typedef struct {
  guint number;
  char *secret_uuid;       /* libvirt secret holding the passphrase */
  gboolean has_key_protector;
  guint8 *key_protector;   /* wiped on free */
  gsize key_protector_len;
  gboolean has_policy;
  guint8 *policy;          /* wiped on free */
  gsize policy_len;
  /* A secret the project did not create (an existing <encryption>), whose
   * passphrase the caller supplied with --old-passphrase-file: kept only
   * until the state no longer needs it; its secret is never undefined. */
  gboolean foreign;
  guint8 *foreign_passphrase; /* wiped on free */
  gsize foreign_passphrase_len;
  gint64 created;          /* unix seconds */
} MsvmGeneration;

typedef struct {
  char *id;                /* UUID, lower case */
  char *method;            /* e.g. "SetSecurityPolicy" */
  guint state;             /* MsvmJobState */
  guint32 error_code;      /* 0 or a return code */
  char *error_description; /* NULL or one line */
  guint percent_complete;
  gint64 time_submitted;   /* unix microseconds */
  gint64 time_changed;
  guint target;            /* generation the job moves the state to */
} MsvmStoreJob;

/* The journal of an unfinished change (DESIGN.md section 6, step 2). */
typedef struct {
  gboolean open;
  guint target;            /* the target generation (already in the store) */
  gboolean new_generation; /* target was created by this change */
  guint prev_current;
  guint prev_state;
  char *change_id;         /* the marker the new definition carries (msvm-change.c) */
  char *domain_xml;        /* read from journals of older versions only, never written */
  gboolean has_stash;
  char *stash;             /* the stash to keep after the define */
  char *job_id;            /* job of a deferred change, or NULL */
} MsvmJournal;

typedef struct {
  char *dir;               /* the VM's store directory */
  guint8 uuid[16];
  gboolean exists;         /* the store file was there when loaded */
  gboolean has_seed;
  guint8 seed[32];         /* wiped on free */
  guint kdf_version;
  GPtrArray *generations;  /* MsvmGeneration*, ascending number */
  guint next_generation;
  guint current;
  guint state;
  guint last_known_good;   /* 0: none */
  gboolean lkg_from_start; /* recorded by the hook at "started begin" */
  char *stash;             /* XML of the devices shielding removed, or NULL */
  MsvmJournal journal;
  GPtrArray *jobs;         /* MsvmStoreJob* */
} MsvmStore;

void msvm_generation_free(MsvmGeneration *gen);
void msvm_store_job_free(MsvmStoreJob *job);
/* Free what @j holds and zero it. */
void msvm_store_journal_clear(MsvmJournal *j);
void msvm_store_free(MsvmStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmStore, msvm_store_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmStoreJob, msvm_store_job_free)

/* An empty store (no seed, no generations) for the VM @uuid whose
 * directory is @dir (NULL: none, e.g. a protector bundle's). */
MsvmStore *msvm_store_new(const char *dir, const guint8 uuid[16]);

/* The usage name of generation @number's libvirt secret:
 * msvm-security/<uuid>/<number>. */
char *msvm_store_secret_usage(const guint8 uuid[16], guint number);

/* --- where things are ------------------------------------------------- */

/* The home directory of @uid from the password database (never $HOME). */
char *msvm_user_home(uid_t uid, GError **error);

/* The store root: /var/lib/msvm-security (system) or
 * <home of uid>/.local/share/msvm-security (session). */
char *msvm_store_root(gboolean system, uid_t uid, GError **error);

/* libvirt's swtpm TPM 2.0 state directory for a VM:
 * /var/lib/libvirt/swtpm/<uuid>/tpm2 or <home>/.config/libvirt/qemu/swtpm/<uuid>/tpm2.
 * @version "2.0" or "1.2" (then .../tpm1.2). */
char *msvm_swtpm_state_dir(gboolean system, uid_t uid, const guint8 uuid[16],
                           const char *version, GError **error);


/* --- locking ------------------------------------------------------------ */

/* Create (0700, and the root) and lock the VM's store directory
 * <root>/<uuid> with an F_OFD write lock on its `lock` file: waiting
 * (F_OFD_SETLKW) or only trying (F_OFD_SETLK; a held lock is MSVM_RC_IN_USE).
 * Returns the locked descriptor (close it to unlock), -1 on error. */
int msvm_store_lock(const char *root, const guint8 uuid[16], gboolean wait, GError **error);

/* An F_OFD write lock on @path (created 0600): waiting, or only trying (a
 * held lock is MSVM_RC_IN_USE, "@what is in progress").  Returns the
 * locked descriptor (close it to unlock), -1 on error. */
int msvm_store_lock_file(const char *path, gboolean wait, const char *what, GError **error);

/* --- loading and saving ------------------------------------------------- */

/* A whole regular file of at most @max bytes (else "not a @kind file",
 * 32768), read straight into a secret buffer, and its permission bits
 * (@ret_mode may be NULL); missing: TRUE with *@ret_missing.
 * @private_file: it must also belong to this user and be readable by it
 * alone (32769). */
gboolean msvm_store_read_file(const char *path, gsize max, const char *kind,
                              gboolean private_file, GBytes **ret, guint32 *ret_mode,
                              gboolean *ret_missing, GError **error);

/* Load <root>/<uuid>/store; a missing file gives an empty store
 * (exists FALSE, no seed).  Errors: MSVM_RC_FAILED for a corrupt store,
 * MSVM_RC_ACCESS_DENIED. */
gboolean msvm_store_load(const char *root, const guint8 uuid[16], MsvmStore **ret_store,
                         GError **error);

/* Write the store atomically (tmp, fsync, rename, fsync dir; a fault point
 * before each step).  Creates the seed first when there is none. */
gboolean msvm_store_save(MsvmStore *store, GError **error);


/* --- generations -------------------------------------------------------- */

MsvmGeneration *msvm_store_get_generation(const MsvmStore *store, guint number);
/* Put the generations in ascending number order (as the store keeps them). */
void msvm_store_sort_generations(MsvmStore *store);
MsvmGeneration *msvm_store_find_generation_by_secret(const MsvmStore *store,
                                                     const char *secret_uuid);

/* Add a new generation with the given halves (NULL: unset) and a new secret
 * UUID; returns it (owned by the store). */
MsvmGeneration *msvm_store_add_generation(MsvmStore *store,
                                          const guint8 *key_protector, gsize kp_len,
                                          gboolean has_key_protector,
                                          const guint8 *policy, gsize policy_len,
                                          gboolean has_policy);

/* Add a generation standing for a secret the project did not create. */
MsvmGeneration *msvm_store_add_foreign_generation(MsvmStore *store, const char *secret_uuid,
                                                  const guint8 *passphrase, gsize len);

/* The passphrase of @gen: derived (64 hex characters) or the foreign one.
 * *ret_passphrase is a NUL-terminated buffer the caller wipes and frees
 * (msvm_passphrase_free). */
gboolean msvm_store_generation_passphrase(const MsvmStore *store, const MsvmGeneration *gen,
                                          char **ret_passphrase, gsize *ret_len,
                                          GError **error);
void msvm_passphrase_free(char *passphrase, gsize len);

/* Remove @number from the store, wiping its halves. */
void msvm_store_drop_generation(MsvmStore *store, guint number);

/* The generations nothing needs any more: not current, state, last known
 * good, the journal's, an open job's target, nor named by any secret UUID
 * in @referenced_secrets (definitions, save images, snapshots).  Returns a
 * new array of generation numbers (guint in GUINT_TO_POINTER). */
GPtrArray *msvm_store_unneeded_generations(const MsvmStore *store,
                                           const char *const *referenced_secrets);

/* Record that the VM started under the generation whose secret is
 * @secret_uuid (the hook at "started begin"): it becomes last known good. */
gboolean msvm_store_record_started(MsvmStore *store, const char *secret_uuid);

/* --- jobs ----------------------------------------------------------------- */

MsvmStoreJob *msvm_store_add_job(MsvmStore *store, const char *method, guint target);
MsvmStoreJob *msvm_store_get_job(const MsvmStore *store, const char *id);
/* Move every open job (state < 7) to Completed, or to Exception with
 * @error's code and message when @error is set. */
void msvm_store_finish_jobs(MsvmStore *store, const GError *error);
void msvm_store_job_set_state(MsvmStoreJob *job, guint state, const GError *error);
gboolean msvm_store_has_open_jobs(const MsvmStore *store);

/* Find a job by id in every VM directory under @root (no lock: the store
 * file is replaced atomically).  Returns NULL without error when not found. */
gboolean msvm_store_find_job(const char *root, const char *id, MsvmStoreJob **ret_job,
                             char **ret_vm_uuid, GError **error);
/* Every job of every VM under @root (MsvmStoreJob*), oldest first; vm UUIDs
 * in @ret_vm_uuids (char*) in the same order. */
gboolean msvm_store_list_jobs(const char *root, GPtrArray **ret_jobs,
                              GPtrArray **ret_vm_uuids, GError **error);

/* Job reference: Msvm_ConcreteJob.InstanceID="<id>" */
char *msvm_job_reference(const char *id);
/* Accepts a bare id or a reference; returns the id (lower case) or NULL. */
char *msvm_job_id_from_reference(const char *ref);

/* The change protocol (journal, finishing, retiring) is msvm-change.h. */

G_END_DECLS
