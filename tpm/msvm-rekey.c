/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-rekey.c: re-keying a swtpm TPM 2.0 state directory as a whole
 * (DESIGN.md section 6; see msvm-rekey.h and docs/rekey.rst).
 *
 *   1. open the directory (no symlinks), take an OFD write lock on .lock
 *      (held until the end; swtpm holding it -> 32774); under that lock,
 *      refuse (32774) when a process has the directory as its --tpmstate
 *      (a started swtpm takes .lock only at CMD_INIT; msvm-state-inuse.h);
 *   2. read every entry: tpm2-00.* are state files, TMP2-00.* are swtpm's
 *      own leftover temporary files (dropped), .lock; anything else (TPM 1.2
 *      files, symlinks, subdirectories, unknown files) -> 32775;
 *   3. decode every state file under the old key, validate with libtpms in
 *      the helper process, encode under the new key, decode back, compare;
 *   4. build "<parent>/.<name>.msvm-rekey" (leftovers of that name are
 *      deleted first) with the same owner, group and modes, its own locked
 *      .lock, files written and fsync'ed, read back and verified, the
 *      directory fsync'ed;
 *   5. look at the processes once more (a swtpm started meanwhile), then
 *      renameat2(RENAME_EXCHANGE), fsync the parent, delete the side
 *      directory, which now holds the copy under the old key.
 *
 * Before step 5 nothing of the original directory changed (except that a
 * missing .lock is created, as swtpm would); every failure removes the side
 * directory.  If fsync of the parent fails after the exchange, the exchange
 * is undone.
 */
#include "config.h"

#include "msvm-rekey.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-cause.h"
#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-io.h"
#include "msvm-fault.h"
#include "msvm-kdf.h"
#include "msvm-state-file.h"
#include "msvm-state-inuse.h"
#include "msvm-tpm-validate.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define PERMALL "tpm2-00.permall"
#define VOLATILE "tpm2-00.volatilestate"

typedef struct {
  char *name;
  struct stat st;
  GBytes *orig;     /* the file as it is on disk (encrypted or plaintext TPM state) */
  GBytes *plain;    /* the decoded TPM state blob (wiping) */
  GBytes *encoded;  /* the new file */
} StateFile;

typedef struct {
  char *path;       /* as given, for messages */
  char *base;       /* the directory's name in its parent */
  char *side;       /* the side directory's name in the parent */
  int parent_fd;
  int dir_fd;
  int lock_fd;
  struct stat dir_st;
  struct stat lock_st;
  MsvmStateDirId id; /* the directory, as the process scan looks for it */
  GPtrArray *files; /* StateFile* */
} Ctx;

static void
state_file_free(gpointer p)
{
  StateFile *f = p;
  g_free(f->name);
  if (f->orig)
    g_bytes_unref(f->orig);
  if (f->plain)
    g_bytes_unref(f->plain);
  if (f->encoded)
    g_bytes_unref(f->encoded);
  g_free(f);
}

static void
ctx_clear(Ctx *c)
{
  if (c->lock_fd >= 0)
    close(c->lock_fd);
  if (c->dir_fd >= 0)
    close(c->dir_fd);
  if (c->parent_fd >= 0)
    close(c->parent_fd);
  if (c->files)
    g_ptr_array_unref(c->files);
  msvm_state_dir_id_clear(&c->id);
  g_free(c->path);
  g_free(c->base);
  g_free(c->side);
}

static StateFile *
find_file(Ctx *c, const char *name)
{
  for (guint i = 0; i < c->files->len; i++) {
    StateFile *f = g_ptr_array_index(c->files, i);
    if (strcmp(f->name, name) == 0)
      return f;
  }
  return NULL;
}

/* Open the state directory and its parent (the directory itself must not
 * be a symlink). */
