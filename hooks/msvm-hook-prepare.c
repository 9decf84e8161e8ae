/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-prepare.c: "prepare begin", before libvirt starts swtpm
 * (docs/hooks.rst).
 *
 *  1. No store entry for the VM: nothing to finish or check (exit 0).
 *  2. A restore or an incoming migration (the "restore begin" / "migrate
 *     begin" hook left a marker moments ago): the state arrives with the
 *     guest; nothing is touched and the start is not blocked.
 *  3. Try the per-VM lock; held: "System is in use" (waiting could deadlock
 *     with a caller that holds the lock while libvirt holds the domain).
 *  4. A change interrupted right after its define (journal open, `current`
 *     not yet moved) while the definition being started names the
 *     journal's target: the define happened, so `current` moves to the
 *     target as the provider's own recovery would (the journal stays open
 *     for `msvm-security recover`, which needs libvirt to close it).
 *  5. Finish the unfinished change or deferred job: find the generation the
 *     state is really under (msvm_store_locate_state), re-key it to
 *     `current` (msvm-hook-finish.c).
 *  6. Check that the state opens, and validates, under the passphrase of the
 *     generation the definition names.  When it does not but the definition
 *     names `current` and the state opens under another generation (a state
 *     put back from a backup), that is an unfinished change too: re-key it
 *     to `current`.  Otherwise one line saying what is wrong and which
 *     msvm-security command fixes it, and exit 1.
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-rekey.h"
#include "msvm-store.h"

static gboolean
same_uuid(const char *a, const char *b)
{
  guint8 ua[16], ub[16];
  return msvm_store_uuid_parse(a, ua) && msvm_store_uuid_parse(b, ub) &&
         memcmp(ua, ub, 16) == 0;
}

static gboolean
opens_under(const MsvmStore *store, const MsvmGeneration *gen, const char *state_dir,
            GError **error)
{
  MsvmStateKey key = { .kdf = MSVM_KDF_PBKDF2, .cipher = MSVM_CIPHER_AES_256_CBC };
  char *pass = NULL;
  gsize len = 0;
  gboolean ok;

  if (!msvm_store_generation_passphrase(store, gen, &pass, &len, error))
    return FALSE;
  key.passphrase = (const guint8 *)pass;
  key.passphrase_len = len;
  ok = msvm_state_dir_check(state_dir, &key, error);
  msvm_passphrase_free(pass, len);
  return ok;
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
  }
  return 0;
}

/* Re-key what is unfinished: the state located first (it may not be under
 * the `state` generation the store records), then moved to `current`.
 * Returns the exit status (a message printed on failure). */
static int
finish(MsvmHookCtx *ctx, MsvmStore *store, gboolean names_current)
{
  g_autoptr(GError) error = NULL;
  gboolean moved = FALSE;

  if (!msvm_store_locate_state(store, ctx->state_dir, &moved, &error) ||
      !msvm_hook_finish(store, ctx->state_dir, names_current, &error)) {
    if (g_error_matches(error, MSVM_ERROR, MSVM_RC_IN_USE))
      msvm_hook_message("System is in use: cannot finish the pending key-protector "
                        "change of domain %s: %s",
                        ctx->name, error->message);
    else
      msvm_hook_message("cannot finish the pending key-protector change of domain %s: "
                        "%s; run 'msvm-security recover --domain %s'",
                        ctx->name, error->message, ctx->name);
    return 1;
  }
  return 0;
}

