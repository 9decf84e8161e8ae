/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain-priv.h: what the files of the domain translation share
 * (xml/msvm-domain*.c).  Not installed, not used outside xml/.
 *
 * The translation is split like libvirt's src/conf: read the facts of the
 * document into plain structs (parse), merge the settings (fill), check
 * everything that can fail (validate), and only then edit the tree (apply,
 * which cannot fail), so that a failure leaves the document untouched.
 */
#pragma once

#include <libxml/tree.h>

#include "msvm-domain.h"
#include "msvm-uuid.h"

G_BEGIN_DECLS

/* Largest domain XML or stash accepted, in bytes. */
#define MSVM_DOMAIN_MAX_SIZE (16u * 1024u * 1024u)

#define MSVM_STASH_NS "urn:x-msvm-security:stash:1"
#define MSVM_NOVA_NS_PREFIX "http://openstack.org/xmlns/libvirt/nova/"

/* ---- msvm-domain-xml.c: safe parsing, libvirt-style formatting, tree edits */

/* Parse @xml (no DTD, no entities, no network, bounded); @root_ns/@root_name
 * name the required root element (@root_ns NULL for no namespace).  Errors
 * are MSVM_RC_INVALID_PARAMETER prefixed with @what. */
xmlDocPtr msvm_xml_parse(const char *xml, gsize len, const char *what,
                         const char *root_ns, const char *root_name, GError **error);

/* Serialize a node (and its subtree) the way libvirt writes domain XML:
 * single-quoted attributes, the five predefined entities; children of the
 * domain's <metadata> are written by libxml2 as libvirt does. */
void msvm_xml_format_node(GString *out, xmlNodePtr node);

/* First element child of @parent named @name (no namespace), or NULL. */
xmlNodePtr msvm_xml_child(xmlNodePtr parent, const char *name);
/* Next element sibling of @node named @name, or NULL. */
xmlNodePtr msvm_xml_next(xmlNodePtr node, const char *name);
/* Element child of @parent by namespace URI and local name. */
xmlNodePtr msvm_xml_child_ns(xmlNodePtr parent, const char *ns_href, const char *name);
/* Number of element children. */
guint msvm_xml_count_elements(xmlNodePtr parent);
/* The @index-th element child (0-based) or NULL. */
xmlNodePtr msvm_xml_nth_element(xmlNodePtr parent, guint index);
/* Position of @node among its parent's element children. */
guint msvm_xml_element_index(xmlNodePtr node);

/* Attribute value (owned by the caller) or NULL. */
char *msvm_xml_prop(xmlNodePtr node, const char *name);
/* TRUE when the attribute equals @value (case-sensitive, as libvirt). */
gboolean msvm_xml_prop_is(xmlNodePtr node, const char *name, const char *value);

/* Insert @node as a child of @parent before @before (NULL: at the end),
 * adding the whitespace that keeps the document's indentation. */
void msvm_xml_insert(xmlNodePtr parent, xmlNodePtr node, xmlNodePtr before);
/* New empty element @name (no namespace) inserted into @parent before
 * @before (NULL: at the end). */
xmlNodePtr msvm_xml_add(xmlNodePtr parent, const char *name, xmlNodePtr before);
/* Unlink @node together with the indentation in front of it; returns it. */
xmlNodePtr msvm_xml_unlink(xmlNodePtr node);
/* Unlink and free. */
void msvm_xml_remove(xmlNodePtr node);
/* The first element child of @parent whose name is in @names (NULL-ended),
 * or NULL: where an element that libvirt writes before those goes. */
xmlNodePtr msvm_xml_first_of(xmlNodePtr parent, const char *const *names);

/* ---- the facts read from a domain (parse phase) */

typedef enum {
  MSVM_TPM_NONE,          /* no <tpm> device */
  MSVM_TPM_EMULATOR_2_0,  /* emulator, TPM 2.0 (explicit or libvirt's default) */
  MSVM_TPM_EMULATOR_1_2,  /* emulator, TPM 1.2 (explicit or libvirt's default) */
  MSVM_TPM_PASSTHROUGH,
  MSVM_TPM_EXTERNAL,
  MSVM_TPM_OTHER,         /* unknown backend type */
} MsvmTpmKind;

/* What shielding changed, as recorded in the metadata, so that unshielding
 * undoes exactly that.  "before" values: NULL = the thing was absent. */
typedef struct {
  gboolean shielded;               /* a <msvm:shielding> record exists */
  gboolean added_features;         /* <features> element created */
  gboolean smm_changed;
  char *smm_before;                /* NULL absent, else the old state attribute */
  gboolean added_firmware;         /* <os><firmware> element created */
  gboolean secure_boot_changed;
  char *secure_boot_before;        /* NULL absent, else old enabled= */
  gboolean enrolled_keys_changed;
  char *enrolled_keys_before;
  gboolean loader_secure_changed;
  char *loader_secure_before;
  guint removed_devices;           /* how many devices are in the stash */
} MsvmShieldRecord;

void msvm_shield_record_clear(MsvmShieldRecord *rec);

/* ---- msvm-domain-metadata.c */

xmlNodePtr msvm_domain_metadata_node(xmlDocPtr doc);    /* <metadata> or NULL */
xmlNodePtr msvm_domain_security_node(xmlDocPtr doc);    /* <msvm:security> or NULL */
gboolean msvm_domain_has_nova(xmlDocPtr doc);
gboolean msvm_domain_uuid_string(xmlDocPtr doc, char ret_uuid[37]);

/* Read the recorded settings and shielding record (both may be empty). */
gboolean msvm_domain_metadata_read(xmlDocPtr doc, MsvmSettings *ret_settings,
                                   MsvmShieldRecord *ret_rec, GError **error);
/* Replace the project's element with one recording @settings and @rec. */
void msvm_domain_metadata_write(xmlDocPtr doc, const MsvmSettings *settings,
                                const MsvmShieldRecord *rec);

/* ---- msvm-domain-tpm.c */

MsvmTpmKind msvm_domain_tpm_kind(xmlDocPtr doc, xmlNodePtr *ret_tpm);
const char *msvm_tpm_kind_describe(MsvmTpmKind kind);
/* The default TPM model for a new device on @arch (NULL: x86_64). */
const char *msvm_tpm_default_model(const char *arch);
gboolean msvm_domain_tpm_validate(xmlDocPtr doc, const MsvmSettings *merged,
                                  GError **error);
void msvm_domain_tpm_apply(xmlDocPtr doc, const MsvmSettings *merged,
                           const char *secret_uuid);

/* ---- msvm-domain-shielding.c */

gboolean msvm_domain_shielding_validate(xmlDocPtr doc, const MsvmSettings *merged,
                                        const MsvmShieldRecord *rec,
                                        const MsvmTranslateOptions *opts,
                                        const char *stash, xmlDocPtr *ret_stash,
                                        GError **error);
/* Edits @doc and @rec; returns the stash document to keep (or NULL) and
 * appends notes to @notes. */
xmlDocPtr msvm_domain_shielding_apply(xmlDocPtr doc, const MsvmSettings *merged,
                                      MsvmShieldRecord *rec, xmlDocPtr stash,
                                      GString *notes);

G_END_DECLS
