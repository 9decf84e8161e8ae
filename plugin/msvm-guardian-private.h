/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-guardian-private.h: what the guardian's two files share
 * (msvm-guardian.c: keys, certificates, trusted peers; msvm-guardian-cms.c:
 * sealing and opening bundles).  Not installed.
 */
#pragma once

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msvm-guardian.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CMS_ContentInfo, CMS_ContentInfo_free)

struct _MsvmGuardian {
  char *dir;               /* <root>/guardian */
  X509 *sign_cert;
  EVP_PKEY *sign_key;
  X509 *enc_cert;
  EVP_PKEY *enc_key;
};

typedef struct {
  X509 *sign;
  X509 *enc;
} PeerCerts;

void msvm_guardian_peer_certs_clear(PeerCerts *p);
/* Set @error (@code) from OpenSSL's last error, prefixed with @what, and
 * empty OpenSSL's error queue; returns FALSE. */
gboolean msvm_guardian_ossl_fail(GError **error, guint32 code, const char *what);
gboolean msvm_guardian_same_cert(X509 *a, X509 *b);
/* The certificates of the trusted guardian @name, or of this one for
 * MSVM_GUARDIAN_LOCAL (unknown: 32777). */
gboolean msvm_guardian_load_peer(const MsvmGuardian *g, const char *name, PeerCerts *ret,
                                 GError **error);

G_END_DECLS
