/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-virt.c: libvirt access through its C API (see msvm-virt.h).
 */
#include "config.h"

#include "msvm-virt.h"

#include <string.h>
#include <unistd.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-store.h"
#include "msvm-xml-quiet.h"

static void
silent_error(void *data, virErrorPtr err)
{
  /* library code never prints: errors are read with virGetLastError */
}

gboolean
msvm_virt_error(GError **error, guint32 fallback, const char *what)
{
  virErrorPtr e = virGetLastError();
  guint32 rc = fallback;
  const char *msg = e && e->message ? e->message : "unknown libvirt error";

  if (e != NULL) {
    switch (e->code) {
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_ACCESS_DENIED:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
      rc = MSVM_RC_ACCESS_DENIED;
      break;
    case VIR_ERR_NO_DOMAIN:
      rc = MSVM_RC_NOT_AVAILABLE;
      break;
    case VIR_ERR_NO_SUPPORT:
      rc = MSVM_RC_NOT_SUPPORTED;
      break;
    case VIR_ERR_OPERATION_INVALID:
      rc = MSVM_RC_INVALID_STATE;
      break;
    case VIR_ERR_SYSTEM_ERROR:
      if (msvm_return_code_from_errno(e->int1) == MSVM_RC_ACCESS_DENIED)
        rc = MSVM_RC_ACCESS_DENIED;
      break;
    default:
      break;
    }
  }
  g_set_error(error, MSVM_ERROR, rc, "%s: %s", what, msg);
  return FALSE;
}

gboolean
msvm_virt_check_uri(const char *uri, GError **error)
{
  g_autoptr(GUri) u = NULL;
  const char *scheme, *host, *path;

  if (uri == NULL)
    return TRUE;
  u = g_uri_parse(uri, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED, NULL);
  if (u == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "cannot parse the connection URI %s", uri);
    return FALSE;
  }
  scheme = g_uri_get_scheme(u);
  host = g_uri_get_host(u);
  path = g_uri_get_path(u);
  if (strchr(scheme, '+') != NULL || (host != NULL && host[0] != '\0')) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                "%s names a remote host or a transport: msvm-security works on the host "
                "whose files it changes; run it there", uri);
    return FALSE;
  }
  if (g_ascii_strcasecmp(scheme, "qemu") != 0 ||
      (g_strcmp0(path, "/system") != 0 && g_strcmp0(path, "/session") != 0)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                "%s: only the local qemu:///system and qemu:///session drivers are supported",
                uri);
    return FALSE;
  }
  return TRUE;
}

virConnectPtr
msvm_virt_connect(const char *uri, gboolean read_only, gboolean *ret_system, GError **error)
{
  virConnectPtr conn;
  g_autofree char *actual = NULL;
  g_autoptr(GUri) u = NULL;

  if (!msvm_virt_check_uri(uri, error))
    return NULL;
  virSetErrorFunc(NULL, silent_error);
  conn = virConnectOpenAuth(uri, virConnectAuthPtrDefault, read_only ? VIR_CONNECT_RO : 0);
  if (conn == NULL) {
    virErrorPtr e = virGetLastError();
    guint32 rc = MSVM_RC_NOT_AVAILABLE;
    if (e != NULL && (e->code == VIR_ERR_AUTH_FAILED || e->code == VIR_ERR_ACCESS_DENIED ||
                      e->code == VIR_ERR_OPERATION_DENIED ||
                      e->code == VIR_ERR_AUTH_CANCELLED ||
                      e->code == VIR_ERR_AUTH_UNAVAILABLE ||
                      (e->code == VIR_ERR_SYSTEM_ERROR &&
                       msvm_return_code_from_errno(e->int1) == MSVM_RC_ACCESS_DENIED)))
      rc = MSVM_RC_ACCESS_DENIED;
    msvm_virt_error(error, rc, "cannot connect to libvirt");
    if (error != NULL && *error != NULL)
      (*error)->code = (gint)rc;
    return NULL;
  }
  virConnSetErrorFunc(conn, NULL, silent_error);
  actual = virConnectGetURI(conn);
  if (actual == NULL || !msvm_virt_check_uri(actual, error)) {
    if (actual == NULL)
      msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the connection URI");
    virConnectClose(conn);
    return NULL;
  }
  u = g_uri_parse(actual, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED, NULL);
  *ret_system = geteuid() == 0 || g_strcmp0(g_uri_get_path(u), "/system") == 0;
  return conn;
}