static gboolean
open_dir(Ctx *c, const char *state_dir, GError **error)
{
  g_autofree char *trimmed = g_strdup(state_dir);
  g_autofree char *parent = NULL;
  gsize n = strlen(trimmed);

  while (n > 1 && trimmed[n - 1] == '/')
    trimmed[--n] = '\0';
  c->path = g_strdup(trimmed);
  c->base = g_path_get_basename(trimmed);
  parent = g_path_get_dirname(trimmed);
  if (strcmp(c->base, "/") == 0 || strcmp(c->base, ".") == 0 ||
      strcmp(c->base, "..") == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s: give the state directory by its name (for example .../tpm2)", state_dir);
    return FALSE;
  }
  c->side = g_strdup_printf(".%s.msvm-rekey", c->base);

  c->parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->parent_fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "%s: %s", parent, g_strerror(e));
      return FALSE;
    }
    return msvm_set_error_errno(error, e, "cannot open %s", parent);
  }
  c->dir_fd = openat(c->parent_fd, c->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (c->dir_fd < 0) {
    int e = errno;
    if (e == ENOENT) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "%s: no such state directory", c->path);
      return FALSE;
    }
    if (e == ELOOP || e == ENOTDIR) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "%s: not a directory (symbolic links are refused)", c->path);
      return FALSE;
    }
    return msvm_set_error_errno(error, e, "cannot open %s", c->path);
  }
  if (fstat(c->dir_fd, &c->dir_st) != 0)
    return msvm_set_error_errno(error, errno, "cannot stat %s", c->path);
  return TRUE;
}

static gboolean
ofd_lock(int fd, short type, const char *what, GError **error)
{
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    int e = errno;
    if (e == EAGAIN || e == EACCES) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_IN_USE,
                  "%s is locked: swtpm (or another re-key) is using this TPM state", what);
      return FALSE;
    }
    return msvm_set_error_errno(error, e, "cannot lock %s", what);
  }
  return TRUE;
}

/* Lock swtpm's .lock.  @create: create it when missing (as swtpm would,
 * owned like the directory); otherwise a missing .lock means no lock. */
static gboolean
lock_dir(Ctx *c, gboolean for_write, gboolean create, GError **error)
{
  g_autofree char *what = g_strdup_printf("%s/.lock", c->path);
  int flags = (for_write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

  c->lock_fd = openat(c->dir_fd, ".lock", flags);
  if (c->lock_fd < 0 && errno == ENOENT && create) {
    msvm_fault_point("rekey-create-lock");
    c->lock_fd = openat(c->dir_fd, ".lock", flags | O_CREAT | O_EXCL, 0640);
    if (c->lock_fd >= 0 && geteuid() == 0 &&
        fchown(c->lock_fd, c->dir_st.st_uid, c->dir_st.st_gid) != 0) {
      int e = errno;
      close(c->lock_fd);
      c->lock_fd = -1;
      unlinkat(c->dir_fd, ".lock", 0);
      return msvm_set_error_errno(error, e, "cannot set the owner of %s", what);
    }
  }
  if (c->lock_fd < 0) {
    int e = errno;
    if (e == ENOENT && !create)
      return TRUE;
    if (e == ELOOP) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "%s is a symbolic link", what);
      return FALSE;
    }
    return msvm_set_error_errno(error, e, "cannot open %s", what);
  }
  if (fstat(c->lock_fd, &c->lock_st) != 0)
    return msvm_set_error_errno(error, errno, "cannot stat %s", what);
  if (!S_ISREG(c->lock_st.st_mode)) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT, "%s is not a regular file", what);
    return FALSE;
  }
  return ofd_lock(c->lock_fd, for_write ? F_WRLCK : F_RDLCK, what, error);
}

/* Read to the end into a secret buffer (a plaintext state file is a
 * secret): no chunks, no growing copies. */
static gboolean
read_fd_all(int fd, GBytes **ret, GError **error, const char *what)
{
  gboolean too_long = FALSE;

  if (msvm_secret_read_fd(fd, MSVM_STATE_FILE_MAX_SIZE, ret, &too_long))
    return TRUE;
  if (too_long) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT, "%s is too large", what);
    return FALSE;
  }
  return msvm_set_error_errno(error, errno, "cannot read %s", what);
}

