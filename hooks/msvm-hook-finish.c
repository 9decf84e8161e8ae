/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-finish.c: finishing an unfinished change at "prepare begin"
 * (DESIGN.md section 6): re-key the state from the store's `state`
 * generation to `current` -- never to anything else, never to plaintext --
 * and close the open jobs, in one store save.
 *
 * Like msvm_store_finish_rekey() of the store module, but a job is Completed
 * only when the definition being started names `current` (DESIGN.md 9), and
 * a failed re-key leaves the jobs in Exception with its error.
 *
 * Crash safety: the state directory is swapped whole by the re-key engine
 * and the store replaced atomically.  Killed after the swap and before the
 * save, the next run finds the state already under `current` (the re-key
 * from `state` fails, the check under `current` passes) and records it.
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <sys/stat.h>

#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-rekey.h"
#include "msvm-store.h"

typedef struct {
  MsvmStateKey key;
  char *pass;
  gsize len;
} HookKey;

static gboolean
hook_key(const MsvmStore *store, guint number, HookKey *k, GError **error)
{
  const MsvmGeneration *gen = msvm_store_get_generation(store, number);

  memset(k, 0, sizeof(*k));
  k->key.kdf = MSVM_KDF_PBKDF2;
  k->key.cipher = MSVM_CIPHER_AES_256_CBC;
  if (number == 0)
    return TRUE; /* plaintext (only ever as the old key) */
  if (gen == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the store names key protector generation %u, which it does not hold",
                number);
    return FALSE;
  }
  if (!msvm_store_generation_passphrase(store, gen, &k->pass, &k->len, error))
    return FALSE;
  k->key.passphrase = (const guint8 *)k->pass;
  k->key.passphrase_len = k->len;
  return TRUE;
}

static void
hook_key_clear(HookKey *k)
{
  if (k->pass != NULL)
    msvm_passphrase_free(k->pass, k->len);
  memset(k, 0, sizeof(*k));
}

static gboolean
rekey(const MsvmStore *store, const char *state_dir, GError **error)
{
  HookKey old_key, new_key;
  gboolean ok;

  if (!hook_key(store, store->state, &old_key, error))
    return FALSE;
  if (!hook_key(store, store->current, &new_key, error)) {
    hook_key_clear(&old_key);
    return FALSE;
  }
  ok = msvm_rekey_state_dir(state_dir, &old_key.key, &new_key.key, error);
  if (!ok && !g_error_matches(*error, MSVM_ERROR, MSVM_RC_IN_USE)) {
    /* An earlier run may have swapped the directory and died before saving. */
    g_autoptr(GError) e = NULL;
    if (msvm_state_dir_check(state_dir, &new_key.key, &e)) {
      g_clear_error(error);
      ok = TRUE;
    }
  }
  hook_key_clear(&old_key);
  hook_key_clear(&new_key);
  return ok;
}

gboolean
msvm_hook_finish(MsvmStore *store, const char *state_dir, gboolean names_current,
                 GError **error)
{
  g_autoptr(GError) job_error = NULL;
  struct stat st;

  if (store->current == 0)
    return TRUE; /* no protector: never re-key to plaintext */

  if (store->state != store->current) {
    if (lstat(state_dir, &st) < 0 && errno == ENOENT) {
      /* No TPM yet: swtpm_setup creates it under `current` at this start. */
    } else if (!rekey(store, state_dir, error)) {
      g_prefix_error(error, "re-keying %s from key protector generation %u to %u: ",
                     state_dir, store->state, store->current);
      if (!g_error_matches(*error, MSVM_ERROR, MSVM_RC_IN_USE)) {
        /* Record the failure in the jobs; the state is as it was. */
        g_autoptr(GError) save_error = NULL;
        msvm_store_finish_jobs(store, *error);
        msvm_fault_point("hook-save-exception");
        (void)msvm_store_save(store, &save_error);
      }
      return FALSE;
    }
    msvm_fault_point("hook-after-rekey");
    store->state = store->current;
  }
  if (!names_current)
    job_error = g_error_new(MSVM_ERROR, MSVM_RC_INVALID_STATE,
                            "the vTPM state was re-keyed to the current key protector "
                            "(generation %u), but the definition that was started names "
                            "another secret",
                            store->current);
  msvm_store_finish_jobs(store, job_error);
  msvm_fault_point("hook-save");
  return msvm_store_save(store, error);
}
