/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "msvm-fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void
msvm_fault_point(const char *name)
{
  static gint counter = 0;
  static gint target = -1; /* -1: not read yet, 0: off */
  static gboolean trace = FALSE;
  gint n;

  if (g_atomic_int_get(&target) < 0) {
    const char *s = secure_getenv("MSVM_SECURITY_FAULT_INJECT");
    const char *t = secure_getenv("MSVM_SECURITY_FAULT_TRACE");
    trace = t != NULL && *t == '1';
    g_atomic_int_set(&target, s ? (gint)g_ascii_strtoll(s, NULL, 10) : 0);
    if (g_atomic_int_get(&target) < 0)
      g_atomic_int_set(&target, 0);
  }
  if (g_atomic_int_get(&target) == 0 && !trace)
    return;
  n = g_atomic_int_add(&counter, 1) + 1;
  if (trace)
    fprintf(stderr, "msvm-fault-point %d %s\n", n, name);
  if (n == g_atomic_int_get(&target)) {
    fflush(NULL);
    kill(getpid(), SIGKILL);
    _exit(137);
  }
}
