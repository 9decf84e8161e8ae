/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-change.c: the change protocol (DESIGN.md section 6), one module for
 * the provider and the hook.
 *
 * The store records per VM the generations (protector pairs, each with its
 * libvirt secret), `current` (what the persistent definition names),
 * `state` (what the on-disk vTPM state is encrypted under, moved only after
 * a verified re-key), last known good, the jobs, and the journal of a change
 * whose define may or may not have happened.
 *
 * A new change (the provider, under the per-VM lock, after
 * msvm_change_finish() finished whatever was unfinished):
 *
 *   step 2  open the journal: target generation, the generations in force,
 *           the change id, the stash, the job of a deferred change.
 *           -- commit point: the store's rename.  From here recovery knows
 *              of the change.
 *   step 3  define the target generation's secret.
 *   step 4  define the domain: the new definition names the target's
 *           secret and carries the change id in the project's metadata.
 *           -- COMMIT POINT OF THE CHANGE: libvirt's define.  Before it the
 *              change is abandoned by whoever comes next; after it, it is
 *              recorded.  The definition itself tells which: it carries the
 *              journal's change id or not.  A define reported as failed is
 *              re-read before anything is undone.
 *   step 4b record it: `current` = target, last known good, the stash; the
 *           journal is closed.  -- commit point: the store's rename.
 *   step 5  the stopped VM's state re-keyed from `state` to `current`
 *           (msvm_change_finish): the directory is swapped whole, then
 *           `state` recorded.  -- commit points: the directory exchange,
 *           then the store's rename; a state found already under `current`
 *           is recorded as such.  A running VM keeps its swtpm's key: the
 *           job stays open (4096) until the hook or a call re-keys it.
 *   step 6  retire: the secrets of the generations nothing needs undefined,
 *           their pairs dropped.
 *
 * Finishing (msvm_change_finish: every call first, `recover`, and the hook
 * at "prepare begin") is the same sequence whoever runs it:
 *
 *   a. an open journal is resolved by the definition: it carries the
 *      journal's change id -> record it (step 4b); it does not -> abandon
 *      it (`current` stays, the job fails, the target is left to retire).
 *      Nothing is ever defined again: a roll-forward that re-defined an old
 *      copy would revert the administrator's later edits.
 *   b. (provider) the persistent definition names another generation of
 *      ours than `current` (an outside edit: virsh define of an older copy):
 *      the definition wins, `current` follows it.
 *   c. the stopped VM's state is located (the generation it really opens
 *      under: a backup put back, a snapshot reverted; plaintext only when
 *      the store records `state` 0, i.e. it was plaintext, or the
 *      definition has no <encryption>)
 *      and, when the definition names `current`, re-keyed to it; the jobs
 *      are closed.  A state directory without tpm2-00.permall is "no TPM
 *      yet": libvirt creates it under the secret the definition names.
 *
 * The hook runs a, c and nothing else: it never defines or undefines, never
 * re-keys to anything but `current` and never to plaintext, whatever the XML
 * says; it only tries the lock.
 *
 * Invariants (DESIGN.md section 6), true after every step, checked by
 * msvm_change_check_invariants() (after every step in builds with
 * -Dinvariant_checks=true, the default of test builds):
 *
 *   I1 The on-disk state opens under the passphrase of the `state`
 *      generation, which the store holds and whose secret is defined.
 *   I2 A generation is never dropped, nor its secret undefined, while it is
 *      `state`, `current`, last known good, named by an open job or the
 *      journal, or named by any <encryption secret> of any domain on the
 *      daemon (retire asks the daemon; the hook never drops anything).
 *   I3 Nothing the administrator changed after a define is reverted:
 *      finishing never defines the domain.
 *   I4 No journal can wedge a VM: after msvm_change_finish() no journal is
 *      open, whoever ran it.
 *   I5 A VM whose TPM the project does not own (the definition names no
 *      generation's secret) is never refused by the hook (msvm-hook-prepare.c).
 *   I6 An unfinished change is finished by whoever comes first, exactly once,
 *      with the same result: a (the definition decides) and c (re-key to
 *      `current`) do not depend on who runs them.
 */
#include "config.h"

#include "msvm-change.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-cause.h"
#include "msvm-error.h"
#include "msvm-secret.h"
#include "msvm-fault.h"
#include "msvm-kdf.h"
#include "msvm-rekey.h"

#define PERMALL "tpm2-00.permall"

void
msvm_definition_facts_clear(MsvmDefinitionFacts *facts)
{
  g_clear_pointer(&facts->secret, g_free);
  g_clear_pointer(&facts->change_id, g_free);
}

void
msvm_change_clear(MsvmChange *change)
{
  msvm_definition_facts_clear(&change->definition);
}

const char *
msvm_step_describe(MsvmStep step)
{
  switch (step) {
  case MSVM_STEP_DONE:
    return "done";
  case MSVM_STEP_NOTHING:
    return "nothing to do";
  case MSVM_STEP_DEFERRED:
    return "deferred";
  case MSVM_STEP_FAILED:
    return "failed";
  }
  return "?";
}

/* --- small helpers ------------------------------------------------------------- */

static gboolean
is_provider(const MsvmChange *change)
{
  return change->actor == MSVM_CHANGE_BY_PROVIDER && change->host != NULL;
}

/* The generation the definition names, or NULL (none, or not ours). */
static MsvmGeneration *
named_generation(const MsvmChange *change)
{
  return msvm_store_find_generation_by_secret(change->store, change->definition.secret);
}

/* Whether the state is the project's to judge: the definition names one of
 * its generations, or the store records the state under one (a TPM removed
 * from the definition by hand keeps its state).  Otherwise (a definition
 * naming a secret the project does not own, over a state the store never
 * encrypted) it is somebody else's TPM. */
static gboolean
state_is_ours(const MsvmChange *change)
{
  return named_generation(change) != NULL || change->store->state != 0;
}

static gboolean
definition_names_current(const MsvmChange *change)
{
  const MsvmGeneration *cur = msvm_store_get_generation(change->store, change->store->current);

  return cur != NULL && msvm_uuid_equal_text(cur->secret_uuid, change->definition.secret);
}

gboolean
msvm_change_state_is_new(const char *state_dir)
{
  g_autofree char *permall = g_build_filename(state_dir, PERMALL, NULL);
  struct stat st;

  return lstat(permall, &st) < 0 && (errno == ENOENT || errno == ENOTDIR);
}

static void
update_last_known_good(MsvmStore *store, guint previous_state, guint target)
{
  /* while no start has been recorded: the generation the state was under
   * before the latest change (DESIGN.md section 5) */
  if (store->lkg_from_start)
    return;
  if (previous_state != 0 && previous_state != target)
    store->last_known_good = previous_state;
}

static gboolean
state_key(const MsvmStore *store, guint number, MsvmStateKey *key, char **ret_passphrase,
          gsize *ret_len, GError **error)
{
  const MsvmGeneration *gen;

  memset(key, 0, sizeof(*key));
  key->kdf = MSVM_KDF_PBKDF2;
  key->cipher = MSVM_CIPHER_AES_256_CBC;
  *ret_passphrase = NULL;
  *ret_len = 0;
  if (number == 0)
    return TRUE; /* plaintext */
  gen = msvm_store_get_generation(store, number);
  if (gen == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "store %s names generation %u, which it does not hold", store->dir, number);
    return FALSE;
  }
  if (!msvm_store_generation_passphrase(store, gen, ret_passphrase, ret_len, error))
    return FALSE;
  key->passphrase = (const guint8 *)*ret_passphrase;
  key->passphrase_len = *ret_len;
  return TRUE;
}

