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
 * and name on standard error.  Read with secure_getenv(), so it is inert in
 * setuid/setgid processes; libvirt gives its hooks a fixed environment
 * without either variable.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void msvm_fault_point(const char *name);

G_END_DECLS