static int
check_state(MsvmHookCtx *ctx, MsvmStore *store, const MsvmGeneration *gen,
            gboolean names_current)
{
  g_autoptr(GError) error = NULL;
  struct stat st;
  guint other;

  if (lstat(ctx->state_dir, &st) < 0 && errno == ENOENT)
    return 0; /* a new TPM: libvirt creates it under the secret it names */
  if (opens_under(store, gen, ctx->state_dir, &error))
    return 0;
  if (names_current && !g_error_matches(error, MSVM_ERROR, MSVM_RC_IN_USE)) {
    /* Under another generation than the store says (put back from a
     * backup, a save image restored with --force): finish it like any
     * unfinished change, then check again. */
    gboolean moved = FALSE;
    g_autoptr(GError) e = NULL;
    if (msvm_store_locate_state(store, ctx->state_dir, &moved, &e) && moved &&
        store->state != store->current) {
      if (finish(ctx, store, names_current) != 0)
        return 1;
      g_clear_error(&error);
      if (opens_under(store, gen, ctx->state_dir, &error))
        return 0;
    }
  }
  if (g_error_matches(error, MSVM_ERROR, MSVM_RC_IN_USE)) {
    msvm_hook_message("System is in use: the vTPM state of domain %s (%s) is locked by "
                      "another process (a swtpm still running?)",
                      ctx->name, ctx->state_dir);
    return 1;
  }
  other = find_opening_generation(store, gen, ctx->state_dir);
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
consume_incoming(MsvmHookCtx *ctx)
{
  g_autofree char *path = g_build_filename(ctx->vm_dir, "incoming", NULL);
  g_autofree char *data = NULL;
  gint64 when = 0;

  if (!g_file_get_contents(path, &data, NULL, NULL))
    return FALSE;
  (void)unlink(path);
  {
    const char *sp = strchr(data, ' ');
    if (sp != NULL)
      when = g_ascii_strtoll(sp + 1, NULL, 10);
  }
  /* libvirt runs "prepare" right after "migrate" / "restore"; a marker older
   * than that belongs to an operation that failed before starting anything. */
  return when > 0 && ABS(g_get_real_time() / G_USEC_PER_SEC - when) <= 600;
}

int
msvm_hook_prepare(MsvmHookCtx *ctx)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStore) store = NULL;
  const MsvmGeneration *gen, *cur;
  gboolean names_current;
  int lock_fd, rc;

  if (!msvm_hook_has_store(ctx))
    return 0;
  if (consume_incoming(ctx))
    return 0;
  if (ctx->secret == NULL)
    return 0; /* no encrypted emulator TPM in this definition: swtpm is not ours */

  lock_fd = msvm_store_lock(ctx->root, ctx->uuid, FALSE, &error);
  if (lock_fd < 0) {
    if (g_error_matches(error, MSVM_ERROR, MSVM_RC_IN_USE))
      msvm_hook_message("System is in use: an msvm-security change of domain %s is in "
                        "progress; start it again when it has finished "
                        "('msvm-security job list')",
                        ctx->name);
    else
      msvm_hook_message("cannot lock the msvm-security store of domain %s: %s", ctx->name,
                        error->message);
    return 1;
  }
  if (!msvm_store_load(ctx->root, ctx->uuid, &store, &error)) {
    msvm_hook_message("cannot read the msvm-security store of domain %s: %s", ctx->name,
                      error->message);
    close(lock_fd);
    return 1;
  }

  /* A change killed between its define and recording `current`. */
  if (store->journal.open && store->journal.target != 0 &&
      store->journal.target != store->current) {
    const MsvmGeneration *tgt = msvm_store_get_generation(store, store->journal.target);
    if (tgt != NULL && same_uuid(tgt->secret_uuid, ctx->secret)) {
      guint prev_state = store->journal.prev_state;
      store->current = tgt->number;
      if (!store->lkg_from_start && prev_state != 0 && prev_state != tgt->number)
        store->last_known_good = prev_state;
      if (store->journal.has_stash) {
        g_free(store->stash);
        store->stash = g_strdup(store->journal.stash);
      }
      msvm_fault_point("hook-roll-forward");
      if (!msvm_store_save(store, &error)) {
        msvm_hook_message("cannot record the interrupted change of domain %s: %s",
                          ctx->name, error->message);
        close(lock_fd);
        return 1;
      }
    }
  }

  gen = msvm_store_find_generation_by_secret(store, ctx->secret);
  cur = msvm_store_get_generation(store, store->current);
  names_current = cur != NULL && same_uuid(cur->secret_uuid, ctx->secret);

  if (store->current != 0 &&
      (store->state != store->current || msvm_store_has_open_jobs(store))) {
    if (finish(ctx, store, names_current) != 0) {
      close(lock_fd);
      return 1;
    }
  }

  if (gen == NULL) {
    msvm_hook_message("the vTPM of domain %s names secret %s, which is none of its "
                      "msvm-security key protectors; run 'msvm-security recover --domain %s'",
                      ctx->name, ctx->secret, ctx->name);
    close(lock_fd);
    return 1;
  }
  rc = check_state(ctx, store, gen, names_current);
  close(lock_fd);
  return rc;
}
