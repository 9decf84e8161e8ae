/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-change.h: the change protocol of DESIGN.md section 6, written once,
 * for the provider (plugin/msvm-service.c) and the hook's second stage
 * (hooks/msvm-hook-prepare.c) alike.  The steps, their commit points and the
 * invariants are described in msvm-change.c.
 *
 * No libvirt here: what needs the daemon goes through MsvmChangeHost, whose
 * functions the hook leaves NULL (it never defines or undefines anything).
 * Library code: never prints, never exits (the debug invariant check of
 * test builds aside, which aborts).
 */
#pragma once

#include <glib.h>

#include "msvm-store.h"

G_BEGIN_DECLS

/* What the caller read from the VM's definition: the persistent definition
 * (provider) or the definition being started (hook). */
typedef struct {
  char *secret;     /* the emulator TPM's <encryption secret=...>, or NULL */
  char *change_id;  /* the project's change marker (msvm_domain_get_change_id), or NULL */
} MsvmDefinitionFacts;

void msvm_definition_facts_clear(MsvmDefinitionFacts *facts);

/* What only the libvirt daemon can do.  The hook sets none of these. */
typedef struct {
  gpointer data;
  /* Define (or redefine) @gen's secret with its passphrase. */
  gboolean (*define_secret)(gpointer data, const MsvmStore *store, const MsvmGeneration *gen,
                            GError **error);
  gboolean (*secret_exists)(gpointer data, const char *secret_uuid);
  /* Undefine; a missing secret is not an error. */
  gboolean (*undefine_secret)(gpointer data, const char *secret_uuid, GError **error);
  /* Every secret UUID any <encryption secret=...> of any domain on the daemon
   * names (persistent and live definitions, managed-save images, snapshots). */
  gboolean (*secrets_in_use)(gpointer data, GStrv *ret_secrets, GError **error);
  /* Define the domain from @xml. */
  gboolean (*define_domain)(gpointer data, const char *xml, GError **error);
  /* Read the persistent definition again. */
  gboolean (*read_definition)(gpointer data, MsvmDefinitionFacts *ret_facts, GError **error);
} MsvmChangeHost;

/* Who runs the protocol: the provider may do everything; the hook only
 * re-keys to `current` and records, and resolves the journal in the store. */
typedef enum {
  MSVM_CHANGE_BY_PROVIDER,
  MSVM_CHANGE_BY_HOOK,
} MsvmChangeActor;

typedef struct {
  MsvmChangeActor actor;
  MsvmStore *store;                /* loaded under the per-VM lock */
  const MsvmChangeHost *host;      /* NULL for the hook */
  const char *state_dir;           /* libvirt's swtpm tpm2 directory */
  const char *vm_name;             /* for messages */
  gboolean active;                 /* the VM runs (its swtpm owns the state) or has a
                                      managed-save image (its next start restores
                                      the state saved in it): no re-key */
  MsvmDefinitionFacts definition;  /* owned */
} MsvmChange;

void msvm_change_clear(MsvmChange *change);

/* The outcome of one step. */
typedef enum {
  MSVM_STEP_DONE,      /* the step did what it says */
  MSVM_STEP_NOTHING,   /* there was nothing to do */
  MSVM_STEP_DEFERRED,  /* left for later: the VM runs, or the definition does not name
                          `current`, or the step needs the daemon and the actor is the hook */
  MSVM_STEP_FAILED,    /* the error is set; the step changed nothing */
} MsvmStep;

const char *msvm_step_describe(MsvmStep step);

/* What a new change is (plugin/msvm-service.c plans it). */
typedef struct {
  guint target;              /* generation the change makes current (0: none) */
  gboolean new_generation;   /* target was added to the store by this change */
  const char *change_id;     /* the marker the new definition carries */
  const char *stash;         /* the shielding stash to keep after the define (NULL: none) */
  const char *job_method;    /* a job is opened (running VM, deferred) when set */
} MsvmChangeIntent;

/* --- a new change, step by step (the provider) -------------------------------- */

/* Step 2: write the journal (and the job of a deferred change).
 * Commit point: the store file's rename.  *ret_job_id: the job's id or NULL. */
MsvmStep msvm_change_open_journal(MsvmChange *change, const MsvmChangeIntent *intent,
                                  char **ret_job_id, GError **error);
/* Step 3: define the target generation's secret (when new or missing). */
MsvmStep msvm_change_define_secret(MsvmChange *change, GError **error);
/* Step 4: define the domain from @xml (which names the target and carries
 * the journal's change id).  COMMIT POINT of the change.  A define reported
 * as failed is re-read: when the definition carries the change id, libvirt
 * applied it and the step is DONE.  On failure the journal is abandoned (its
 * job dropped, the caller got the error) and nothing is retired yet. */
MsvmStep msvm_change_define_domain(MsvmChange *change, const char *xml, GError **error);
/* Step 4b: record the define: `current` = target, last known good, stash;
 * the journal is closed (one store save). */
MsvmStep msvm_change_record_defined(MsvmChange *change, GError **error);

/* --- finishing (every caller, before anything else, and after step 4b) ------- */

/* Finish whatever is unfinished, in order: resolve an open journal (its
 * define took effect: record it; it did not: abandon it), adopt a generation
 * the administrator's definition names (provider only), re-key the stopped
 * VM's state from `state` to `current` when the definition names `current`,
 * close the jobs.  *ret_did: something changed.  Never re-defines the domain. */
gboolean msvm_change_finish(MsvmChange *change, gboolean *ret_did, GError **error);

/* Step 6 (provider): undefine the secrets of the generations nothing needs
 * any more (invariant 2: checked against every domain on the daemon) and
 * drop their pairs.  Failure leaves everything for the next call. */
MsvmStep msvm_change_retire(MsvmChange *change);

/* "started begin" (the hook): the generation whose secret the started
 * definition names becomes last known good (DESIGN.md section 5). */
MsvmStep msvm_change_record_started(MsvmStore *store, const char *secret_uuid, GError **error);

/* Abandon the open journal: the change did not take effect (`current` back
 * to what it was, its job in Exception with @why, or dropped when
 * @drop_job); the target generation is left for retire.  Saves. */
MsvmStep msvm_change_abandon(MsvmChange *change, const GError *why, gboolean drop_job,
                             GError **error);

/* Whether the state directory holds no TPM yet (no tpm2-00.permall: missing
 * or empty, as libvirt 9.6+ leaves it). */
gboolean msvm_change_state_is_new(const char *state_dir);

/* Whether every state file of @state_dir opens, and validates, under the
 * passphrase of generation @number (0: plaintext). */
gboolean msvm_change_state_opens_under(const MsvmStore *store, const char *state_dir,
                                       guint number, GError **error);

/* Check the protocol's invariants (msvm-change.c) against the store and the
 * state; in builds with invariant checks this runs after every step and
 * aborts with a message on a violation.  Returns FALSE with the message in
 * @error otherwise. */
gboolean msvm_change_check_invariants(MsvmChange *change, const char *after_step,
                                      GError **error);

G_END_DECLS
