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
 *
 * Fault points exist only in builds configured with -Dfault_injection=true
 * (the test builds of `./run test`); elsewhere these are empty inline
 * functions and the binaries hold no trace of them (DESIGN.md section 11;
 * the `production-build` test checks it).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#ifdef MSVM_FAULT_INJECTION

void msvm_fault_point(const char *name);

/* TRUE when MSVM_SECURITY_FAULT_FAIL names @name: the step called so
 * reports a failure after it was carried out (a test of what an operation
 * that took effect but was reported as failed leaves). */
gboolean msvm_fault_fail(const char *name);

/* The hook runs with the fixed environment libvirt gives it, so a test arms
 * it with a file instead: @path (the store root's `.fault-inject`) holds
 * "N" or "N /ABSOLUTE/TRACE-FILE"; it is read and removed (it arms one run),
 * N is the point to die at (0: none) and each point passed is appended to
 * the trace file as "msvm-fault-point N NAME".  A missing file changes
 * nothing.  (Test builds only: a production hook never looks for it.) */
void msvm_fault_configure_from_file(const char *path);

#else

/* (macros, so that not even the names reach the binary) */
#define msvm_fault_point(name) do { } while (0)
#define msvm_fault_fail(name) FALSE

#endif

G_END_DECLS
