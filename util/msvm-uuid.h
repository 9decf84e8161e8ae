/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-uuid.h: the one UUID parser and formatter of the project.
 *
 * The parser accepts what libvirt's own parser (virUUIDParse) accepts, so
 * that every UUID a domain definition can carry reads the same here: 32
 * hexadecimal digits (either case) in pairs, hyphens anywhere between the
 * pairs, blanks before and after.  Everything the project writes (store
 * directories, job ids, the metadata element) is the canonical lower-case
 * 8-4-4-4-12 form of msvm_uuid_format().
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MSVM_UUID_STRING_LEN 36

/* TRUE and the 16 bytes in @ret_uuid (untouched on failure) when @text is a
 * UUID in the syntax above; NULL is not. */
gboolean msvm_uuid_parse(const char *text, guint8 ret_uuid[16]);

/* TRUE when both are UUIDs and name the same one (spelling aside). */
gboolean msvm_uuid_equal_text(const char *a, const char *b);

/* Lower-case 8-4-4-4-12 into @ret. */
void msvm_uuid_format(const guint8 uuid[16], char ret[MSVM_UUID_STRING_LEN + 1]);

/* The same, newly allocated (free with g_free). */
char *msvm_uuid_to_string(const guint8 uuid[16]);

G_END_DECLS
