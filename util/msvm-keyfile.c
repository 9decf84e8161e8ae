/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-keyfile.c: the store's key-file codec, which wipes what it held
 * (msvm-keyfile.h).
 *
 * Every string it allocates (names, keys, values) is a WipedString: wiped
 * before it is freed.  Lookups go through hash tables keyed by names (not
 * secret), so that a hostile file of many groups or keys costs linear time.
 */
#include "config.h"

#include "msvm-keyfile.h"

#include <string.h>

#include "msvm-error.h"
#include "msvm-secret.h"

typedef struct {
  char *key;
  char *value;
} Entry;

typedef struct {
  char *name;
  GPtrArray *entries;   /* Entry, in file order */
  GHashTable *by_key;   /* key -> Entry (borrowed) */
} Group;

struct _MsvmKeyFile {
  GPtrArray *groups;    /* Group, in file order */
  GHashTable *by_name;  /* name -> Group (borrowed) */
};

static void
wiped_free(char *text)
{
  if (text == NULL)
    return;
  msvm_wipe(text, strlen(text));
  g_free(text);
}

static void
entry_free(gpointer data)
{
  Entry *entry = data;
  wiped_free(entry->key);
  wiped_free(entry->value);
  g_free(entry);
}

static void
group_free(gpointer data)
{
  Group *group = data;
  g_hash_table_unref(group->by_key);
  g_ptr_array_unref(group->entries);
  wiped_free(group->name);
  g_free(group);
}

MsvmKeyFile *
msvm_key_file_new(void)
{
  MsvmKeyFile *key_file = g_new0(MsvmKeyFile, 1);
  key_file->groups = g_ptr_array_new_with_free_func(group_free);
  key_file->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  return key_file;
}

void
msvm_key_file_free(MsvmKeyFile *key_file)
{
  if (key_file == NULL)
    return;
  g_hash_table_unref(key_file->by_name);
  g_ptr_array_unref(key_file->groups);
  g_free(key_file);
}

static Group *
find_group(const MsvmKeyFile *key_file, const char *name)
{
  return g_hash_table_lookup(key_file->by_name, name);
}

/* (takes @name) */
static Group *
add_group(MsvmKeyFile *key_file, char *name)
{
  Group *group = find_group(key_file, name);

  if (group != NULL) {
    wiped_free(name);
    return group;
  }
  group = g_new0(Group, 1);
  group->name = name;
  group->entries = g_ptr_array_new_with_free_func(entry_free);
  group->by_key = g_hash_table_new(g_str_hash, g_str_equal);
  g_ptr_array_add(key_file->groups, group);
  g_hash_table_insert(key_file->by_name, group->name, group);
  return group;
}

/* (takes @key and @value) */
static void
group_set(Group *group, char *key, char *value)
{
  Entry *entry = g_hash_table_lookup(group->by_key, key);

  if (entry != NULL) {
    wiped_free(key);
    wiped_free(entry->value);
    entry->value = value;
    return;
  }
  entry = g_new0(Entry, 1);
  entry->key = key;
  entry->value = value;
  g_ptr_array_add(group->entries, entry);
  g_hash_table_insert(group->by_key, entry->key, entry);
}

/* ---- names */

static gboolean
valid_name(const char *text, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar)text[i];
    if (c < 0x20 || c == 0x7f || c == '[' || c == ']' || c == '=')
      return FALSE;
  }
  return g_utf8_validate(text, (gssize)len, NULL);
}

/* (the keys the store sets; a file's keys need only be non-empty) */
static gboolean
valid_key(const char *text, gsize len)
{
  return valid_name(text, len) && text[0] != '#' && text[0] != ' ' && text[0] != '\t' &&
         text[len - 1] != ' ' && text[len - 1] != '\t';
}

/* ---- values */

/* The value of @escaped (@len bytes) without its escapes, in a new string;
 * NULL for an invalid escape or a value that is not UTF-8. */
static char *
unescape(const char *escaped, gsize len)
{
  char *value = g_malloc(len + 1);
  gsize out = 0;

  for (gsize i = 0; i < len; i++) {
    char c = escaped[i];
    if (c == '\\') {
      if (++i == len)
        goto bad;
      switch (escaped[i]) {
      case 's': c = ' '; break;
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case '\\': c = '\\'; break;
      default: goto bad;
      }
    }
    value[out++] = c;
  }
  value[out] = '\0';
  if (!g_utf8_validate(value, (gssize)out, NULL))
    goto bad;
  /* (the rest of the buffer, if any, was never written) */
  return value;

bad:
  msvm_wipe(value, out);
  g_free(value);
  return NULL;
}

