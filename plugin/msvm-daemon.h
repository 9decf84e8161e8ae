/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-daemon.h: is the msvm-security hook installed and loaded by the
 * running libvirt daemon?  (DESIGN.md section 9: the daemon reads its hook
 * directory only when it starts, so "loaded" means the hook file is there
 * and older than the running daemon.)  No libvirt API.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* File name of the hook in libvirt's qemu.d hook directory. */
#define MSVM_HOOK_NAME "50-msvm-security"

/* The hook file: <MSVM_HOOKDIR>/50-msvm-security. */
char *msvm_hook_path(void);

/* Start time (seconds since boot on CLOCK_BOOTTIME, to the clock tick) of
 * the oldest running libvirt qemu daemon (libvirtd or virtqemud) of @uid;
 * FALSE when none runs. */
gboolean msvm_daemon_start_time(uid_t uid, double *ret_start);

/* TRUE when the hook is installed and loaded by the daemon of @uid (0 for the
 * system daemon); otherwise FALSE with MSVM_RC_NOT_SUPPORTED saying why. */
gboolean msvm_hook_check_loaded(uid_t uid, GError **error);

G_END_DECLS