static gboolean
state_opens_under(const MsvmStore *store, const char *state_dir, guint number, GError **error)
{
  MsvmStateKey key;
  char *passphrase = NULL;
  gsize len = 0;
  gboolean ok;

  if (!state_key(store, number, &key, &passphrase, &len, error))
    return FALSE;
  ok = msvm_state_dir_check(state_dir, &key, error);
  msvm_passphrase_free(passphrase, len);
  return ok;
}

gboolean
msvm_change_state_opens_under(const MsvmStore *store, const char *state_dir, guint number,
                              GError **error)
{
  return state_opens_under(store, state_dir, number, error);
}

/* --- invariants ------------------------------------------------------------------ */

static gboolean G_GNUC_PRINTF(3, 4)
violated(GError **error, const char *invariant, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start(ap, fmt);
  msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "invariant %s violated: %s", invariant, msg);
  return FALSE;
}

static gboolean
held(const MsvmStore *store, guint number)
{
  return number == 0 || msvm_store_get_generation(store, number) != NULL;
}

gboolean
msvm_change_check_invariants(MsvmChange *change, const char *after_step, GError **error)
{
  MsvmStore *store = change->store;
  const MsvmJournal *journal = &store->journal;
  guint needed[3] = { store->state, store->current, store->last_known_good };

  for (guint i = 0; i < G_N_ELEMENTS(needed); i++) {
    const MsvmGeneration *gen = msvm_store_get_generation(store, needed[i]);
    if (!held(store, needed[i]))
      return violated(error, "I2", "after %s: generation %u (state/current/last known good) "
                      "is not in the store", after_step, needed[i]);
    if (gen != NULL && !gen->foreign && is_provider(change) &&
        change->host->secret_exists != NULL &&
        !change->host->secret_exists(change->host->data, gen->secret_uuid))
      return violated(error, "I2", "after %s: the secret %s of generation %u is not defined",
                      after_step, gen->secret_uuid, gen->number);
  }
  if (journal->open && (!held(store, journal->target) || !held(store, journal->prev_current) ||
                        !held(store, journal->prev_state)))
    return violated(error, "I2", "after %s: the journal names a generation the store does "
                    "not hold", after_step);
  for (guint i = 0; i < store->jobs->len; i++) {
    const MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    if (job->state < MSVM_JOB_COMPLETED && !held(store, job->target))
      return violated(error, "I2", "after %s: open job %s targets generation %u, which the "
                      "store does not hold", after_step, job->id, job->target);
  }
  /* I1: only where this process may read the state (stopped VM, lock held),
   * and only for a TPM the definition names as the project's (a state under
   * a secret set by hand, or a TPM removed, is not what I1 is about). */
  if (!change->active && change->state_dir != NULL && named_generation(change) != NULL &&
      !msvm_change_state_is_new(change->state_dir)) {
    g_autoptr(GError) local = NULL;
    if (!state_opens_under(store, change->state_dir, store->state, &local) &&
        !msvm_error_is(local, MSVM_RC_IN_USE))
      return violated(error, "I1", "after %s: the state %s does not open under generation "
                      "%u: %s", after_step, change->state_dir, store->state, local->message);
  }
  return TRUE;
}