virDomainPtr
msvm_virt_find_domain(virConnectPtr conn, const guint8 *settings_uuid, const char *domain,
                      GError **error)
{
  g_autoptr(virDomain) by_settings = NULL;
  g_autoptr(virDomain) by_option = NULL;
  guint8 u[16];

  if (settings_uuid == NULL && (domain == NULL || *domain == '\0')) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "no VM named: the settings have no InstanceID and no --domain was given");
    return NULL;
  }
  if (settings_uuid != NULL) {
    g_autofree char *s = msvm_uuid_to_string(settings_uuid);
    by_settings = virDomainLookupByUUID(conn, settings_uuid);
    if (by_settings == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE,
                  "no domain with UUID %s (from InstanceID)", s);
      return NULL;
    }
  }
  if (domain != NULL && *domain != '\0') {
    if (msvm_uuid_parse(domain, u))
      by_option = virDomainLookupByUUID(conn, u);
    if (by_option == NULL)
      by_option = virDomainLookupByName(conn, domain);
    if (by_option == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE, "no domain %s", domain);
      return NULL;
    }
  }
  if (by_settings != NULL && by_option != NULL) {
    guint8 a[VIR_UUID_BUFLEN], b[VIR_UUID_BUFLEN];
    if (virDomainGetUUID(by_settings, a) < 0 || virDomainGetUUID(by_option, b) < 0) {
      msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the domain UUID");
      return NULL;
    }
    if (memcmp(a, b, VIR_UUID_BUFLEN) != 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "InstanceID names another VM than --domain %s", domain);
      return NULL;
    }
  }
  return by_settings ? g_steal_pointer(&by_settings) : g_steal_pointer(&by_option);
}

char *
msvm_virt_inactive_xml(virDomainPtr dom, gboolean secure, GError **error)
{
  char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE |
                                         (secure ? VIR_DOMAIN_XML_SECURE : 0));
  char *copy;

  if (xml == NULL) {
    msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the domain definition");
    return NULL;
  }
  copy = g_strdup(xml);
  free(xml);
  return copy;
}

gboolean
msvm_virt_define(virConnectPtr conn, const char *xml, GError **error)
{
  virDomainPtr dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);

  if (dom == NULL)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot define the domain");
  virDomainFree(dom);
  return TRUE;
}

gboolean
msvm_virt_define_secret(virConnectPtr conn, const char *secret_uuid, const char *usage_name,
                        const char *description, const guint8 *value, gsize len,
                        GError **error)
{
  g_autofree char *esc_desc = g_markup_escape_text(description, -1);
  g_autofree char *esc_usage = g_markup_escape_text(usage_name, -1);
  g_autofree char *xml = g_strdup_printf(
    "<secret ephemeral='no' private='yes'>\n"
    "  <uuid>%s</uuid>\n"
    "  <description>%s</description>\n"
    "  <usage type='vtpm'>\n"
    "    <name>%s</name>\n"
    "  </usage>\n"
    "</secret>\n", secret_uuid, esc_desc, esc_usage);
  g_autoptr(virSecret) secret = virSecretDefineXML(conn, xml, 0);

  if (secret == NULL)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot define the vTPM secret");
  if (virSecretSetValue(secret, value, len, 0) < 0) {
    msvm_virt_error(error, MSVM_RC_FAILED, "cannot set the vTPM secret's value");
    virSecretUndefine(secret);
    return FALSE;
  }
  return TRUE;
}

