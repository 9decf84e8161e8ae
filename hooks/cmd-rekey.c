/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security rekey: offline re-key of a swtpm TPM 2.0 state directory
 * (DESIGN.md sections 6 and 8, docs/rekey.rst).
 *
 *   msvm-security rekey --state-dir DIR
 *       [--old-passphrase-file F | --old-passphrase-fd N] [--old-kdf pbkdf2|sha512]
 *       (--new-passphrase-file F | --new-passphrase-fd N) [--new-kdf pbkdf2|sha512]
 *       [--new-cipher aes-256-cbc|aes-128-cbc]
 *
 * Passphrases come only from files or file descriptors (F may be /dev/fd/N
 * or "-" for standard input), never from argv.  Like swtpm, the whole
 * content is the passphrase, byte for byte, a trailing newline included.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "msvm-cli.h"
#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-secret.h"
#include "msvm-kdf.h"
#include "msvm-rekey.h"

#define PASSPHRASE_MAX (1024 * 1024)

typedef struct {
  GBytes *bytes;       /* a secret buffer (msvm-secret.h): wiped when freed */
  const guint8 *data;
  gsize len;
} Passphrase;

static void
passphrase_clear(Passphrase *p)
{
  g_clear_pointer(&p->bytes, g_bytes_unref);
  p->data = NULL;
  p->len = 0;
}

/* Read all of @fd into a buffer that is wiped when no longer needed. */
static gboolean
read_secret_fd(int fd, const char *what, Passphrase *ret, GError **error)
{
  gboolean too_long = FALSE;
  int saved;

  if (msvm_secret_read_fd(fd, PASSPHRASE_MAX, &ret->bytes, &too_long)) {
    ret->data = g_bytes_get_data(ret->bytes, &ret->len);
    if (ret->data == NULL)
      ret->data = (const guint8 *)""; /* (an empty passphrase is still given) */
    return TRUE;
  }
  saved = errno;
  if (too_long)
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s: passphrase longer than %d bytes", what, PASSPHRASE_MAX);
  else
    g_set_error(error, MSVM_ERROR,
                msvm_return_code_from_errno(saved) == MSVM_RC_ACCESS_DENIED
                  ? MSVM_RC_ACCESS_DENIED : MSVM_RC_INVALID_PARAMETER,
                "cannot read the passphrase from %s: %s", what, g_strerror(saved));
  return FALSE;
}

static gboolean
read_passphrase(const char *path, int fd, const char *which, Passphrase *ret, GError **error)
{
  g_autofree char *what = NULL;
  gboolean ok;

  if (path == NULL) {
    what = g_strdup_printf("file descriptor %d", fd);
    return read_secret_fd(fd, what, ret, error);
  }
  if (strcmp(path, "-") == 0)
    return read_secret_fd(STDIN_FILENO, "standard input", ret, error);
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    g_set_error(error, MSVM_ERROR,
                msvm_return_code_from_errno(e) == MSVM_RC_ACCESS_DENIED
                  ? MSVM_RC_ACCESS_DENIED : MSVM_RC_INVALID_PARAMETER,
                "cannot open the %s passphrase file %s: %s", which, path, g_strerror(e));
    return FALSE;
  }
  ok = read_secret_fd(fd, path, ret, error);
  close(fd);
  return ok;
}

