/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-instance.c: the front end of the instance parser: size limit,
 * byte-order mark and encoding (UTF-8, UTF-16LE/BE) to validated UTF-8,
 * CIM-XML or MOF, and the syntax-independent rules (MsvmInstanceBuilder).
 * docs/instance-input.rst describes what is accepted.
 */
#include "config.h"

#include "msvm-instance.h"
#include "msvm-instance-private.h"

#include <string.h>

#include "msvm-error.h"

#define MSVM_CLASS_NAME "Msvm_SecuritySettingData"

/* ---- positions ---------------------------------------------------------- */

gsize
msvm_instance_text_offset(const MsvmInstanceText *t, gsize pos)
{
  gsize offset = 0;

  if (pos > t->len)
    pos = t->len;
  if (!t->utf16 || t->embedded)
    return t->bom_len + pos;
  /* UTF-16: 2 bytes per character of the BMP, 4 for the others (which take
   * 4 bytes in UTF-8 as well). */
  for (const char *p = t->text; p < t->text + pos; p = g_utf8_next_char(p))
    offset += ((guchar)*p >= 0xf0) ? 4 : 2;
  return t->bom_len + offset;
}

char *
msvm_instance_text_where(const MsvmInstanceText *t, gsize pos)
{
  gsize line = 1, column = 1;

  if (pos > t->len)
    pos = t->len;
  for (const char *p = t->text; p < t->text + pos; p = g_utf8_next_char(p)) {
    if (*p == '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  if (t->embedded)
    return g_strdup_printf("line %" G_GSIZE_FORMAT ", column %" G_GSIZE_FORMAT
                           " of the embedded instance text", line, column);
  return g_strdup_printf("line %" G_GSIZE_FORMAT ", column %" G_GSIZE_FORMAT
                         " (byte offset %" G_GSIZE_FORMAT ")",
                         line, column, msvm_instance_text_offset(t, pos));
}

char *
msvm_instance_quote(const char *text)
{
  enum { MAX_SHOWN = 40 };
  g_autofree char *head = g_strndup(text, MAX_SHOWN);
  g_autofree char *escaped = g_strescape(head, NULL);

  return g_strdup_printf("\"%s\"%s", escaped, strlen(text) > MAX_SHOWN ? "..." : "");
}

const char *
msvm_instance_cim_type_name(MsvmCimType type)
{
  return type == MSVM_CIM_BOOLEAN ? "boolean" : "string";
}

/* ---- the builder -------------------------------------------------------- */

void
msvm_instance_builder_init(MsvmInstanceBuilder *b)
{
  b->settings = msvm_settings_new();
  b->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  b->instances = 0;
}

void
msvm_instance_builder_clear(MsvmInstanceBuilder *b)
{
  g_clear_pointer(&b->settings, msvm_settings_free);
  g_clear_pointer(&b->seen, g_hash_table_unref);
}

gboolean
msvm_instance_builder_begin(MsvmInstanceBuilder *b, const char *class_name, GError **error)
{
  if (class_name == NULL || *class_name == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the instance does not name its class; expected " MSVM_CLASS_NAME);
    return FALSE;
  }
  if (g_ascii_strcasecmp(class_name, MSVM_CLASS_NAME) != 0) {
    g_autofree char *quoted = msvm_instance_quote(class_name);
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the instance is of class %s, not " MSVM_CLASS_NAME, quoted);
    return FALSE;
  }
  if (b->instances > 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "more than one instance given; expected exactly one " MSVM_CLASS_NAME);
    return FALSE;
  }
  b->instances++;
  return TRUE;
}

gboolean
msvm_instance_builder_add(MsvmInstanceBuilder *b, const char *name, MsvmProp *ret_prop,
                          GError **error)
{
  g_autofree char *key = NULL;

  if (name == NULL || *name == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "a property has no name");
    return FALSE;
  }
  key = g_ascii_strdown(name, -1);
  if (g_hash_table_contains(b->seen, key)) {
    g_autofree char *quoted = msvm_instance_quote(name);
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "property %s is given more than once", quoted);
    return FALSE;
  }
  g_hash_table_add(b->seen, g_steal_pointer(&key));
  *ret_prop = msvm_settings_prop_lookup(name);
  return TRUE;
}

