/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-tpm-sandbox.c: libtpms runs on bytes the swtpm user chose, so only in
 * a sandboxed child (DESIGN.md section 11, msvm-tpm-validate.h):
 *
 *   parent (holds nothing secret but the state: the helper executable, or
 *   the hook's validation server forked before any secret was read)
 *     fork -> child:
 *       1. standard streams on /dev/null, every other descriptor closed but
 *          the verdict pipe (and, in test builds, the trace file);
 *       2. libtpms's debug output off, TPM 2.0 chosen, callbacks registered
 *          (nothing parsed yet);
 *       3. RLIMIT_AS (MSVM_SANDBOX_AS_BYTES), RLIMIT_CPU (the timeout),
 *          RLIMIT_CORE 0, RLIMIT_NOFILE (no new descriptors), RLIMIT_NPROC 0;
 *       4. setgroups(0), setresgid, setresuid to the state directory's owner
 *          (nobody when that is root), each checked, then getresuid and
 *          getresgid verified; not dumpable; killed when its parent dies;
 *       5. PR_SET_NO_NEW_PRIVS, then a seccomp filter (libseccomp, default
 *          action: kill the process) allowing memory management (no
 *          executable mapping), writing the verdict to its pipe and exiting;
 *       6. TPMLIB_SetState / TPMLIB_ValidateState on the blobs in memory;
 *       7. the fixed-size verdict to the pipe, _exit.
 *     the parent waits at most msvm_tpm_validate_timeout_ms(), then kills
 *     it (MSVM_RC_TIMEOUT); the message is the parent's, never the child's.
 *
 * The hook's validation server (msvm_tpm_validate_server_start) is the
 * same parent, serving requests over a socket pair: the hook forks it before it
 * loads the store, so the sandboxed children (forks of the server) never
 * hold a copy of the seed or of a passphrase.
 */
#include "config.h"

#include "msvm-tpm-validate.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "msvm-error.h"
#include "msvm-io.h"
#include "msvm-kdf.h"
#include "msvm-state-file.h"
#include "msvm-tpm-validate-priv.h"

/* The child's address-space limit: the process image (GLib, libxml2,
 * OpenSSL, libtpms mapped) is well under 100 MiB, a state under
 * MSVM_STATE_FILE_MAX_SIZE. */
#define MSVM_SANDBOX_AS_BYTES ((rlim_t)512 * 1024 * 1024)

/* AddressSanitizer reserves terabytes of shadow address space: its test
 * builds (./run test) cannot limit the address space. */
#if defined(__SANITIZE_ADDRESS__)
#define MSVM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSVM_SANITIZED 1
#endif
#endif

/* The child's descriptors. */
#define VERDICT_FD 3
#define TRACE_FD 4  /* test builds */
#define STATUS_FD 5 /* test builds: /proc/self/status, opened before the drop */

typedef enum {
  STEP_STREAMS,
  STEP_DESCRIPTORS,
  STEP_RLIMITS,
  STEP_SETGROUPS,
  STEP_SETRESGID,
  STEP_SETRESUID,
  STEP_VERIFY_IDS,
  STEP_NO_NEW_PRIVS,
  STEP_SECCOMP,
  STEP_TRACE,
  STEP_PARENT,
} SandboxStep;

static void
write_verdict(const MsvmVerdict *v)
{
  (void)msvm_write_full(VERDICT_FD, v, sizeof(*v)); /* (nothing to do when it fails) */
}

static void G_GNUC_NORETURN
child_fail(SandboxStep step, int err)
{
  MsvmVerdict v = { MSVM_VERDICT_SANDBOX_SETUP, ((guint32)step << 16) | ((guint32)err & 0xffff) };

  write_verdict(&v);
  _exit(MSVM_TPM_VALIDATE_EXIT_FAILED);
}

/* Move @fd to @target (or close @target when @fd < 0). */
static gboolean
place_fd(int fd, int target)
{
  if (fd < 0)
    return TRUE;
  if (fd == target)
    return fcntl(fd, F_SETFD, 0) == 0;
  return dup2(fd, target) == target;
}

static int
seccomp_filter_load(gboolean trace)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  int rc = 0;

  if (ctx == NULL)
    return -ENOMEM;
  /* memory: malloc (brk, mmap, munmap, mremap, mprotect by glibc's heap) */
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(brk), 0);
  /* never a new executable mapping */
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(munmap), 0);
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mremap), 0);
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(madvise), 0);
  /* the verdict */
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                                  SCMP_A0(SCMP_CMP_EQ, VERDICT_FD));
  /* libtpms prints some diagnostics with stdio on stderr whatever its debug
   * settings: refused without killing (stderr is /dev/null anyway) */
  {
    const int on_stderr[] = { SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(newfstatat),
                              SCMP_SYS(fstat), SCMP_SYS(lseek) };
    for (gsize i = 0; i < G_N_ELEMENTS(on_stderr) && rc == 0; i++)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EBADF), on_stderr[i], 1,
                            SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO));
  }
  /* the end */
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit), 0);
#ifdef MSVM_SANITIZED
  /* AddressSanitizer's runtime at exit (sanitizer test builds only) */
  rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack), 0);
