/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-virt.c: the provider's libvirt helpers that need no daemon: which
 * connection URIs are refused (remote hosts, transports, other drivers:
 * 32770), and which secrets a definition, a snapshot or a save image names
 * (what retirement must keep).
 */
#include "config.h"

#include <string.h>

#include "msvm-error.h"
#include "msvm-virt.h"

typedef struct {
  const char *uri;
  guint32 rc; /* 0: accepted */
} UriCase;

static const UriCase uri_cases[] = {
  { "qemu:///system", 0 },
  { "qemu:///session", 0 },
  { "QEMU:///session", 0 },
  { "qemu+ssh://host/system", MSVM_RC_NOT_SUPPORTED },
  { "qemu+tcp://host/system", MSVM_RC_NOT_SUPPORTED },
  { "qemu+unix:///system", MSVM_RC_NOT_SUPPORTED },
  { "qemu://host.example/system", MSVM_RC_NOT_SUPPORTED },
  { "test:///default", MSVM_RC_NOT_SUPPORTED },
  { "lxc:///system", MSVM_RC_NOT_SUPPORTED },
  { "qemu:///embed?root=/tmp/x", MSVM_RC_NOT_SUPPORTED },
  { "not a uri", MSVM_RC_INVALID_PARAMETER },
};

static void
test_uri(gconstpointer data)
{
  const UriCase *c = data;
  g_autoptr(GError) error = NULL;
  gboolean ok = msvm_virt_check_uri(c->uri, &error);

  if (c->rc == 0) {
    g_assert_no_error(error);
    g_assert_true(ok);
  } else {
    g_assert_false(ok);
    g_assert_error(error, MSVM_ERROR, (gint)c->rc);
  }
}

static void
test_uri_default(void)
{
  g_assert_true(msvm_virt_check_uri(NULL, NULL));
}

static void
test_collect_secrets(void)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
  const char *domain =
    "<domain type='qemu'><name>a</name><devices>"
    "<tpm model='tpm-crb'><backend type='emulator' version='2.0'>"
    "<encryption secret='11111111-2222-3333-4444-555555555555'/></backend></tpm>"
    "</devices></domain>";
  const char *snapshot =
    "<domainsnapshot><name>s1</name><state>running</state>"
    "<domain type='qemu'><name>a</name><devices>"
    "<tpm model='tpm-crb'><backend type='emulator' version='2.0'>"
    "<encryption secret='66666666-2222-3333-4444-555555555555'/></backend></tpm>"
    "</devices></domain></domainsnapshot>";
  /* what a definer put under <metadata> names nothing (issue 8, finding 8) */
  const char *in_metadata =
    "<domain type='qemu'><name>a</name><metadata><app:x xmlns:app='urn:example:app'>"
    "<devices><tpm><backend type='emulator'>"
    "<encryption secret='99999999-2222-3333-4444-555555555555'/></backend></tpm></devices>"
    "<domain><devices><tpm><backend type='emulator'>"
    "<encryption secret='88888888-2222-3333-4444-555555555555'/></backend></tpm></devices>"
    "</domain></app:x></metadata><devices/></domain>";
  const char *inactive_in_snapshot =
    "<domainsnapshot><name>s2</name><inactiveDomain type='qemu'><name>a</name><devices>"
    "<tpm model='tpm-crb'><backend type='emulator' version='2.0'>"
    "<encryption secret='77777777-2222-3333-4444-555555555555'/></backend></tpm>"
    "</devices></inactiveDomain></domainsnapshot>";
  const char *plain = "<domain type='qemu'><name>a</name><devices>"
                      "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"
                      "</devices></domain>";

  msvm_virt_collect_tpm_secrets(domain, out);
  msvm_virt_collect_tpm_secrets(snapshot, out);
  msvm_virt_collect_tpm_secrets(in_metadata, out);
  msvm_virt_collect_tpm_secrets(inactive_in_snapshot, out);
  msvm_virt_collect_tpm_secrets(plain, out);
  msvm_virt_collect_tpm_secrets("<not xml", out);
  msvm_virt_collect_tpm_secrets(NULL, out);
  g_assert_cmpuint(out->len, ==, 3);
  g_assert_cmpstr(g_ptr_array_index(out, 0), ==, "11111111-2222-3333-4444-555555555555");
  g_assert_cmpstr(g_ptr_array_index(out, 1), ==, "66666666-2222-3333-4444-555555555555");
  g_assert_cmpstr(g_ptr_array_index(out, 2), ==, "77777777-2222-3333-4444-555555555555");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS(uri_cases); i++) {
    g_autofree char *name = g_strdup_printf("/virt/uri/%" G_GSIZE_FORMAT, i);
    g_test_add_data_func(name, &uri_cases[i], test_uri);
  }
  g_test_add_func("/virt/uri/default", test_uri_default);
  g_test_add_func("/virt/collect-secrets", test_collect_secrets);
  return g_test_run();
}
