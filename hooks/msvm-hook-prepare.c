/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-prepare.c: "prepare begin", before libvirt starts swtpm
 * (docs/hooks.rst).
 *
 *  1. No store entry for the VM, or no encrypted emulator TPM in the
 *     definition being started: nothing to finish or check (exit 0).
 *  2. A restore or an incoming migration (the "restore begin" / "migrate
 *     begin" hook of the same operation left a marker): the state arrives
 *     with the guest; nothing is touched and the start is not blocked.
 *  3. Try the per-VM lock; held: "System is in use" (waiting could deadlock
 *     with a caller that holds the lock while libvirt holds the domain).
 *  4. Finish what is unfinished, through the change protocol
 *     (plugin/msvm-change.c) as the hook: an open journal resolved by the
 *     definition being started (its change id says whether the define took
 *     effect), the state located and re-keyed to `current` when the
 *     definition names `current`, the jobs closed.  No journal or generation
 *     logic of its own.
 *  5. The definition names no generation of the project (a TPM whose secret
 *     the project does not own): let it through (invariant I5).
 *  6. Check that the state opens, and validates, under the passphrase of the
 *     generation the definition names; otherwise one line saying what is
 *     wrong and which msvm-security command fixes it, and exit 1.
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-change.h"
#include "msvm-domain.h"
#include "msvm-cause.h"
#include "msvm-error.h"
#include "msvm-store.h"
#include "msvm-tpm-validate.h"

static gboolean
opens_under(const MsvmStore *store, const MsvmGeneration *gen, const char *state_dir,
            GError **error)
{
  return msvm_change_state_opens_under(store, state_dir, gen->number, error);
}

/* Which other generation of the store opens the state, for the message. */
static guint
find_opening_generation(const MsvmStore *store, const MsvmGeneration *tried,
                        const char *state_dir)
{
  for (guint i = store->generations->len; i > 0; i--) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i - 1);
    g_autoptr(GError) e = NULL;
    if (gen == tried)
      continue;
    if (opens_under(store, gen, state_dir, &e))
      return gen->number;
    if (g_error_matches(e, MSVM_ERROR, MSVM_RC_TIMEOUT))
      break; /* each try could take as long */
  }
  return 0;
}

static int
check_state(MsvmHookCtx *ctx, MsvmStore *store, const MsvmGeneration *gen)
{
  g_autoptr(GError) error = NULL;
  guint other;

  if (msvm_change_state_is_new(ctx->state_dir))
    return 0; /* no TPM yet: libvirt creates it under the secret it names */
  if (opens_under(store, gen, ctx->state_dir, &error))
    return 0;
  if (msvm_error_is(error, MSVM_RC_TIMEOUT)) {
    /* no other generation is tried: each try could take as long */
    msvm_hook_message("the vTPM state of domain %s (%s) cannot be checked: %s; restore "
                      "the state from a backup",
                      ctx->name, ctx->state_dir, error->message);
    return 1;
  }
  if (msvm_error_is(error, MSVM_RC_IN_USE)) {
    msvm_hook_message("System is in use: the vTPM state of domain %s (%s) is locked by "
                      "another process (a swtpm still running?)",
                      ctx->name, ctx->state_dir);
    return 1;
  }
  /* (only a key that does not fit is a reason to try the others) */
  other = g_error_matches(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_WRONG_KEY)
            ? find_opening_generation(store, gen, ctx->state_dir) : 0;
  if (other != 0)
    msvm_hook_message("the vTPM state of domain %s does not open under key protector "
                      "generation %u, which its definition names, but under generation "
                      "%u; run 'msvm-security recover --domain %s'",
                      ctx->name, gen->number, other, ctx->name);
  else
    msvm_hook_message("the vTPM state of domain %s (%s) does not open under the key "
                      "protector its definition names (generation %u): %s; run "
                      "'msvm-security recover --domain %s', or restore the state from a "
                      "backup",
                      ctx->name, ctx->state_dir, gen->number, error->message, ctx->name);
  return 1;
}