#endif
  if (trace) {
    /* test builds only: the trace of /proc/self/status, read after the load */
    rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                                    SCMP_A0(SCMP_CMP_EQ, TRACE_FD));
    rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pread64), 1,
                                    SCMP_A0(SCMP_CMP_EQ, STATUS_FD));
  }
  rc = rc ? rc : seccomp_load(ctx);
  seccomp_release(ctx);
  return rc;
}

#ifdef MSVM_FAULT_INJECTION
/* Test builds: the Uid, Gid, NoNewPrivs and Seccomp lines of the sandboxed
 * child's /proc/self/status, appended to the trace file. */
static void
trace_status(void)
{
  static char buf[8192];
  ssize_t n = pread(STATUS_FD, buf, sizeof(buf) - 1, 0);
  char *line, *next;

  if (n <= 0)
    return;
  buf[n] = '\0';
  for (line = buf; line != NULL && *line != '\0'; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    if (g_str_has_prefix(line, "Uid:") || g_str_has_prefix(line, "Gid:") ||
        g_str_has_prefix(line, "Groups:") || g_str_has_prefix(line, "NoNewPrivs:") ||
        g_str_has_prefix(line, "Seccomp:")) {
      if (!msvm_write_full(TRACE_FD, line, strlen(line)) || !msvm_write_full(TRACE_FD, "\n", 1))
        return;
    }
  }
}
#endif

typedef struct {
  uid_t uid;
  gid_t gid;
  pid_t parent;
  int verdict_fd;
  int trace_fd;  /* test builds, else -1 */
  int status_fd; /* test builds, else -1 */
  gboolean stall; /* test builds: never answer */
  gboolean forbidden; /* test builds: try to open a file under the filter */
  guint timeout_ms;
} ChildPlan;

static void G_GNUC_NORETURN
sandboxed_child(const ChildPlan *plan, GBytes *permall, GBytes *volatilestate)
{
  MsvmVerdict v = { 0 };
  int null_fd;
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  struct rlimit rl;
  gboolean root = geteuid() == 0;

  /* 1. descriptors: streams on /dev/null, the verdict pipe on 3 */
  null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
      dup2(null_fd, STDERR_FILENO) < 0)
    _exit(MSVM_TPM_VALIDATE_EXIT_FAILED); /* no way to report */
  {
    int v_fd = fcntl(plan->verdict_fd, F_DUPFD_CLOEXEC, 64);
    int t_fd = plan->trace_fd >= 0 ? fcntl(plan->trace_fd, F_DUPFD_CLOEXEC, 64) : -1;
    int s_fd = plan->status_fd >= 0 ? fcntl(plan->status_fd, F_DUPFD_CLOEXEC, 64) : -1;
    if (v_fd < 0 || !place_fd(v_fd, VERDICT_FD))
      _exit(MSVM_TPM_VALIDATE_EXIT_FAILED);
    if ((plan->trace_fd >= 0 && (t_fd < 0 || !place_fd(t_fd, TRACE_FD))) ||
        (plan->status_fd >= 0 && (s_fd < 0 || !place_fd(s_fd, STATUS_FD))))
      child_fail(STEP_DESCRIPTORS, errno);
  }
  if (close_range(plan->trace_fd >= 0 ? STATUS_FD + 1 : VERDICT_FD + 1, ~0U, 0) != 0)
    child_fail(STEP_DESCRIPTORS, errno);

  /* 2. libtpms set up; nothing of the state parsed yet */
  if (!msvm_tpm_validate_prepare(permall, volatilestate, &v)) {
    write_verdict(&v);
    _exit(MSVM_TPM_VALIDATE_EXIT_FAILED);
  }

  /* 3. resource limits */
  rl = (struct rlimit){ 0, 0 };
  if (setrlimit(RLIMIT_CORE, &rl) != 0)
    child_fail(STEP_RLIMITS, errno);
  rl.rlim_cur = rl.rlim_max = (plan->timeout_ms + 999) / 1000 + 1;
  if (setrlimit(RLIMIT_CPU, &rl) != 0)
    child_fail(STEP_RLIMITS, errno);
