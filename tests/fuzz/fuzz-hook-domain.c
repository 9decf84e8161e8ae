/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-hook-domain.c: the hook's second stage on the domain XML that
 * libvirt writes on its standard input, up to the point where it would touch
 * host state (hooks/msvm-hook-domain.c): parse, metadata lookup, UUID and
 * vTPM secret, the change marker, the "migrate begin" / "restore begin"
 * filter's rewriting and the "prepare begin" comparison with the marker.  No
 * libvirt, no store, no file.
 *
 * Oracles: an input is a managed domain, an unmanaged one (no error, nothing
 * kept) or refused with an error; a managed domain's UUID formats to a UUID
 * that parses back to the same bytes; its filtered definition is again
 * managed with the same UUID, secret and change marker, carries the nonce,
 * matches a marker of that nonce (in any case) and no other, and filtering it
 * again gives the same text.
 *
 * Corpus (hook-domain-corpus/): the domain corpus's definitions (without its
 * selector byte) and definitions as libvirt hands them to the hook
 * (managed and not, with an incoming nonce, a change marker, damaged UUIDs).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-hook.h"
#include "msvm-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NONCE "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
#define OTHER_NONCE "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f1"

static gboolean
marker_matches(MsvmHookCtx *ctx, const char *text)
{
  g_autofree char *marker = g_strdup(text);
  return msvm_hook_incoming_matches(ctx, marker);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* The first stage hands the second a NUL-terminated copy. */
  g_autofree char *xml = g_malloc(size + 1);
  MsvmHookCtx ctx = { .name = "fuzz" };
  MsvmHookCtx again = { .name = "fuzz" };
  g_autoptr(GError) error = NULL;
  g_autofree char *change = NULL;
  g_autofree char *filtered = NULL;
  g_autofree char *refiltered = NULL;
  g_autofree char *incoming = NULL;
  g_autofree char *change2 = NULL;
  guint8 parsed[16];

  memcpy(xml, data, size);
  xml[size] = '\0';
  switch (msvm_hook_read_domain(&ctx, xml, size, &error)) {
  case MSVM_HOOK_DOMAIN_INVALID:
    g_assert_nonnull(error);
    g_assert_nonnull(error->message);
    g_assert_null(ctx.doc);
    g_assert_null(ctx.uuid_str);
    return 0;
  case MSVM_HOOK_DOMAIN_UNMANAGED:
    g_assert_no_error(error);
    g_assert_null(ctx.doc);
    g_assert_null(ctx.uuid_str);
    return 0;
  case MSVM_HOOK_DOMAIN_MANAGED:
    break;
  default:
    g_assert_not_reached();
  }
  g_assert_no_error(error);
  g_assert_nonnull(ctx.doc);
  g_assert_true(msvm_domain_is_managed(ctx.doc));
  g_assert_true(g_uuid_string_is_valid(ctx.uuid_str));
  g_assert_true(msvm_uuid_parse(ctx.uuid_str, parsed));
  g_assert_true(memcmp(parsed, ctx.uuid, 16) == 0);
  change = msvm_domain_get_change_id(ctx.doc);
  /* a marker read from the store's directory is never trusted: any text */
  (void)marker_matches(&ctx, xml);

  filtered = msvm_hook_mark_incoming(&ctx, NONCE);
  g_assert_nonnull(filtered);
  incoming = msvm_domain_get_incoming(ctx.doc);
  g_assert_cmpstr(incoming, ==, NONCE);
  g_assert_true(marker_matches(&ctx, "migrate " NONCE "\n"));

  if (msvm_hook_read_domain(&again, filtered, strlen(filtered), &error) !=
      MSVM_HOOK_DOMAIN_MANAGED)
    g_error("the filtered definition is not a managed domain: %s\n%s",
            error ? error->message : "unmanaged", filtered);
  g_assert_true(memcmp(again.uuid, ctx.uuid, 16) == 0);
  g_assert_cmpstr(again.secret, ==, ctx.secret);
  change2 = msvm_domain_get_change_id(again.doc);
  g_assert_cmpstr(change2, ==, change);
  g_assert_true(marker_matches(&again, "migrate " NONCE "\n"));
  g_assert_true(marker_matches(&again, "restore " NONCE));
  {
    g_autofree char *upper = g_ascii_strup("restore " NONCE "\n", -1);
    g_assert_true(marker_matches(&again, upper));
  }
  g_assert_false(marker_matches(&again, "migrate " OTHER_NONCE "\n"));
  g_assert_false(marker_matches(&again, NONCE));
  g_assert_false(marker_matches(&again, ""));

  refiltered = msvm_hook_mark_incoming(&again, NONCE);
  g_assert_cmpstr(refiltered, ==, filtered);

  msvm_hook_ctx_clear(&again);
  msvm_hook_ctx_clear(&ctx);
  return 0;
}