/* Test builds: a violated invariant stops the process with its message. */
static void
debug_check(MsvmChange *change, const char *after_step)
{
#ifdef MSVM_INVARIANT_CHECKS
  g_autoptr(GError) error = NULL;

  if (!msvm_change_check_invariants(change, after_step, &error)) {
    fprintf(stderr, "msvm-security: VM %s: %s\n", change->vm_name ? change->vm_name : "?",
            error->message);
    fflush(stderr);
    abort();
  }
#endif
}

/* --- the journal --------------------------------------------------------------- */

MsvmStep
msvm_change_open_journal(MsvmChange *change, const MsvmChangeIntent *intent,
                         char **ret_job_id, GError **error)
{
  MsvmStore *store = change->store;
  MsvmJournal *journal = &store->journal;
  MsvmStoreJob *job = NULL;

  g_return_val_if_fail(!journal->open, MSVM_STEP_FAILED);
  journal->open = TRUE;
  journal->target = intent->target;
  journal->new_generation = intent->new_generation;
  journal->prev_current = store->current;
  journal->prev_state = store->state;
  journal->change_id = g_strdup(intent->change_id);
  journal->has_stash = TRUE;
  journal->stash = g_strdup(intent->stash);
  if (intent->job_method != NULL) {
    job = msvm_store_add_job(store, intent->job_method, intent->target);
    journal->job_id = g_strdup(job->id);
  }
  if (!msvm_store_save(store, error)) {
    msvm_store_journal_clear(journal);
    if (job != NULL)
      g_ptr_array_remove(store->jobs, job);
    return MSVM_STEP_FAILED;
  }
  msvm_fault_point("after-journal");
  debug_check(change, "opening the journal");
  if (ret_job_id != NULL)
    *ret_job_id = job != NULL ? g_strdup(job->id) : NULL;
  return MSVM_STEP_DONE;
}

