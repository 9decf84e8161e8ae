/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-domain.c: what the hook's second stage does with the domain XML
 * on its standard input before it touches any file: parse it (no DTD, no
 * entities, no network), confirm the project's metadata element, take the
 * UUID (as 16 bytes, so no path can be smuggled in) and the vTPM secret; the
 * "migrate begin" / "restore begin" filter's rewriting (the nonce on the
 * metadata element) and the "prepare begin" comparison of the marker with
 * the definition.  No I/O here: tests/fuzz/fuzz-hook-domain.c runs it all.
 */
#include "config.h"

#include "msvm-hook.h"

#include <string.h>

#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-store.h"

void
msvm_hook_ctx_clear(MsvmHookCtx *ctx)
{
  if (ctx->doc != NULL)
    xmlFreeDoc(ctx->doc);
  g_free(ctx->uuid_str);
  g_free(ctx->secret);
  g_free(ctx->root);
  g_free(ctx->vm_dir);
  g_free(ctx->store_file);
  g_free(ctx->state_dir);
  memset(ctx, 0, sizeof(*ctx));
}

MsvmHookDomain
msvm_hook_read_domain(MsvmHookCtx *ctx, const char *xml, size_t len, GError **error)
{
  g_autoptr(GError) local = NULL;
  xmlDocPtr doc = msvm_domain_parse(xml, len, &local);

  if (doc == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the XML of domain %s on standard input is not a domain definition: %s",
                ctx->name, local->message);
    return MSVM_HOOK_DOMAIN_INVALID;
  }
  if (!msvm_domain_is_managed(doc)) {
    xmlFreeDoc(doc);
    return MSVM_HOOK_DOMAIN_UNMANAGED; /* the namespace occurs, but not as our element */
  }
  if (!msvm_domain_get_uuid(doc, ctx->uuid, &local)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "domain %s has no valid UUID: %s", ctx->name, local->message);
    xmlFreeDoc(doc);
    return MSVM_HOOK_DOMAIN_INVALID;
  }
  ctx->doc = doc;
  ctx->uuid_str = msvm_uuid_to_string(ctx->uuid);
  ctx->secret = msvm_domain_get_tpm_secret(doc);
  return MSVM_HOOK_DOMAIN_MANAGED;
}

char *
msvm_hook_mark_incoming(MsvmHookCtx *ctx, const char *nonce)
{
  if (!msvm_domain_set_incoming(ctx->doc, nonce))
    return NULL;
  return msvm_domain_format(ctx->doc);
}

gboolean
msvm_hook_incoming_matches(MsvmHookCtx *ctx, char *marker)
{
  g_auto(GStrv) words = g_strsplit(g_strstrip(marker), " ", 3);
  g_autofree char *nonce = msvm_domain_get_incoming(ctx->doc);

  return g_strv_length(words) >= 2 && nonce != NULL && g_uuid_string_is_valid(words[1]) &&
         g_ascii_strcasecmp(words[1], nonce) == 0;
}
