/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-module.c: the hook's second stage, entry point and dispatch
 * (docs/hooks.rst).  Loaded by the first stage for guests whose XML carries
 * the project's namespace; it parses the document (no DTD, no entities, no
 * network), confirms the metadata element, and finds everything from the
 * domain UUID (parsed as 16 bytes, so no path can be smuggled in) and its
 * own user id: the store and the swtpm state directory are never taken from
 * the XML or the environment.
 */
#include "config.h"

#include "msvm-hook.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-secret.h"
#include "msvm-store.h"
#include "msvm-tpm-validate.h"

void
msvm_hook_message(const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start(ap, fmt);
  msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  for (char *c = msg; *c != '\0'; c++)
    if (*c == '\n' || *c == '\r')
      *c = ' ';
  fprintf(stderr, "msvm-security-hook: %s\n", msg);
  fflush(stderr);
}

gboolean
msvm_hook_has_store(const MsvmHookCtx *ctx)
{
  struct stat st;
  return lstat(ctx->store_file, &st) == 0 && S_ISREG(st.st_mode);
}

typedef enum { OP_OTHER, OP_PREPARE, OP_STARTED, OP_MIGRATE, OP_RESTORE, OP_RELEASE } HookOp;

static HookOp
classify(const char *op, const char *subop)
{
  gboolean begin = g_strcmp0(subop, "begin") == 0;

  if (g_strcmp0(op, "prepare") == 0 && begin)
    return OP_PREPARE;
  if (g_strcmp0(op, "started") == 0 && begin)
    return OP_STARTED;
  if (g_strcmp0(op, "migrate") == 0 && begin)
    return OP_MIGRATE;
  if (g_strcmp0(op, "restore") == 0 && begin)
    return OP_RESTORE;
  if (g_strcmp0(op, "release") == 0)
    return OP_RELEASE;
  return OP_OTHER; /* start, stopped, reconnect, attach, and future ones */
}

/* The operations that guard something fail closed when the guest cannot be
 * understood; the others never fail (a non-zero "started" kills the VM). */
static gboolean
guarding(HookOp op)
{
  return op == OP_PREPARE || op == OP_MIGRATE || op == OP_RESTORE;
}

static int
run(int argc, char **argv, const char *xml, size_t len)
{
  g_autoptr(GError) error = NULL;
  MsvmHookCtx ctx = { 0 };
  HookOp op;
  int rc = 0;

  if (argc < 4) {
    msvm_hook_message("usage: %s OBJECT OPERATION SUBOPERATION EXTRA < domain.xml",
                      argc > 0 ? argv[0] : "msvm-security-hook");
    return 2;
  }
  op = classify(argv[2], argv[3]);
  if (op == OP_OTHER)
    return 0; /* nothing to do: no file is opened */
  ctx.name = argv[1];
  /* Before anything is read: the XML may hold passwords, the store holds
   * every key protector (DESIGN.md section 11). */
  if (!msvm_secret_protect_process()) {
    int saved = errno;
    if (guarding(op))
      msvm_hook_message("cannot keep the secrets of domain %s out of core dumps: %s", ctx.name,
                        g_strerror(saved));
    return guarding(op) ? 1 : 0;
  }
  msvm_fault_point("process-protected");
  /* The libtpms check in a forked child, never by executing the helper from
   * libexecdir (AppArmor, DESIGN.md 9): this process is single-threaded.
   * Its server is started by "prepare begin" before the store is read. */
  msvm_tpm_set_validator(msvm_tpm_validate_in_child);

  switch (msvm_hook_read_domain(&ctx, xml, len, &error)) {
  case MSVM_HOOK_DOMAIN_MANAGED:
    break;
  case MSVM_HOOK_DOMAIN_UNMANAGED:
    msvm_hook_ctx_clear(&ctx);
    return 0; /* the namespace occurs, but not as our metadata element */
  case MSVM_HOOK_DOMAIN_INVALID:
  default:
    if (guarding(op))
      msvm_hook_message("%s", error->message);
    msvm_hook_ctx_clear(&ctx);
    return guarding(op) ? 1 : 0;
  }
  ctx.uid = geteuid();
  ctx.system = ctx.uid == 0;
  ctx.root = msvm_store_root(ctx.system, ctx.uid, &error);
  if (ctx.root != NULL)
    ctx.state_dir = msvm_swtpm_state_dir(ctx.system, ctx.uid, ctx.uuid, "2.0", &error);
  if (ctx.root == NULL || ctx.state_dir == NULL) {
    if (guarding(op))
      msvm_hook_message("cannot find the msvm-security store of domain %s: %s", ctx.name,
                        error->message);
    msvm_hook_ctx_clear(&ctx);
    return guarding(op) ? 1 : 0;
  }
  ctx.vm_dir = g_build_filename(ctx.root, ctx.uuid_str, NULL);
#ifdef MSVM_FAULT_INJECTION
  {
    /* test builds: a crash-injection campaign arms this run (msvm-fault.h) */
    g_autofree char *fault_file = g_build_filename(ctx.root, ".fault-inject", NULL);
    msvm_fault_configure_from_file(fault_file);
  }
#endif
  ctx.store_file = g_build_filename(ctx.vm_dir, "store", NULL);

  switch (op) {
  case OP_PREPARE:
    rc = msvm_hook_prepare(&ctx);
    break;
  case OP_STARTED:
    rc = msvm_hook_started(&ctx);
    break;
  case OP_MIGRATE:
    rc = msvm_hook_incoming(&ctx, TRUE);
    break;
  case OP_RESTORE:
    rc = msvm_hook_incoming(&ctx, FALSE);
    break;
  case OP_RELEASE:
    msvm_hook_forget_incoming(&ctx);
    rc = 0;
    break;
  case OP_OTHER:
    break;
  }
  msvm_hook_ctx_clear(&ctx);
  msvm_tpm_validate_server_stop();
  return rc;
}

__attribute__((visibility("default"))) int
msvm_hook_run(int argc, char **argv, const char *xml, size_t len)
{
  /* Check the prototype against the one the first stage calls through. */
  G_GNUC_UNUSED MsvmHookRunFunc self = msvm_hook_run;

  return run(argc, argv, xml, len);
}