MsvmStep
msvm_change_abandon(MsvmChange *change, const GError *why, gboolean drop_job, GError **error)
{
  MsvmStore *store = change->store;
  MsvmJournal *journal = &store->journal;

  if (!journal->open)
    return MSVM_STEP_NOTHING;
  if (journal->job_id != NULL) {
    MsvmStoreJob *job = msvm_store_get_job(store, journal->job_id);
    if (job != NULL && drop_job)
      g_ptr_array_remove(store->jobs, job);
    else if (job != NULL)
      msvm_store_job_set_state(job, MSVM_JOB_EXCEPTION, why);
  }
  /* `current` moves only when the define is recorded; a journal of an
   * older version may have moved it already */
  {
    MsvmJournal kept = *journal;
    guint kept_current = store->current;
    store->current = journal->prev_current;
    memset(journal, 0, sizeof(*journal));
    if (!msvm_store_save(store, error)) {
      /* nothing half-applied stays in memory for a later save */
      *journal = kept;
      store->current = kept_current;
      return MSVM_STEP_FAILED;
    }
    msvm_store_journal_clear(&kept);
  }
  msvm_fault_point("after-abandon");
  debug_check(change, "abandoning the journal");
  return MSVM_STEP_DONE;
}

/* Did the journal's define take effect?  The definition says so. */
static gboolean
journal_took_effect(const MsvmChange *change)
{
  const MsvmJournal *journal = &change->store->journal;
  const MsvmGeneration *target;

  if (journal->change_id != NULL)
    return change->definition.change_id != NULL &&
           g_ascii_strcasecmp(change->definition.change_id, journal->change_id) == 0;
  /* A journal written before change ids: only a new secret tells. */
  target = msvm_store_get_generation(change->store, journal->target);
  return target != NULL && journal->target != journal->prev_current &&
         msvm_uuid_equal_text(target->secret_uuid, change->definition.secret);
}

MsvmStep
msvm_change_define_secret(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  const MsvmJournal *journal = &store->journal;
  const MsvmGeneration *target = msvm_store_get_generation(store, journal->target);
  const MsvmChangeHost *host = change->host;

  g_return_val_if_fail(is_provider(change) && journal->open, MSVM_STEP_FAILED);
  if (target == NULL || target->foreign)
    return MSVM_STEP_NOTHING; /* no protector, or a secret that is not ours */
  if (!journal->new_generation && host->secret_exists(host->data, target->secret_uuid))
    return MSVM_STEP_NOTHING;
  if (!host->define_secret(host->data, store, target, error)) {
    (void)msvm_change_abandon(change, *error, TRUE, NULL);
    return MSVM_STEP_FAILED;
  }
  msvm_fault_point("after-secret");
  debug_check(change, "defining the target's secret");
  return MSVM_STEP_DONE;
}

