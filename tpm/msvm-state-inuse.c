/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-state-inuse.c: finding a process that has a swtpm state directory as
 * its --tpmstate (see msvm-state-inuse.h).
 *
 * Everything read from /proc is treated as hostile: lengths are bounded,
 * arguments are (pointer, length) slices that may lack their final NUL, and
 * what cannot be judged counts as a match.
 */
#include "config.h"

#include "msvm-state-inuse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-errno.h"
#include "msvm-secret.h"

/* More than the kernel lets execve() put into the argument and environment
 * area (3/4 of an 8 MiB stack); only PR_SET_MM (CAP_SYS_RESOURCE) can make a
 * longer /proc/PID/cmdline, and such a one counts as "in use". */
#define PROC_READ_MAX (8 * 1024 * 1024)
/* Candidate paths looked at per process; more count as "in use". */
#define MAX_CANDIDATES 4096

typedef struct {
  int root_fd;
  int cwd_fd;
  const MsvmStateDirId *id;
  guint candidates;
  gboolean matched;
} Matcher;

/* Textual normalisation of an absolute path: no empty or "." components,
 * ".." removes the previous one, no trailing slash. */
static char *
normalize_absolute(const char *path)
{
  g_auto(GStrv) parts = g_strsplit(path, "/", -1);
  g_autoptr(GPtrArray) kept = g_ptr_array_new();
  GString *out = g_string_new(NULL);

  for (guint i = 0; parts[i] != NULL; i++) {
    if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0)
      continue;
    if (strcmp(parts[i], "..") == 0) {
      if (kept->len > 0)
        g_ptr_array_remove_index(kept, kept->len - 1);
      continue;
    }
    g_ptr_array_add(kept, parts[i]);
  }
  for (guint i = 0; i < kept->len; i++) {
    g_string_append_c(out, '/');
    g_string_append(out, g_ptr_array_index(kept, i));
  }
  if (out->len == 0)
    g_string_append_c(out, '/');
  return g_string_free(out, FALSE);
}

void
msvm_state_dir_id_init(MsvmStateDirId *id, const char *path, const struct stat *st)
{
  g_autofree char *abs = NULL;
  char *real;

  id->dev = st->st_dev;
  id->ino = st->st_ino;
  id->owner = st->st_uid;
  id->group = st->st_gid;
  id->mode = st->st_mode;
  /* an access ACL may let others in: then every process counts */
  id->has_acl = getxattr(path, "system.posix_acl_access", NULL, 0) > 0 ||
                (errno != ENODATA && errno != ENOTSUP);
  if (g_path_is_absolute(path)) {
    abs = g_strdup(path);
  } else {
    g_autofree char *cwd = g_get_current_dir();
    abs = g_build_filename(cwd, path, NULL);
  }
  id->absolute = normalize_absolute(abs);
  real = realpath(path, NULL);
  id->canonical = real != NULL ? g_strdup(real) : NULL;
  free(real);
}

void
msvm_state_dir_id_clear(MsvmStateDirId *id)
{
  g_clear_pointer(&id->canonical, g_free);
  g_clear_pointer(&id->absolute, g_free);
}

static gboolean
same_dir(const struct stat *st, const MsvmStateDirId *id)
{
  return S_ISDIR(st->st_mode) && st->st_dev == id->dev && st->st_ino == id->ino;
}

static gboolean
text_equals_id(const char *norm, const MsvmStateDirId *id)
{
  return strcmp(norm, id->absolute) == 0 ||
         (id->canonical != NULL && strcmp(norm, id->canonical) == 0);
}

/* @tail ("/a/b") ends @path at a component boundary. */
static gboolean
has_tail(const char *path, const char *tail)
{
  gsize lp, lt;

  if (path == NULL)
    return FALSE;
  lp = strlen(path);
  lt = strlen(tail);
  return lt > 1 && lt <= lp && strcmp(path + lp - lt, tail) == 0;
}

/* Does the path @p (@len bytes, no NUL inside), or with @parent its
 * directory, name the directory looked for? */