gboolean
msvm_virt_secret_exists(virConnectPtr conn, const char *secret_uuid)
{
  g_autoptr(virSecret) s = virSecretLookupByUUIDString(conn, secret_uuid);
  return s != NULL;
}

gboolean
msvm_virt_undefine_secret(virConnectPtr conn, const char *secret_uuid, GError **error)
{
  g_autoptr(virSecret) s = virSecretLookupByUUIDString(conn, secret_uuid);

  if (s == NULL) {
    virErrorPtr e = virGetLastError();
    if (e == NULL || e->code == VIR_ERR_NO_SECRET)
      return TRUE;
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot look up a vTPM secret");
  }
  if (virSecretUndefine(s) < 0)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot undefine a retired vTPM secret");
  return TRUE;
}

/* --- XML helpers ---------------------------------------------------------------- */

static xmlDocPtr
parse_xml(const char *xml)
{
  g_auto(MsvmXmlQuiet) quiet = MSVM_XML_QUIET_INIT;

  msvm_xml_quiet_begin(&quiet);
  return xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static xmlXPathObjectPtr
xpath_eval(xmlXPathContextPtr ctx, const char *expr)
{
  g_auto(MsvmXmlQuiet) quiet = MSVM_XML_QUIET_INIT;

  msvm_xml_quiet_begin(&quiet);
  return xmlXPathEvalExpression((const xmlChar *)expr, ctx);
}

static char *
xpath_string(xmlDocPtr doc, const char *expr)
{
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  xmlXPathObjectPtr obj;
  char *out = NULL;

  if (ctx == NULL)
    return NULL;
  obj = xpath_eval(ctx, expr);
  if (obj != NULL && obj->type == XPATH_STRING && obj->stringval != NULL &&
      obj->stringval[0] != '\0')
    out = g_strdup((const char *)obj->stringval);
  xmlXPathFreeObject(obj);
  xmlXPathFreeContext(ctx);
  return out;
}

void
msvm_virt_collect_tpm_secrets(const char *xml, GPtrArray *out)
{
  xmlDocPtr doc;
  xmlXPathContextPtr ctx;
  xmlXPathObjectPtr obj;

  if (xml == NULL)
    return;
  doc = parse_xml(xml);
  if (doc == NULL)
    return;
  ctx = xmlXPathNewContext(doc);
  /* Anchored: a definition, a managed-save image's definition, or a
   * snapshot's (its domain and inactiveDomain); never <metadata>, where the
   * definer may put anything. */
  obj = ctx ? xpath_eval(ctx, "/domain/devices/tpm/backend/encryption/@secret"
                              " | /domainsnapshot/domain/devices/tpm/backend/encryption/@secret"
                              " | /domainsnapshot/inactiveDomain/devices/tpm/backend"
                              "/encryption/@secret")
            : NULL;
  if (obj != NULL && obj->nodesetval != NULL) {
    for (int i = 0; i < obj->nodesetval->nodeNr; i++) {
      xmlChar *v = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);
      if (v != NULL)
        g_ptr_array_add(out, g_strdup((const char *)v));
      xmlFree(v);
    }
  }
  xmlXPathFreeObject(obj);
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
}