#ifndef MSVM_SANITIZED
  rl.rlim_cur = rl.rlim_max = MSVM_SANDBOX_AS_BYTES;
  if (setrlimit(RLIMIT_AS, &rl) != 0)
    child_fail(STEP_RLIMITS, errno);
#endif
  rl.rlim_cur = rl.rlim_max = plan->trace_fd >= 0 ? STATUS_FD + 1 : VERDICT_FD + 1;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    child_fail(STEP_RLIMITS, errno);

  /* 4. the owner's ids, in that order, each checked, then verified */
  if (root && setgroups(0, NULL) != 0)
    child_fail(STEP_SETGROUPS, errno);
  if (setresgid(plan->gid, plan->gid, plan->gid) != 0)
    child_fail(STEP_SETRESGID, errno);
  if (setresuid(plan->uid, plan->uid, plan->uid) != 0)
    child_fail(STEP_SETRESUID, errno);
  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
    child_fail(STEP_VERIFY_IDS, errno);
  if (ru != plan->uid || eu != plan->uid || su != plan->uid || rg != plan->gid ||
      eg != plan->gid || sg != plan->gid || (root && getgroups(0, NULL) != 0) ||
      (plan->uid != 0 && setresuid(0, 0, 0) == 0))
    child_fail(STEP_VERIFY_IDS, EPERM);
  /* (the credential change cleared these: set them after it) */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    child_fail(STEP_PARENT, errno);
  if (getppid() != plan->parent)
    _exit(MSVM_TPM_VALIDATE_EXIT_FAILED);
  rl.rlim_cur = rl.rlim_max = 0;
  if (setrlimit(RLIMIT_NPROC, &rl) != 0)
    child_fail(STEP_RLIMITS, errno);

  /* 5. no new privileges, the filter */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    child_fail(STEP_NO_NEW_PRIVS, errno);
  if (plan->stall)
    for (;;)
      pause(); /* test builds: a check that never returns */
  {
    int rc = seccomp_filter_load(plan->trace_fd >= 0);
    if (rc != 0)
      child_fail(STEP_SECCOMP, -rc);
  }
#ifdef MSVM_FAULT_INJECTION
  if (plan->trace_fd >= 0)
    trace_status();
  if (plan->forbidden)
    (void)open("/etc/passwd", O_RDONLY | O_CLOEXEC); /* the filter kills it */
#endif

  /* 6. libtpms on memory */
  msvm_tpm_validate_run(&v);

  /* 7. the verdict */
  write_verdict(&v);
  _exit(v.kind == MSVM_VERDICT_VALID ? MSVM_TPM_VALIDATE_EXIT_VALID
                                     : MSVM_TPM_VALIDATE_EXIT_INVALID);
}

/* The ids the check runs as: the state directory's owner, nobody (and its
 * group) for root; an unprivileged caller keeps its own. */
