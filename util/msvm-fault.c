/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "msvm-fault.h"

#include "msvm-io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gint fault_counter = 0;
static gint fault_target = -1; /* -1: not read yet, 0: off */
static gboolean fault_trace = FALSE;
static int fault_trace_fd = -1;  /* -1: standard error */

static void
fault_read_environment(void)
{
  const char *s, *t;

  if (g_atomic_int_get(&fault_target) >= 0)
    return;
  s = secure_getenv("MSVM_SECURITY_FAULT_INJECT");
  t = secure_getenv("MSVM_SECURITY_FAULT_TRACE");
  fault_trace = fault_trace || (t != NULL && *t == '1');
  g_atomic_int_set(&fault_target, s ? (gint)g_ascii_strtoll(s, NULL, 10) : 0);
  if (g_atomic_int_get(&fault_target) < 0)
    g_atomic_int_set(&fault_target, 0);
}

void
msvm_fault_configure_from_file(const char *path)
{
  char buf[512];
  gsize n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  char *end = NULL;
  gint64 target;
  gboolean ok;

  if (fd < 0)
    return;
  ok = msvm_read_full(fd, buf, sizeof(buf) - 1, &n);
  close(fd);
  (void)unlink(path); /* one run only */
  if (!ok || n == 0)
    return;
  buf[n] = '\0';
  target = g_ascii_strtoll(buf, &end, 10);
  if (end == buf || target < 0)
    return;
  g_atomic_int_set(&fault_target, (gint)target);
  while (end != NULL && *end == ' ')
    end++;
  if (end != NULL && *end == '/') {
    g_strchomp(end);
    fault_trace_fd = open(end, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    fault_trace = fault_trace_fd >= 0;
  }
}

/* MSVM_SECURITY_FAULT_STALL=NAME:MS: wait MS milliseconds at every point
 * called NAME (a test widens a race window with it). */
static void
fault_stall(const char *name)
{
  const char *s = secure_getenv("MSVM_SECURITY_FAULT_STALL");
  const char *colon;
  gsize len = strlen(name);

  if (s == NULL || (colon = strchr(s, ':')) == NULL || (gsize)(colon - s) != len ||
      strncmp(s, name, len) != 0)
    return;
  g_usleep((gulong)g_ascii_strtoull(colon + 1, NULL, 10) * 1000);
}

void
msvm_fault_point(const char *name)
{
  gint n;

  fault_stall(name);
  fault_read_environment();
  if (g_atomic_int_get(&fault_target) == 0 && !fault_trace)
    return;
  n = g_atomic_int_add(&fault_counter, 1) + 1;
  if (fault_trace) {
    char line[256];
    int len = snprintf(line, sizeof(line), "msvm-fault-point %d %s\n", n, name);
    if (len > 0 && write(fault_trace_fd >= 0 ? fault_trace_fd : STDERR_FILENO, line,
                         MIN((size_t)len, sizeof(line) - 1)) < 0) {
      /* a trace is best effort */
    }
  }
  if (n == g_atomic_int_get(&fault_target)) {
    fflush(NULL);
    kill(getpid(), SIGKILL);
    _exit(137);
  }
}

gboolean
msvm_fault_fail(const char *name)
{
  const char *s = secure_getenv("MSVM_SECURITY_FAULT_FAIL");

  return s != NULL && strcmp(s, name) == 0;
}