static gboolean
path_names_dir(Matcher *m, const char *p, gsize len, gboolean parent)
{
  g_autofree char *s = NULL;
  struct stat st;

  if (len == 0)
    return FALSE;
  if (++m->candidates > MAX_CANDIDATES)
    return TRUE;
  s = g_strndup(p, len);
  if (parent) {
    char *d = g_path_get_dirname(s);
    g_free(s);
    s = d;
  }

  if (s[0] == '/') {
    g_autofree char *norm = normalize_absolute(s);
    const char *inside_root = s;
    char *real;
    gboolean found;

    if (text_equals_id(norm, m->id))
      return TRUE;
    if (strlen(s) >= PATH_MAX)
      return FALSE; /* the kernel would not resolve it either */
    if (stat(s, &st) == 0 && same_dir(&st, m->id))
      return TRUE;
    while (*inside_root == '/')
      inside_root++;
    if (m->root_fd >= 0 && *inside_root != '\0' &&
        fstatat(m->root_fd, inside_root, &st, 0) == 0 && same_dir(&st, m->id))
      return TRUE;
    real = realpath(s, NULL);
    found = real != NULL && text_equals_id(real, m->id);
    free(real);
    return found;
  }

  if (m->cwd_fd >= 0) {
    return strlen(s) < PATH_MAX && fstatat(m->cwd_fd, s, &st, 0) == 0 &&
           same_dir(&st, m->id);
  }
  /* Relative, and the process's working directory is not known: compare as
   * the tail of the directory's path (a false match only refuses). */
  {
    g_autofree char *rooted = g_strconcat("/", s, NULL);
    g_autofree char *tail = NULL;

    if (strstr(rooted, "/..") != NULL)
      return FALSE;
    tail = normalize_absolute(rooted);
    return has_tail(m->id->absolute, tail) || has_tail(m->id->canonical, tail);
  }
}

static gboolean
starts_with(const char *s, gsize len, const char *prefix, gsize *ret_plen)
{
  gsize pl = strlen(prefix);

  if (len < pl || memcmp(s, prefix, pl) != 0)
    return FALSE;
  *ret_plen = pl;
  return TRUE;
}

/* swtpm's option list "dir=PATH,mode=0600" / "backend-uri=dir://PATH,lock":
 * split at commas as swtpm's options_parse does (no escaping). */
static void
check_option_list(Matcher *m, const char *s, gsize len)
{
  const char *end = s + len;

  while (s < end && !m->matched) {
    const char *comma = memchr(s, ',', (gsize)(end - s));
    gsize tl = comma != NULL ? (gsize)(comma - s) : (gsize)(end - s);
    gsize pl;

    if (starts_with(s, tl, "dir=", &pl) || starts_with(s, tl, "backend-uri=dir://", &pl))
      m->matched = path_names_dir(m, s + pl, tl - pl, FALSE);
    else if (starts_with(s, tl, "backend-uri=file://", &pl))
      m->matched = path_names_dir(m, s + pl, tl - pl, TRUE);
    s = comma != NULL ? comma + 1 : end;
  }
}

/* The value of a --tpmstate / --tpm-state option: swtpm's option list, or
 * swtpm_setup's plain path (optionally dir:// or file://). */
static void
check_state_value(Matcher *m, const char *s, gsize len)
{
  gsize pl;

  if (starts_with(s, len, "dir://", &pl))
    m->matched = path_names_dir(m, s + pl, len - pl, FALSE);
  else if (starts_with(s, len, "file://", &pl))
    m->matched = path_names_dir(m, s + pl, len - pl, TRUE);
  else
    m->matched = path_names_dir(m, s, len, FALSE);
  if (!m->matched)
    check_option_list(m, s, len);
}

/* "--tpmstate", "--tpm-state" or a prefix getopt_long would take for one
 * ("--tpms", "--tpm-"; "--tpm" alone is ambiguous with --tpm2). */
static gboolean
is_state_option(const char *name, gsize len)
{
  return len >= 4 && ((len <= 8 && memcmp(name, "tpmstate", len) == 0) ||
                      (len <= 9 && memcmp(name, "tpm-state", len) == 0));
}