static void
target_ids(uid_t owner_uid, gid_t owner_gid, uid_t *ret_uid, gid_t *ret_gid)
{
  uid_t nobody_uid = 65534;
  gid_t nobody_gid = 65534;

  if (geteuid() != 0) {
    *ret_uid = geteuid();
    *ret_gid = getegid();
    return;
  }
  if (owner_uid == 0 || owner_gid == 0) {
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwnam_r("nobody", &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
        res->pw_uid != 0 && res->pw_gid != 0) {
      nobody_uid = res->pw_uid;
      nobody_gid = res->pw_gid;
    }
  }
  *ret_uid = owner_uid != 0 ? owner_uid : nobody_uid;
  *ret_gid = owner_uid != 0 && owner_gid != 0 ? owner_gid : nobody_gid;
}

/* Read up to @len bytes until end of file or @deadline (monotonic us).
 * Returns the bytes read, or -1 when the deadline passed first. */
static gssize
read_until(int fd, guint8 *buf, gsize len, gint64 deadline)
{
  gsize got = 0, extra = 0;
  guint8 sink[64];

  if (!msvm_read_full_until(fd, buf, len, deadline, &got))
    return errno == ETIMEDOUT ? -1 : (gssize)got;
  if (got < len)
    return (gssize)got; /* the end of the input */
  /* more than a verdict: read on to the end */
  do {
    if (!msvm_read_full_until(fd, sink, sizeof(sink), deadline, &extra))
      return errno == ETIMEDOUT ? -1 : (gssize)got;
  } while (extra == sizeof(sink));
  return (gssize)got;
}

/* Wait for @pid until @deadline; FALSE when it had to be killed. */
static gboolean
wait_until(pid_t pid, gint64 deadline, int *ret_status)
{
  for (;;) {
    pid_t w = waitpid(pid, ret_status, WNOHANG);
    if (w == pid)
      return TRUE;
    if (w < 0 && errno != EINTR) {
      *ret_status = 0;
      return TRUE;
    }
    if (g_get_monotonic_time() >= deadline)
      break;
    g_usleep(2000);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, ret_status, 0) < 0 && errno == EINTR)
    ;
  return FALSE;
}

gboolean
msvm_tpm_validate_sandboxed(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                            gid_t owner_gid, GError **error)
{
  ChildPlan plan = { .trace_fd = -1, .status_fd = -1 };
  MsvmVerdict v = { 0 };
  int pipe_fd[2];
  pid_t pid;
  gint64 deadline;
  gssize got;
  int status = 0;
  gboolean finished;

  if (!msvm_tpm_validate_check_input(permall, volatilestate, error))
    return FALSE;
  target_ids(owner_uid, owner_gid, &plan.uid, &plan.gid);
  plan.parent = getpid();
  plan.timeout_ms = msvm_tpm_validate_timeout_ms();
#ifdef MSVM_FAULT_INJECTION
  {
    /* test builds: trace the sandbox (integration/test-validate-sandbox.sh),
     * or stand in for a libtpms check that never returns */
    const char *trace = secure_getenv("MSVM_SECURITY_TEST_SANDBOX_TRACE");
    const char *stall = secure_getenv("MSVM_SECURITY_TEST_VALIDATE_STALL");
    const char *forbidden = secure_getenv("MSVM_SECURITY_TEST_SANDBOX_FORBIDDEN");
    if (trace != NULL && *trace == '/') {
      plan.trace_fd = open(trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    plan.stall = stall != NULL && *stall == '1';
    plan.forbidden = forbidden != NULL && *forbidden == '1';
  }
#endif

  if (pipe2(pipe_fd, O_CLOEXEC) != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot create a pipe: %s",
                g_strerror(errno));
    goto fail_trace;
  }
  plan.verdict_fd = pipe_fd[1];
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(pipe_fd[0]);
    close(pipe_fd[1]);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot fork: %s", g_strerror(e));
    goto fail_trace;
  }
  if (pid == 0) {
    /* test builds: the child's own /proc/self/status, opened before the drop */
    if (plan.trace_fd >= 0) {
      plan.status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
      if (plan.status_fd < 0)
        plan.trace_fd = -1;
    }
    sandboxed_child(&plan, permall, volatilestate);
  }
  close(pipe_fd[1]);
  if (plan.trace_fd >= 0)
    close(plan.trace_fd);

  deadline = g_get_monotonic_time() + (gint64)plan.timeout_ms * 1000;
  got = read_until(pipe_fd[0], (guint8 *)&v, sizeof(v), deadline);
  close(pipe_fd[0]);
  finished = got >= 0 && wait_until(pid, deadline, &status);
  if (!finished) {
    if (got < 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    }
    g_set_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT,
                "the libtpms check of the state did not finish within %u ms and was stopped",
                plan.timeout_ms);
    return FALSE;
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGXCPU || sig == SIGKILL)
      g_set_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT,
                  "the libtpms check of the state used up its CPU time and was stopped");
    else if (sig == SIGSYS)
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "the libtpms check of the state made a system call its sandbox forbids "
                  "and was stopped");
    else
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "libtpms crashed on the state (signal %d)", sig);
    return FALSE;
  }
  if (got != (gssize)sizeof(v)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the libtpms check of the state ended (status %d) without a verdict",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return FALSE;
  }
  if (v.kind == MSVM_VERDICT_VALID && WIFEXITED(status) &&
      WEXITSTATUS(status) == MSVM_TPM_VALIDATE_EXIT_VALID)
    return TRUE;
  if (v.kind == MSVM_VERDICT_VALID)
    v.kind = 0; /* a verdict that contradicts the exit status */
  msvm_tpm_verdict_to_error(&v, error);
  return FALSE;

