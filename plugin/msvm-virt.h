/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-virt.h: the provider's libvirt access (C API): connection and store
 * choice, domain lookup, definitions, secrets, host capabilities, and what
 * still references a generation's secret (definitions, managed-save image,
 * snapshots).  Errors are MSVM_ERROR return codes.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virSecret, virSecretFree)

/* Refuse URIs with a host name or a transport (32770): the service works on
 * the host whose files it changes.  NULL (libvirt's default) is local. */
gboolean msvm_virt_check_uri(const char *uri, GError **error);

/* Connect; *ret_system tells whether the daemon is the privileged one
 * (URI path /system, or any local qemu URI for root). */
virConnectPtr msvm_virt_connect(const char *uri, gboolean read_only, gboolean *ret_system,
                                GError **error);

/* Set @error from libvirt's last error, mapped to a return code
 * (permission -> 32769, no domain -> 32777, ...; @fallback otherwise). */
gboolean msvm_virt_error(GError **error, guint32 fallback, const char *what);

/* Find the domain by the InstanceID UUID and/or --domain NAME|UUID
 * (both given and disagreeing: 32773; not found: 32777). */
virDomainPtr msvm_virt_find_domain(virConnectPtr conn, const guint8 *settings_uuid,
                                   const char *domain, GError **error);

/* Inactive definition with the secure flag. */
/* The persistent definition; @secure adds VIR_DOMAIN_XML_SECURE (passwords,
 * needed to redefine it; refused on a read-only connection). */
char *msvm_virt_inactive_xml(virDomainPtr dom, gboolean secure, GError **error);
gboolean msvm_virt_define(virConnectPtr conn, const char *xml, GError **error);

/* Define (or redefine, same UUID) a private, persistent 'vtpm' secret
 * holding @value. */
gboolean msvm_virt_define_secret(virConnectPtr conn, const char *secret_uuid,
                                 const char *usage_name, const char *description,
                                 const guint8 *value, gsize len, GError **error);
/* Undefine; a secret that does not exist is not an error. */
gboolean msvm_virt_undefine_secret(virConnectPtr conn, const char *secret_uuid, GError **error);
gboolean msvm_virt_secret_exists(virConnectPtr conn, const char *secret_uuid);

/* Whether the host offers secure-boot firmware for this domain's
 * emulator/arch/machine (domain capabilities: loader secure='yes'). */
gboolean msvm_virt_host_has_secure_boot(virConnectPtr conn, const char *domain_xml,
                                        gboolean *ret_has, GError **error);

/* Managed-save image present, and snapshots that carry memory. */
gboolean msvm_virt_has_managed_save(virDomainPtr dom, gboolean *ret_has, GError **error);
gboolean msvm_virt_has_memory_snapshots(virDomainPtr dom, gboolean *ret_has, GError **error);

/* The TPM <encryption secret=...> UUIDs named by every domain on the daemon:
 * persistent and live definitions, managed-save images, snapshots
 * (NULL-terminated; DESIGN.md invariant 2). */
gboolean msvm_virt_secrets_in_use(virConnectPtr conn, GStrv *ret_secrets, GError **error);

/* The <encryption secret> of every emulator TPM in @xml (a domain, or a
 * snapshot's domain and inactiveDomain; never under <metadata>), appended to @out. */
void msvm_virt_collect_tpm_secrets(const char *xml, GPtrArray *out);

G_END_DECLS
