/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook.h: the hook's second stage (msvm-security-hook-module.so), loaded by
 * the first stage (msvm-security-hook.c) for managed guests only.
 *
 * The entry point may use no type beyond libc's: the first stage includes
 * this header without GLib.  Everything below MSVM_HOOK_INTERNAL is for the
 * module's own files.
 */
#pragma once

#include <stddef.h>

#define MSVM_HOOK_MODULE_NAME "msvm-security-hook-module.so"
#define MSVM_HOOK_RUN_SYMBOL "msvm_hook_run"

/* argv as libvirt gives it (OBJECT OPERATION SUBOPERATION EXTRA), the
 * domain XML read from standard input (NUL-terminated, @len bytes).
 * Returns the hook's exit status; writes the filter output (if any) on
 * standard output and at most one line on standard error. */
typedef int (*MsvmHookRunFunc)(int argc, char **argv, const char *xml, size_t len);

#ifdef MSVM_HOOK_INTERNAL

#include <glib.h>
#include <libxml/tree.h>

#include "msvm-store.h"

G_BEGIN_DECLS

/* Everything the operations need to know about the guest and the host. */
typedef struct {
  const char *name;        /* OBJECT: the domain name, for messages only */
  xmlDocPtr doc;
  guint8 uuid[16];
  char *uuid_str;          /* lower case */
  char *secret;            /* the TPM's <encryption secret=...>, or NULL */
  gboolean system;         /* system store (we run as root) */
  uid_t uid;
  char *root;              /* the store root */
  char *vm_dir;            /* <root>/<uuid> */
  char *store_file;        /* <vm_dir>/store */
  char *state_dir;         /* libvirt's swtpm tpm2 directory */
} MsvmHookCtx;

/* What the domain XML on standard input is (msvm-hook-domain.c). */
typedef enum {
  MSVM_HOOK_DOMAIN_MANAGED,   /* ours: ctx->doc, uuid, uuid_str, secret set */
  MSVM_HOOK_DOMAIN_UNMANAGED, /* well formed, without the project's element */
  MSVM_HOOK_DOMAIN_INVALID,   /* not a domain, or no valid UUID (*error set) */
} MsvmHookDomain;

/* Parses the definition into @ctx (ctx->name names it in messages); touches
 * no file.  Only MSVM_HOOK_DOMAIN_MANAGED changes @ctx. */
/* Free what msvm_hook_read_domain() and the hook's later steps put in
 * @ctx, and zero it. */
void msvm_hook_ctx_clear(MsvmHookCtx *ctx);

MsvmHookDomain msvm_hook_read_domain(MsvmHookCtx *ctx, const char *xml, size_t len,
                                     GError **error);
/* The incoming filter's output: ctx->doc with the one-time @nonce on the
 * project's element, formatted; NULL when it cannot be marked. */
char *msvm_hook_mark_incoming(MsvmHookCtx *ctx, const char *nonce);
/* TRUE when the incoming marker's text @marker ("OPERATION NONCE", modified
 * in place) names the nonce ctx->doc carries. */
gboolean msvm_hook_incoming_matches(MsvmHookCtx *ctx, char *marker);

/* Operations.  Return the exit status; messages with msvm_hook_fail. */
int msvm_hook_prepare(MsvmHookCtx *ctx);
int msvm_hook_started(MsvmHookCtx *ctx);
int msvm_hook_incoming(MsvmHookCtx *ctx, gboolean migration);
void msvm_hook_forget_incoming(MsvmHookCtx *ctx);
/* At "prepare begin": TRUE when this start is the incoming migration or
 * restore whose filter left the marker (the definition carries its nonce);
 * the marker is removed either way. */
gboolean msvm_hook_consume_incoming(MsvmHookCtx *ctx);

/* The one line on standard error (newlines in @fmt's result flattened). */
void msvm_hook_message(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* TRUE when the VM has a store file. */
gboolean msvm_hook_has_store(const MsvmHookCtx *ctx);

G_END_DECLS

#endif /* MSVM_HOOK_INTERNAL */
