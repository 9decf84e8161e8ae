/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-store-private.h: the store file's text, without the file: what
 * msvm_store_load() parses and msvm_store_save() writes.  For the store's
 * own files and its tests (tests/fuzz/fuzz-store.c); not installed.
 */
#pragma once

#include "msvm-store.h"

G_BEGIN_DECLS

/* Parses @data (@len bytes, the text of <dir>/store) into a new store for
 * the VM @uuid whose directory is @dir (only named in messages).
 * MSVM_RC_FAILED when the text is damaged. */
gboolean msvm_store_parse(const char *dir, const guint8 uuid[16], const char *data, gsize len,
                          MsvmStore **ret_store, GError **error);

/* The text msvm_store_save() writes for @store, as it is (no seed is
 * created, no job pruned).  The caller wipes it (it holds the seed). */
char *msvm_store_to_data(const MsvmStore *store, gsize *ret_len);

G_END_DECLS