MsvmStep
msvm_change_define_domain(MsvmChange *change, const char *xml, GError **error)
{
  MsvmStore *store = change->store;
  const MsvmJournal *journal = &store->journal;
  const MsvmChangeHost *host = change->host;
  const MsvmGeneration *target = msvm_store_get_generation(store, journal->target);
  g_autoptr(GError) define_error = NULL;

  g_return_val_if_fail(is_provider(change) && journal->open, MSVM_STEP_FAILED);
  if (!host->define_domain(host->data, xml, &define_error)) {
    /* Applied but reported as failed (a connection lost after the daemon
     * defined it)?  The definition tells; never undo what took effect. */
    MsvmDefinitionFacts now = { 0 };
    gboolean readable = host->read_definition(host->data, &now, NULL);
    gboolean applied = readable && now.change_id != NULL && journal->change_id != NULL &&
                       g_ascii_strcasecmp(now.change_id, journal->change_id) == 0;
    msvm_definition_facts_clear(&now);
    if (!readable) {
      /* cannot tell: the journal stays open and whoever finishes next
       * decides from the definition */
      g_propagate_error(error, g_steal_pointer(&define_error));
      return MSVM_STEP_FAILED;
    }
    if (!applied) {
      g_propagate_error(error, g_steal_pointer(&define_error));
      (void)msvm_change_abandon(change, *error, TRUE, NULL);
      return MSVM_STEP_FAILED;
    }
  }
  msvm_fault_point("after-define");
  /* the definition is now the new one: read back what it names */
  msvm_definition_facts_clear(&change->definition);
  if (!host->read_definition(host->data, &change->definition, NULL)) {
    msvm_definition_facts_clear(&change->definition);
    change->definition.secret = target != NULL ? g_strdup(target->secret_uuid) : NULL;
    change->definition.change_id = g_strdup(journal->change_id);
  }
  debug_check(change, "defining the domain");
  return MSVM_STEP_DONE;
}

MsvmStep
msvm_change_record_defined(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  MsvmJournal *journal = &store->journal;
  g_auto(MsvmSecretText) saved_stash = NULL;
  guint saved_current = store->current, saved_lkg = store->last_known_good;

  if (!journal->open)
    return MSVM_STEP_NOTHING;
  if (store->current != journal->target) {
    store->current = journal->target;
    update_last_known_good(store, journal->prev_state, journal->target);
  }
  if (journal->has_stash) {
    saved_stash = g_steal_pointer(&store->stash);
    store->stash = g_strdup(journal->stash);
  }
  {
    MsvmJournal kept = *journal;
    memset(journal, 0, sizeof(*journal));
    if (!msvm_store_save(store, error)) {
      *journal = kept;
      store->current = saved_current;
      store->last_known_good = saved_lkg;
      if (kept.has_stash) {
        msvm_secret_text_free(store->stash);
        store->stash = g_steal_pointer(&saved_stash);
      }
      return MSVM_STEP_FAILED;
    }
    msvm_store_journal_clear(&kept);
  }
  msvm_fault_point("after-record");
  debug_check(change, "recording the define");
  return MSVM_STEP_DONE;
}

/* Finishing, a: the definition decides what an open journal means. */
static MsvmStep
resolve_journal(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  const MsvmJournal *journal = &store->journal;
  const MsvmChangeHost *host = change->host;

  if (!journal->open)
    return MSVM_STEP_NOTHING;
  if (journal_took_effect(change)) {
    const MsvmGeneration *target = msvm_store_get_generation(store, journal->target);
    /* its secret undefined by hand since: the provider defines it again */
    if (target != NULL && !target->foreign && is_provider(change) &&
        !host->secret_exists(host->data, target->secret_uuid) &&
        !host->define_secret(host->data, store, target, error))
      return MSVM_STEP_FAILED;
    return msvm_change_record_defined(change, error);
  } else {
    g_autoptr(GError) why = g_error_new(MSVM_ERROR, MSVM_RC_FAILED,
                                        "the change was interrupted before the domain "
                                        "definition was changed; nothing took effect: call "
                                        "again");
    return msvm_change_abandon(change, why, FALSE, error);
  }
}

/* Finishing, b (provider): an outside edit made the persistent definition
 * name another generation of ours: the definition wins. */
static MsvmStep
adopt_definition(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  const MsvmGeneration *named = named_generation(change);
  g_autoptr(GError) why = NULL;

  if (!is_provider(change) || named == NULL || named->number == store->current)
    return MSVM_STEP_NOTHING;
  why = g_error_new(MSVM_ERROR, MSVM_RC_INVALID_STATE,
                    "superseded: the domain definition was changed outside msvm-security "
                    "and names key protector generation %u", named->number);
  for (guint i = 0; i < store->jobs->len; i++) {
    MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
    if (job->state < MSVM_JOB_COMPLETED && job->target != named->number)
      msvm_store_job_set_state(job, MSVM_JOB_EXCEPTION, why);
  }
  store->current = named->number;
  if (!msvm_store_save(store, error))
    return MSVM_STEP_FAILED;
  msvm_fault_point("after-adopt");
  debug_check(change, "adopting the definition's generation");
  return MSVM_STEP_DONE;
}