MsvmCmdlineMatch
msvm_cmdline_names_state_dir(const char *cmdline, gsize len, gboolean truncated, int root_fd,
                             int cwd_fd, const MsvmStateDirId *id)
{
  Matcher m = { .root_fd = root_fd, .cwd_fd = cwd_fd, .id = id };
  const char *p = cmdline;
  const char *end = cmdline + len;
  gboolean want_value = FALSE, has_state_option = FALSE, is_swtpm = FALSE;
  guint index = 0;

  if (truncated)
    return MSVM_CMDLINE_MATCH;
  while (p < end && !m.matched) {
    const char *nul = memchr(p, '\0', (gsize)(end - p));
    gsize al = nul != NULL ? (gsize)(nul - p) : (gsize)(end - p);
    const char *next = nul != NULL ? nul + 1 : end;
    const char *eq = memchr(p, '=', al);
    gboolean value_done = FALSE; /* the option list after '=' was looked at */

    if (index == 0) {
      const char *base = p;
      for (const char *q = p; q < p + al; q++)
        if (*q == '/')
          base = q + 1;
      is_swtpm = (gsize)(p + al - base) >= 5 && memcmp(base, "swtpm", 5) == 0;
    } else if (want_value) {
      /* getopt takes the next argument as the value, whatever it is */
      want_value = FALSE;
      check_state_value(&m, p, al);
      p = next;
      index++;
      continue;
    } else if (al > 2 && p[0] == '-' && p[1] == '-' &&
               is_state_option(p + 2, eq != NULL ? (gsize)(eq - p - 2) : al - 2)) {
      has_state_option = TRUE;
      if (eq != NULL) {
        check_state_value(&m, eq + 1, al - (gsize)(eq + 1 - p));
        value_done = TRUE;
      } else {
        want_value = TRUE;
      }
    }
    /* Any argument, whatever option it follows: an option list naming the
     * directory ("dir=P,...", or "--anything=dir=P") counts. */
    if (!m.matched)
      check_option_list(&m, p, al);
    if (!m.matched && !value_done && eq != NULL && p[0] == '-')
      check_option_list(&m, eq + 1, al - (gsize)(eq + 1 - p));
    p = next;
    index++;
  }
  if (m.matched)
    return MSVM_CMDLINE_MATCH;
  if (is_swtpm && !has_state_option)
    return MSVM_CMDLINE_NEEDS_ENVIRON;
  return MSVM_CMDLINE_NO_MATCH;
}

gboolean
msvm_environ_names_state_dir(const char *environ, gsize len, gboolean truncated, int root_fd,
                             int cwd_fd, const MsvmStateDirId *id)
{
  Matcher m = { .root_fd = root_fd, .cwd_fd = cwd_fd, .id = id };
  const char *p = environ;
  const char *end = environ + len;

  if (truncated)
    return TRUE;
  while (p < end && !m.matched) {
    const char *nul = memchr(p, '\0', (gsize)(end - p));
    gsize al = nul != NULL ? (gsize)(nul - p) : (gsize)(end - p);
    gsize pl;

    if (starts_with(p, al, "TPM_PATH=", &pl))
      m.matched = path_names_dir(&m, p + pl, al - pl, FALSE);
    p = nul != NULL ? nul + 1 : end;
  }
  return m.matched;
}

/* Read at most PROC_READ_MAX bytes of @name below @dir_fd, into a secret
 * buffer (another process's environment may hold anything); 0 or an errno. */
static int
read_proc_file(int dir_fd, const char *name, GBytes **ret, gboolean *ret_truncated)
{
  int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
  int e = 0;

  if (fd < 0)
    return errno;
  if (!msvm_secret_read_fd_bounded(fd, PROC_READ_MAX, ret, ret_truncated))
    e = errno;
  close(fd);
  return e;
}

/* The process vanished or is not ours to read: skipped. */
static gboolean
skippable(int e)
{
  return e == ENOENT || e == ESRCH || e == EACCES || e == EPERM;
}

