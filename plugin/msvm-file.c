/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-file.c: crash-safe file replacement (see msvm-file.h). */
#include "config.h"

#include "msvm-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-fault.h"

gboolean
msvm_fsync_dir(const char *dir, GError **error)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot open directory", dir);
  if (fsync(fd) < 0 && errno != EINVAL) {
    int saved = errno;
    close(fd);
    return msvm_set_error_errno(error, saved, "cannot sync directory", dir);
  }
  close(fd);
  return TRUE;
}

gboolean
msvm_atomic_write(const char *path, const void *data, gsize len, mode_t mode, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  g_autofree char *dir = g_path_get_dirname(path);
  const guint8 *p = data;
  gsize done = 0;
  int fd;

  msvm_fault_point("store-write");
  (void)unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot create", tmp);
  if (fchmod(fd, mode) < 0) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot set the mode of", tmp);
  }
  while (done < len) {
    ssize_t n = write(fd, p + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      close(fd);
      unlink(tmp);
      return msvm_set_error_errno(error, saved, "cannot write", tmp);
    }
    done += (gsize)n;
  }
  msvm_fault_point("store-fsync");
  if (fsync(fd) < 0) {
    int saved = errno;
    close(fd);
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot sync", tmp);
  }
  if (close(fd) < 0) {
    int saved = errno;
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot close", tmp);
  }
  msvm_fault_point("store-rename");
  if (rename(tmp, path) < 0) {
    int saved = errno;
    unlink(tmp);
    return msvm_set_error_errno(error, saved, "cannot rename onto", path);
  }
  msvm_fault_point("store-fsync-dir");
  return msvm_fsync_dir(dir, error);
}