/* How many bytes @value takes escaped; with @out, also writes them there. */
static gsize
escape(const char *value, char *out)
{
  gsize n = 0;
  gboolean leading = TRUE;

  for (const char *p = value; *p != '\0'; p++) {
    const char *sequence = NULL;
    switch (*p) {
    case ' ': sequence = leading ? "\\s" : NULL; break;
    case '\n': sequence = "\\n"; break;
    case '\t': sequence = "\\t"; break;
    case '\r': sequence = "\\r"; break;
    case '\\': sequence = "\\\\"; break;
    default: break;
    }
    if (*p != ' ')
      leading = FALSE;
    if (sequence != NULL) {
      if (out != NULL)
        memcpy(out + n, sequence, 2);
      n += 2;
    } else {
      if (out != NULL)
        out[n] = *p;
      n++;
    }
  }
  return n;
}

/* ---- loading */

static gboolean
is_blank(char c)
{
  return c == ' ' || c == '\t';
}

static gboolean
load_line(MsvmKeyFile *key_file, Group **current, const char *line, gsize len, guint number,
          GError **error)
{
  const char *what;

  while (len > 0 && is_blank(line[0])) {
    line++;
    len--;
  }
  if (len == 0 || line[0] == '#')
    return TRUE;

  if (line[0] == '[') {
    gsize end = len;
    while (end > 0 && is_blank(line[end - 1]))
      end--;
    if (end < 2 || line[end - 1] != ']' || !valid_name(line + 1, end - 2)) {
      what = "a group header that is not [NAME]";
      goto bad;
    }
    *current = add_group(key_file, g_strndup(line + 1, end - 2));
    return TRUE;
  }

  {
    const char *equals = memchr(line, '=', len);
    gsize key_len, value_start;
    char *value;

    if (equals == NULL) {
      what = "neither a group header, a key=value pair nor a comment";
      goto bad;
    }
    if (*current == NULL) {
      what = "a key before the first group";
      goto bad;
    }
    key_len = (gsize)(equals - line);
    while (key_len > 0 && is_blank(line[key_len - 1]))
      key_len--;
    if (key_len == 0) {
      what = "a key=value pair without a key";
      goto bad;
    }
    value_start = (gsize)(equals - line) + 1;
    while (value_start < len && is_blank(line[value_start]))
      value_start++;
    /* A value that has an invalid escape or is not UTF-8 reads as missing,
     * as with GKeyFile's g_key_file_get_string(): a store that GKeyFile
     * wrote and read must still read (an error description, say). */
    value = unescape(line + value_start, len - value_start);
    if (value != NULL)
      group_set(*current, g_strndup(line, key_len), value);
    return TRUE;
  }

bad:
  g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "line %u is %s", number, what);
  return FALSE;
}

gboolean
msvm_key_file_load(MsvmKeyFile *key_file, const char *data, gsize len, GError **error)
{
  Group *current = NULL;
  guint number = 0;
  gsize start = 0;

  if (len > 0 && memchr(data, '\0', len) != NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "the text has a NUL byte");
    return FALSE;
  }
  while (start < len) {
    const char *nl = memchr(data + start, '\n', len - start);
    gsize end = nl != NULL ? (gsize)(nl - data) : len;
    gsize line_len = end - start;

    number++;
    /* (a CRLF line ending, as GKeyFile takes it) */
    if (line_len > 0 && data[start + line_len - 1] == '\r')
      line_len--;
    if (!load_line(key_file, &current, data + start, line_len, number, error))
      return FALSE;
    start = end + 1;
  }
  return TRUE;
}

/* ---- reading */

gboolean
msvm_key_file_has_group(const MsvmKeyFile *key_file, const char *group)
{
  return find_group(key_file, group) != NULL;
}

guint
msvm_key_file_n_groups(const MsvmKeyFile *key_file)
{
  return key_file->groups->len;
}

const char *
msvm_key_file_group_name(const MsvmKeyFile *key_file, guint index)
{
  g_return_val_if_fail(index < key_file->groups->len, NULL);
  return ((const Group *)g_ptr_array_index(key_file->groups, index))->name;
}

const char *
msvm_key_file_get_string(const MsvmKeyFile *key_file, const char *group, const char *key)
{
  const Group *g = find_group(key_file, group);
  const Entry *entry = g != NULL ? g_hash_table_lookup(g->by_key, key) : NULL;
  return entry != NULL ? entry->value : NULL;
}

