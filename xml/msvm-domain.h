/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain.h: translation of Msvm_SecuritySettingData onto a libvirt
 * domain XML document (DESIGN.md section 4), and back.
 *
 * Pure document work: no libvirt connection, no files.  The caller (the
 * provider, or the offline `translate` command) supplies the host facts and
 * keeps the stash of devices that shielding removed.
 *
 * The project's element under <metadata> (never anything secret in it):
 *
 *   <msvm:security xmlns:msvm="urn:x-msvm-security:domain:1" version="1"
 *                  change="UUID"     (the change that defined it; provider only)
 *                  incoming="UUID">  (an incoming migration or restore; hook only)
 *     <msvm:setting name="TpmEnabled">TRUE</msvm:setting>     (every present
 *     <msvm:setting name="ElementName">text</msvm:setting>     property but
 *     ...                                                      InstanceID)
 *     <msvm:shielding>                   (only while shielded: what it did)
 *       <msvm:features/>                 <features> was created
 *       <msvm:smm before="off"/>         <smm> changed (no before=: added)
 *       <msvm:firmware/>                 <os><firmware> was created
 *       <msvm:feature name="enrolled-keys" before="no"/>
 *       <msvm:feature name="secure-boot"/>
 *       <msvm:loader-secure before="no"/> secure= on <loader> changed
 *       <msvm:devices removed="2"/>      how many devices are in the stash
 *     </msvm:shielding>
 *   </msvm:security>
 *
 * The stash (text the caller keeps root-only: devices may carry passwords):
 *
 *   <msvm:stash xmlns:msvm='urn:x-msvm-security:stash:1' domain='UUID'>
 *     <msvm:device index='6'><graphics type='vnc' passwd='...'/></msvm:device>
 *   </msvm:stash>
 *
 * index is the device's position among the element children of <devices>
 * with every stashed device put back; unshielding puts each device back
 * there, in the bytes it had.  Documents are written as libvirt writes them (single
 * quoted attributes; <metadata> children by libxml2), so everything the
 * translation does not touch comes back byte for byte.
 */
#pragma once

#include <libxml/tree.h>

#include "msvm-settings.h"

G_BEGIN_DECLS

/* Namespace of the project's element under <metadata>. */
#define MSVM_METADATA_NS "urn:x-msvm-security:domain:1"
#define MSVM_METADATA_PREFIX "msvm"
#define MSVM_METADATA_ELEMENT "security"

typedef struct {
  /* UUID of the libvirt secret holding the current generation's passphrase,
   * or NULL when the VM has no protector yet. */
  const char *secret_uuid;
  /* Refuse, unless force, domains managed by nova (<nova:instance>). */
  gboolean force;
  /* Host checks (domain capabilities); skipped by the offline translate. */
  gboolean check_host;
  gboolean host_has_secure_boot; /* only read when check_host */
} MsvmTranslateOptions;

/*
 * Apply @update (merged over what the domain's metadata already records) to
 * @doc in place.  @stash is the XML text of the devices a previous shielding
 * removed (NULL when none); on success *ret_stash receives the stash to keep
 * from now on (NULL when nothing is stashed any more: the caller deletes its
 * copy) and *ret_message a human note (e.g. "the next start needs virsh
 * start --reset-nvram"), or NULL.  On failure @doc is left unchanged and the
 * outputs untouched: everything is checked before the tree is edited.
 *
 * The merged settings are enforced at every call (a shielded domain that
 * gained a <graphics> loses it again into the stash), and applying the same
 * settings twice changes nothing.  opts->secret_uuid is needed whenever the
 * merged TpmEnabled, ShieldingRequested, EncryptStateAndVmMigrationTraffic
 * or DataProtectionRequested is TRUE.  opts->force also lets a missing or
 * mismatched stash pass (devices not restored) and discards a stash given
 * for a domain that has none recorded.
 *
 * Errors: MSVM_RC_INVALID_STATE (TPM 1.2/passthrough/external TPM when
 * enabling, shielding on BIOS or non-q35, no protector, nova metadata, stash
 * missing or not matching the metadata, malformed project metadata),
 * MSVM_RC_INVALID_PARAMETER (shielding without TPM, InstanceID naming
 * another VM, secret not a UUID, stash of another domain or malformed),
 * MSVM_RC_NOT_SUPPORTED (KsdEnabled, BindToHostTpm, host without
 * secure-boot firmware when opts->check_host).
 */
gboolean msvm_domain_apply(xmlDocPtr doc, const MsvmSettings *update,
                           const MsvmTranslateOptions *opts,
                           const char *stash, char **ret_stash,
                           char **ret_message, GError **error);

/* The settings recorded in the domain's metadata, with InstanceID made from
 * the domain UUID ("Microsoft:" and the UUID in upper case, as WMI writes
 * it).  TpmEnabled, when not recorded, says whether a <tpm> is present, so a
 * domain without the project's metadata gives an instance with only
 * InstanceID and TpmEnabled.  Errors: MSVM_RC_INVALID_STATE for malformed
 * project metadata. */
gboolean msvm_domain_read_settings(xmlDocPtr doc, MsvmSettings **ret_settings,
                                   GError **error);

/* The change marker: the provider writes the id of the change whose define
 * produced a definition as the attribute change="UUID" of the project's
 * element (<msvm:security ... change='...'>), so that recovery can tell
 * whether an interrupted change's define took effect (plugin/msvm-change.c).
 * get: the id, or NULL; set: FALSE when the domain has no project element. */
char *msvm_domain_get_change_id(xmlDocPtr doc);
gboolean msvm_domain_set_change_id(xmlDocPtr doc, const char *change_id);

/* The incoming marker: the hook's "migrate begin" / "restore begin" filter
 * gives back the incoming definition with incoming="NONCE" on the project's
 * element, so that the "prepare begin" of that same operation (and no other
 * start) is recognised (hooks/msvm-hook-incoming.c). */
char *msvm_domain_get_incoming(xmlDocPtr doc);
gboolean msvm_domain_set_incoming(xmlDocPtr doc, const char *nonce);

/* TRUE when the domain carries the project's metadata element. */
gboolean msvm_domain_is_managed(xmlDocPtr doc);

/* The domain's <uuid> as 16 bytes. */
gboolean msvm_domain_get_uuid(xmlDocPtr doc, guint8 ret_uuid[16], GError **error);

/* The secret UUID of an emulator TPM's <encryption secret=...>, or NULL. */
char *msvm_domain_get_tpm_secret(xmlDocPtr doc);

/* Parse domain XML safely: no DOCTYPE accepted (so no DTD and no entity
 * declarations), no network, at most 16 MiB, the root must be <domain>.
 * Errors: MSVM_RC_INVALID_PARAMETER with the line of the problem. */
xmlDocPtr msvm_domain_parse(const char *xml, gsize len, GError **error);

/* Serialize as libvirt writes it (UTF-8, no XML declaration, single-quoted
 * attributes, one newline at the end). */
char *msvm_domain_format(xmlDocPtr doc);

G_END_DECLS