static gboolean
read_file_at(int dir_fd, const char *name, const char *what, GBytes **ret,
             struct stat *ret_st, GError **error)
{
  struct stat st;
  /* O_NONBLOCK: a FIFO put in place of a file must not hang us (it is
   * refused just below); no effect on regular files. */
  int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  gboolean ok;

  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT, "%s is a symbolic link", what);
      return FALSE;
    }
    return msvm_set_error_errno(error, e, "cannot open %s", what);
  }
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return msvm_set_error_errno(error, e, "cannot stat %s", what);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT, "%s is not a regular file", what);
    return FALSE;
  }
  if ((guint64)st.st_size > MSVM_STATE_FILE_MAX_SIZE) {
    close(fd);
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT, "%s is too large", what);
    return FALSE;
  }
  ok = read_fd_all(fd, ret, error, what);
  close(fd);
  if (ok && ret_st != NULL)
    *ret_st = st;
  return ok;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Go through the directory's entries; collect the state files. */
static gboolean
scan_dir(Ctx *c, GError **error)
{
  int fd = fcntl(c->dir_fd, F_DUPFD_CLOEXEC, 3);
  DIR *d;
  struct dirent *de;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot read %s", c->path);
  d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return msvm_set_error_errno(error, e, "cannot read %s", c->path);
  }
  rewinddir(d);
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      g_ptr_array_add(names, g_strdup(de->d_name));
    errno = 0;
  }
  if (errno != 0) {
    int e = errno;
    closedir(d);
    return msvm_set_error_errno(error, e, "cannot read %s", c->path);
  }
  closedir(d);
  g_ptr_array_sort(names, compare_names);

  c->files = g_ptr_array_new_with_free_func(state_file_free);
  for (guint i = 0; i < names->len; i++) {
    const char *name = g_ptr_array_index(names, i);
    struct stat st;

    if (fstatat(c->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      return msvm_set_error_errno(error, errno, "cannot stat %s/%s", c->path, name);
    if (S_ISLNK(st.st_mode)) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "%s/%s is a symbolic link; refusing to touch this state directory",
                  c->path, name);
      return FALSE;
    }
    if (strcmp(name, ".lock") == 0)
      continue;
    if (g_str_has_prefix(name, "tpm-00.") || g_str_has_prefix(name, "TMP-00.")) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_UNSUPPORTED,
                  "%s holds a TPM 1.2 state (%s), which is not supported", c->path, name);
      return FALSE;
    }
    if (g_str_has_prefix(name, "TMP2-00.") && S_ISREG(st.st_mode))
      continue; /* swtpm's own temporary file left by a crash; swtpm ignores it */
    if (!g_str_has_prefix(name, "tpm2-00.") || !S_ISREG(st.st_mode)) {
      g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                  "unexpected entry %s in the state directory %s; move it away first",
                  name, c->path);
      return FALSE;
    }
    {
      StateFile *f = g_new0(StateFile, 1);
      f->name = g_strdup(name);
      g_ptr_array_add(c->files, f);
    }
  }
  if (find_file(c, PERMALL) == NULL) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_CORRUPT,
                "%s holds no TPM 2.0 state (%s is missing)", c->path, PERMALL);
    return FALSE;
  }
  return TRUE;
}

/* Read and decode every state file under @key; validate with libtpms. */
static gboolean
read_and_decode(Ctx *c, const MsvmStateKey *key, GError **error)
{
  StateFile *vol;

  for (guint i = 0; i < c->files->len; i++) {
    StateFile *f = g_ptr_array_index(c->files, i);
    g_autofree char *what = g_strdup_printf("%s/%s", c->path, f->name);
    gsize len;
    const guint8 *data;

    if (!read_file_at(c->dir_fd, f->name, what, &f->orig, &f->st, error))
      return FALSE;
    data = g_bytes_get_data(f->orig, &len);
    if (!msvm_state_file_decode(data, len, key ? key->passphrase : NULL,
                                key ? key->passphrase_len : 0,
                                key ? key->kdf : MSVM_KDF_PBKDF2, &f->plain, error)) {
      g_prefix_error(error, "%s: ", what);
      return FALSE;
    }
  }
  vol = find_file(c, VOLATILE);
  /* libtpms runs as the directory's owner, who wrote those bytes */
  if (!msvm_tpm_get_validator()(find_file(c, PERMALL)->plain, vol ? vol->plain : NULL,
                                 c->dir_st.st_uid, c->dir_st.st_gid, error)) {
    g_prefix_error(error, "%s: ", c->path);
    return FALSE;
  }
  return TRUE;
}

