/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security-tpm-validate: check a decrypted TPM 2.0 state with libtpms.
 * Reads the request from standard input (format in msvm-tpm-validate.h),
 * never from argv or files, into memory, then runs libtpms on it in a
 * sandboxed child (msvm-tpm-sandbox.c).  Writes one line on standard
 * output; exit 0 valid, 1 invalid, 2 bad input or usage, 3 the check could
 * not run, 4 it did not finish in time.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "msvm-cause.h"
#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-secret.h"
#include "msvm-tpm-validate.h"

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) permall = NULL;
  g_autoptr(GBytes) vol = NULL;
  uid_t uid = 0;
  gid_t gid = 0;
  int code;

  if (argc != 1) {
    fprintf(stderr, "usage: %s < request\n"
                    "Checks a decrypted swtpm TPM 2.0 state read from standard input "
                    "(internal helper of msvm-security).\n", argv[0]);
    return MSVM_TPM_VALIDATE_EXIT_USAGE;
  }
  /* it holds a plaintext TPM state */
  if (!msvm_secret_protect_process()) {
    printf("cannot keep the state out of core dumps: %s\n", g_strerror(errno));
    return MSVM_TPM_VALIDATE_EXIT_FAILED;
  }
  msvm_fault_point("process-protected");
  if (!msvm_tpm_validate_read_request(STDIN_FILENO, &permall, &vol, &uid, &gid, &error)) {
    printf("%s\n", error->message);
    return MSVM_TPM_VALIDATE_EXIT_USAGE;
  }
  if (msvm_tpm_validate_sandboxed(permall, vol, uid, gid, &error)) {
    printf("valid\n");
    return MSVM_TPM_VALIDATE_EXIT_VALID;
  }
  printf("%s\n", error->message);
  if (msvm_error_is(error, MSVM_RC_INVALID_STATE))
    code = MSVM_TPM_VALIDATE_EXIT_INVALID;
  else if (msvm_error_is(error, MSVM_RC_TIMEOUT))
    code = MSVM_TPM_VALIDATE_EXIT_TIMEOUT;
  else
    code = MSVM_TPM_VALIDATE_EXIT_FAILED;
  return code;
}