static char *
process_name(int pid_fd)
{
  g_autoptr(GBytes) buf = NULL;
  gboolean truncated;
  GString *out = g_string_new(NULL);

  if (read_proc_file(pid_fd, "comm", &buf, &truncated) == 0) {
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(buf, &len);
    for (gsize i = 0; i < len && out->len < 16; i++) {
      guint8 ch = data[i];
      if (ch == '\n' && i + 1 == len)
        break;
      g_string_append_c(out, ch >= 0x20 && ch < 0x7f ? (char)ch : '?');
    }
  }
  if (out->len == 0)
    g_string_append(out, "?");
  return g_string_free(out, FALSE);
}

/* The numbers after "@key:\t" on a line of /proc/PID/status, at most @max. */
static guint
status_numbers(const char *text, gsize len, const char *key, guint64 *out, guint max)
{
  gsize klen = strlen(key);
  gsize i = 0;

  while (i < len) {
    gsize end = i;
    while (end < len && text[end] != '\n')
      end++;
    if (end - i > klen && memcmp(text + i, key, klen) == 0 && text[i + klen] == ':') {
      guint n = 0;
      gsize k = i + klen + 1;
      while (k < end && n < max) {
        guint64 v = 0;
        gboolean digits = FALSE;
        while (k < end && (text[k] == ' ' || text[k] == '\t'))
          k++;
        while (k < end && text[k] >= '0' && text[k] <= '9' && v < G_MAXUINT32) {
          v = v * 10 + (guint64)(text[k] - '0');
          digits = TRUE;
          k++;
        }
        if (!digits)
          break;
        out[n++] = v;
      }
      return n;
    }
    i = end + 1;
  }
  return 0;
}

/* Whether the credentials of the process whose /proc directory is @pid_fd
 * could enter @id (see msvm-state-inuse.h).  What cannot be read or parsed
 * counts as "could". */
static gboolean
process_may_enter(int pid_fd, const MsvmStateDirId *id)
{
  g_autoptr(GBytes) buf = NULL;
  gboolean truncated = FALSE;
  guint64 uids[4], gids[4], groups[256];
  guint nu, ng, ngroups;
  const char *text;
  gsize len = 0;

  if (read_proc_file(pid_fd, "status", &buf, &truncated) != 0 || truncated)
    return TRUE;
  text = g_bytes_get_data(buf, &len);
  if (text == NULL)
    return TRUE;
  nu = status_numbers(text, len, "Uid", uids, G_N_ELEMENTS(uids));
  ng = status_numbers(text, len, "Gid", gids, G_N_ELEMENTS(gids));
  ngroups = status_numbers(text, len, "Groups", groups, G_N_ELEMENTS(groups));
  if (nu != 4 || ng != 4 || ngroups == G_N_ELEMENTS(groups))
    return TRUE;
  if ((id->mode & S_IXOTH) != 0 || id->has_acl)
    return TRUE;
  /* the real ids: a set-user-ID program (sudo at its password prompt) has
   * an effective uid 0 and arguments its caller chose */
  if (uids[0] == 0 || uids[0] == (guint64)id->owner)
    return TRUE;
  if ((id->mode & S_IXGRP) != 0) {
    if (gids[0] == (guint64)id->group)
      return TRUE;
    for (guint i = 0; i < ngroups; i++)
      if (groups[i] == (guint64)id->group)
        return TRUE;
  }
  return FALSE;
}

/* Whether the process whose /proc directory is @pid_fd names @id; 0 or an
 * errno that is not skippable. */