static gboolean
pending(const MsvmStore *store)
{
  return store->journal.open || (store->current != 0 && store->state != store->current) ||
         msvm_store_has_open_jobs(store);
}

int
msvm_hook_prepare(MsvmHookCtx *ctx)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStore) store = NULL;
  MsvmChange change = { 0 };
  const MsvmGeneration *gen;
  gboolean was_pending;
  int lock_fd, rc;

  if (!msvm_hook_has_store(ctx))
    return 0;
  if (msvm_hook_consume_incoming(ctx))
    return 0;
  if (ctx->secret == NULL)
    return 0; /* no encrypted emulator TPM in this definition: swtpm is not ours */

  lock_fd = msvm_store_lock(ctx->root, ctx->uuid, FALSE, &error);
  if (lock_fd < 0) {
    if (msvm_error_is(error, MSVM_RC_IN_USE))
      msvm_hook_message("System is in use: an msvm-security change of domain %s is in "
                        "progress; start it again when it has finished "
                        "('msvm-security job list')",
                        ctx->name);
    else
      msvm_hook_message("cannot lock the msvm-security store of domain %s: %s", ctx->name,
                        error->message);
    return 1;
  }
  /* The libtpms check's server is forked now, before the store (the seed)
   * is read: its sandboxed children never hold a secret (DESIGN.md 11).
   * Not for a TPM that does not exist yet (nothing is checked then), nor
   * when the lock is taken: the fork is the dearest step of this run.  (It
   * closes its copy of the lock's descriptor; the lock stays ours.) */
  if (!msvm_change_state_is_new(ctx->state_dir) && !msvm_tpm_validate_server_start(&error)) {
    msvm_hook_message("cannot check the vTPM state of domain %s: %s", ctx->name,
                      error->message);
    close(lock_fd);
    return 1;
  }
  if (!msvm_store_load(ctx->root, ctx->uuid, &store, &error)) {
    msvm_hook_message("cannot read the msvm-security store of domain %s: %s", ctx->name,
                      error->message);
    close(lock_fd);
    return 1;
  }

  change = (MsvmChange){
    .actor = MSVM_CHANGE_BY_HOOK,
    .store = store,
    .host = NULL,
    .state_dir = ctx->state_dir,
    .vm_name = ctx->name,
    .active = FALSE,
  };
  change.definition.secret = g_strdup(ctx->secret);
  change.definition.change_id = msvm_domain_get_change_id(ctx->doc);
  was_pending = pending(store);
  if (!msvm_change_finish(&change, NULL, &error)) {
    msvm_change_clear(&change);
    if (msvm_error_is(error, MSVM_RC_TIMEOUT)) {
      msvm_hook_message("the vTPM state of domain %s (%s) cannot be checked: %s; restore "
                        "the state from a backup",
                        ctx->name, ctx->state_dir, error->message);
      close(lock_fd);
      return 1;
    }
    if (msvm_error_is(error, MSVM_RC_IN_USE)) {
      msvm_hook_message("System is in use: cannot finish the pending key-protector "
                        "change of domain %s: %s",
                        ctx->name, error->message);
      close(lock_fd);
      return 1;
    }
    if (was_pending) {
      msvm_hook_message("cannot finish the pending key-protector change of domain %s: "
                        "%s; run 'msvm-security recover --domain %s'",
                        ctx->name, error->message, ctx->name);
      close(lock_fd);
      return 1;
    }
    /* nothing was pending: the check below says what is wrong */
    g_clear_error(&error);
  }
  msvm_change_clear(&change);

  gen = msvm_store_find_generation_by_secret(store, ctx->secret);
  if (gen == NULL) {
    /* a TPM whose secret the project does not own: not ours to refuse (I5) */
    close(lock_fd);
    return 0;
  }
  rc = check_state(ctx, store, gen);
  close(lock_fd);
  return rc;
}
