/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the /proc command-line matching of the re-key's in-use
 * check (tpm/msvm-state-inuse.c): any byte sequence, as /proc/PID/cmdline
 * and as /proc/PID/environ, never crashes or over-reads; a missing final
 * NUL changes nothing; a read cut at its bound always counts as in use.
 *
 * The directory looked for is libvirt's state path of a fixed UUID, which
 * does not exist here, so only its text can match.  Corpus
 * (cmdline-corpus/): libvirt 9.0's swtpm command line, swtpm_setup's, the
 * other spellings, similar prefixes, an environment with TPM_PATH, garbage.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "msvm-state-inuse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  MsvmStateDirId id = {
    .dev = 0, .ino = 0,
    .canonical = (char *)"/var/lib/libvirt/swtpm/5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b/tpm2",
    .absolute = (char *)"/var/lib/libvirt/swtpm/5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b/tpm2",
  };
  const char *s = (const char *)data;
  MsvmCmdlineMatch m;
  gboolean e;

  if (size > 1024 * 1024)
    return 0;
  m = msvm_cmdline_names_state_dir(s, size, FALSE, -1, -1, &id);
  e = msvm_environ_names_state_dir(s, size, FALSE, -1, -1, &id);
  g_assert_cmpint(msvm_cmdline_names_state_dir(s, size, TRUE, -1, -1, &id), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_true(msvm_environ_names_state_dir(s, size, TRUE, -1, -1, &id));
  if (size == 0 || data[size - 1] != '\0') {
    /* the same with its final NUL */
    g_autofree char *with_nul = g_malloc(size + 1);
    memcpy(with_nul, data, size);
    with_nul[size] = '\0';
    g_assert_cmpint(msvm_cmdline_names_state_dir(with_nul, size + 1, FALSE, -1, -1, &id), ==,
                    m);
    g_assert_cmpint(msvm_environ_names_state_dir(with_nul, size + 1, FALSE, -1, -1, &id), ==,
                    e);
  }
  return 0;
}