/* Finishing, c1: which generation the stopped VM's state is really under. */
static MsvmStep
locate_state(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  g_autoptr(GError) first = NULL;

  if (msvm_change_state_is_new(change->state_dir)) {
    /* no TPM yet: libvirt creates it under the secret the definition names */
    guint now = store->current;
    if (store->state == now)
      return MSVM_STEP_NOTHING;
    store->state = now;
    return msvm_store_save(store, error) ? MSVM_STEP_DONE : MSVM_STEP_FAILED;
  }
  if (state_opens_under(store, change->state_dir, store->state, &first))
    return MSVM_STEP_NOTHING;
  if (!g_error_matches(first, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY)) {
    /* Only a key that does not fit is a reason to try the others: a
     * damaged, truncated or unsupported state opens under none of them,
     * and saying so is better than "none of the key protectors". */
    if (msvm_error_is(first, MSVM_RC_INVALID_STATE) && named_generation(change) == NULL)
      return MSVM_STEP_NOTHING; /* the definition does not use it: not ours to refuse */
    if (msvm_error_is(first, MSVM_RC_INVALID_STATE)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "the vTPM state %s cannot be opened, whatever the key: %s", change->state_dir,
                  first->message);
      return MSVM_STEP_FAILED;
    }
    g_propagate_error(error, g_steal_pointer(&first));
    return MSVM_STEP_FAILED;
  }
  /* A state put back from a backup, a snapshot or save image restored with
   * --force: newest generations first, plaintext last, and plaintext only
   * when a plaintext state is what swtpm itself writes: the store records
   * `state` 0 (tried above), or the definition has no <encryption> at all
   * (a TPM re-added by hand without it; the hook never gets here then).
   * Otherwise a plaintext file can only be the swtpm user's (it needs no
   * key), and libtpms is not to parse it (DESIGN.md 11).  A check that does
   * not finish stops the search (each try could take as long). */
  gboolean plain_possible = change->definition.secret == NULL;
  for (guint i = store->generations->len + 1; i > 0; i--) {
    guint n = i > 1 ? ((MsvmGeneration *)g_ptr_array_index(store->generations, i - 2))->number : 0;
    g_autoptr(GError) other = NULL;
    if (n == store->state || (n == 0 && !plain_possible))
      continue;
    if (!state_opens_under(store, change->state_dir, n, &other)) {
      if (g_error_matches(other, MSVM_ERROR, MSVM_RC_TIMEOUT)) {
        g_propagate_error(error, g_steal_pointer(&other));
        return MSVM_STEP_FAILED;
      }
      continue;
    }
    store->state = n;
    return msvm_store_save(store, error) ? MSVM_STEP_DONE : MSVM_STEP_FAILED;
  }
  if (named_generation(change) == NULL)
    return MSVM_STEP_NOTHING; /* the definition does not use it: not ours to refuse */
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
              "the vTPM state %s opens under none of the key protectors msvm-security holds "
              "for this VM (%s)", change->state_dir, first->message);
  return MSVM_STEP_FAILED;
}