gboolean
msvm_virt_host_has_secure_boot(virConnectPtr conn, const char *domain_xml, gboolean *ret_has,
                               GError **error)
{
  xmlDocPtr doc = parse_xml(domain_xml);
  g_autofree char *emulator = NULL, *arch = NULL, *machine = NULL, *type = NULL;
  g_autofree char *caps = NULL;
  char *raw;
  xmlDocPtr cdoc;
  g_autofree char *secure = NULL;

  if (doc == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot parse the domain definition");
    return FALSE;
  }
  emulator = xpath_string(doc, "string(/domain/devices/emulator)");
  arch = xpath_string(doc, "string(/domain/os/type/@arch)");
  machine = xpath_string(doc, "string(/domain/os/type/@machine)");
  type = xpath_string(doc, "string(/domain/@type)");
  xmlFreeDoc(doc);
  raw = virConnectGetDomainCapabilities(conn, emulator, arch, machine, type, 0);
  if (raw == NULL)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the host's domain capabilities");
  caps = g_strdup(raw);
  free(raw);
  cdoc = parse_xml(caps);
  if (cdoc == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot parse the domain capabilities");
    return FALSE;
  }
  secure = xpath_string(cdoc, "string(/domainCapabilities/os/loader/enum[@name='secure']"
                              "/value[normalize-space(text())='yes'])");
  if (secure == NULL)
    secure = xpath_string(cdoc, "string(/domainCapabilities/os/firmwareFeatures"
                                "/feature[@name='secure-boot'][@enabled='yes']/@name)");
  xmlFreeDoc(cdoc);
  *ret_has = secure != NULL;
  return TRUE;
}

gboolean
msvm_virt_has_managed_save(virDomainPtr dom, gboolean *ret_has, GError **error)
{
  int r = virDomainHasManagedSaveImage(dom, 0);
  if (r < 0)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot check for a managed-save image");
  *ret_has = r > 0;
  return TRUE;
}

gboolean
msvm_virt_has_memory_snapshots(virDomainPtr dom, gboolean *ret_has, GError **error)
{
  virDomainSnapshotPtr *snaps = NULL;
  int n = virDomainListAllSnapshots(dom, &snaps, 0);
  gboolean has = FALSE;

  if (n < 0)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot list the domain's snapshots");
  for (int i = 0; i < n; i++) {
    char *xml = has ? NULL : virDomainSnapshotGetXMLDesc(snaps[i], 0);
    if (xml != NULL) {
      xmlDocPtr doc = parse_xml(xml);
      if (doc != NULL) {
        g_autofree char *state = xpath_string(doc, "string(/domainsnapshot/state)");
        g_autofree char *mem = xpath_string(doc, "string(/domainsnapshot/memory/@snapshot)");
        /* memory is saved for running/paused snapshots (internal or external) */
        if ((mem != NULL && g_strcmp0(mem, "no") != 0) ||
            (mem == NULL && (g_strcmp0(state, "running") == 0 ||
                             g_strcmp0(state, "paused") == 0)))
          has = TRUE;
        xmlFreeDoc(doc);
      }
      free(xml);
    }
    virDomainSnapshotFree(snaps[i]);
  }
  free(snaps);
  *ret_has = has;
  return TRUE;
}

/* Where a domain can name a secret.  Each is read only for the domains that
 * libvirt's list filters say have it, so a stopped domain without snapshots
 * or managed-save image costs one call (its persistent definition) however
 * many domains the daemon holds (issue 11's measure at 1,000 domains). */
typedef enum {
  DOMAIN_SOURCE_DEFINITION,  /* every domain: the persistent (or only) definition */
  DOMAIN_SOURCE_LIVE,        /* running ones: the live definition */
  DOMAIN_SOURCE_MANAGED_SAVE,
  DOMAIN_SOURCE_SNAPSHOTS,
} DomainSource;

static const struct {
  DomainSource source;
  unsigned int list_flags;
} domain_sources[] = {
  /* In the order a definition moves when the domain changes meanwhile, so
   * that a secret moving from one source to another is still read at the
   * next: a snapshot reverted becomes the live or persistent definition, a
   * managed-save image restored becomes the live one, a start makes the live
   * one from the persistent one.  (A save moves the live definition into an
   * image; the persistent definition, read last, still names what it names.) */
  { DOMAIN_SOURCE_SNAPSHOTS, VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT },
  { DOMAIN_SOURCE_MANAGED_SAVE, VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE },
  { DOMAIN_SOURCE_LIVE, VIR_CONNECT_LIST_DOMAINS_ACTIVE },
  { DOMAIN_SOURCE_DEFINITION, 0 },
};