static gboolean
bytes_equal(GBytes *a, GBytes *b)
{
  gsize la, lb;
  const guint8 *pa = g_bytes_get_data(a, &la);
  const guint8 *pb = g_bytes_get_data(b, &lb);
  return la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
}

/* Encode every file under @key and check it decodes back to the same. */
static gboolean
encode_all(Ctx *c, const MsvmStateKey *key, GError **error)
{
  for (guint i = 0; i < c->files->len; i++) {
    StateFile *f = g_ptr_array_index(c->files, i);
    g_autoptr(GBytes) back = NULL;
    gsize plen, elen;
    const guint8 *pdata = g_bytes_get_data(f->plain, &plen);
    const guint8 *edata;

    if (!msvm_state_file_encode(pdata, plen, key->passphrase, key->passphrase_len, key->kdf,
                                key->cipher, &f->encoded, error)) {
      g_prefix_error(error, "%s/%s: ", c->path, f->name);
      return FALSE;
    }
    edata = g_bytes_get_data(f->encoded, &elen);
    if (!msvm_state_file_decode(edata, elen, key->passphrase, key->passphrase_len, key->kdf,
                                &back, error)) {
      g_prefix_error(error, "%s/%s: the new encoding does not decode: ", c->path, f->name);
      return FALSE;
    }
    if (!bytes_equal(back, f->plain)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "%s/%s: the new encoding does not decode to the same state",
                  c->path, f->name);
      return FALSE;
    }
  }
  return TRUE;
}

/* Remove @name in @dir_fd and everything below it, never following a
 * symlink.  Missing is fine. */
static gboolean
remove_tree_at(int dir_fd, const char *name, GError **error)
{
  struct stat st;
  int fd;
  DIR *d;
  struct dirent *de;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

  if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT)
      return TRUE;
    return msvm_set_error_errno(error, errno, "cannot stat %s", name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT)
      return msvm_set_error_errno(error, errno, "cannot remove %s", name);
    return TRUE;
  }
  fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot open %s", name);
  d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return msvm_set_error_errno(error, e, "cannot read %s", name);
  }
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      g_ptr_array_add(names, g_strdup(de->d_name));
  }
  for (guint i = 0; i < names->len; i++) {
    if (!remove_tree_at(dirfd(d), g_ptr_array_index(names, i), error)) {
      closedir(d);
      return FALSE;
    }
  }
  closedir(d);
  if (unlinkat(dir_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    return msvm_set_error_errno(error, errno, "cannot remove %s", name);
  return TRUE;
}

static gboolean
set_owner(int fd, const struct stat *like, const char *what, GError **error)
{
  if (geteuid() == 0 || like->st_uid != geteuid() || like->st_gid != getegid()) {
    if (fchown(fd, like->st_uid, like->st_gid) != 0)
      return msvm_set_error_errno(error, errno, "cannot give %s the owner %u:%u", what,
                         (unsigned)like->st_uid, (unsigned)like->st_gid);
  }
  return TRUE;
}

static gboolean
write_all(int fd, const guint8 *data, gsize len, const char *what, GError **error)
{
  if (!msvm_write_full(fd, data, len))
    return msvm_set_error_errno(error, errno, "cannot write %s", what);
  return TRUE;
}

static gboolean
write_new_file(int side_fd, const char *side_path, const char *name, GBytes *content,
               const struct stat *like, GError **error)
{
  g_autofree char *what = g_strdup_printf("%s/%s", side_path, name);
#ifdef MSVM_FAULT_INJECTION
  /* (test builds: production ones keep no trace of fault point names) */
  g_autofree char *fp_write = g_strdup_printf("rekey-write %s", name);
  g_autofree char *fp_fsync = g_strdup_printf("rekey-fsync %s", name);
#endif
  gsize len;
  const guint8 *data = g_bytes_get_data(content, &len);
  int fd;

  msvm_fault_point(fp_write);
  fd = openat(side_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
              0600);
  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot create %s", what);
  if (!set_owner(fd, like, what, error) ||
      (fchmod(fd, like->st_mode & 07777) != 0 &&
       !msvm_set_error_errno(error, errno, "cannot set the mode of %s", what)) ||
      !write_all(fd, data, len, what, error)) {
    close(fd);
    return FALSE;
  }
  msvm_fault_point(fp_fsync);
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    return msvm_set_error_errno(error, e, "cannot fsync %s", what);
  }
  if (close(fd) != 0)
    return msvm_set_error_errno(error, errno, "cannot close %s", what);
  return TRUE;
}

