/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-state-file.h: the codec for swtpm 0.7 state files (DESIGN.md section 6).
 *
 * A file is a 10-byte big-endian header (version 2, minimum version 1,
 * header size 10, flags, total length) followed by tag-length-value records
 * (16-bit tag, 32-bit length).  Plaintext: flags 0 and one tag-1 record.
 * Encrypted (what swtpm 0.7.1 writes): flags 0x09 (AES-256) or 0x01
 * (AES-128), then tag 2 (ciphertext), tag 3 (HMAC-SHA256), tag 6 (IV).
 *
 * The AES key comes from the passphrase as swtpm derives it: the whole
 * passphrase (every byte of the file or pipe, a trailing newline included)
 * through PBKDF2-HMAC-SHA512 (salt "swtpm", 1000 iterations) or, with
 * kdf=sha512, the first key-length bytes of SHA-512(passphrase).
 *
 * Errors (domain MSVM_ERROR): MSVM_RC_INVALID_STATE for anything wrong with
 * the file (malformed, truncated, unsupported flags or tags, HMAC mismatch =
 * wrong passphrase or tampering, bad padding, encrypted when plaintext was
 * expected and the other way round); MSVM_RC_INVALID_PARAMETER for a bad
 * argument; MSVM_RC_FAILED when OpenSSL fails.
 *
 * Buffers returned with plaintext are GBytes that wipe their memory when
 * freed.
 */
#pragma once

#include <glib.h>

#include "msvm-secret.h"

G_BEGIN_DECLS

typedef enum {
  MSVM_KDF_PBKDF2,   /* swtpm's default: PBKDF2-HMAC-SHA512, salt "swtpm", 1000 rounds */
  MSVM_KDF_SHA512,   /* swtpm's kdf=sha512: first key-length bytes of SHA-512(pass) */
} MsvmStateKdf;

typedef enum {
  MSVM_CIPHER_AES_256_CBC,
  MSVM_CIPHER_AES_128_CBC,
} MsvmStateCipher;

#define MSVM_STATE_HEADER_SIZE 10
/* Larger files are refused; a TPM 2.0 permall is tens of KiB. */
#define MSVM_STATE_FILE_MAX_SIZE (16u * 1024u * 1024u)

#define MSVM_STATE_FLAG_ENCRYPTED 0x0001
#define MSVM_STATE_FLAG_MIGRATION_ENCRYPTED 0x0002
#define MSVM_STATE_FLAG_MIGRATION_DATA 0x0004
#define MSVM_STATE_FLAG_ENCRYPTED_256BIT 0x0008
#define MSVM_STATE_FLAG_MIGRATION_256BIT 0x0010

#define MSVM_STATE_TAG_DATA 1
#define MSVM_STATE_TAG_ENCRYPTED_DATA 2
#define MSVM_STATE_TAG_HMAC 3
#define MSVM_STATE_TAG_MIGRATION_DATA 4
#define MSVM_STATE_TAG_ENCRYPTED_MIGRATION_DATA 5
#define MSVM_STATE_TAG_IVEC_ENCRYPTED_DATA 6
#define MSVM_STATE_TAG_IVEC_ENCRYPTED_MIGRATION_DATA 7

/* Key length in bytes of a cipher (16 or 32). */
gsize msvm_state_cipher_key_len(MsvmStateCipher cipher);
const char *msvm_state_cipher_name(MsvmStateCipher cipher);
const char *msvm_state_kdf_name(MsvmStateKdf kdf);

/* Derive swtpm's AES key of @key_len (16 or 32) bytes from a passphrase. */
gboolean msvm_state_derive_key(const guint8 *passphrase, gsize passphrase_len,
                               MsvmStateKdf kdf, gsize key_len, guint8 *ret_key,
                               GError **error);

/* Check the header and the record structure (no key needed).
 * ret_encrypted: whether the file is encrypted; ret_cipher: its cipher
 * (only meaningful when encrypted).  Either may be NULL. */
gboolean msvm_state_file_probe(const guint8 *data, gsize len, gboolean *ret_encrypted,
                               MsvmStateCipher *ret_cipher, GError **error);

/* Decode a state file.  @passphrase NULL: the file must be plaintext;
 * otherwise it must be encrypted, the cipher is taken from its header, and
 * the HMAC is verified (constant time) before anything is decrypted. */
gboolean msvm_state_file_decode(const guint8 *data, gsize len,
                                const guint8 *passphrase, gsize passphrase_len,
                                MsvmStateKdf kdf, GBytes **ret_plain, GError **error);

/* Encode @plain the way swtpm 0.7.1 writes it.  @passphrase NULL: a
 * plaintext file; otherwise encrypted with @cipher under a fresh random IV. */
gboolean msvm_state_file_encode(const guint8 *plain, gsize plain_len,
                                const guint8 *passphrase, gsize passphrase_len,
                                MsvmStateKdf kdf, MsvmStateCipher cipher,
                                GBytes **ret_file, GError **error);


G_END_DECLS
