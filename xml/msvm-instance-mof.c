/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-instance-mof.c: an Msvm_SecuritySettingData instance in MOF (DMTF
 * DSP0221) as WMI's GetText(MOF) and mofcomp input write it:
 *
 *   #pragma namespace("\\\\.\\root\\virtualization\\v2")   (ignored)
 *   [qualifiers]                                           (ignored)
 *   instance of Msvm_SecuritySettingData [as $Alias]
 *   {
 *       [qualifiers] Name = value;                         (any number)
 *   }[;]
 *
 * value: "string" (adjacent literals concatenate; escapes \b \t \n \f \r
 * \" \' \\ \xH..HHHH), TRUE, FALSE, NULL (keywords in any case), and for
 * properties this project ignores also numbers, 'c', $alias and { arrays }.
 * Comments // and / * * / anywhere between tokens.  A small hand-written
 * scanner: one pass, no recursion, every error names line, column and byte
 * offset.
 */
#include "config.h"

#include "msvm-instance-private.h"

#include <string.h>

#include "msvm-error.h"

typedef enum {
  TOK_EOF,
  TOK_IDENT,
  TOK_STRING,
  TOK_CHAR,
  TOK_NUMBER,
  TOK_ALIAS,
  TOK_PUNCT,
} TokKind;

typedef struct {
  const MsvmInstanceText *t;
  gsize pos;          /* scanner position */
  TokKind kind;       /* current token */
  gsize tok_pos;
  gsize tok_len;
  char punct;
  GString *str;       /* decoded TOK_STRING / TOK_CHAR */
} Mof;

G_GNUC_PRINTF(5, 6)
static gboolean
mof_error(Mof *m, gsize pos, GError **error, int code, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  g_autofree char *where = msvm_instance_text_where(m->t, pos);
  va_list ap;

  va_start(ap, fmt);
  msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, MSVM_ERROR, code, "MOF: %s at %s", msg, where);
  return FALSE;
}

static gboolean
is_ident_start(guchar c)
{
  return g_ascii_isalpha(c) || c == '_' || c >= 0x80;
}

static gboolean
is_ident_char(guchar c)
{
  return g_ascii_isalnum(c) || c == '_' || c >= 0x80;
}

/* White space, comments and #pragma lines. */
static gboolean
skip_blank(Mof *m, GError **error)
{
  const char *s = m->t->text;

  for (;;) {
    guchar c = (guchar)s[m->pos];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
      m->pos++;
    } else if (c == '/' && s[m->pos + 1] == '/') {
      while (s[m->pos] != '\0' && s[m->pos] != '\n')
        m->pos++;
    } else if (c == '/' && s[m->pos + 1] == '*') {
      const char *end = strstr(s + m->pos + 2, "*/");
      if (end == NULL)
        return mof_error(m, m->pos, error, MSVM_RC_INVALID_PARAMETER, "unterminated comment");
      m->pos = (gsize)(end - s) + 2;
    } else if (c == '#') {
      if (g_ascii_strncasecmp(s + m->pos + 1, "pragma", 6) != 0 ||
          is_ident_char((guchar)s[m->pos + 7]))
        return mof_error(m, m->pos, error, MSVM_RC_INVALID_PARAMETER,
                         "unknown directive (only #pragma is accepted)");
      while (s[m->pos] != '\0' && s[m->pos] != '\n')
        m->pos++;
    } else {
      return TRUE;
    }
  }
}

/* One escape sequence after the backslash at m->pos; appends it to m->str. */
static gboolean
scan_escape(Mof *m, GError **error)
{
  const char *s = m->t->text;
  gsize start = m->pos;
  char c = s[m->pos + 1];

  m->pos += 2;
  switch (c) {
  case 'b': g_string_append_c(m->str, '\b'); return TRUE;
  case 't': g_string_append_c(m->str, '\t'); return TRUE;
  case 'n': g_string_append_c(m->str, '\n'); return TRUE;
  case 'f': g_string_append_c(m->str, '\f'); return TRUE;
  case 'r': g_string_append_c(m->str, '\r'); return TRUE;
  case '"': g_string_append_c(m->str, '"'); return TRUE;
  case '\'': g_string_append_c(m->str, '\''); return TRUE;
  case '\\': g_string_append_c(m->str, '\\'); return TRUE;
  case 'x':
  case 'X': {
    gunichar u = 0;
    int n = 0;
    while (n < 4 && g_ascii_isxdigit(s[m->pos])) {
      u = u << 4 | (gunichar)g_ascii_xdigit_value(s[m->pos]);
      m->pos++;
      n++;
    }
    if (n == 0)
      return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER,
                       "\\x escape without hexadecimal digits");
    if (u == 0 || (u >= 0xd800 && u <= 0xdfff))
      return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER,
                       "\\x escape for U+%04X, which is not a character", u);
    g_string_append_unichar(m->str, u);
    return TRUE;
  }
  default:
    if (c == '\0' || c == '\n' || c == '\r')
      return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER,
                       "unterminated string");
    return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER,
                     "unknown escape sequence in string");
  }
}