/* Finishing, c2: re-key the stopped VM's state from `state` to `current`. */
static MsvmStep
rekey_to_current(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  MsvmStateKey old_key, new_key;
  char *old_pass = NULL, *new_pass = NULL;
  gsize old_len = 0, new_len = 0;
  gboolean ok;

  if (store->current == 0 || store->state == store->current)
    return MSVM_STEP_NOTHING; /* never re-key to plaintext */
  if (!definition_names_current(change))
    return MSVM_STEP_DEFERRED; /* the next start would not use it */
  if (!state_key(store, store->state, &old_key, &old_pass, &old_len, error))
    return MSVM_STEP_FAILED;
  if (!state_key(store, store->current, &new_key, &new_pass, &new_len, error)) {
    msvm_passphrase_free(old_pass, old_len);
    return MSVM_STEP_FAILED;
  }
  ok = msvm_rekey_state_dir(change->state_dir, &old_key, &new_key, error);
  if (!ok && !msvm_error_is(*error, MSVM_RC_IN_USE) &&
      msvm_state_dir_check(change->state_dir, &new_key, NULL)) {
    /* an earlier run re-keyed and died before recording it */
    g_clear_error(error);
    ok = TRUE;
  }
  msvm_passphrase_free(old_pass, old_len);
  msvm_passphrase_free(new_pass, new_len);
  if (!ok) {
    g_prefix_error(error, "re-keying the vTPM state %s from key protector generation %u to %u: ",
                   change->state_dir, store->state, store->current);
    return MSVM_STEP_FAILED;
  }
  (void)msvm_rekey_remove_leftover(change->state_dir, NULL);
  msvm_fault_point("after-rekey");
  store->state = store->current;
  return MSVM_STEP_DONE;
}

/* Finishing, c3: jobs.  Completed once the stopped VM's state is under
 * `current` and the definition names it; a failed re-key fails them, and
 * so does the provider for a stopped VM whose definition names no vTPM of
 * ours (the hook leaves them: a start without the TPM changes nothing). */
static void
close_jobs(MsvmChange *change, const GError *rekey_error)
{
  MsvmStore *store = change->store;

  if (!msvm_store_has_open_jobs(store) || change->active)
    return;
  if (rekey_error != NULL) {
    if (!msvm_error_is(rekey_error, MSVM_RC_IN_USE))
      msvm_store_finish_jobs(store, rekey_error);
    return;
  }
  if (definition_names_current(change) && store->state == store->current) {
    msvm_store_finish_jobs(store, NULL);
  } else if (is_provider(change)) {
    /* The VM is stopped and its definition names no vTPM of ours (the TPM
     * removed by hand, TpmEnabled FALSE, a secret set by hand): its next
     * start does not use the key protector, so the job cannot finish as
     * asked; a poller is told, never left waiting. */
    g_autoptr(GError) why = g_error_new(MSVM_ERROR, MSVM_RC_INVALID_STATE,
                                        "the VM was stopped while its definition names no "
                                        "vTPM with this key protector (removed, disabled or "
                                        "edited outside msvm-security); the key protector "
                                        "stays recorded and the state is re-keyed to it once "
                                        "the definition names it again");
    msvm_store_finish_jobs(store, why);
  }
}

static gboolean
rekey_and_close_jobs(MsvmChange *change, gboolean *did, GError **error)
{
  MsvmStore *store = change->store;
  g_autoptr(GError) local = NULL;
  MsvmStep step;
  gboolean had_jobs = msvm_store_has_open_jobs(store);

  if (change->active)
    return TRUE; /* its swtpm owns the state and keeps its key */
  /* what an interrupted re-key left beside the state is ours, whoever owns
   * the TPM now (the side directory holds a copy under an old key) */
  (void)msvm_rekey_remove_leftover(change->state_dir, NULL);
  if (!state_is_ours(change)) {
    close_jobs(change, NULL);
    if (had_jobs && !msvm_store_has_open_jobs(store)) {
      if (!msvm_store_save(store, error))
        return FALSE;
      *did = TRUE;
    }
    return TRUE;
  }
  step = locate_state(change, &local);
  if (step == MSVM_STEP_FAILED) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  *did = *did || step == MSVM_STEP_DONE;
  step = rekey_to_current(change, &local);
  close_jobs(change, local);
  if (step == MSVM_STEP_DONE || (had_jobs && !msvm_store_has_open_jobs(store)) ||
      (step == MSVM_STEP_FAILED && had_jobs)) {
    g_autoptr(GError) save_error = NULL;
    msvm_fault_point("rekey-record");
    if (!msvm_store_save(store, &save_error)) {
      if (local == NULL)
        local = g_steal_pointer(&save_error);
      step = MSVM_STEP_FAILED;
    }
    *did = TRUE;
  }
  if (step == MSVM_STEP_FAILED) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  return TRUE;
}

