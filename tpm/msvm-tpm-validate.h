/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-validate.h: checking a decrypted TPM 2.0 state with libtpms.
 *
 * The state files belong to the swtpm user, who can write any bytes there:
 * libtpms parses them only in a sandboxed child (msvm-tpm-sandbox.c,
 * DESIGN.md section 11) forked by a process that holds nothing secret but
 * the state itself, after the state is in memory.  The child drops to the
 * state directory's owner (nobody when that is root), sets no_new_privs,
 * RLIMIT_AS, RLIMIT_CPU and a seccomp filter, runs libtpms on memory only,
 * its standard streams on /dev/null and libtpms's debug output off, and
 * writes a fixed-size verdict to a pipe; its parent formats the message
 * and kills it after MSVM_TPM_VALIDATE_TIMEOUT_MS (MSVM_RC_TIMEOUT).
 *
 * Two ways to get there:
 *  - msvm_tpm_validate_in_helper() runs the helper executable
 *    `msvm-security-tpm-validate` with the blobs on its standard input (the
 *    only place the plaintext goes); the helper forks the sandboxed child.
 *    What the library uses (lives in msvm_tpm_dep, no libtpms, no fork).
 *  - msvm_tpm_validate_in_child() sends them to the validation server that
 *    msvm_tpm_validate_server_start() forked from a single-threaded program
 *    before it read any secret (the hook, DESIGN.md 9: no helper executed);
 *    the server forks the sandboxed child.  Lives in
 *    msvm_tpm_validate_core_dep (links libtpms and libseccomp).
 *
 * The pipe format: the 8 bytes "MSVMTPM2", the big-endian 32-bit uid and
 * gid of the state directory's owner, then for permall and volatilestate in
 * that order a big-endian 32-bit length and that many bytes (length 0:
 * absent).  The helper writes one line on standard output and exits 0 when
 * the state is valid, 1 when it is not, 2 on a protocol or usage error, 3
 * when the check could not run, 4 when it did not finish in time; its
 * standard error is not used for the verdict (the library silences it).
 *
 * Finding the helper: $MSVM_SECURITY_LIBEXECDIR (read with secure_getenv,
 * for tests and relocated installs) when set; else MSVM_LIBEXECDIR when
 * the helper is installed there; else the build tree (MSVM_BUILDDIR/tpm),
 * for running uninstalled.
 */
#pragma once

#include <sys/types.h>

#include <glib.h>

#include "msvm-state-file.h"

G_BEGIN_DECLS

#define MSVM_TPM_VALIDATE_HELPER "msvm-security-tpm-validate"
#define MSVM_TPM_VALIDATE_MAGIC "MSVMTPM2"

/* How long the sandboxed check may take (wall clock) before it is killed and
 * the call answers MSVM_RC_TIMEOUT.  libtpms checks a real state in a few
 * milliseconds.  Builds configured with -Dfault_injection=true (test builds
 * only) honour MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS. */
#define MSVM_TPM_VALIDATE_TIMEOUT_MS 30000
guint msvm_tpm_validate_timeout_ms(void);

/* Helper exit codes (above). */
enum {
  MSVM_TPM_VALIDATE_EXIT_VALID = 0,
  MSVM_TPM_VALIDATE_EXIT_INVALID = 1,
  MSVM_TPM_VALIDATE_EXIT_USAGE = 2,
  MSVM_TPM_VALIDATE_EXIT_FAILED = 3,
  MSVM_TPM_VALIDATE_EXIT_TIMEOUT = 4,
};

/* The unsandboxed libtpms check, in this process: only the sandboxed child
 * calls it (msvm-tpm-sandbox.c), at most once per process.
 * Errors: MSVM_RC_INVALID_STATE when libtpms rejects the state. */
/* What every check refuses before anything runs: no permanent state, or a
 * blob larger than a state file can be (32775). */
gboolean msvm_tpm_validate_check_input(GBytes *permall, GBytes *volatilestate, GError **error);

gboolean msvm_tpm_validate_blobs(GBytes *permall, GBytes *volatilestate, GError **error);

/* The largest request of the pipe format. */
#define MSVM_TPM_VALIDATE_REQUEST_MAX (16 + 8 + 2 * (gsize)MSVM_STATE_FILE_MAX_SIZE)

/* Parse the pipe format in @buf. */
gboolean msvm_tpm_validate_parse_request(const guint8 *buf, gsize len, GBytes **ret_permall,
                                         GBytes **ret_volatile, uid_t *ret_uid,
                                         gid_t *ret_gid, GError **error);

/* Read the pipe format from @fd to its end (the helper's main).  MSVM_RC_INVALID_PARAMETER
 * for a malformed stream. */
gboolean msvm_tpm_validate_read_request(int fd, GBytes **ret_permall, GBytes **ret_volatile,
                                        uid_t *ret_uid, gid_t *ret_gid, GError **error);

/* The sandboxed check (msvm-tpm-sandbox.c): forks the child described above
 * from this process, which must hold no secret but the blobs and be
 * single-threaded.  @owner_uid / @owner_gid: the state directory's owner.
 * Errors: MSVM_RC_INVALID_STATE (rejected or crashed), MSVM_RC_TIMEOUT,
 * MSVM_RC_FAILED (the sandbox could not be set up). */
gboolean msvm_tpm_validate_sandboxed(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                                     gid_t owner_gid, GError **error);

/* Path of the helper executable (see above), or NULL with an error. */
char *msvm_tpm_validate_helper_path(GError **error);

/* Validate in the helper process.  @volatilestate may be NULL. */
gboolean msvm_tpm_validate_in_helper(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                                     gid_t owner_gid, GError **error);

/* The validation server of a single-threaded program (the hook): start it
 * before reading any secret (the server is a fork of this process and must
 * not hold a copy of the seed or of a passphrase); stop it when done (it
 * also ends by itself when this process exits).  Starting twice is a no-op. */
gboolean msvm_tpm_validate_server_start(GError **error);
void msvm_tpm_validate_server_stop(void);

/* Validate through the validation server (MSVM_RC_FAILED when it was not
 * started).  Same errors as msvm_tpm_validate_sandboxed(). */
gboolean msvm_tpm_validate_in_child(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                                    gid_t owner_gid, GError **error);

/* How msvm_rekey_state_dir() and msvm_state_dir_check() validate: by
 * default msvm_tpm_validate_in_helper; the single-threaded hook sets
 * msvm_tpm_validate_in_child once at start-up (DESIGN.md section 9: it must
 * not execute a helper outside the AppArmor-allowed paths).  NULL restores
 * the default.  Not thread-safe: set it before any re-key. */
typedef gboolean (*MsvmTpmValidator)(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                                     gid_t owner_gid, GError **error);
void msvm_tpm_set_validator(MsvmTpmValidator validator);
MsvmTpmValidator msvm_tpm_get_validator(void);

/* The pipe format for @permall / @volatilestate (a wiping GBytes). */
GBytes *msvm_tpm_validate_serialize(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                                    gid_t owner_gid);

G_END_DECLS
