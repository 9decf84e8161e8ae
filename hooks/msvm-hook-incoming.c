/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-incoming.c: the "migrate begin" (destination) and "restore
 * begin" filters (docs/hooks.rst).
 *
 * The XML never needs a change (the hook defines nothing), so nothing is
 * printed: libvirt keeps the XML as it is.  A migration destination whose
 * store holds no key protector for the secret the guest's vTPM names is
 * refused: the seed and the protectors live only on the source host until
 * the store entry is moved (the project has no export/import yet).
 *
 * libvirt passes "prepare begin -" for a normal start, a restore and an
 * incoming migration alike, so these filters leave a marker
 * (<store>/<uuid>/incoming: the operation and the time) that tells the
 * following "prepare begin" not to re-key or check the state, which arrives
 * with the guest (encrypted under the secret the incoming XML names).  The
 * marker is removed by that "prepare", by "started" and by "release", and
 * ignored when older than ten minutes.
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-store.h"

void
msvm_hook_forget_incoming(MsvmHookCtx *ctx)
{
  g_autofree char *path = g_build_filename(ctx->vm_dir, "incoming", NULL);
  (void)unlink(path);
}

int
msvm_hook_incoming(MsvmHookCtx *ctx, gboolean migration)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStore) store = NULL;
  g_autofree char *path = NULL;
  g_autofree char *marker = NULL;

  if (!msvm_hook_has_store(ctx)) {
    if (migration && ctx->secret != NULL) {
      msvm_hook_message("refusing the incoming migration of domain %s: this host's "
                        "msvm-security store has no entry for it (its seed and key "
                        "protectors are on the source host; move %s first)",
                        ctx->name, ctx->vm_dir);
      return 1;
    }
    return 0;
  }
  /* Read without the lock: the store file is replaced atomically. */
  if (!msvm_store_load(ctx->root, ctx->uuid, &store, &error)) {
    msvm_hook_message("cannot read the msvm-security store of domain %s: %s", ctx->name,
                      error->message);
    return 1;
  }
  if (migration && ctx->secret != NULL &&
      msvm_store_find_generation_by_secret(store, ctx->secret) == NULL) {
    msvm_hook_message("refusing the incoming migration of domain %s: this host's "
                      "msvm-security store has no key protector for the vTPM secret %s "
                      "it names",
                      ctx->name, ctx->secret);
    return 1;
  }
  path = g_build_filename(ctx->vm_dir, "incoming", NULL);
  marker = g_strdup_printf("%s %" G_GINT64_FORMAT "\n", migration ? "migrate" : "restore",
                           g_get_real_time() / G_USEC_PER_SEC);
  if (!msvm_atomic_write(path, marker, strlen(marker), 0600, &error)) {
    msvm_hook_message("cannot record the incoming %s of domain %s: %s",
                      migration ? "migration" : "restore", ctx->name, error->message);
    return 1;
  }
  return 0;
}