static gboolean
is_xml_char(gunichar c)
{
  return c == 0x9 || c == 0xa || c == 0xd ||
         (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
         (c >= 0x10000 && c <= 0x10ffff);
}

gboolean
msvm_instance_builder_set_text(MsvmInstanceBuilder *b, MsvmProp prop, const char *text,
                               GError **error)
{
  const char *name = msvm_settings_props[prop].name;

  if (msvm_settings_props[prop].type == MSVM_CIM_BOOLEAN) {
    g_autofree char *trimmed = g_strstrip(g_strdup(text));
    if (g_ascii_strcasecmp(trimmed, "TRUE") == 0)
      return msvm_instance_builder_set_boolean(b, prop, TRUE, error);
    if (g_ascii_strcasecmp(trimmed, "FALSE") == 0)
      return msvm_instance_builder_set_boolean(b, prop, FALSE, error);
    {
      g_autofree char *quoted = msvm_instance_quote(text);
      g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                  "property %s: %s is not a boolean (TRUE or FALSE)", name, quoted);
    }
    return FALSE;
  }
  for (const char *p = text; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (!is_xml_char(c)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "property %s: character U+%04X at position %" G_GSIZE_FORMAT
                  " of the value is not allowed in a CIM string",
                  name, c, (gsize)(p - text));
      return FALSE;
    }
  }
  msvm_settings_set_string(b->settings, prop, text);
  return TRUE;
}

gboolean
msvm_instance_builder_set_boolean(MsvmInstanceBuilder *b, MsvmProp prop, gboolean value,
                                  GError **error)
{
  if (msvm_settings_props[prop].type != MSVM_CIM_BOOLEAN) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                "property %s: a boolean is given, its CIM type is %s",
                msvm_settings_props[prop].name,
                msvm_instance_cim_type_name(msvm_settings_props[prop].type));
    return FALSE;
  }
  msvm_settings_set_boolean(b->settings, prop, value);
  return TRUE;
}

gboolean
msvm_instance_builder_finish(MsvmInstanceBuilder *b, MsvmSettings **ret_settings,
                             GError **error)
{
  const MsvmValue *id = &b->settings->values[MSVM_PROP_INSTANCE_ID];

  if (b->instances == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "no instance of " MSVM_CLASS_NAME " found");
    return FALSE;
  }
  if (id->present) {
    guint8 uuid[16];
    if (!msvm_settings_parse_instance_id(id->string, uuid, error)) {
      g_autofree char *quoted = msvm_instance_quote(id->string);
      g_prefix_error(error, "property InstanceID %s: ", quoted);
      return FALSE;
    }
    b->settings->has_vm_uuid = TRUE;
    memcpy(b->settings->vm_uuid, uuid, sizeof(uuid));
  }
  *ret_settings = g_steal_pointer(&b->settings);
  return TRUE;
}

/* ---- encodings ---------------------------------------------------------- */

/* UTF-16 (after the BOM) to UTF-8; U+0000 and unpaired surrogates are
 * refused with their byte offset in the input. */
static char *
utf16_to_utf8(const guint8 *data, gsize len, gsize start, gboolean big_endian,
              gsize *ret_len, GError **error)
{
  g_autoptr(GString) out = g_string_sized_new(len + len / 2 + 1);
  gsize i = start;

  if ((len - start) % 2 != 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "invalid UTF-16: odd number of bytes, the last one at byte offset %"
                G_GSIZE_FORMAT, len - 1);
    return NULL;
  }