/* Finishing, 0 (provider): the secret of a generation the VM needs
 * (`state`, `current`, last known good) undefined by hand is defined again
 * from the store, so that the VM can start. */
static MsvmStep
restore_missing_secrets(MsvmChange *change, GError **error)
{
  MsvmStore *store = change->store;
  const MsvmChangeHost *host = change->host;
  guint needed[3] = { store->state, store->current, store->last_known_good };
  MsvmStep step = MSVM_STEP_NOTHING;

  if (!is_provider(change))
    return MSVM_STEP_NOTHING;
  for (guint i = 0; i < G_N_ELEMENTS(needed); i++) {
    const MsvmGeneration *gen = msvm_store_get_generation(store, needed[i]);
    if (gen == NULL || gen->foreign || host->secret_exists(host->data, gen->secret_uuid))
      continue;
    if (!host->define_secret(host->data, store, gen, error))
      return MSVM_STEP_FAILED;
    step = MSVM_STEP_DONE;
  }
  return step;
}

gboolean
msvm_change_finish(MsvmChange *change, gboolean *ret_did, GError **error)
{
  gboolean did = FALSE;
  MsvmStep step;

  if (restore_missing_secrets(change, error) == MSVM_STEP_FAILED)
    return FALSE;

  step = resolve_journal(change, error);
  if (step == MSVM_STEP_FAILED)
    return FALSE;
  did = step == MSVM_STEP_DONE;
  step = adopt_definition(change, error);
  if (step == MSVM_STEP_FAILED)
    return FALSE;
  did = did || step == MSVM_STEP_DONE;
  if (!rekey_and_close_jobs(change, &did, error))
    return FALSE;
  debug_check(change, "finishing");
  if (ret_did != NULL)
    *ret_did = did;
  return TRUE;
}

MsvmStep
msvm_change_retire(MsvmChange *change)
{
  MsvmStore *store = change->store;
  const MsvmChangeHost *host = change->host;
  g_auto(GStrv) in_use = NULL;
  g_autoptr(GPtrArray) unneeded = NULL;
  g_autoptr(GError) error = NULL;
  gboolean changed = FALSE;

  if (!is_provider(change))
    return MSVM_STEP_DEFERRED; /* the hook never undefines anything */
  if (store->journal.open)
    return MSVM_STEP_DEFERRED;
  /* I2: what any domain on the daemon names stays */
  if (!host->secrets_in_use(host->data, &in_use, &error))
    return MSVM_STEP_FAILED;
  unneeded = msvm_store_unneeded_generations(store, (const char *const *)in_use);
  for (guint i = 0; i < unneeded->len; i++) {
    guint n = GPOINTER_TO_UINT(g_ptr_array_index(unneeded, i));
    const MsvmGeneration *gen = msvm_store_get_generation(store, n);
    if (gen == NULL)
      continue;
    if (!gen->foreign) {
      msvm_fault_point("retire-secret");
      if (!host->undefine_secret(host->data, gen->secret_uuid, &error))
        break;
    }
    msvm_store_drop_generation(store, n);
    changed = TRUE;
  }
  if (changed && !msvm_store_save(store, NULL))
    return MSVM_STEP_FAILED;
  debug_check(change, "retiring");
  return changed ? MSVM_STEP_DONE : MSVM_STEP_NOTHING;
}

MsvmStep
msvm_change_record_started(MsvmStore *store, const char *secret_uuid, GError **error)
{
  const MsvmGeneration *gen = msvm_store_find_generation_by_secret(store, secret_uuid);

  if (gen == NULL)
    return MSVM_STEP_NOTHING; /* not a generation of ours */
  if (store->last_known_good == gen->number && store->lkg_from_start)
    return MSVM_STEP_NOTHING;
  (void)msvm_store_record_started(store, secret_uuid);
  return msvm_store_save(store, error) ? MSVM_STEP_DONE : MSVM_STEP_FAILED;
}
