/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The instance parser (xml/msvm-instance.h) and the two formatters.
 *
 * Data-driven, one test per file of tests/data/instance/:
 *   <case>.xml|.mof|.bin          valid input; <case>.out is the expected
 *                                 result: the MOF formatting of the parsed
 *                                 model after a "// VM UUID:" line.  Every
 *                                 valid case also round-trips through both
 *                                 formatters.
 *   <case>-invalid.<ext>          bad input; <case>-invalid.err holds the
 *                                 expected return code on line 1 and a
 *                                 substring of the message on line 2.
 * MSVM_TEST_REGENERATE_OUTPUT=1 rewrites the .out files instead of comparing
 * (review with git diff).
 *
 * The shared samples (MSVM_SHARED_SAMPLES) run too when present; inputs too
 * large to commit (size limit, deep nesting) are generated here.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "msvm-error.h"
#include "msvm-instance.h"

static const char *
datadir(void)
{
  static char *dir;

  if (dir == NULL) {
    const char *base = g_getenv("MSVM_TEST_DATADIR");
    dir = g_build_filename(base != NULL ? base : MSVM_SOURCEDIR "/tests/data", "instance", NULL);
  }
  return dir;
}

static gboolean
settings_equal(const MsvmSettings *a, const MsvmSettings *b)
{
  if (a->has_vm_uuid != b->has_vm_uuid ||
      (a->has_vm_uuid && memcmp(a->vm_uuid, b->vm_uuid, 16) != 0))
    return FALSE;
  for (int p = 0; p < MSVM_PROP_LAST; p++) {
    const MsvmValue *x = &a->values[p], *y = &b->values[p];
    if (x->present != y->present)
      return FALSE;
    if (!x->present)
      continue;
    if (msvm_settings_props[p].type == MSVM_CIM_BOOLEAN ? x->boolean != y->boolean
                                                        : g_strcmp0(x->string, y->string) != 0)
      return FALSE;
  }
  return TRUE;
}

static char *
describe(const MsvmSettings *s)
{
  g_autofree char *mof = msvm_settings_format_mof(s);
  g_autofree char *uuid = NULL;

  if (s->has_vm_uuid) {
    const guint8 *u = s->vm_uuid;
    uuid = g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                           u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
                           u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  }
  return g_strdup_printf("// VM UUID: %s\n%s", uuid != NULL ? uuid : "none", mof);
}

/* Both formatters' output parses back to @s. */
static void
assert_round_trip(const MsvmSettings *s)
{
  char *texts[2] = { msvm_settings_format_mof(s), msvm_settings_format_cim_xml(s) };

  for (int i = 0; i < 2; i++) {
    g_autoptr(MsvmSettings) again = NULL;
    g_autoptr(GError) error = NULL;
    if (!msvm_instance_parse((const guint8 *)texts[i], strlen(texts[i]), &again, &error))
      g_test_fail_printf("formatted text does not parse back: %s\n%s", error->message, texts[i]);
    else
      g_assert_true(settings_equal(s, again));
    g_free(texts[i]);
  }
}

static gboolean
regenerate(void)
{
  return g_strcmp0(g_getenv("MSVM_TEST_REGENERATE_OUTPUT"), "1") == 0;
}

/* Parses @data and checks it fails with @code and a message containing
 * @substring; *ret_settings must stay untouched. */
static void
assert_parse_fails(const guint8 *data, gsize len, guint code, const char *substring)
{
  MsvmSettings *sentinel = (MsvmSettings *)&sentinel;
  MsvmSettings *settings = sentinel;
  g_autoptr(GError) error = NULL;

  g_assert_false(msvm_instance_parse(data, len, &settings, &error));
  g_assert_true(settings == sentinel);
  g_assert_nonnull(error);
  g_test_message("message: %s", error->message);
  g_assert_cmpstr(g_quark_to_string(error->domain), ==, g_quark_to_string(MSVM_ERROR));
  g_assert_cmpuint(error->code, ==, code);
  if (strstr(error->message, substring) == NULL)
    g_test_fail_printf("message \"%s\" does not contain \"%s\"", error->message, substring);
}