#define UNIT(at) (big_endian ? (guint)data[(at)] << 8 | data[(at) + 1] \
                             : (guint)data[(at) + 1] << 8 | data[(at)])
  while (i < len) {
    guint u = UNIT(i);
    gunichar c;

    if (u == 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "invalid UTF-16: NUL character at byte offset %" G_GSIZE_FORMAT, i);
      return NULL;
    }
    if (u >= 0xd800 && u <= 0xdbff) {
      guint u2 = i + 4 <= len ? UNIT(i + 2) : 0;
      if (u2 < 0xdc00 || u2 > 0xdfff) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "invalid UTF-16: unpaired high surrogate at byte offset %" G_GSIZE_FORMAT, i);
        return NULL;
      }
      c = 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00);
      i += 4;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "invalid UTF-16: unpaired low surrogate at byte offset %" G_GSIZE_FORMAT, i);
      return NULL;
    } else {
      c = u;
      i += 2;
    }
    g_string_append_unichar(out, c);
  }
#undef UNIT
  *ret_len = out->len;
  return g_string_free(g_steal_pointer(&out), FALSE);
}

/* ---- dispatch ----------------------------------------------------------- */

gboolean
msvm_instance_parse_text(const MsvmInstanceText *t, MsvmInstanceBuilder *b, GError **error)
{
  const char *p = t->text;

  while (g_ascii_isspace(*p))
    p++;
  if (*p == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                t->embedded ? "the embedded instance text is empty"
                            : "the instance is empty (only white space)");
    return FALSE;
  }
  if (*p == '<')
    return msvm_instance_parse_cim_xml(t, b, error);
  return msvm_instance_parse_mof(t, b, error);
}

gboolean
msvm_instance_parse(const guint8 *data, gsize len, MsvmSettings **ret_settings, GError **error)
{
  MsvmInstanceText t = { 0 };
  g_autofree char *converted = NULL;
  MsvmInstanceBuilder b;
  gboolean ok;

  g_return_val_if_fail(ret_settings != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

  if (data == NULL || len == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "the instance is empty");
    return FALSE;
  }
  if (len > MSVM_SETTINGS_MAX_SIZE) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the instance is %" G_GSIZE_FORMAT " bytes, more than the limit of %u bytes",
                len, MSVM_SETTINGS_MAX_SIZE);
    return FALSE;
  }

  if (len >= 2 && ((data[0] == 0xff && data[1] == 0xfe) || (data[0] == 0xfe && data[1] == 0xff))) {
    t.utf16 = TRUE;
    t.bom_len = 2;
    converted = utf16_to_utf8(data, len, 2, data[0] == 0xfe, &t.len, error);
    if (converted == NULL)
      return FALSE;
    t.text = converted;
  } else {
    const char *end = NULL;
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
      t.bom_len = 3;
    t.text = (const char *)data + t.bom_len;
    t.len = len - t.bom_len;
    if (!g_utf8_validate_len(t.text, t.len, &end)) {
      gsize offset = (gsize)((const guint8 *)end - data);
      if (*end == '\0' && offset <= 1 && len >= 2 && (data[0] == 0 || data[1] == 0))
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "NUL byte at byte offset %" G_GSIZE_FORMAT
                    " (UTF-16 without a byte-order mark? UTF-16 needs one)", offset);
      else if (*end == '\0')
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "NUL byte at byte offset %" G_GSIZE_FORMAT, offset);
      else
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "invalid UTF-8 at byte offset %" G_GSIZE_FORMAT, offset);
      return FALSE;
    }
    /* The syntaxes want a NUL-terminated text. */
    converted = g_strndup(t.text, t.len);
    t.text = converted;
  }
  if (t.len == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the instance is empty (only a byte-order mark)");
    return FALSE;
  }

  msvm_instance_builder_init(&b);
  ok = msvm_instance_parse_text(&t, &b, error) &&
       msvm_instance_builder_finish(&b, ret_settings, error);
  msvm_instance_builder_clear(&b);
  return ok;
}