/* Build the complete new directory under the side name; returns its fd
 * and its lock's fd. */
static gboolean
build_side(Ctx *c, const MsvmStateKey *key, int *ret_side_fd, int *ret_side_lock_fd,
           GError **error)
{
  g_autofree char *parent = g_path_get_dirname(c->path);
  g_autofree char *side_path = g_build_filename(parent, c->side, NULL);
  g_autofree char *lock_what = g_strdup_printf("%s/.lock", side_path);
  int side_fd, lock_fd;

  msvm_fault_point("rekey-mkdir-side");
  if (mkdirat(c->parent_fd, c->side, 0700) != 0)
    return msvm_set_error_errno(error, errno, "cannot create %s", side_path);
  side_fd = openat(c->parent_fd, c->side, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (side_fd < 0)
    return msvm_set_error_errno(error, errno, "cannot open %s", side_path);
  *ret_side_fd = side_fd;
  if (!set_owner(side_fd, &c->dir_st, side_path, error))
    return FALSE;

  /* Its own .lock, locked by us before it is ever visible under the name
   * swtpm uses. */
  msvm_fault_point("rekey-write .lock");
  lock_fd = openat(side_fd, ".lock",
                   O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  if (lock_fd < 0)
    return msvm_set_error_errno(error, errno, "cannot create %s", lock_what);
  *ret_side_lock_fd = lock_fd;
  if (!set_owner(lock_fd, &c->lock_st, lock_what, error))
    return FALSE;
  if (fchmod(lock_fd, c->lock_st.st_mode & 07777) != 0)
    return msvm_set_error_errno(error, errno, "cannot set the mode of %s", lock_what);
  if (!ofd_lock(lock_fd, F_WRLCK, lock_what, error))
    return FALSE;

  for (guint i = 0; i < c->files->len; i++) {
    StateFile *f = g_ptr_array_index(c->files, i);
    if (!write_new_file(side_fd, side_path, f->name, f->encoded, &f->st, error))
      return FALSE;
  }

  /* Read the files back from the disk and check them once more. */
  for (guint i = 0; i < c->files->len; i++) {
    StateFile *f = g_ptr_array_index(c->files, i);
    g_autofree char *what = g_strdup_printf("%s/%s", side_path, f->name);
    g_autoptr(GBytes) disk = NULL;
    g_autoptr(GBytes) back = NULL;
    gsize len;
    const guint8 *data;

    if (!read_file_at(side_fd, f->name, what, &disk, NULL, error))
      return FALSE;
    data = g_bytes_get_data(disk, &len);
    if (!bytes_equal(disk, f->encoded) ||
        !msvm_state_file_decode(data, len, key->passphrase, key->passphrase_len, key->kdf,
                                &back, NULL) ||
        !bytes_equal(back, f->plain)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "%s: what was written does not read back correctly", what);
      return FALSE;
    }
  }

  if (fchmod(side_fd, c->dir_st.st_mode & 07777) != 0)
    return msvm_set_error_errno(error, errno, "cannot set the mode of %s", side_path);
  msvm_fault_point("rekey-fsync-side-dir");
  if (fsync(side_fd) != 0)
    return msvm_set_error_errno(error, errno, "cannot fsync %s", side_path);
  return TRUE;
}

static gboolean
exchange(Ctx *c, GError **error)
{
  if (renameat2(c->parent_fd, c->side, c->parent_fd, c->base, RENAME_EXCHANGE) != 0) {
    int e = errno;
    /* EXDEV: overlayfs without redirect_dir cannot move a lower directory */
    if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == EXDEV) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                  "the file system of %s cannot exchange two directories atomically "
                  "(renameat2 RENAME_EXCHANGE: %s); refusing to re-key without it",
                  c->path, g_strerror(e));
      return FALSE;
    }
    return msvm_set_error_errno(error, e, "cannot exchange %s with the new state", c->path);
  }
  return TRUE;
}