static int
process_names_dir(int pid_fd, const MsvmStateDirId *id, gboolean *ret_match)
{
  GBytes *cmdline = NULL;
  gboolean truncated = FALSE;
  int root_fd, cwd_fd, e;
  MsvmCmdlineMatch m;
  gsize len = 0;
  const char *text;

  *ret_match = FALSE;
  if (!process_may_enter(pid_fd, id))
    return 0;
  e = read_proc_file(pid_fd, "cmdline", &cmdline, &truncated);
  if (e != 0)
    return skippable(e) ? 0 : e;
  text = g_bytes_get_data(cmdline, &len);
  if (len == 0) { /* a kernel thread or a zombie */
    g_bytes_unref(cmdline);
    return 0;
  }
  /* Without ptrace access to the process (another user's, as non-root)
   * these fail and its paths are resolved in our namespace only. */
  root_fd = openat(pid_fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  cwd_fd = openat(pid_fd, "cwd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  m = msvm_cmdline_names_state_dir(text, len, truncated, root_fd, cwd_fd, id);
  g_bytes_unref(cmdline);
  if (m == MSVM_CMDLINE_NEEDS_ENVIRON) {
    GBytes *env = NULL;

    e = read_proc_file(pid_fd, "environ", &env, &truncated);
    if (e == 0) {
      gsize env_len = 0;
      const char *env_text = g_bytes_get_data(env, &env_len);
      *ret_match = msvm_environ_names_state_dir(env_text != NULL ? env_text : "", env_len,
                                                truncated, root_fd, cwd_fd, id);
      g_bytes_unref(env);
    } else if (!skippable(e)) {
      if (root_fd >= 0)
        close(root_fd);
      if (cwd_fd >= 0)
        close(cwd_fd);
      return e;
    }
  } else {
    *ret_match = m == MSVM_CMDLINE_MATCH;
  }
  if (root_fd >= 0)
    close(root_fd);
  if (cwd_fd >= 0)
    close(cwd_fd);
  return 0;
}

static gboolean
parse_pid(const char *name, pid_t *ret)
{
  guint64 v;

  if (name[0] == '\0' || strlen(name) > 10)
    return FALSE;
  for (const char *q = name; *q != '\0'; q++)
    if (*q < '0' || *q > '9')
      return FALSE;
  v = g_ascii_strtoull(name, NULL, 10);
  if (v == 0 || v > G_MAXINT32)
    return FALSE;
  *ret = (pid_t)v;
  return TRUE;
}

gboolean
msvm_state_dir_find_user(const char *proc_dir, const MsvmStateDirId *id, pid_t *ret_pid,
                         char **ret_name, GError **error)
{
  const char *dir = proc_dir != NULL ? proc_dir : "/proc";
  pid_t self = getpid();
  int proc_fd, fd;
  DIR *d;
  struct dirent *de;
  pid_t found = 0;
  char *found_name = NULL;

  proc_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd < 0)
    return msvm_set_error_errno(error, errno, "cannot read %s", dir);
  fd = fcntl(proc_fd, F_DUPFD_CLOEXEC, 3);
  d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    close(proc_fd);
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot read %s: %s", dir, g_strerror(e));
    return FALSE;
  }
  for (;;) {
    pid_t pid;
    int pid_fd, e;
    gboolean match = FALSE;

    errno = 0;
    de = readdir(d);
    if (de == NULL) {
      if (errno != 0) {
        e = errno;
        closedir(d);
        close(proc_fd);
        g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot read %s: %s", dir,
                    g_strerror(e));
        return FALSE;
      }
      break;
    }
    if (!parse_pid(de->d_name, &pid) || pid == self)
      continue;
    pid_fd = openat(proc_fd, de->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pid_fd < 0) {
      e = errno;
      if (skippable(e))
        continue;
      closedir(d);
      close(proc_fd);
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot read %s/%s: %s", dir,
                  de->d_name, g_strerror(e));
      return FALSE;
    }
    e = process_names_dir(pid_fd, id, &match);
    if (e == 0 && match) {
      found = pid;
      found_name = process_name(pid_fd);
    }
    close(pid_fd);
    if (e != 0) {
      closedir(d);
      close(proc_fd);
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot read %s/%s: %s", dir,
                  de->d_name, g_strerror(e));
      return FALSE;
    }
    if (found != 0)
      break;
  }
  closedir(d);
  close(proc_fd);
  *ret_pid = found;
  if (ret_name != NULL)
    *ret_name = found_name;
  else
    g_free(found_name);
  return TRUE;
}
