/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-secret.h: memory that holds secrets (key protectors, policies,
 * passphrases, the store's seed, plaintext vTPM state) and the process
 * settings that keep it where it belongs (DESIGN.md section 11).
 *
 * A secret buffer is wiped when it is freed and is kept out of core dumps
 * (MADV_DONTDUMP on its own pages).  Reading a secret from a file or a pipe
 * goes through msvm_secret_read_fd(), which reads straight into such a
 * buffer: no stack chunk, no growing array leaves copies behind.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Overwrite memory that held a secret (not optimized away). */
void msvm_wipe(void *buf, gsize len);

/* @len bytes (zeroed) on pages of their own, marked MADV_DONTDUMP; never
 * NULL (aborts on out of memory as g_malloc does).  Free with
 * msvm_secret_free(), which wipes them. */
gpointer msvm_secret_alloc(gsize len);
void msvm_secret_free(gpointer buf, gsize len);

/* Free a NUL-terminated string that held a secret (a stash of devices with
 * their VNC passwords, say), wiped first; NULL is ignored.  With
 * g_auto(MsvmSecretText) a scope's string is freed so. */
void msvm_secret_text_free(char *text);
typedef char *MsvmSecretText;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(MsvmSecretText, msvm_secret_text_free, NULL)

/* A GBytes over a secret buffer: wiped and released with the last
 * reference.  msvm_secret_bytes_new copies @len bytes of @data into a new
 * secret buffer (the caller still wipes its own copy). */
GBytes *msvm_secret_bytes_new(gconstpointer data, gsize len);

/* A GBytes owning @data (g_malloc'd; e.g. the output of a cipher) that
 * wipes it when freed. */
GBytes *msvm_secret_bytes_new_take(guint8 *data, gsize len);

/* Read @fd to its end into a secret buffer of at most @max_len bytes.  On
 * success *@ret_bytes is a GBytes as above; when the input is longer than
 * @max_len the call fails with *@ret_too_long TRUE (and errno-free error
 * handling is the caller's: this sets errno and returns FALSE on a read
 * error, with *@ret_too_long FALSE).  Nothing read is left unwiped. */
gboolean msvm_secret_read_fd(int fd, gsize max_len, GBytes **ret_bytes, gboolean *ret_too_long);

/* The same for input that may go on (a /proc file of another process): on
 * success *@ret_bytes holds at most @max_len bytes and *@ret_truncated says
 * whether there was more.  FALSE with errno set on a read error. */
gboolean msvm_secret_read_fd_bounded(int fd, gsize max_len, GBytes **ret_bytes,
                                     gboolean *ret_truncated);

/* The process keeps its secrets to itself: no core dumps (RLIMIT_CORE 0),
 * not dumpable (no core, no ptrace attach by the same uid, /proc/PID/mem
 * closed).  Every executable calls it before it reads a secret.  Returns
 * FALSE with errno set when the kernel refused. */
gboolean msvm_secret_protect_process(void);

G_END_DECLS
