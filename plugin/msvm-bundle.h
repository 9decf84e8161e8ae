/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-bundle.h: a VM's protector as `export-protector` writes it and
 * `import-protector` reads it (DESIGN.md section 10; format in
 * docs/moving-vms.rst, "The bundle").
 *
 * The payload is one GVariant dictionary (a{sv}, normal form, the
 * serialization GLib defines): format version, VM UUID, derivation version,
 * seed, the generations anything still needs (number, secret UUID, the two
 * halves), `current`, `state`, last known good, the recorded settings, the
 * shielding stash and, with a state, the persistent definition and the state
 * files as they are on disk (still encrypted).  It is sealed by
 * msvm_guardian_seal(): CMS SignedData by this guardian inside CMS
 * AuthEnvelopedData (AES-256-GCM) for the recipient guardian.
 *
 * Every buffer that holds the seed or a half is a secret buffer (wiped when
 * freed); GVariant builds the payload from them without copies and reads
 * it in place.
 */
#pragma once

#include <glib.h>

#include "msvm-guardian.h"
#include "msvm-store.h"

G_BEGIN_DECLS

#define MSVM_BUNDLE_FORMAT_VERSION 1
/* The only files of a TPM 2.0 state directory a bundle carries. */
#define MSVM_BUNDLE_PERMALL "tpm2-00.permall"
#define MSVM_BUNDLE_VOLATILE "tpm2-00.volatilestate"
/* Largest state file and definition carried. */
#define MSVM_BUNDLE_FILE_MAX (16u * 1024u * 1024u)

typedef struct {
  char *name;              /* MSVM_BUNDLE_PERMALL or MSVM_BUNDLE_VOLATILE */
  guint32 mode;            /* permission bits */
  GBytes *data;
} MsvmBundleFile;

typedef struct {
  /* The protector, as a store without a directory: uuid, seed, kdf_version,
   * generations (none foreign), next_generation, current, state,
   * last_known_good, lkg_from_start, stash.  No journal, no jobs. */
  MsvmStore *store;
  char *settings;          /* the recorded settings (CIM-XML), or NULL */
  GBytes *definition;      /* the persistent definition (secure XML), or NULL */
  GPtrArray *state_files;  /* MsvmBundleFile*; NULL without a state */
  gint64 exported;         /* unix seconds */
  char *source_host;       /* host name of the exporting host */
  char *signer;            /* msvm_bundle_open: the guardian that signed it */
} MsvmBundle;

void msvm_bundle_file_free(MsvmBundleFile *f);
MsvmBundle *msvm_bundle_new(const guint8 uuid[16]);
void msvm_bundle_free(MsvmBundle *bundle);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmBundle, msvm_bundle_free)

/* Add the generations numbered in @numbers (GUINT_TO_POINTER) of @store and
 * its seed, counters and stash to @bundle.  A foreign generation (a secret
 * the project did not create) cannot move: 32775. */
gboolean msvm_bundle_set_protector(MsvmBundle *bundle, const MsvmStore *store,
                                   GPtrArray *numbers, GError **error);
/* Add a state file (takes a reference on @data). */
void msvm_bundle_add_state_file(MsvmBundle *bundle, const char *name, guint32 mode,
                                GBytes *data);

/* The payload (a secret buffer) and back; a payload that is not a valid
 * bundle of this format is 32773 naming what is wrong. */
GBytes *msvm_bundle_serialize(const MsvmBundle *bundle);
gboolean msvm_bundle_parse(GBytes *payload, MsvmBundle **ret_bundle, GError **error);

/* Serialize and seal for @recipient; open and parse (sets ->signer). */
gboolean msvm_bundle_seal(const MsvmBundle *bundle, MsvmGuardian *guardian,
                          const char *recipient, GBytes **ret_sealed, GError **error);
gboolean msvm_bundle_open(MsvmGuardian *guardian, const guint8 *sealed, gsize len,
                          MsvmBundle **ret_bundle, GError **error);

G_END_DECLS