fail_trace:
  if (plan.trace_fd >= 0)
    close(plan.trace_fd);
  return FALSE;
}

/* --- the hook's validation server --------------------------------------------- */

static pid_t server_pid = -1;
static int server_fd = -1; /* our end of the socket pair */

/* How long the hook waits for the server: the check's own timeout, plus
 * the time to pass the state over the pipe. */
#define SERVER_MARGIN_MS 2000

/* (the server's socket: a server gone is an error, not SIGPIPE) */
static gboolean
write_all_until(int fd, const guint8 *buf, gsize len, gint64 deadline)
{
  return msvm_write_full_until(fd, buf, len, deadline, TRUE);
}

static gboolean
read_all_until(int fd, guint8 *buf, gsize len, gint64 deadline)
{
  gsize got = 0;

  if (!msvm_read_full_until(fd, buf, len, deadline, &got))
    return FALSE;
  if (got < len) {
    errno = EPIPE; /* the other end is gone */
    return FALSE;
  }
  return TRUE;
}

/* The exchange with the validation server failed with @err: a timeout only
 * when its deadline passed (32772); a server that went away is a failure
 * of the check (32768), not the state's. */
static void
server_failed(GError **error, int err, guint timeout_ms)
{
  if (err == ETIMEDOUT)
    g_set_error(error, MSVM_ERROR, MSVM_RC_TIMEOUT,
                "the libtpms check of the state did not answer within %u ms and was stopped",
                timeout_ms);
  else
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the libtpms check of the state cannot run: its validation process went "
                "away (%s)", g_strerror(err));
}

static void
put_u32(guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

static guint32
get_u32(const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* One request: a 32-bit length and the pipe format; one reply: the
 * MSVM_RC_* code (0: valid), a 32-bit length and the message. */
static void G_GNUC_NORETURN
server_main(int sock)
{
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

  /* nothing of the hook's: not its streams (libvirt reads its stdout and
   * stderr to the end), not its descriptors */
  if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
      dup2(null_fd, STDERR_FILENO) < 0)
    _exit(1);
  if (dup2(sock, 3) != 3 || close_range(4, ~0U, 0) != 0)
    _exit(1);
  sock = 3;
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  for (;;) {
    guint8 lenbuf[4];
    guint32 len;
    g_autoptr(GBytes) permall = NULL;
    g_autoptr(GBytes) vol = NULL;
    g_autoptr(GError) error = NULL;
    uid_t uid = 0;
    gid_t gid = 0;
    guint8 *reply;
    gsize msg_len;
    gboolean ok = FALSE;

    if (!read_all_until(sock, lenbuf, 4, G_MAXINT64))
      _exit(0); /* the hook is done */
    len = get_u32(lenbuf);
    if (len > MSVM_TPM_VALIDATE_REQUEST_MAX)
      _exit(1);
    {
      guint8 *req = g_malloc(len ? len : 1);
      if (!read_all_until(sock, req, len, G_MAXINT64)) {
        msvm_wipe(req, len);
        _exit(1);
      }
      if (msvm_tpm_validate_parse_request(req, len, &permall, &vol, &uid, &gid, &error))
        ok = msvm_tpm_validate_sandboxed(permall, vol, uid, gid, &error);
      msvm_wipe(req, len);
      g_free(req);
    }
    msg_len = ok ? 0 : MIN(strlen(error->message), 1024);
    reply = g_malloc(8 + msg_len);
    put_u32(reply, ok ? 0 : (guint32)error->code);
    put_u32(reply + 4, (guint32)msg_len);
    if (msg_len > 0)
      memcpy(reply + 8, error->message, msg_len);
    if (!write_all_until(sock, reply, 8 + msg_len, G_MAXINT64))
      _exit(1);
    g_free(reply);
  }
}

gboolean
msvm_tpm_validate_server_start(GError **error)
{
  int sv[2];
  pid_t pid;

  if (server_pid > 0)
    return TRUE;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot create a socket pair: %s",
                g_strerror(errno));
    return FALSE;
  }
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot fork: %s", g_strerror(e));
    return FALSE;
  }
  if (pid == 0) {
    close(sv[0]);
    server_main(sv[1]);
  }
  close(sv[1]);
  server_pid = pid;
  server_fd = sv[0];
  return TRUE;
}