static void
test_valid_file(gconstpointer user_data)
{
  const char *path = user_data;
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmSettings) settings = NULL;
  g_autofree char *actual = NULL;
  g_autofree char *stem = g_strndup(path, strrchr(path, '.') - path);
  g_autofree char *out_path = g_strconcat(stem, ".out", NULL);

  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  if (!msvm_instance_parse((const guint8 *)data, len, &settings, &error)) {
    g_test_fail_printf("%s: %s", path, error->message);
    return;
  }
  actual = describe(settings);
  if (regenerate()) {
    g_assert_true(g_file_set_contents(out_path, actual, -1, NULL));
  } else {
    g_autofree char *expected = NULL;
    if (!g_file_get_contents(out_path, &expected, NULL, &error)) {
      g_test_fail_printf("%s (regenerate with MSVM_TEST_REGENERATE_OUTPUT=1)", error->message);
      return;
    }
    g_assert_cmpstr(actual, ==, expected);
  }
  assert_round_trip(settings);
}

static void
test_invalid_file(gconstpointer user_data)
{
  const char *path = user_data;
  g_autofree char *data = NULL;
  g_autofree char *err = NULL;
  gsize len = 0;
  g_autofree char *stem = g_strndup(path, strrchr(path, '.') - path);
  g_autofree char *err_path = g_strconcat(stem, ".err", NULL);
  g_auto(GStrv) lines = NULL;

  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  if (!g_file_get_contents(err_path, &err, NULL, NULL)) {
    g_test_fail_printf("%s is missing", err_path);
    return;
  }
  lines = g_strsplit(err, "\n", 3);
  g_assert_nonnull(lines[0]);
  g_assert_nonnull(lines[1]);
  assert_parse_fails((const guint8 *)data, len, (guint)atoi(lines[0]), lines[1]);
}

/* ---- the shared samples ------------------------------------------------- */

static void
test_sample(gconstpointer user_data)
{
  const char *name = user_data;
  const char *dir = g_getenv("MSVM_SHARED_SAMPLES");
  g_autofree char *path = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(MsvmSettings) settings = NULL;
  g_autoptr(GError) error = NULL;

  if (dir == NULL || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    g_test_skip("MSVM_SHARED_SAMPLES is not a folder");
    return;
  }
  path = g_build_filename(dir, name, NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_test_skip("sample not present");
    return;
  }
  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  if (strcmp(name, "invalid-type.xml") == 0) {
    assert_parse_fails((const guint8 *)data, len, MSVM_RC_INCORRECT_TYPE, "TpmEnabled");
    return;
  }
  if (!msvm_instance_parse((const guint8 *)data, len, &settings, &error)) {
    g_test_fail_printf("%s: %s", path, error->message);
    return;
  }
  g_assert_true(settings->has_vm_uuid);
  g_assert_cmpuint(settings->vm_uuid[0], ==, 0x5f);
  g_assert_cmpuint(settings->vm_uuid[15], ==, 0x5b);
  g_assert_true(msvm_settings_is_true(settings, MSVM_PROP_TPM_ENABLED));
  g_assert_true(msvm_settings_is_true(settings, MSVM_PROP_ENCRYPT_STATE_AND_VM_MIGRATION_TRAFFIC));
  g_assert_cmpint(msvm_settings_is_true(settings, MSVM_PROP_SHIELDING_REQUESTED), ==,
                  strcmp(name, "shielded.mof") == 0);
  assert_round_trip(settings);
}

/* ---- generated inputs --------------------------------------------------- */

static const char instance_head[] = "<INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\">";

static void
test_empty(void)
{
  assert_parse_fails((const guint8 *)"", 0, MSVM_RC_INVALID_PARAMETER, "empty");
  assert_parse_fails(NULL, 0, MSVM_RC_INVALID_PARAMETER, "empty");
  assert_parse_fails((const guint8 *)" \n\t ", 4, MSVM_RC_INVALID_PARAMETER, "empty");
  assert_parse_fails((const guint8 *)"\xef\xbb\xbf", 3, MSVM_RC_INVALID_PARAMETER, "empty");
  assert_parse_fails((const guint8 *)"\xff\xfe", 2, MSVM_RC_INVALID_PARAMETER, "empty");
  assert_parse_fails((const guint8 *)"<VALUE>  </VALUE>", 17, MSVM_RC_INVALID_PARAMETER, "empty");
}