/* Once locked: the directory we opened is still the one under its name
 * (another re-key may have swapped it between our open and our lock). */
static gboolean
still_in_place(Ctx *c, GError **error)
{
  struct stat st;

  if (fstatat(c->parent_fd, c->base, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      st.st_dev != c->dir_st.st_dev || st.st_ino != c->dir_st.st_ino) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_IN_USE,
                "%s was replaced while this re-key started; try again", c->path);
    return FALSE;
  }
  return TRUE;
}

/* No process other than us has the directory as its swtpm state directory
 * (--tpmstate).  Called under the lock and again right before the exchange;
 * @again says which in the message. */
static gboolean
no_process_uses(Ctx *c, gboolean again, GError **error)
{
  pid_t pid = 0;
  g_autofree char *name = NULL;

  if (c->id.absolute == NULL)
    msvm_state_dir_id_init(&c->id, c->path, &c->dir_st);
  if (!msvm_state_dir_find_user(NULL, &c->id, &pid, &name, error)) {
    g_prefix_error(error, "%s: cannot tell whether a swtpm uses this TPM state: ", c->path);
    return FALSE;
  }
  if (pid != 0) {
    g_set_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_IN_USE,
                "%s is in use: a swtpm holds this TPM state directory (process %d, %s, "
                "names it as its --tpmstate%s); stop that swtpm (its VM) first",
                c->path, (int)pid, name, again ? ", started while the re-key ran" : "");
    return FALSE;
  }
  return TRUE;
}

/* The steps after the checks of the arguments; the caller cleans up. */
static gboolean
rekey_steps(Ctx *c, const MsvmStateKey *old_key, const MsvmStateKey *new_key, int *side_fd,
            int *side_lock_fd, gboolean *side_created, GError **error)
{
  if (!lock_dir(c, TRUE, TRUE, error) ||
      !still_in_place(c, error) ||
      !no_process_uses(c, FALSE, error) ||
      !scan_dir(c, error) ||
      !read_and_decode(c, old_key, error) ||
      !encode_all(c, new_key, error))
    return FALSE;

  /* Any leftover of the side name is garbage of an interrupted run. */
  msvm_fault_point("rekey-remove-leftover");
  if (!remove_tree_at(c->parent_fd, c->side, error))
    return FALSE;
  *side_created = TRUE;
  if (!build_side(c, new_key, side_fd, side_lock_fd, error))
    return FALSE;

  msvm_fault_point("rekey-exchange");
  /* The commit point: a swtpm started since the first look (it holds no
   * .lock before CMD_INIT) is caught here; one started in the instants
   * between this look and the exchange is not (docs/rekey.rst, "In use"). */
  if (!no_process_uses(c, TRUE, error))
    return FALSE;
  if (!exchange(c, error))
    return FALSE;
  /* From here on the side name holds the old directory. */
  msvm_fault_point("rekey-fsync-parent");
  if (fsync(c->parent_fd) != 0) {
    int e = errno;
    /* Undo: put the original back under its name. */
    if (renameat2(c->parent_fd, c->side, c->parent_fd, c->base, RENAME_EXCHANGE) == 0) {
      (void)fsync(c->parent_fd);
      return msvm_set_error_errno(error, e, "cannot fsync the parent of %s", c->path);
    }
    /* Could not undo: the new state is in place, the old one is kept
     * under the side name; never delete it here. */
    *side_created = FALSE;
    return msvm_set_error_errno(error, e, "cannot fsync the parent of %s after the exchange; the "
                       "state may already be under the new key (the old directory is "
                       "kept as %s)", c->path, c->side);
  }

  /* Delete the copy under the old key.  A failure here does not undo the
   * re-key (the new state is in place and durable); the leftover is removed
   * by the next re-key of this directory. */
  msvm_fault_point("rekey-delete-old");
  *side_created = FALSE;
  if (remove_tree_at(c->parent_fd, c->side, NULL))
    (void)fsync(c->parent_fd);
  return TRUE;
}

