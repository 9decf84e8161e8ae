/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-kdf.h: the vTPM passphrase derivation of DESIGN.md section 5.
 *
 * HKDF-SHA256: IKM = seed(32) || be32(len kp) || kp || be32(len policy) || policy,
 * salt = the 16 UUID bytes, info = "msvm-security vtpm passphrase v1",
 * 32 bytes of output as 64 lowercase hex characters.
 */
#pragma once

#include <glib.h>

#include "msvm-secret.h"

G_BEGIN_DECLS

#define MSVM_KDF_SEED_SIZE 32
#define MSVM_KDF_PASSPHRASE_LEN 64
#define MSVM_KDF_VERSION 1

/* key_protector / policy may be NULL (unset half, length 0).
 * ret_passphrase receives 64 hex characters and a NUL. */
gboolean msvm_kdf_derive_passphrase(const guint8 seed[MSVM_KDF_SEED_SIZE],
                                    const guint8 *key_protector, gsize key_protector_len,
                                    const guint8 *policy, gsize policy_len,
                                    const guint8 uuid[16],
                                    char ret_passphrase[MSVM_KDF_PASSPHRASE_LEN + 1],
                                    GError **error);

/* Fill with cryptographically random bytes. */
gboolean msvm_random_bytes(guint8 *buf, gsize len, GError **error);


G_END_DECLS
