/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-state-inuse.h: which process has a swtpm state directory as its
 * --tpmstate (DESIGN.md section 6, docs/rekey.rst "In use").
 *
 * swtpm takes its .lock only at CMD_INIT; libvirt starts `swtpm socket`
 * without `not-need-init`, so between its start and QEMU's CMD_INIT a swtpm
 * holds the directory without the lock.  The re-key therefore also looks at
 * the command line of every process in /proc: swtpm's
 * `--tpmstate dir=PATH[,...]`, `--tpmstate=dir=PATH`,
 * `backend-uri=dir://PATH` (and `file://FILE` inside the directory),
 * swtpm_setup's `--tpmstate|--tpm-state PATH`, and for a process called
 * swtpm* without such an option its TPM_PATH environment variable.  A path
 * names the directory when it resolves to the same st_dev/st_ino (in the
 * caller's mount namespace, in the process's own root, relative paths from
 * the process's working directory), or when its normalised text or realpath
 * equals the directory's.
 *
 * The bytes in /proc are the process owner's to choose: every read is
 * bounded, any byte sequence is handled, and whatever cannot be judged
 * (a command line longer than the bound, too many candidate paths) counts
 * as "in use": a false refusal is safe, a missed user is not.  Processes
 * whose command line the caller may not read are skipped, and so are those
 * whose credentials (/proc/PID/status: the real uid, the real gid and the
 * groups) cannot enter the directory: not root, not its owner, not in its
 * group when the mode lets the group in, the mode lets nobody else in and
 * the directory has no access ACL.  (The real uid: a set-user-ID program
 * such as sudo at its prompt runs as root with arguments its caller chose.
 * A process that enters only through CAP_DAC_OVERRIDE as another user is
 * not counted.)  Any local
 * user can start a process whose arguments name the directory; only one
 * that can open it can be a swtpm holding it (without this, such a process
 * would refuse every re-key for good).
 */
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <glib.h>

G_BEGIN_DECLS

/* The directory being looked for. */
typedef struct {
  dev_t dev;
  ino_t ino;
  char *canonical; /* realpath() of the path given, NULL when it failed */
  char *absolute;  /* the path given, made absolute and normalised textually */
  uid_t owner;     /* the directory's owner, group and mode: a process whose */
  gid_t group;     /* credentials cannot enter it is not looked at */
  mode_t mode;
  gboolean has_acl; /* an access ACL (or it could not be read): all count */
} MsvmStateDirId;

/* Fill @id for the directory @path whose fstat() is @st. */
void msvm_state_dir_id_init(MsvmStateDirId *id, const char *path, const struct stat *st);
void msvm_state_dir_id_clear(MsvmStateDirId *id);

typedef enum {
  MSVM_CMDLINE_NO_MATCH,
  MSVM_CMDLINE_MATCH,
  /* A swtpm without a --tpmstate option: its TPM_PATH environment variable
   * decides (msvm_environ_names_state_dir). */
  MSVM_CMDLINE_NEEDS_ENVIRON,
} MsvmCmdlineMatch;

/*
 * Whether @cmdline (@len bytes as in /proc/PID/cmdline: NUL-separated
 * arguments; a missing final NUL, empty arguments and any byte are fine)
 * names @id as a TPM state directory.  @truncated: the read stopped at its
 * bound (counts as a match).  @root_fd / @cwd_fd: the process's root and
 * working directory (/proc/PID/root, /proc/PID/cwd) to resolve its paths
 * in, or -1 (absolute paths are then resolved in the caller's namespace
 * only; relative ones are compared as the tail of the directory's path).
 */
MsvmCmdlineMatch msvm_cmdline_names_state_dir(const char *cmdline, gsize len,
                                              gboolean truncated, int root_fd, int cwd_fd,
                                              const MsvmStateDirId *id);

/* Whether @environ (as /proc/PID/environ) holds TPM_PATH naming @id;
 * @root_fd / @cwd_fd as above. */
gboolean msvm_environ_names_state_dir(const char *environ, gsize len, gboolean truncated,
                                      int root_fd, int cwd_fd, const MsvmStateDirId *id);

/*
 * Scan @proc_dir (NULL: "/proc") for a process other than the caller whose
 * command line names @id.  TRUE with *@ret_pid 0 (and *@ret_name NULL) when
 * none does, TRUE with
 * the pid (and, in *@ret_name, its /proc/PID/comm with every byte outside
 * printable ASCII replaced by '?', at most 16 characters) for the first one
 * found; FALSE with 32768 when the scan cannot be made (/proc unreadable,
 * out of descriptors): the caller cannot tell and must refuse.
 */
gboolean msvm_state_dir_find_user(const char *proc_dir, const MsvmStateDirId *id,
                                  pid_t *ret_pid, char **ret_name, GError **error);

G_END_DECLS