/* A "string" or 'c' literal starting at m->pos. */
static gboolean
scan_quoted(Mof *m, char quote, GError **error)
{
  const char *s = m->t->text;
  gsize start = m->pos;

  g_string_truncate(m->str, 0);
  m->pos++;
  for (;;) {
    char c = s[m->pos];
    if (c == quote) {
      m->pos++;
      break;
    }
    if (c == '\0' || c == '\n' || c == '\r')
      return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER,
                       quote == '"' ? "unterminated string" : "unterminated character literal");
    if (c == '\\') {
      if (!scan_escape(m, error))
        return FALSE;
    } else {
      g_string_append_c(m->str, c);
      m->pos++;
    }
  }
  if (quote == '\'' && g_utf8_strlen(m->str->str, (gssize)m->str->len) != 1)
    return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER,
                     "a character literal holds exactly one character");
  return TRUE;
}

/* Loads the next token. */
static gboolean
advance(Mof *m, GError **error)
{
  const char *s = m->t->text;
  guchar c;

  if (!skip_blank(m, error))
    return FALSE;
  m->tok_pos = m->pos;
  c = (guchar)s[m->pos];
  if (c == '\0') {
    m->kind = TOK_EOF;
  } else if (is_ident_start(c)) {
    while (is_ident_char((guchar)s[m->pos]))
      m->pos++;
    m->kind = TOK_IDENT;
  } else if (c == '"' || c == '\'') {
    if (!scan_quoted(m, (char)c, error))
      return FALSE;
    m->kind = c == '"' ? TOK_STRING : TOK_CHAR;
  } else if (g_ascii_isdigit(c) || c == '.' ||
             ((c == '+' || c == '-') && (g_ascii_isdigit(s[m->pos + 1]) || s[m->pos + 1] == '.'))) {
    /* Integers (decimal, 0x hex, binary with b suffix, octal) and reals:
     * their exact form does not matter, no known property takes them. */
    m->pos++;
    while (g_ascii_isalnum(s[m->pos]) || s[m->pos] == '.' ||
           ((s[m->pos] == '+' || s[m->pos] == '-') &&
            (s[m->pos - 1] == 'e' || s[m->pos - 1] == 'E')))
      m->pos++;
    m->kind = TOK_NUMBER;
  } else if (c == '$' && is_ident_start((guchar)s[m->pos + 1])) {
    m->pos++;
    while (is_ident_char((guchar)s[m->pos]))
      m->pos++;
    m->kind = TOK_ALIAS;
  } else if (strchr("{}[]();=,:", c) != NULL) {
    m->pos++;
    m->kind = TOK_PUNCT;
    m->punct = (char)c;
  } else if (c >= 0x20 && c < 0x7f) {
    return mof_error(m, m->pos, error, MSVM_RC_INVALID_PARAMETER, "unexpected character '%c'", c);
  } else {
    return mof_error(m, m->pos, error, MSVM_RC_INVALID_PARAMETER,
                     "unexpected character U+%04X", (guint)c);
  }
  m->tok_len = m->pos - m->tok_pos;
  return TRUE;
}

static gboolean
tok_is_punct(Mof *m, char c)
{
  return m->kind == TOK_PUNCT && m->punct == c;
}

static gboolean
tok_is_word(Mof *m, const char *word)
{
  return m->kind == TOK_IDENT && m->tok_len == strlen(word) &&
         g_ascii_strncasecmp(m->t->text + m->tok_pos, word, m->tok_len) == 0;
}

static char *
tok_text(Mof *m)
{
  return g_strndup(m->t->text + m->tok_pos, m->tok_len);
}