static gboolean
parse_kdf(const char *s, MsvmStateKdf *ret)
{
  if (s == NULL || strcmp(s, "pbkdf2") == 0)
    *ret = MSVM_KDF_PBKDF2;
  else if (strcmp(s, "sha512") == 0)
    *ret = MSVM_KDF_SHA512;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_cipher(const char *s, MsvmStateCipher *ret)
{
  if (s == NULL || strcmp(s, "aes-256-cbc") == 0)
    *ret = MSVM_CIPHER_AES_256_CBC;
  else if (strcmp(s, "aes-128-cbc") == 0 || strcmp(s, "aes-cbc") == 0)
    *ret = MSVM_CIPHER_AES_128_CBC;
  else
    return FALSE;
  return TRUE;
}

int
msvm_cmd_rekey(MsvmCli *cli, int argc, char **argv)
{
  g_autofree char *state_dir = NULL;
  g_autofree char *old_file = NULL;
  g_autofree char *new_file = NULL;
  g_autofree char *old_kdf_s = NULL;
  g_autofree char *new_kdf_s = NULL;
  g_autofree char *new_cipher_s = NULL;
  gint old_fd = -1, new_fd = -1;
  const GOptionEntry entries[] = {
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
      "the swtpm TPM 2.0 state directory (libvirt: .../swtpm/UUID/tpm2)", "DIR" },
    { "old-passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &old_file,
      "file holding the current passphrase (none: the state is plaintext)", "F" },
    { "old-passphrase-fd", 0, 0, G_OPTION_ARG_INT, &old_fd,
      "read the current passphrase from this file descriptor", "N" },
    { "old-kdf", 0, 0, G_OPTION_ARG_STRING, &old_kdf_s,
      "how swtpm derives the current key: pbkdf2 (default) or sha512", "KDF" },
    { "new-passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &new_file,
      "file holding the new passphrase", "F" },
    { "new-passphrase-fd", 0, 0, G_OPTION_ARG_INT, &new_fd,
      "read the new passphrase from this file descriptor", "N" },
    { "new-kdf", 0, 0, G_OPTION_ARG_STRING, &new_kdf_s,
      "key derivation for the new key: pbkdf2 (default) or sha512", "KDF" },
    { "new-cipher", 0, 0, G_OPTION_ARG_STRING, &new_cipher_s,
      "aes-256-cbc (default, as libvirt) or aes-128-cbc", "CIPHER" },
    { NULL }
  };
  Passphrase old_pass = { 0 }, new_pass = { 0 };
  MsvmStateKey old_key = { 0 }, new_key = { 0 };
  g_autoptr(GError) error = NULL;
  gboolean have_old;
  gboolean ok;
  int status;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, NULL,
                      "Re-encrypt an offline swtpm TPM 2.0 state under a new passphrase, "
                      "or encrypt a plaintext one.\nPassphrase files are used byte for byte "
                      "(a trailing newline is part of the passphrase), as swtpm does."))
    return MSVM_EXIT_USAGE;
  if (argc > 1)
    return msvm_cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
  if (state_dir == NULL)
    return msvm_cli_usage_error(cli, "--state-dir is required");
  if (old_file != NULL && old_fd >= 0)
    return msvm_cli_usage_error(cli, "give --old-passphrase-file or --old-passphrase-fd, "
                                     "not both");
  if (new_file != NULL && new_fd >= 0)
    return msvm_cli_usage_error(cli, "give --new-passphrase-file or --new-passphrase-fd, "
                                     "not both");
  if (new_file == NULL && new_fd < 0)
    return msvm_cli_usage_error(cli, "--new-passphrase-file (or --new-passphrase-fd) is "
                                     "required");
  if (g_strcmp0(old_file, "-") == 0 && g_strcmp0(new_file, "-") == 0)
    return msvm_cli_usage_error(cli, "only one passphrase can come from standard input");
  if (old_fd >= 0 && old_fd == new_fd)
    return msvm_cli_usage_error(cli, "the old and new passphrases need different file "
                                     "descriptors");
  if (!parse_kdf(old_kdf_s, &old_key.kdf))
    return msvm_cli_usage_error(cli, "unknown --old-kdf '%s' (pbkdf2 or sha512)", old_kdf_s);
  if (!parse_kdf(new_kdf_s, &new_key.kdf))
    return msvm_cli_usage_error(cli, "unknown --new-kdf '%s' (pbkdf2 or sha512)", new_kdf_s);
  if (!parse_cipher(new_cipher_s, &new_key.cipher))
    return msvm_cli_usage_error(cli, "unknown --new-cipher '%s' (aes-256-cbc or aes-128-cbc)",
                                new_cipher_s);
  have_old = old_file != NULL || old_fd >= 0;
  if (!have_old && old_kdf_s != NULL)
    return msvm_cli_usage_error(cli, "--old-kdf needs an old passphrase");

  /* (SIGPIPE is ignored by main(): a reader that died gives EPIPE) */
  ok = (!have_old || read_passphrase(old_file, old_fd, "old", &old_pass, &error)) &&
       read_passphrase(new_file, new_fd, "new", &new_pass, &error);
  if (ok && new_pass.len == 0) {
    g_set_error(&error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the new passphrase is empty");
    ok = FALSE;
  }
  if (ok) {
    old_key.passphrase = have_old ? old_pass.data : NULL;
    old_key.passphrase_len = old_pass.len;
    new_key.passphrase = new_pass.data;
    new_key.passphrase_len = new_pass.len;
    ok = msvm_rekey_state_dir(state_dir, &old_key, &new_key, &error);
  }
  passphrase_clear(&old_pass);
  passphrase_clear(&new_pass);

  if (!ok) {
    status = msvm_cli_report_error(cli, error);
  } else {
    g_autofree char *msg = g_strdup_printf(
        "%s: the TPM state is now encrypted with %s (key derivation %s)%s", state_dir,
        msvm_state_cipher_name(new_key.cipher), msvm_state_kdf_name(new_key.kdf),
        have_old ? "" : "; it was plaintext");
    MsvmReport report = { .return_value = MSVM_RC_COMPLETED, .message = msg };
    status = msvm_cli_report(cli, &report);
  }
  return status;
}
