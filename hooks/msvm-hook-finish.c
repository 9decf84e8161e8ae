/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-finish.c: finishing an unfinished change at "prepare begin"
 * (DESIGN.md section 6): re-key the state from the store's `state`
 * generation to `current` -- never to anything else, never to plaintext --
 * and close the open jobs, in one store save.
 *
 * The re-key is the store module's msvm_store_rekey_to_current(), as in
 * msvm_store_finish_rekey(); what differs is the jobs: one is Completed only
 * when the definition being started names `current` (DESIGN.md 9), and a
 * failed re-key leaves them in Exception with its error.
 *
 * Crash safety: the state directory is swapped whole by the re-key engine
 * and the store replaced atomically.  Killed after the swap and before the
 * save, the next run finds the state already under `current` (the re-key
 * from `state` fails, the check under `current` passes) and records it.
 */
#include "config.h"

#include "msvm-hook.h"

#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-store.h"

gboolean
msvm_hook_finish(MsvmStore *store, const char *state_dir, gboolean names_current,
                 GError **error)
{
  g_autoptr(GError) job_error = NULL;

  if (store->current == 0)
    return TRUE; /* no protector: never re-key to plaintext */

  if (!msvm_store_rekey_to_current(store, state_dir, error)) {
    if (!g_error_matches(*error, MSVM_ERROR, MSVM_RC_IN_USE)) {
      /* Record the failure in the jobs; the state is as it was. */
      g_autoptr(GError) save_error = NULL;
      msvm_store_finish_jobs(store, *error);
      msvm_fault_point("hook-save-exception");
      (void)msvm_store_save(store, &save_error);
    }
    return FALSE;
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