static const char *
tok_describe(Mof *m)
{
  switch (m->kind) {
  case TOK_EOF: return "the end of the text";
  case TOK_IDENT: return "a name";
  case TOK_STRING: return "a string";
  case TOK_CHAR: return "a character literal";
  case TOK_NUMBER: return "a number";
  case TOK_ALIAS: return "an alias";
  case TOK_PUNCT: break;
  }
  return "punctuation";
}

static gboolean
expect_punct(Mof *m, char c, const char *context, GError **error)
{
  if (!tok_is_punct(m, c)) {
    if (m->kind == TOK_PUNCT)
      return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                       "expected '%c' %s, found '%c'", c, context, m->punct);
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected '%c' %s, found %s", c, context, tok_describe(m));
  }
  return advance(m, error);
}

/* [ qualifier, ... ]: skipped, brackets balanced. */
static gboolean
skip_qualifiers(Mof *m, GError **error)
{
  gsize start = m->tok_pos;
  guint depth = 0;

  do {
    if (m->kind == TOK_EOF)
      return mof_error(m, start, error, MSVM_RC_INVALID_PARAMETER, "unterminated qualifier list");
    if (tok_is_punct(m, '['))
      depth++;
    else if (tok_is_punct(m, ']'))
      depth--;
    if (!advance(m, error))
      return FALSE;
  } while (depth > 0);
  return TRUE;
}

typedef enum {
  VAL_NULL,
  VAL_BOOLEAN,
  VAL_STRING,
  VAL_OTHER,   /* number, character, alias: no known property takes them */
  VAL_ARRAY,
} ValKind;

/* One scalar value at the current token; string literals concatenate into
 * @str.  Leaves the token after the value current. */
static gboolean
parse_scalar(Mof *m, ValKind *ret_kind, gboolean *ret_bool, GString *str, const char **ret_what,
             GError **error)
{
  if (m->kind == TOK_STRING) {
    g_string_truncate(str, 0);
    while (m->kind == TOK_STRING) {
      g_string_append_len(str, m->str->str, (gssize)m->str->len);
      if (!advance(m, error))
        return FALSE;
    }
    *ret_kind = VAL_STRING;
    *ret_what = "a string";
    return TRUE;
  }
  if (tok_is_word(m, "TRUE") || tok_is_word(m, "FALSE")) {
    *ret_kind = VAL_BOOLEAN;
    *ret_bool = tok_is_word(m, "TRUE");
    *ret_what = "a boolean";
    return advance(m, error);
  }
  if (tok_is_word(m, "NULL")) {
    *ret_kind = VAL_NULL;
    *ret_what = "NULL";
    return advance(m, error);
  }
  if (m->kind == TOK_NUMBER || m->kind == TOK_CHAR || m->kind == TOK_ALIAS) {
    *ret_kind = VAL_OTHER;
    *ret_what = m->kind == TOK_NUMBER ? "a number"
              : m->kind == TOK_CHAR ? "a character" : "an object reference ($alias)";
    return advance(m, error);
  }
  if (m->kind == TOK_IDENT) {
    g_autofree char *word = tok_text(m);
    g_autofree char *quoted = msvm_instance_quote(word);
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected a value, found the name %s", quoted);
  }
  if (m->kind == TOK_PUNCT)
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected a value, found '%c'", m->punct);
  return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                   "expected a value, found %s", tok_describe(m));
}