gboolean
msvm_rekey_state_dir(const char *state_dir, const MsvmStateKey *old_key,
                     const MsvmStateKey *new_key, GError **error)
{
  Ctx c = { .parent_fd = -1, .dir_fd = -1, .lock_fd = -1 };
  int side_fd = -1, side_lock_fd = -1;
  gboolean side_created = FALSE;
  gboolean ok;
  const MsvmStateKey *old_eff = (old_key != NULL && old_key->passphrase != NULL) ? old_key
                                                                                  : NULL;

  if (state_dir == NULL || *state_dir == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "no state directory given");
    return FALSE;
  }
  if (new_key == NULL || new_key->passphrase == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "no new passphrase given (re-keying to plaintext is not supported)");
    return FALSE;
  }
  if ((new_key->kdf != MSVM_KDF_PBKDF2 && new_key->kdf != MSVM_KDF_SHA512) ||
      (new_key->cipher != MSVM_CIPHER_AES_256_CBC &&
       new_key->cipher != MSVM_CIPHER_AES_128_CBC)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "unknown KDF or cipher");
    return FALSE;
  }

  ok = open_dir(&c, state_dir, error) &&
       rekey_steps(&c, old_eff, new_key, &side_fd, &side_lock_fd, &side_created, error);

  if (side_lock_fd >= 0)
    close(side_lock_fd);
  if (side_fd >= 0)
    close(side_fd);
  if (!ok && side_created)
    remove_tree_at(c.parent_fd, c.side, NULL);
  ctx_clear(&c);
  return ok;
}

gboolean
msvm_rekey_remove_leftover(const char *state_dir, GError **error)
{
  Ctx c = { .parent_fd = -1, .dir_fd = -1, .lock_fd = -1 };
  gboolean ok;

  if (state_dir == NULL || *state_dir == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "no state directory given");
    return FALSE;
  }
  ok = open_dir(&c, state_dir, error) &&
       lock_dir(&c, TRUE, FALSE, error) &&
       still_in_place(&c, error);
  if (ok) {
    struct stat st;
    if (fstatat(c.parent_fd, c.side, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      msvm_fault_point("rekey-delete-old");
      ok = remove_tree_at(c.parent_fd, c.side, error);
      if (ok && fsync(c.parent_fd) != 0)
        ok = msvm_set_error_errno(error, errno, "cannot fsync the parent of %s", c.path);
    }
  }
  ctx_clear(&c);
  return ok;
}

/* Whether @state_dir still names the directory @c has open: a re-key may
 * have swapped it away (RENAME_EXCHANGE) and deleted it meanwhile. */
static gboolean
still_current(Ctx *c)
{
  struct stat at_path, opened;

  return fstat(c->dir_fd, &opened) == 0 && opened.st_nlink > 0 &&
         fstatat(c->parent_fd, c->base, &at_path, AT_SYMLINK_NOFOLLOW) == 0 &&
         at_path.st_dev == opened.st_dev && at_path.st_ino == opened.st_ino;
}

gboolean
msvm_state_dir_check(const char *state_dir, const MsvmStateKey *key, GError **error)
{
  const MsvmStateKey *eff = (key != NULL && key->passphrase != NULL) ? key : NULL;

  if (state_dir == NULL || *state_dir == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "no state directory given");
    return FALSE;
  }
  /* A check reads without swtpm's lock when there is no .lock, and between
   * opening the directory and locking it a re-key can replace it: the answer
   * counts only when the directory read is still the one at the path
   * afterwards; otherwise it is read again. */
  for (guint attempt = 0;; attempt++) {
    Ctx c = { .parent_fd = -1, .dir_fd = -1, .lock_fd = -1 };
    g_autoptr(GError) local = NULL;
    gboolean ok, current;

    ok = open_dir(&c, state_dir, &local);
    if (ok)
      msvm_fault_point("state-check-opened");
    ok = ok && lock_dir(&c, FALSE, FALSE, &local) && scan_dir(&c, &local) &&
         read_and_decode(&c, eff, &local);
    current = c.dir_fd < 0 || still_current(&c);
    ctx_clear(&c);
    if (current || attempt >= 8) {
      if (!ok)
        g_propagate_error(error, g_steal_pointer(&local));
      return ok;
    }
  }
}
