/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-guardian.h: the guardian of a store (DESIGN.md section 10) and the
 * CMS envelope of a protector bundle, all through OpenSSL.
 *
 * A guardian lives in the store root's `guardian/` folder (0700, created on
 * first use under its `lock`): an EC P-256 signing key pair and an EC P-256
 * encryption key pair (`signing.key`, `encryption.key`: PKCS#8 PEM, 0600),
 * each with a self-signed X.509 certificate (`signing.pem`,
 * `encryption.pem`).  The peers it trusts are `guardian/trusted/NAME.pem`,
 * each the peer's two certificates (what `guardian show` prints).  The name
 * MSVM_GUARDIAN_LOCAL stands for this guardian itself (backups).
 *
 * Sealing: CMS SignedData (ECDSA-SHA256, the content embedded, no
 * certificates) signed by this guardian, inside CMS AuthEnvelopedData
 * (AES-256-GCM; the content key agreed with ECDH against the recipient's
 * encryption certificate), DER.  Opening: decrypt with this guardian's key
 * (a bundle for another guardian: 32769), verify against the signing
 * certificate of a trusted guardian or this one (unknown signer: 32769;
 * anything altered: 32773).
 *
 * No libvirt; library code: never prints, never exits; OpenSSL's error
 * queue is left empty.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MSVM_GUARDIAN_LOCAL "local"
/* Longest guardian name. */
#define MSVM_GUARDIAN_NAME_MAX 64
/* Largest certificate bundle `guardian trust` reads. */
#define MSVM_GUARDIAN_BUNDLE_MAX (64u * 1024u)

typedef struct _MsvmGuardian MsvmGuardian;

typedef struct {
  char *name;                   /* MSVM_GUARDIAN_LOCAL for this store's own */
  gboolean local;
  char *signing_fingerprint;    /* SHA-256 of the DER, "AB:CD:..." as openssl prints it */
  char *encryption_fingerprint;
  char *subject;                /* the signing certificate's subject, one line */
} MsvmGuardianPeer;

void msvm_guardian_peer_free(MsvmGuardianPeer *peer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmGuardianPeer, msvm_guardian_peer_free)

/* TRUE when @name is a valid name for a trusted guardian: 1 to 64 of
 * [A-Za-z0-9._-], not starting with '.' or '-', not MSVM_GUARDIAN_LOCAL
 * (else 32773 saying why). */
gboolean msvm_guardian_check_name(const char *name, GError **error);

/* This store's guardian (<@store_root>/guardian), created on first use. */
MsvmGuardian *msvm_guardian_open(const char *store_root, GError **error);
void msvm_guardian_free(MsvmGuardian *guardian);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmGuardian, msvm_guardian_free)

/* Both certificates (signing first) as one PEM text. */
char *msvm_guardian_certificates_pem(const MsvmGuardian *guardian);
/* This guardian as a peer (name MSVM_GUARDIAN_LOCAL). */
MsvmGuardianPeer *msvm_guardian_describe(const MsvmGuardian *guardian);

/* Record @pem (a peer's two certificates) under @name.  The same name with
 * other certificates: 32775 unless @force; the same certificates again:
 * TRUE with *@ret_changed FALSE.  A bundle that is not two self-signed
 * certificates, one for signing and one for key agreement or key transport:
 * 32773. */
gboolean msvm_guardian_trust(MsvmGuardian *guardian, const char *name, const guint8 *pem,
                             gsize len, gboolean force, gboolean *ret_changed,
                             MsvmGuardianPeer **ret_peer, GError **error);
/* The trusted guardians (MsvmGuardianPeer*), by name; this one first. */
gboolean msvm_guardian_list(MsvmGuardian *guardian, GPtrArray **ret_peers, GError **error);
/* Forget @name (unknown: 32777). */
gboolean msvm_guardian_forget(MsvmGuardian *guardian, const char *name, GError **error);

/* Sign @payload with this guardian and encrypt it for @recipient (a trusted
 * name, or MSVM_GUARDIAN_LOCAL; unknown: 32777).  *@ret_sealed is DER. */
gboolean msvm_guardian_seal(MsvmGuardian *guardian, const char *recipient, GBytes *payload,
                            GBytes **ret_sealed, GError **error);
/* Decrypt and verify; *@ret_payload is a secret buffer (wiped when freed),
 * *@ret_signer the signer's name (MSVM_GUARDIAN_LOCAL for this one). */
gboolean msvm_guardian_unseal(MsvmGuardian *guardian, const guint8 *sealed, gsize len,
                              GBytes **ret_payload, char **ret_signer, GError **error);

G_END_DECLS
