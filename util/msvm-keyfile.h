/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-keyfile.h: the key-file codec of the store (DESIGN.md section 6),
 * which wipes what it held.
 *
 * The format is GKeyFile's, for the part the store uses: "[group]" lines,
 * "key=value" lines, blank lines and "#" comments; values escape "\s" (a
 * leading space), "\n", "\t", "\r" and "\\".  Stores written by GKeyFile
 * (sessions 1-4) read back unchanged, and GKeyFile reads what this writes.
 *
 * Why not GKeyFile: the store's values are secrets (the seed, key
 * protectors, policies, foreign passphrases, stashed devices with their
 * VNC passwords), and GKeyFile frees its copies of them (its line buffer,
 * its values, the unescaped copies get_string makes) without wiping them.
 * This codec reads straight from the caller's buffer and wipes every value,
 * key and name it allocated when it frees them; the text msvm_key_file_to_data()
 * returns is the caller's to wipe (issue 9).
 *
 * Values are borrowed: valid until the key is set again or the key file is
 * freed.  Library code: no logging; errors never quote a line (it may hold
 * a secret), only its number.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _MsvmKeyFile MsvmKeyFile;

MsvmKeyFile *msvm_key_file_new(void);
void msvm_key_file_free(MsvmKeyFile *key_file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmKeyFile, msvm_key_file_free)

/* Adds the groups and keys of @data (@len bytes; NUL bytes are refused) to
 * @key_file: a repeated group continues the first, a repeated key replaces
 * the earlier value (as GKeyFile does).  FALSE (MSVM_RC_FAILED, naming the
 * line number and what is wrong with it) for a line that is none of the
 * four kinds, a key before any group, an empty key, or a group name that is
 * empty, not UTF-8 or has a control character, "[", "]" or "="; @key_file
 * may then hold part of @data (free it).  A value with an invalid escape or
 * that is not UTF-8 is left out: it reads as missing, as GKeyFile's
 * g_key_file_get_string() has it. */
gboolean msvm_key_file_load(MsvmKeyFile *key_file, const char *data, gsize len, GError **error);

gboolean msvm_key_file_has_group(const MsvmKeyFile *key_file, const char *group);
/* The groups in the order of the file (then of their first set). */
guint msvm_key_file_n_groups(const MsvmKeyFile *key_file);
const char *msvm_key_file_group_name(const MsvmKeyFile *key_file, guint index);

/* The (unescaped) value, or NULL when the group or key is missing. */
const char *msvm_key_file_get_string(const MsvmKeyFile *key_file, const char *group,
                                     const char *key);
/* FALSE (@ret_value untouched) when missing or not a number: decimal digits
 * only, with an optional "-" for the signed one. */
gboolean msvm_key_file_get_uint64(const MsvmKeyFile *key_file, const char *group,
                                  const char *key, guint64 *ret_value);
gboolean msvm_key_file_get_int64(const MsvmKeyFile *key_file, const char *group,
                                 const char *key, gint64 *ret_value);
/* "true" or "1" is TRUE; anything else, or nothing, FALSE (GKeyFile's
 * g_key_file_get_boolean() without its error). */
gboolean msvm_key_file_get_boolean(const MsvmKeyFile *key_file, const char *group,
                                   const char *key);

/* @group and @key: non-empty, no control characters, "[", "]" or "=" (and
 * @key no "#" or blank first, no blank last); @value that is not UTF-8 is
 * kept with its invalid bytes made U+FFFD (g_utf8_make_valid). */
void msvm_key_file_set_string(MsvmKeyFile *key_file, const char *group, const char *key,
                              const char *value);
void msvm_key_file_set_uint64(MsvmKeyFile *key_file, const char *group, const char *key,
                              guint64 value);
void msvm_key_file_set_int64(MsvmKeyFile *key_file, const char *group, const char *key,
                             gint64 value);
void msvm_key_file_set_boolean(MsvmKeyFile *key_file, const char *group, const char *key,
                               gboolean value);

/* The text: each group as "[name]" and its "key=value" lines, groups
 * separated by a blank line (GKeyFile's layout).  g_malloc'd and
 * NUL-terminated; the caller wipes (msvm_wipe) and frees it. */
char *msvm_key_file_to_data(const MsvmKeyFile *key_file, gsize *ret_len);

G_END_DECLS