/* The secrets @dom names in @source, appended to @out.  A domain, image or
 * snapshot gone meanwhile names nothing. */
static gboolean
collect_domain_secrets(virDomainPtr dom, DomainSource source, GPtrArray *out, GError **error)
{
  virDomainSnapshotPtr *snaps = NULL;
  char *xml = NULL;
  int n;

  switch (source) {
  case DOMAIN_SOURCE_DEFINITION:
    xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    break;
  case DOMAIN_SOURCE_LIVE:
    xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL && virDomainIsActive(dom) == 0)
      return TRUE; /* stopped meanwhile: its definition was read */
    break;
  case DOMAIN_SOURCE_MANAGED_SAVE:
    xml = virDomainManagedSaveGetXMLDesc(dom, 0);
    if (xml == NULL && virDomainHasManagedSaveImage(dom, 0) == 0)
      return TRUE; /* restored or removed meanwhile */
    break;
  case DOMAIN_SOURCE_SNAPSHOTS:
    n = virDomainListAllSnapshots(dom, &snaps, 0);
    if (n < 0)
      return msvm_virt_error(error, MSVM_RC_FAILED, "cannot list the domain's snapshots");
    for (int i = 0; i < n; i++) {
      gboolean unreadable = FALSE;
      xml = virDomainSnapshotGetXMLDesc(snaps[i], 0);
      if (xml != NULL) {
        msvm_virt_collect_tpm_secrets(xml, out);
      } else {
        /* deleted meanwhile (or the domain undefined) names nothing;
         * anything else: cannot tell */
        virErrorPtr e = virGetLastError();
        if (e != NULL && e->code == VIR_ERR_NO_DOMAIN) {
          for (int k = i; k < n; k++)
            virDomainSnapshotFree(snaps[k]);
          free(snaps);
          return TRUE;
        }
        unreadable = e == NULL || e->code != VIR_ERR_NO_DOMAIN_SNAPSHOT;
      }
      free(xml);
      xml = NULL;
      if (unreadable) {
        /* (the error first: freeing the snapshots resets libvirt's last error) */
        msvm_virt_error(error, MSVM_RC_FAILED, "cannot read a snapshot of the domain");
        for (int k = i; k < n; k++)
          virDomainSnapshotFree(snaps[k]);
        free(snaps);
        return FALSE;
      }
      virDomainSnapshotFree(snaps[i]);
    }
    free(snaps);
    return TRUE;
  }
  if (xml == NULL)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot read a definition of the domain");
  msvm_virt_collect_tpm_secrets(xml, out);
  free(xml);
  return TRUE;
}

gboolean
msvm_virt_secrets_in_use(virConnectPtr conn, GStrv *ret_secrets, GError **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);

  for (gsize s = 0; s < G_N_ELEMENTS(domain_sources); s++) {
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, domain_sources[s].list_flags);
    gboolean ok = TRUE;

    if (n < 0)
      return msvm_virt_error(error, MSVM_RC_FAILED, "cannot list the domains");
    for (int i = 0; i < n; i++) {
      g_autoptr(GError) local = NULL;
      if (ok && !collect_domain_secrets(doms[i], domain_sources[s].source, out, &local)) {
        /* a domain undefined meanwhile names nothing any more */
        virErrorPtr e = virGetLastError();
        if (e == NULL || e->code != VIR_ERR_NO_DOMAIN) {
          g_propagate_error(error, g_steal_pointer(&local));
          ok = FALSE;
        }
      }
      virDomainFree(doms[i]);
    }
    free(doms);
    if (!ok)
      return FALSE;
  }
  g_ptr_array_add(out, NULL);
  *ret_secrets = (GStrv)g_ptr_array_free(g_steal_pointer(&out), FALSE);
  return TRUE;
}
