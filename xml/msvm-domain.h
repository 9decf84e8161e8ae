/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain.h: translation of Msvm_SecuritySettingData onto a libvirt
 * domain XML document (DESIGN.md section 4), and back.
 *
 * Pure document work: no libvirt connection, no files.  The caller (the
 * provider, or the offline `translate` command) supplies the host facts and
 * keeps the stash of devices that shielding removed.
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
 * from now on (NULL when nothing is stashed any more) and *ret_message a
 * human note (e.g. "the next start needs virsh start --reset-nvram"), or
 * NULL.  On failure @doc is left unchanged and the outputs untouched.
 *
 * Errors: MSVM_RC_INVALID_STATE (TPM 1.2/passthrough/external TPM when
 * enabling, shielding on BIOS or non-q35, no protector, nova metadata),
 * MSVM_RC_INVALID_PARAMETER (shielding without TPM, InstanceID naming
 * another VM), MSVM_RC_NOT_SUPPORTED (KsdEnabled, BindToHostTpm, host
 * without secure-boot firmware).
 */
gboolean msvm_domain_apply(xmlDocPtr doc, const MsvmSettings *update,
                           const MsvmTranslateOptions *opts,
                           const char *stash, char **ret_stash,
                           char **ret_message, GError **error);

/* The settings recorded in the domain's metadata, with InstanceID made from
 * the domain UUID.  A domain without the project's metadata gives an
 * instance with only InstanceID (and TpmEnabled from the device present). */
gboolean msvm_domain_read_settings(xmlDocPtr doc, MsvmSettings **ret_settings,
                                   GError **error);

/* TRUE when the domain carries the project's metadata element. */
gboolean msvm_domain_is_managed(xmlDocPtr doc);

/* The domain's <uuid> as 16 bytes. */
gboolean msvm_domain_get_uuid(xmlDocPtr doc, guint8 ret_uuid[16], GError **error);

/* The secret UUID of an emulator TPM's <encryption secret=...>, or NULL. */
char *msvm_domain_get_tpm_secret(xmlDocPtr doc);

/* Parse domain XML safely (no DTD, no entities, no network). */
xmlDocPtr msvm_domain_parse(const char *xml, gsize len, GError **error);

/* Serialize as libvirt would accept it (UTF-8, no XML declaration). */
char *msvm_domain_format(xmlDocPtr doc);

G_END_DECLS
