/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-fault.h: test-only crash injection.
 *
 * Every step of a crash-safe operation (each write, fsync, rename, define...)
 * calls msvm_fault_point("what-comes-next").  When the environment variable
 * MSVM_SECURITY_FAULT_INJECT is N (a positive number), the process kills
 * itself with SIGKILL at the N-th point it passes; a test runs the operation
 * with N = 1, 2, ... until it completes, checking after each kill that the
 * state is whole.  MSVM_SECURITY_FAULT_TRACE=1 prints each point's number
 * and name on standard error; MSVM_SECURITY_FAULT_STALL=NAME:MS waits MS
 * milliseconds at each point called NAME (to widen a race window).  Read with secure_getenv(), so it is inert in
 * setuid/setgid processes; libvirt gives its hooks a fixed environment
 * without either variable.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void msvm_fault_point(const char *name);

/* The hook runs with the fixed environment libvirt gives it, so a test arms
 * it with a file instead: @path (the store root's `.fault-inject`) holds
 * "N" or "N /ABSOLUTE/TRACE-FILE"; it is read and removed (it arms one run),
 * N is the point to die at (0: none) and each point passed is appended to
 * the trace file as "msvm-fault-point N NAME".  A missing file changes
 * nothing. */
/* TRUE when MSVM_SECURITY_FAULT_FAIL names @name: the step called so
 * reports a failure after it was carried out (a test of what an operation
 * that took effect but was reported as failed leaves). */
gboolean msvm_fault_fail(const char *name);

void msvm_fault_configure_from_file(const char *path);

G_END_DECLS