static void
server_kill(void)
{
  if (server_pid <= 0)
    return;
  kill(server_pid, SIGKILL);
  while (waitpid(server_pid, NULL, 0) < 0 && errno == EINTR)
    ;
  close(server_fd);
  server_fd = -1;
  server_pid = -1;
}

void
msvm_tpm_validate_server_stop(void)
{
  if (server_pid <= 0)
    return;
  close(server_fd);
  server_fd = -1;
  {
    /* it ends at the end of its input; a wedged one is killed */
    int status;
    (void)wait_until(server_pid, g_get_monotonic_time() + G_USEC_PER_SEC, &status);
  }
  server_pid = -1;
}

gboolean
msvm_tpm_validate_in_child(GBytes *permall, GBytes *volatilestate, uid_t owner_uid,
                           gid_t owner_gid, GError **error)
{
  g_autoptr(GBytes) stream = NULL;
  const guint8 *data;
  gsize len;
  guint8 head[8];
  gint64 deadline;
  guint32 code, msg_len;
  g_autofree char *msg = NULL;

  if (server_pid <= 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the libtpms check of the state cannot run: its validation process was "
                "not started");
    return FALSE;
  }
  if (!msvm_tpm_validate_check_input(permall, volatilestate, error))
    return FALSE;
  stream = msvm_tpm_validate_serialize(permall, volatilestate, owner_uid, owner_gid);
  data = g_bytes_get_data(stream, &len);
  put_u32(head, (guint32)len);
  deadline = g_get_monotonic_time() +
             ((gint64)msvm_tpm_validate_timeout_ms() + SERVER_MARGIN_MS) * 1000;
  if (!write_all_until(server_fd, head, 4, deadline) ||
      !write_all_until(server_fd, data, len, deadline) ||
      !read_all_until(server_fd, head, 8, deadline)) {
    int saved = errno;
    server_kill();
    server_failed(error, saved, msvm_tpm_validate_timeout_ms() + SERVER_MARGIN_MS);
    return FALSE;
  }
  code = get_u32(head);
  msg_len = get_u32(head + 4);
  if (msg_len > 1024) {
    server_kill();
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "the libtpms check answered garbage");
    return FALSE;
  }
  msg = g_malloc0(msg_len + 1);
  if (!read_all_until(server_fd, (guint8 *)msg, msg_len, deadline)) {
    int saved = errno;
    server_kill();
    server_failed(error, saved, msvm_tpm_validate_timeout_ms() + SERVER_MARGIN_MS);
    return FALSE;
  }
  if (code == 0)
    return TRUE;
  for (char *c = msg; *c; c++)
    if (!g_ascii_isprint(*c))
      *c = ' ';
  g_set_error(error, MSVM_ERROR, (gint)code, "%s",
              *msg ? msg : "the TPM state does not validate");
  return FALSE;
}