/* An instance whose Description is @fill bytes long. */
static GString *
instance_with_description(gsize fill)
{
  GString *s = g_string_new(instance_head);

  g_string_append(s, "<PROPERTY NAME=\"Description\" TYPE=\"string\"><VALUE>");
  for (gsize i = 0; i < fill; i++)
    g_string_append_c(s, "abcdefghij"[i % 10]);
  g_string_append(s, "</VALUE></PROPERTY>"
                     "<PROPERTY NAME=\"TpmEnabled\" TYPE=\"boolean\"><VALUE>TRUE</VALUE></PROPERTY>"
                     "</INSTANCE>");
  return s;
}

static void
test_size_limit(void)
{
  g_autoptr(MsvmSettings) settings = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) big = instance_with_description(1024 * 1024);
  g_autoptr(GString) limit = NULL;
  g_autoptr(GString) over = NULL;
  g_autofree char *expected = NULL;

  /* 1 MiB of text is accepted. */
  g_assert_true(msvm_instance_parse((const guint8 *)big->str, big->len, &settings, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(strlen(settings->values[MSVM_PROP_DESCRIPTION].string), ==, 1024 * 1024);
  g_clear_pointer(&settings, msvm_settings_free);

  /* Exactly the limit is accepted, one byte more is not. */
  limit = instance_with_description(0);
  limit = instance_with_description(MSVM_SETTINGS_MAX_SIZE - limit->len);
  g_assert_cmpuint(limit->len, ==, MSVM_SETTINGS_MAX_SIZE);
  g_assert_true(msvm_instance_parse((const guint8 *)limit->str, limit->len, &settings, &error));
  g_assert_no_error(error);
  over = instance_with_description(MSVM_SETTINGS_MAX_SIZE - 120);
  while (over->len <= MSVM_SETTINGS_MAX_SIZE)
    g_string_prepend_c(over, ' ');
  expected = g_strdup_printf("limit of %u bytes", MSVM_SETTINGS_MAX_SIZE);
  assert_parse_fails((const guint8 *)over->str, over->len, MSVM_RC_INVALID_PARAMETER, expected);
}

static void
test_deep_nesting(void)
{
  const guint depth = 10000;
  g_autoptr(GString) s = g_string_new(instance_head);

  g_string_append(s, "<PROPERTY NAME=\"Unknown\"><VALUE>");
  for (guint i = 0; i < depth; i++)
    g_string_append(s, "<a>");
  for (guint i = 0; i < depth; i++)
    g_string_append(s, "</a>");
  g_string_append(s, "</VALUE></PROPERTY></INSTANCE>");
  assert_parse_fails((const guint8 *)s->str, s->len, MSVM_RC_INVALID_PARAMETER, "nested too deeply");

  /* The same inside an escaped embedded instance. */
  {
    g_autofree char *escaped = g_markup_escape_text(s->str, (gssize)s->len);
    g_autofree char *wrapped = g_strdup_printf("<VALUE>%s</VALUE>", escaped);
    assert_parse_fails((const guint8 *)wrapped, strlen(wrapped), MSVM_RC_INVALID_PARAMETER,
                       "nested too deeply");
  }
  /* Unclosed, too. */
  g_string_truncate(s, 0);
  for (guint i = 0; i < depth; i++)
    g_string_append(s, "<VALUE>");
  assert_parse_fails((const guint8 *)s->str, s->len, MSVM_RC_INVALID_PARAMETER, "malformed XML");
}

/* Thousands of attributes on one element are refused before libxml2,
 * whose duplicate check is quadratic, sees them: this must be quick. */
static void
test_many_attributes(void)
{
  g_autoptr(GString) s = g_string_new("<INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\"");
  gint64 start;

  while (s->len < MSVM_SETTINGS_MAX_SIZE - 32)
    g_string_append_printf(s, " a%u=\"\"", (guint)s->len);
  g_string_append(s, "/>");
  start = g_get_monotonic_time();
  assert_parse_fails((const guint8 *)s->str, s->len, MSVM_RC_INVALID_PARAMETER,
                     "has more than 64 attributes");
  g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
}

/* Prefix lookups in libxml2 walk every namespace declaration in scope:
 * many declarations are refused up front, quickly. */
static void
test_many_namespaces(void)
{
  g_autoptr(GString) s = g_string_new(NULL);
  gint64 start;

  for (guint d = 0; d < 250; d++) {
    g_string_append_printf(s, "<e%u", d);
    for (guint i = 0; i < 60; i++)
      g_string_append_printf(s, " xmlns:n%u_%u=\"u\"", d, i);
    g_string_append_c(s, '>');
  }
  while (s->len < MSVM_SETTINGS_MAX_SIZE - 250 * 8)
    g_string_append(s, "<n0_0:a/>");
  for (guint d = 250; d-- > 0;)
    g_string_append_printf(s, "</e%u>", d);
  start = g_get_monotonic_time();
  assert_parse_fails((const guint8 *)s->str, s->len, MSVM_RC_INVALID_PARAMETER,
                     "more than 16 XML namespace declarations");
  g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
}

/* An external entity naming a local file: the file's content never shows
 * up, whether the DOCTYPE is in the document or in the embedded text. */
static void
test_external_entity(void)
{
  static const char marker[] = "MSVM-XXE-MARKER-7f3a";
  g_autofree char *dir = g_dir_make_tmp("msvm-instance-XXXXXX", NULL);
  g_autofree char *file = g_build_filename(dir, "secret", NULL);
  g_autofree char *doc = NULL;
  g_autofree char *escaped = NULL;
  g_autofree char *wrapped = NULL;
  const char *inputs[3];

  g_assert_nonnull(dir);
  g_assert_true(g_file_set_contents(file, marker, -1, NULL));
  doc = g_strdup_printf("<?xml version=\"1.0\"?>"
                        "<!DOCTYPE INSTANCE [<!ENTITY xxe SYSTEM \"file://%s\">]>"
                        "%s<PROPERTY NAME=\"Caption\" TYPE=\"string\"><VALUE>&xxe;</VALUE></PROPERTY>"
                        "<PROPERTY NAME=\"ElementName\" TYPE=\"string\"><VALUE>&xxe;</VALUE></PROPERTY>"
                        "</INSTANCE>", file, instance_head);
  escaped = g_markup_escape_text(doc, -1);
  wrapped = g_strdup_printf("<VALUE>%s</VALUE>", escaped);
  inputs[0] = doc;
  inputs[1] = wrapped;
  inputs[2] = NULL;
  for (int i = 0; inputs[i] != NULL; i++) {
    MsvmSettings *settings = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_false(msvm_instance_parse((const guint8 *)inputs[i], strlen(inputs[i]), &settings, &error));
    g_assert_null(settings);
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
    g_assert_nonnull(strstr(error->message, "DOCTYPE"));
    g_assert_null(strstr(error->message, marker));
  }
  /* An external DTD by SYSTEM identifier is not fetched either. */
  {
    g_autofree char *ext = g_strdup_printf("<!DOCTYPE INSTANCE SYSTEM \"file://%s\">%s</INSTANCE>",
                                           file, instance_head);
    assert_parse_fails((const guint8 *)ext, strlen(ext), MSVM_RC_INVALID_PARAMETER, "DOCTYPE");
  }
  g_assert_cmpint(g_unlink(file), ==, 0);
  g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* libxml2 never prints, whatever the input: standard output and error
 * go to a file while bad inputs are parsed, and the file stays empty. */
static void
test_silent(void)
{
  static const char *bad[] = {
    "<INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\"><PROPERTY",
    "<!DOCTYPE a [<!ENTITY b \"c\">]><a>&b;</a>",
    "<a>&undefined;</a>",
    "<?xml version=\"1.0\" encoding=\"bogus\"?><a/>",
    "<VALUE>&lt;INSTANCE</VALUE>",
    "<x:INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\"><y:a/></x:INSTANCE>",
    "<a b=\"1\" b=\"2\"/>",
    "<?xml version=\"1.0\"?>\n<a>\n</b>",
  };
  g_autofree char *path = NULL;
  g_autofree char *captured = NULL;
  int fd = g_file_open_tmp("msvm-instance-silent-XXXXXX", &path, NULL);
  int saved_out = dup(1), saved_err = dup(2);

  g_assert_cmpint(fd, >=, 0);
  fflush(stdout);
  fflush(stderr);
  g_assert_cmpint(dup2(fd, 1), ==, 1);
  g_assert_cmpint(dup2(fd, 2), ==, 2);
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    MsvmSettings *settings = NULL;
    g_autoptr(GError) error = NULL;
    msvm_instance_parse((const guint8 *)bad[i], strlen(bad[i]), &settings, &error);
    msvm_settings_free(settings);
  }
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  close(fd);
  g_assert_true(g_file_get_contents(path, &captured, NULL, NULL));
  g_unlink(path);
  g_assert_cmpstr(captured, ==, "");
}

/* A declaration naming another encoding does not confuse the parser: the
 * text is UTF-8 by the time libxml2 sees it. */
static void
test_declared_encoding(void)
{
  static const char text[] =
    "<?xml version=\"1.0\" encoding=\"UTF-16\"?>"
    "<INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\"><PROPERTY NAME=\"Caption\" TYPE=\"string\">"
    "<VALUE>Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x92</VALUE></PROPERTY></INSTANCE>";
  g_autoptr(MsvmSettings) settings = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true(msvm_instance_parse((const guint8 *)text, strlen(text), &settings, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(settings->values[MSVM_PROP_CAPTION].string, ==,
                  "Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x94\x92");
}

/* Bad UTF-16 and bad UTF-8 name their byte offset in the input. */
static void
test_bad_encoding(void)
{
  static const guint8 odd[] = { 0xff, 0xfe, '<', 0, 'a' };
  static const guint8 lone[] = { 0xff, 0xfe, '<', 0, 0x00, 0xdc, '/', 0 };
  static const guint8 high_end[] = { 0xfe, 0xff, 0, '<', 0xd8, 0x00 };
  static const guint8 nul[] = { 0xff, 0xfe, '<', 0, 0, 0 };
  static const guint8 no_bom[] = { '<', 0, 'a', 0 };
  static const guint8 bad8[] = { 0xef, 0xbb, 0xbf, '<', 'a', '>', 0xc3, 0x28, '<', '/', 'a', '>' };

  assert_parse_fails(odd, sizeof(odd), MSVM_RC_INVALID_PARAMETER, "byte offset 4");
  assert_parse_fails(lone, sizeof(lone), MSVM_RC_INVALID_PARAMETER, "low surrogate at byte offset 4");
  assert_parse_fails(high_end, sizeof(high_end), MSVM_RC_INVALID_PARAMETER, "high surrogate at byte offset 4");
  assert_parse_fails(nul, sizeof(nul), MSVM_RC_INVALID_PARAMETER, "NUL character at byte offset 4");
  assert_parse_fails(no_bom, sizeof(no_bom), MSVM_RC_INVALID_PARAMETER, "byte-order mark");
  assert_parse_fails(bad8, sizeof(bad8), MSVM_RC_INVALID_PARAMETER, "invalid UTF-8 at byte offset 6");
}

/* Every combination of the booleans, and strings that need escaping,
 * survive both formatters. */
static void
test_round_trip(void)
{
  static const char *strings[] = {
    NULL, "", " ", "plain", "a\"b\\c", "<&>]]>'\"", "tab\tnew\nline\rcr\r\n",
    "\b\f\x01\x1f\x7f", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92", "/* not a comment */ // nor this",
    "Microsoft:5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B\\extra",
  };

  for (guint i = 0; i < 3 * 3 * 3; i++) {
    g_autoptr(MsvmSettings) s = msvm_settings_new();
    guint k = i;
    for (int p = 0; p < MSVM_PROP_LAST; p++) {
      if (msvm_settings_props[p].type == MSVM_CIM_BOOLEAN) {
        if (k % 3 != 2)
          msvm_settings_set_boolean(s, (MsvmProp)p, k % 3 == 1);
        k = k / 3 + p;
      } else if (p != MSVM_PROP_INSTANCE_ID) {
        const char *v = strings[(i + (guint)p) % G_N_ELEMENTS(strings)];
        if (v != NULL && strchr(v, '\x01') != NULL && p == MSVM_PROP_CAPTION)
          continue;
        msvm_settings_set_string(s, (MsvmProp)p, v);
      }
    }
    if (i % 2 == 0) {
      msvm_settings_set_string(s, MSVM_PROP_INSTANCE_ID, strings[G_N_ELEMENTS(strings) - 1]);
      g_assert_true(msvm_settings_parse_instance_id(strings[G_N_ELEMENTS(strings) - 1], s->vm_uuid, NULL));
      s->has_vm_uuid = TRUE;
    }
    /* Control characters other than TAB/LF/CR cannot travel in XML. */
    for (int p = 0; p < MSVM_PROP_LAST; p++) {
      const char *v = s->values[p].string;
      if (v != NULL && strpbrk(v, "\b\f\x01\x1f") != NULL)
        msvm_settings_set_string(s, (MsvmProp)p, "x");
    }
    assert_round_trip(s);
  }
}

/* A string holding a character XML cannot carry is refused, so that every
 * accepted instance can be written back as CIM-XML. */
static void
test_mof_control_character(void)
{
  static const char text[] = "instance of Msvm_SecuritySettingData { Caption = \"a\\x01\"; };";
  assert_parse_fails((const guint8 *)text, strlen(text), MSVM_RC_INVALID_PARAMETER, "Caption");
}

/* ---- registration ------------------------------------------------------- */

static gboolean
is_input(const char *name)
{
  return g_str_has_suffix(name, ".xml") || g_str_has_suffix(name, ".mof") ||
         g_str_has_suffix(name, ".bin");
}

int
main(int argc, char **argv)
{
  static const char *samples[] = {
    "minimal.xml", "minimal-utf16le.xml", "wmi-cimdtd20.xml", "shielded.mof", "invalid-type.xml",
  };
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  const char *name;

  g_test_init(&argc, &argv, NULL);

  dir = g_dir_open(datadir(), 0, &error);
  if (dir == NULL)
    g_error("%s", error->message);
  while ((name = g_dir_read_name(dir)) != NULL) {
    if (is_input(name))
      g_ptr_array_add(names, g_strdup(name));
  }
  g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
  g_assert_cmpuint(names->len, >, 0);
  for (guint i = 0; i < names->len; i++) {
    const char *n = g_ptr_array_index(names, i);
    gboolean invalid = strstr(n, "-invalid.") != NULL;
    g_autofree char *test_path = g_strdup_printf("/instance/%s/%s", invalid ? "invalid" : "valid", n);
    g_test_add_data_func_full(test_path, g_build_filename(datadir(), n, NULL),
                              invalid ? test_invalid_file : test_valid_file, g_free);
  }
  for (guint i = 0; i < G_N_ELEMENTS(samples); i++) {
    g_autofree char *test_path = g_strdup_printf("/instance/shared-sample/%s", samples[i]);
    g_test_add_data_func(test_path, samples[i], test_sample);
  }
  g_test_add_func("/instance/empty", test_empty);
  g_test_add_func("/instance/size-limit", test_size_limit);
  g_test_add_func("/instance/deep-nesting", test_deep_nesting);
  g_test_add_func("/instance/many-attributes", test_many_attributes);
  g_test_add_func("/instance/many-namespaces", test_many_namespaces);
  g_test_add_func("/instance/external-entity", test_external_entity);
  g_test_add_func("/instance/silent", test_silent);
  g_test_add_func("/instance/declared-encoding", test_declared_encoding);
  g_test_add_func("/instance/bad-encoding", test_bad_encoding);
  g_test_add_func("/instance/round-trip", test_round_trip);
  g_test_add_func("/instance/mof-control-character", test_mof_control_character);
  return g_test_run();
}
