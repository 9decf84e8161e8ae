/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security-tpm-validate: check a decrypted TPM 2.0 state with libtpms.
 * Reads the blobs from standard input (format in msvm-tpm-validate.h), never
 * from argv or files; exit 0 valid, 1 invalid, 2 bad input or usage.
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-tpm-validate.h"

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;

  if (argc != 1) {
    fprintf(stderr, "usage: %s < blobs\n"
                    "Checks a decrypted swtpm TPM 2.0 state read from standard input "
                    "(internal helper of msvm-security).\n", argv[0]);
    return 2;
  }
  if (!msvm_tpm_validate_fd(STDIN_FILENO, &error)) {
    fprintf(stderr, "%s\n", error->message);
    return g_error_matches(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER) ? 2 : 1;
  }
  return 0;
}
