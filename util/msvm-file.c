/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-file.c: crash-safe file replacement and directories (see msvm-file.h). */
#include "config.h"

#include "msvm-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-io.h"

gboolean
msvm_fsync_dir(const char *dir, GError **error)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot open directory %s", dir);
  if (fsync(fd) < 0 && errno != EINVAL) {
    int saved = errno;
    close(fd);
    return msvm_set_error_errno(error, saved, "cannot sync directory %s", dir);
  }
  close(fd);
  return TRUE;
}

gboolean
msvm_mkdir_durable(const char *path, mode_t mode, gboolean *ret_created, GError **error)
{
  g_autofree char *parent = NULL;

  if (mkdir(path, mode) < 0) {
    if (errno != EEXIST)
      return msvm_set_error_errno(error, errno, "cannot create directory %s", path);
    if (ret_created != NULL)
      *ret_created = FALSE;
    return TRUE;
  }
  parent = g_path_get_dirname(path);
  msvm_fault_point("mkdir-fsync-parent");
  if (!msvm_fsync_dir(parent, error))
    return FALSE;
  if (ret_created != NULL)
    *ret_created = TRUE;
  return TRUE;
}

gboolean
msvm_mkdir_with_parents_durable(const char *path, mode_t mode, GError **error)
{
  g_autofree char *parent = NULL;
  struct stat st;

  if (stat(path, &st) == 0)
    return TRUE;
  parent = g_path_get_dirname(path);
  if (g_strcmp0(parent, path) != 0 && !msvm_mkdir_with_parents_durable(parent, mode, error))
    return FALSE;
  return msvm_mkdir_durable(path, mode, NULL, error);
}

static int
create_temp(const char *path, mode_t mode, MsvmAtomicWriteFlags flags, char **ret_tmp)
{
  char *tmp;
  int fd;

  if (flags & MSVM_ATOMIC_WRITE_UNIQUE_TEMP) {
    tmp = g_strconcat(path, ".tmp-XXXXXX", NULL);
    fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
  } else {
    tmp = g_strconcat(path, ".tmp", NULL);
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  }
  *ret_tmp = tmp;
  return fd;
}

gboolean
msvm_atomic_write(const char *path, const void *data, gsize len, mode_t mode,
                  MsvmAtomicWriteFlags flags, GError **error)
{
  g_autofree char *tmp = NULL;
  g_autofree char *dir = g_path_get_dirname(path);
  int fd;

  msvm_fault_point("store-write");
  fd = create_temp(path, mode, flags, &tmp);
  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot create %s", tmp);
  if (fchmod(fd, mode) < 0) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot set the mode of %s", tmp);
  }
  if (!msvm_write_full(fd, data, len)) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot write %s", tmp);
  }
  msvm_fault_point("store-fsync");
  if (fsync(fd) < 0) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot sync %s", tmp);
  }
  if (close(fd) < 0) {
    int saved = errno;
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot close %s", tmp);
  }
  msvm_fault_point("store-rename");
  if (rename(tmp, path) < 0) {
    int saved = errno;
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot rename onto %s", path);
  }
  msvm_fault_point("store-fsync-dir");
  return msvm_fsync_dir(dir, error);
}