static gboolean
parse_digits(const char *text, guint64 *ret_value)
{
  guint64 value = 0;

  if (text == NULL || *text == '\0')
    return FALSE;
  for (const char *p = text; *p != '\0'; p++) {
    if (!g_ascii_isdigit(*p) || value > (G_MAXUINT64 - (guint64)(*p - '0')) / 10)
      return FALSE;
    value = value * 10 + (guint64)(*p - '0');
  }
  *ret_value = value;
  return TRUE;
}

gboolean
msvm_key_file_get_uint64(const MsvmKeyFile *key_file, const char *group, const char *key,
                         guint64 *ret_value)
{
  return parse_digits(msvm_key_file_get_string(key_file, group, key), ret_value);
}

gboolean
msvm_key_file_get_int64(const MsvmKeyFile *key_file, const char *group, const char *key,
                        gint64 *ret_value)
{
  const char *text = msvm_key_file_get_string(key_file, group, key);
  gboolean negative = text != NULL && text[0] == '-';
  guint64 magnitude;

  if (!parse_digits(negative ? text + 1 : text, &magnitude))
    return FALSE;
  if (negative ? magnitude > (guint64)G_MAXINT64 + 1 : magnitude > (guint64)G_MAXINT64)
    return FALSE;
  /* (-2^63 has no positive counterpart: negate in unsigned arithmetic) */
  *ret_value = negative ? (gint64)(~magnitude + 1) : (gint64)magnitude;
  return TRUE;
}

gboolean
msvm_key_file_get_boolean(const MsvmKeyFile *key_file, const char *group, const char *key)
{
  const char *text = msvm_key_file_get_string(key_file, group, key);
  return g_strcmp0(text, "true") == 0 || g_strcmp0(text, "1") == 0;
}

/* ---- writing */

void
msvm_key_file_set_string(MsvmKeyFile *key_file, const char *group, const char *key,
                         const char *value)
{
  g_return_if_fail(group != NULL && valid_name(group, strlen(group)));
  g_return_if_fail(key != NULL && valid_key(key, strlen(key)));
  g_return_if_fail(value != NULL);

  /* (text that is not UTF-8, a path in an error description say, would
   * read back as missing: its invalid bytes become U+FFFD instead) */
  group_set(add_group(key_file, g_strdup(group)), g_strdup(key),
            g_utf8_validate(value, -1, NULL) ? g_strdup(value) : g_utf8_make_valid(value, -1));
}

void
msvm_key_file_set_uint64(MsvmKeyFile *key_file, const char *group, const char *key,
                         guint64 value)
{
  char text[24];
  g_snprintf(text, sizeof(text), "%" G_GUINT64_FORMAT, value);
  msvm_key_file_set_string(key_file, group, key, text);
}

void
msvm_key_file_set_int64(MsvmKeyFile *key_file, const char *group, const char *key,
                        gint64 value)
{
  char text[24];
  g_snprintf(text, sizeof(text), "%" G_GINT64_FORMAT, value);
  msvm_key_file_set_string(key_file, group, key, text);
}

void
msvm_key_file_set_boolean(MsvmKeyFile *key_file, const char *group, const char *key,
                          gboolean value)
{
  msvm_key_file_set_string(key_file, group, key, value ? "true" : "false");
}

/* With @out NULL, only the length; else writes the text there. */
static gsize
format(const MsvmKeyFile *key_file, char *out)
{
  gsize n = 0;

  for (guint i = 0; i < key_file->groups->len; i++) {
    const Group *group = g_ptr_array_index(key_file->groups, i);
    gsize name_len = strlen(group->name);

    if (i > 0) {
      if (out != NULL)
        out[n] = '\n';
      n++;
    }
    if (out != NULL) {
      out[n] = '[';
      memcpy(out + n + 1, group->name, name_len);
      memcpy(out + n + 1 + name_len, "]\n", 2);
    }
    n += name_len + 3;
    for (guint j = 0; j < group->entries->len; j++) {
      const Entry *entry = g_ptr_array_index(group->entries, j);
      gsize key_len = strlen(entry->key);

      if (out != NULL) {
        memcpy(out + n, entry->key, key_len);
        out[n + key_len] = '=';
      }
      n += key_len + 1;
      n += escape(entry->value, out != NULL ? out + n : NULL);
      if (out != NULL)
        out[n] = '\n';
      n++;
    }
  }
  return n;
}

char *
msvm_key_file_to_data(const MsvmKeyFile *key_file, gsize *ret_len)
{
  /* (one allocation of the exact size: a growing buffer would leave copies
   * of the secrets behind in the blocks it gave back) */
  gsize len = format(key_file, NULL);
  char *text = g_malloc(len + 1);

  format(key_file, text);
  text[len] = '\0';
  if (ret_len != NULL)
    *ret_len = len;
  return text;
}
