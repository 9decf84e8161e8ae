/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-daemon.c: hook installed-and-loaded check (see msvm-daemon.h).
 */
#include "config.h"

#include "msvm-daemon.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msvm-error.h"

char *
msvm_hook_path(void)
{
  return g_build_filename(MSVM_HOOKDIR, MSVM_HOOK_NAME, NULL);
}

/* Start time of process @pid, in clock ticks since boot (/proc/PID/stat
 * field 22, which the kernel measures on CLOCK_BOOTTIME), when it is a
 * libvirt qemu daemon owned by @uid. */
static gboolean
daemon_process_start(const char *pid, uid_t uid, guint64 *ret_ticks)
{
  g_autofree char *dir = g_build_filename("/proc", pid, NULL);
  g_autofree char *comm_path = g_build_filename(dir, "comm", NULL);
  g_autofree char *stat_path = g_build_filename(dir, "stat", NULL);
  g_autofree char *comm = NULL, *stat_text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *p;
  struct stat st;

  if (stat(dir, &st) < 0 || st.st_uid != uid)
    return FALSE;
  if (!g_file_get_contents(comm_path, &comm, NULL, NULL))
    return FALSE;
  g_strchomp(comm);
  if (strcmp(comm, "libvirtd") != 0 && strcmp(comm, "virtqemud") != 0)
    return FALSE;
  if (!g_file_get_contents(stat_path, &stat_text, NULL, NULL))
    return FALSE;
  /* fields after the parenthesized command name; starttime is field 22 */
  p = strrchr(stat_text, ')');
  if (p == NULL)
    return FALSE;
  fields = g_strsplit(p + 2, " ", -1);
  if (g_strv_length(fields) < 20)
    return FALSE;
  *ret_ticks = g_ascii_strtoull(fields[19], NULL, 10);
  return TRUE;
}

gboolean
msvm_daemon_start_time(uid_t uid, double *ret_start)
{
  g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
  const char *name;
  guint64 oldest = 0;
  gboolean found = FALSE;
  long ticks_per_second = sysconf(_SC_CLK_TCK);

  if (proc == NULL)
    return FALSE;
  while ((name = g_dir_read_name(proc)) != NULL) {
    guint64 start;
    if (!g_ascii_isdigit(name[0]))
      continue;
    if (daemon_process_start(name, uid, &start)) {
      if (!found || start < oldest)
        oldest = start;
      found = TRUE;
    }
  }
  if (found)
    *ret_start = (double)oldest / (double)(ticks_per_second > 0 ? ticks_per_second : 100);
  return found;
}

static double
clock_seconds(clockid_t clock)
{
  struct timespec ts = { 0 };

  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

gboolean
msvm_hook_check_loaded(uid_t uid, GError **error)
{
  g_autofree char *hook = msvm_hook_path();
  struct stat st;
  double start = 0, mtime_since_boot;

  if (lstat(hook, &st) < 0 || !S_ISREG(st.st_mode)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                "--defer needs the msvm-security hook, and %s is not installed", hook);
    return FALSE;
  }
  if (!msvm_daemon_start_time(uid, &start)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                "--defer needs a running libvirt daemon that loaded %s; none found", hook);
    return FALSE;
  }
  /* The hook's mtime on the boot clock, the daemon's start (whole clock
   * ticks, rounded down) on the same clock: loaded when it is older. */
  mtime_since_boot = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9 -
                     (clock_seconds(CLOCK_REALTIME) - clock_seconds(CLOCK_BOOTTIME));
  if (mtime_since_boot >= start) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED,
                "--defer needs the msvm-security hook loaded, and %s is newer than the "
                "running libvirt daemon: restart the daemon first", hook);
    return FALSE;
  }
  return TRUE;
}
