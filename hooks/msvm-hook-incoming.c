/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-incoming.c: the "migrate begin" (destination) and "restore
 * begin" filters (docs/hooks.rst).
 *
 * A migration destination whose store holds no key protector for the secret
 * the guest's vTPM names is refused at "migrate begin", before anything
 * moves (the VM keeps running at the source): the seed and the protectors
 * live only on the source host until `msvm-security export-protector` there
 * and `import-protector` here move them (DESIGN.md section 10).
 *
 * libvirt passes "prepare begin -" for a normal start, a restore and an
 * incoming migration alike.  So that the "prepare begin" of this operation,
 * and only it, is recognised, the filter gives the definition back with a
 * one-time nonce on the project's metadata element (incoming="UUID": libvirt
 * takes a filtered XML whose ABI is unchanged, and metadata is not ABI) and
 * leaves a marker (<store>/<uuid>/incoming: the operation and the nonce).
 * The following "prepare begin" is exempted only when the definition it is
 * given carries that nonce; any "prepare begin" removes the marker, and so
 * do "started" and "release".  A restore or migration that failed before
 * its "prepare" leaves a marker no normal start matches (a persistent
 * definition never carries the nonce).
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-store.h"

void
msvm_hook_forget_incoming(MsvmHookCtx *ctx)
{
  g_autofree char *path = g_build_filename(ctx->vm_dir, "incoming", NULL);
  (void)unlink(path);
}

gboolean
msvm_hook_consume_incoming(MsvmHookCtx *ctx)
{
  g_autofree char *path = g_build_filename(ctx->vm_dir, "incoming", NULL);
  g_autofree char *data = NULL;

  if (!g_file_get_contents(path, &data, NULL, NULL))
    return FALSE;
  (void)unlink(path);
  return msvm_hook_incoming_matches(ctx, data);
}

int
msvm_hook_incoming(MsvmHookCtx *ctx, gboolean migration)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStore) store = NULL;
  g_autofree char *path = NULL;
  g_autofree char *marker = NULL;
  g_autofree char *nonce = NULL;
  g_autofree char *filtered = NULL;

  if (!msvm_hook_has_store(ctx)) {
    if (migration && ctx->secret != NULL) {
      msvm_hook_message("refusing the incoming migration of domain %s: this host's "
                        "msvm-security store has no entry for it; on the source host run "
                        "`msvm-security export-protector --domain %s --guardian NAME "
                        "--output FILE` for this host's guardian, then here "
                        "`msvm-security import-protector --input FILE`",
                        ctx->name, ctx->name);
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
                      "it names; export the VM's current protector on the source host "
                      "(`msvm-security export-protector`) and `msvm-security "
                      "import-protector` it here",
                      ctx->name, ctx->secret);
    return 1;
  }
  path = g_build_filename(ctx->vm_dir, "incoming", NULL);
  nonce = g_uuid_string_random();
  marker = g_strdup_printf("%s %s\n", migration ? "migrate" : "restore", nonce);
  if ((filtered = msvm_hook_mark_incoming(ctx, nonce)) == NULL) {
    msvm_hook_message("cannot mark the incoming definition of domain %s",
                      ctx->name);
    return 1;
  }
  if (!msvm_atomic_write(path, marker, strlen(marker), 0600,
                         MSVM_ATOMIC_WRITE_UNIQUE_TEMP, &error)) {
    msvm_hook_message("cannot record the incoming %s of domain %s: %s",
                      migration ? "migration" : "restore", ctx->name, error->message);
    return 1;
  }
  /* the filter's output: the definition with the nonce */
  fputs(filtered, stdout);
  fflush(stdout);
  return 0;
}
