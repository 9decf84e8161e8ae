/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-started.c: "started begin": record the generation the VM started
 * with as its last known good key protector (DESIGN.md section 5).
 *
 * A non-zero exit here makes libvirt kill the VM, so this step never fails:
 * every problem is a note on standard error and exit status 0.  It never
 * waits on the per-VM lock either: the lock is tried once and, when a change
 * is in progress, this start is simply not recorded (the previous last known
 * good stays; the next start records it).
 */
#include "config.h"

#include "msvm-hook.h"

#include <unistd.h>

#include "msvm-change.h"
#include "msvm-error.h"
#include "msvm-store.h"

int
msvm_hook_started(MsvmHookCtx *ctx)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStore) store = NULL;
  int lock_fd;

  msvm_hook_forget_incoming(ctx);
  if (!msvm_hook_has_store(ctx) || ctx->secret == NULL)
    return 0;

  lock_fd = msvm_store_lock(ctx->root, ctx->uuid, FALSE, &error);
  if (lock_fd < 0) {
    msvm_hook_message("domain %s started; its key protector was not recorded as last "
                      "known good: %s",
                      ctx->name, error->message);
    return 0;
  }
  if (!msvm_store_load(ctx->root, ctx->uuid, &store, &error)) {
    msvm_hook_message("domain %s started; cannot read its msvm-security store: %s",
                      ctx->name, error->message);
    close(lock_fd);
    return 0;
  }
  if (msvm_change_record_started(store, ctx->secret, &error) == MSVM_STEP_FAILED)
    msvm_hook_message("domain %s started; cannot record its last known good key "
                      "protector: %s",
                      ctx->name, error->message);
  close(lock_fd);
  return 0;
}
