/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-trust.c: owner-and-mode trust of a file (see msvm-trust.h). */
#include "msvm-trust.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
owner_and_mode_ok(const struct stat *st)
{
  return (st->st_uid == 0 || st->st_uid == geteuid()) && (st->st_mode & 022) == 0;
}

bool
msvm_path_is_trusted(const char *path)
{
  struct stat st;
  char dir[PATH_MAX];
  char *slash;

  if (path == NULL || stat(path, &st) < 0 || !S_ISREG(st.st_mode) || !owner_and_mode_ok(&st))
    return false;
  if (strlen(path) >= sizeof(dir))
    return false;
  strcpy(dir, path);
  slash = strrchr(dir, '/');
  if (slash == NULL)
    strcpy(dir, ".");
  else if (slash == dir)
    strcpy(dir, "/");
  else
    *slash = '\0';
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
    return false;
  return owner_and_mode_ok(&st);
}