/* Name = value; */
static gboolean
parse_assignment(Mof *m, MsvmInstanceBuilder *b, GError **error)
{
  g_autofree char *name = NULL;
  g_autoptr(GString) str = g_string_new(NULL);
  gsize name_pos = m->tok_pos;
  gsize value_pos;
  ValKind kind = VAL_NULL;
  gboolean boolean = FALSE;
  const char *what = NULL;
  MsvmProp prop;

  if (m->kind != TOK_IDENT)
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected a property name or '}', found %s", tok_describe(m));
  name = tok_text(m);
  if (!advance(m, error) || !expect_punct(m, '=', "after the property name", error))
    return FALSE;
  value_pos = m->tok_pos;
  if (tok_is_punct(m, '{')) {
    if (!advance(m, error))
      return FALSE;
    while (!tok_is_punct(m, '}')) {
      ValKind element;
      const char *element_what;
      if (!parse_scalar(m, &element, &boolean, str, &element_what, error))
        return FALSE;
      if (tok_is_punct(m, ',')) {
        if (!advance(m, error))
          return FALSE;
      } else if (!tok_is_punct(m, '}')) {
        return expect_punct(m, '}', "to end the array", error);
      }
    }
    if (!advance(m, error))
      return FALSE;
    kind = VAL_ARRAY;
    what = "an array";
  } else if (!parse_scalar(m, &kind, &boolean, str, &what, error)) {
    return FALSE;
  }
  if (!expect_punct(m, ';', "after the value", error))
    return FALSE;

  if (!msvm_instance_builder_add(b, name, &prop, error)) {
    g_autofree char *where = msvm_instance_text_where(m->t, name_pos);
    g_prefix_error(error, "MOF at %s: ", where);
    return FALSE;
  }
  if (prop == MSVM_PROP_LAST || kind == VAL_NULL)
    return TRUE;
  {
    MsvmCimType type = msvm_settings_props[prop].type;
    gboolean ok;

    if ((kind == VAL_BOOLEAN && type == MSVM_CIM_BOOLEAN) ||
        (kind == VAL_STRING && type == MSVM_CIM_STRING)) {
      ok = kind == VAL_BOOLEAN ? msvm_instance_builder_set_boolean(b, prop, boolean, error)
                               : msvm_instance_builder_set_text(b, prop, str->str, error);
    } else {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                  "property %s: %s is given, its CIM type is %s", msvm_settings_props[prop].name,
                  what, msvm_instance_cim_type_name(type));
      ok = FALSE;
    }
    if (!ok) {
      g_autofree char *where = msvm_instance_text_where(m->t, value_pos);
      g_prefix_error(error, "MOF at %s: ", where);
    }
    return ok;
  }
}

/* instance of Class [as $Alias] { assignments } [;] */
static gboolean
parse_instance(Mof *m, MsvmInstanceBuilder *b, GError **error)
{
  g_autofree char *class_name = NULL;
  gsize class_pos;

  if (!tok_is_word(m, "instance")) {
    if (m->kind == TOK_IDENT) {
      g_autofree char *word = tok_text(m);
      g_autofree char *quoted = msvm_instance_quote(word);
      return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                       "expected \"instance of\", found %s", quoted);
    }
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected \"instance of\", found %s", tok_describe(m));
  }
  if (!advance(m, error))
    return FALSE;
  if (!tok_is_word(m, "of"))
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected \"of\" after \"instance\"");
  if (!advance(m, error))
    return FALSE;
  if (m->kind != TOK_IDENT)
    return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "expected a class name after \"instance of\", found %s", tok_describe(m));
  class_name = tok_text(m);
  class_pos = m->tok_pos;
  if (!msvm_instance_builder_begin(b, class_name, error)) {
    g_autofree char *where = msvm_instance_text_where(m->t, class_pos);
    g_prefix_error(error, "MOF at %s: ", where);
    return FALSE;
  }
  if (!advance(m, error))
    return FALSE;
  if (tok_is_word(m, "as")) {
    if (!advance(m, error))
      return FALSE;
    if (m->kind != TOK_ALIAS)
      return mof_error(m, m->tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                       "expected an alias ($name) after \"as\"");
    if (!advance(m, error))
      return FALSE;
  }
  if (!expect_punct(m, '{', "to open the instance", error))
    return FALSE;
  while (!tok_is_punct(m, '}')) {
    if (tok_is_punct(m, '[') && !skip_qualifiers(m, error))
      return FALSE;
    if (!parse_assignment(m, b, error))
      return FALSE;
  }
  if (!advance(m, error))
    return FALSE;
  if (tok_is_punct(m, ';') && !advance(m, error))
    return FALSE;
  return TRUE;
}

gboolean
msvm_instance_parse_mof(const MsvmInstanceText *t, MsvmInstanceBuilder *b, GError **error)
{
  g_autoptr(GString) str = g_string_new(NULL);
  Mof m = { .t = t, .str = str };

  if (!advance(&m, error))
    return FALSE;
  while (m.kind != TOK_EOF) {
    if (tok_is_punct(&m, '[') && !skip_qualifiers(&m, error))
      return FALSE;
    if (!parse_instance(&m, b, error))
      return FALSE;
  }
  if (b->instances == 0)
    return mof_error(&m, m.tok_pos, error, MSVM_RC_INVALID_PARAMETER,
                     "no \"instance of Msvm_SecuritySettingData\" found");
  return TRUE;
}
