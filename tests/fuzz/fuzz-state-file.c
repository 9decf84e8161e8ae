/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the swtpm state-file codec: probe, decode as plaintext,
 * decode under a fixed passphrase; whatever decodes must re-encode and
 * decode back to the same bytes.  Never crash, never over-read.
 *
 * The passphrase and KDF are those of tests/data/tpm2state-aes256-sha512
 * (kdf=sha512 is cheap, so the fuzzer runs fast), so the real swtpm files
 * of the corpus decrypt.  Corpus (state-file-corpus/): real swtpm files,
 * a file of another passphrase (HMAC mismatch), one AES-128 file written by
 * our encoder, truncated and damaged variants.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "msvm-state-file.h"

#define FUZZ_PASSPHRASE "sha512 passphrase"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
round_trip(GBytes *plain, const guint8 *pass, gsize pass_len, MsvmStateCipher cipher)
{
  g_autoptr(GBytes) file = NULL;
  g_autoptr(GBytes) back = NULL;
  gsize len;
  const guint8 *p = g_bytes_get_data(plain, &len);

  if (!msvm_state_file_encode(p, len, pass, pass_len, MSVM_KDF_SHA512, cipher, &file, NULL))
    g_error("a decoded state does not encode again");
  if (!msvm_state_file_decode(g_bytes_get_data(file, NULL), g_bytes_get_size(file), pass,
                              pass_len, MSVM_KDF_SHA512, &back, NULL))
    g_error("an encoded state does not decode");
  if (!g_bytes_equal(plain, back))
    g_error("round trip changed the state");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const guint8 *pass = (const guint8 *)FUZZ_PASSPHRASE;
  gsize pass_len = strlen(FUZZ_PASSPHRASE);
  gboolean encrypted = FALSE;
  MsvmStateCipher cipher = MSVM_CIPHER_AES_256_CBC;
  GBytes *plain = NULL;
  GError *error = NULL;

  if (!msvm_state_file_probe(data, size, &encrypted, &cipher, &error)) {
    g_assert_nonnull(error);
    g_clear_error(&error);
  }
  if (msvm_state_file_decode(data, size, NULL, 0, MSVM_KDF_SHA512, &plain, &error)) {
    g_assert_false(encrypted);
    round_trip(plain, NULL, 0, cipher);
    g_bytes_unref(plain);
    plain = NULL;
  } else {
    g_assert_nonnull(error);
    g_assert_null(plain);
    g_clear_error(&error);
  }
  if (msvm_state_file_decode(data, size, pass, pass_len, MSVM_KDF_SHA512, &plain, &error)) {
    g_assert_true(encrypted);
    round_trip(plain, pass, pass_len, cipher);
    g_bytes_unref(plain);
  } else {
    g_assert_nonnull(error);
    g_assert_null(plain);
    g_clear_error(&error);
  }
  return 0;
}
