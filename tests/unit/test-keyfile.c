/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-keyfile: the store's key-file codec (util/msvm-keyfile.h) against
 * GKeyFile, whose format it keeps: what either writes, the other reads to
 * the same values; refusals name the line by number and never quote it;
 * what GKeyFile tolerates (CRLF, comments, blanks around "=", repeated
 * groups and keys, values with a bad escape) reads the same.
 */
#include "config.h"

#include <string.h>

#include "msvm-error.h"
#include "msvm-keyfile.h"

/* The values the store writes, and the awkward ones a stash or an error
 * description can have. */
static const char *const values[] = {
  "XbqwzoH/O12QkGaLK2fIPMHyKkdm0rVA+6JRl1VUvJg=",
  "5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b",
  "18446744073709551615",
  "-9223372036854775808",
  "",
  "  two leading spaces",
  "\tleading tab, inner\ttab",
  "trailing space ",
  "line one\nline two\r\nthree",
  "back\\slash \\n not a newline",
  "<graphics type='vnc' passwd='s3cr=t'/>\n  <x a=\"[b]\"/>",
  "UTF-8: \xc3\xa9\xe2\x82\xac",
  "#not a comment",
  "=starts with equals",
};

static void
test_gkeyfile_reads_ours(void)
{
  g_autoptr(MsvmKeyFile) ours = msvm_key_file_new();
  g_autoptr(GKeyFile) theirs = g_key_file_new();
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
    g_autofree char *key = g_strdup_printf("key-%zu", i);
    msvm_key_file_set_string(ours, i % 2 ? "generation 1" : "store", key, values[i]);
  }
  text = msvm_key_file_to_data(ours, &len);
  g_assert_cmpuint(len, ==, strlen(text));
  g_assert_true(g_key_file_load_from_data(theirs, text, len, G_KEY_FILE_NONE, &error));
  g_assert_no_error(error);
  for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
    g_autofree char *key = g_strdup_printf("key-%zu", i);
    g_autofree char *got =
      g_key_file_get_string(theirs, i % 2 ? "generation 1" : "store", key, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(got, ==, values[i]);
  }
}

static void
test_ours_reads_gkeyfile(void)
{
  g_autoptr(GKeyFile) theirs = g_key_file_new();
  g_autoptr(MsvmKeyFile) ours = msvm_key_file_new();
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *again = NULL;
  g_autofree char *theirs_again = NULL;
  gsize len = 0;
  guint64 u = 0;
  gint64 s = 0;

  for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
    g_autofree char *key = g_strdup_printf("key-%zu", i);
    g_key_file_set_string(theirs, "stash", key, values[i]);
  }
  g_key_file_set_uint64(theirs, "store", "next-generation", G_MAXUINT64);
  g_key_file_set_int64(theirs, "store", "created", G_MININT64);
  g_key_file_set_boolean(theirs, "store", "flag", TRUE);
  g_key_file_set_boolean(theirs, "store", "other", FALSE);
  text = g_key_file_to_data(theirs, &len, NULL);

  g_assert_true(msvm_key_file_load(ours, text, len, &error));
  g_assert_no_error(error);
  for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
    g_autofree char *key = g_strdup_printf("key-%zu", i);
    g_assert_cmpstr(msvm_key_file_get_string(ours, "stash", key), ==, values[i]);
  }
  g_assert_true(msvm_key_file_get_uint64(ours, "store", "next-generation", &u));
  g_assert_cmpuint(u, ==, G_MAXUINT64);
  g_assert_true(msvm_key_file_get_int64(ours, "store", "created", &s));
  g_assert_cmpint(s, ==, G_MININT64);
  g_assert_true(msvm_key_file_get_boolean(ours, "store", "flag"));
  g_assert_false(msvm_key_file_get_boolean(ours, "store", "other"));
  g_assert_false(msvm_key_file_get_boolean(ours, "store", "missing"));
  g_assert_cmpuint(msvm_key_file_n_groups(ours), ==, 2);
  g_assert_cmpstr(msvm_key_file_group_name(ours, 0), ==, "stash");
  g_assert_cmpstr(msvm_key_file_group_name(ours, 1), ==, "store");

  /* what it writes from that is what GKeyFile wrote, but for the tabs it
   * escapes everywhere (GKeyFile only at the start of a value) */
  again = msvm_key_file_to_data(ours, NULL);
  theirs_again = g_strdup(text);
  {
    g_autoptr(GString) expected = g_string_new(theirs_again);
    g_string_replace(expected, "inner\ttab", "inner\\ttab", 0);
    g_assert_cmpstr(again, ==, expected->str);
  }
}

static void
test_tolerated(void)
{
  static const char text[] =
    "# a comment\r\n"
    "\n"
    "[store]\r\n"
    "  version = 1\n"
    "seed=first\n"
    "seed=second\n"
    "bad-escape=a\\qb\n"
    "not-utf8=\xff\xfe\n"
    "trailing=backslash\\\n"
    "[job 1]\n"
    "method=SetKeyProtector\n"
    "\t# an indented comment\n"
    "[store]  \n"
    "current=3";
  g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();
  g_autoptr(GError) error = NULL;
  guint64 u = 0;

  g_assert_true(msvm_key_file_load(kf, text, sizeof(text) - 1, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(msvm_key_file_n_groups(kf), ==, 2);
  g_assert_true(msvm_key_file_get_uint64(kf, "store", "version", &u));
  g_assert_cmpuint(u, ==, 1);
  g_assert_cmpstr(msvm_key_file_get_string(kf, "store", "seed"), ==, "second");
  g_assert_null(msvm_key_file_get_string(kf, "store", "bad-escape"));
  g_assert_null(msvm_key_file_get_string(kf, "store", "not-utf8"));
  g_assert_null(msvm_key_file_get_string(kf, "store", "trailing"));
  g_assert_true(msvm_key_file_get_uint64(kf, "store", "current", &u));
  g_assert_cmpuint(u, ==, 3);
  g_assert_cmpstr(msvm_key_file_get_string(kf, "job 1", "method"), ==, "SetKeyProtector");
  g_assert_true(msvm_key_file_has_group(kf, "job 1"));
  g_assert_false(msvm_key_file_has_group(kf, "job 2"));
}

static void
test_refused(void)
{
  /* Each bad line holds "s3cret", which the message must not quote. */
  static const struct {
    const char *text;
    guint line;
  } bad[] = {
    { "s3cret=1\n", 1 },
    { "[store]\ns3cret\n", 2 },
    { "[store]\n=s3cret\n", 2 },
    { "[store]\n\n[s3cret\n", 3 },
    { "[store]\n[s3cret]x\n", 2 },
    { "[]\ns3cret=1\n", 1 },
    { "[st[o]re]\ns3cret=1\n", 1 },
    { "[st\x01ore]\ns3cret=1\n", 1 },
    { "[st\xffore]\ns3cret=1\n", 1 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *where = g_strdup_printf("line %u ", bad[i].line);

    g_assert_false(msvm_key_file_load(kf, bad[i].text, strlen(bad[i].text), &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
    g_assert_nonnull(strstr(error->message, where));
    g_assert_null(strstr(error->message, "s3cret"));
  }
  {
    static const char with_nul[] = "[store]\nseed=a\0b\n";
    g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();
    g_autoptr(GError) error = NULL;
    g_assert_false(msvm_key_file_load(kf, with_nul, sizeof(with_nul) - 1, &error));
    g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  }
}

static void
test_numbers(void)
{
  static const char text[] =
    "[n]\n"
    "max=18446744073709551615\n"
    "over=18446744073709551616\n"
    "plus=+5\n"
    "space=5 \n"
    "hex=0x10\n"
    "empty=\n"
    "imax=9223372036854775807\n"
    "iover=9223372036854775808\n"
    "imin=-9223372036854775808\n"
    "iunder=-9223372036854775809\n"
    "minus=-\n"
    "zero=-0\n";
  g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();
  g_autoptr(GError) error = NULL;
  guint64 u = 7;
  gint64 s = 7;

  g_assert_true(msvm_key_file_load(kf, text, sizeof(text) - 1, &error));
  g_assert_true(msvm_key_file_get_uint64(kf, "n", "max", &u));
  g_assert_cmpuint(u, ==, G_MAXUINT64);
  u = 7;
  for (const char *const *k = (const char *const[]){ "over", "plus", "space", "hex", "empty",
                                                      "minus", "missing", NULL };
       *k != NULL; k++) {
    g_assert_false(msvm_key_file_get_uint64(kf, "n", *k, &u));
    g_assert_cmpuint(u, ==, 7);
  }
  g_assert_true(msvm_key_file_get_int64(kf, "n", "imax", &s));
  g_assert_cmpint(s, ==, G_MAXINT64);
  g_assert_true(msvm_key_file_get_int64(kf, "n", "imin", &s));
  g_assert_cmpint(s, ==, G_MININT64);
  g_assert_true(msvm_key_file_get_int64(kf, "n", "zero", &s));
  g_assert_cmpint(s, ==, 0);
  s = 7;
  g_assert_false(msvm_key_file_get_int64(kf, "n", "iover", &s));
  g_assert_false(msvm_key_file_get_int64(kf, "n", "iunder", &s));
  g_assert_false(msvm_key_file_get_int64(kf, "n", "minus", &s));
  g_assert_cmpint(s, ==, 7);
}

static void
test_set_replaces(void)
{
  g_autoptr(MsvmKeyFile) kf = msvm_key_file_new();
  g_autofree char *text = NULL;

  msvm_key_file_set_string(kf, "b", "k", "one");
  msvm_key_file_set_uint64(kf, "a", "n", 5);
  msvm_key_file_set_string(kf, "b", "k", "two");
  msvm_key_file_set_boolean(kf, "b", "f", TRUE);
  msvm_key_file_set_string(kf, "b", "bad", "\xff");
  g_assert_cmpstr(msvm_key_file_get_string(kf, "b", "k"), ==, "two");
  g_assert_cmpstr(msvm_key_file_get_string(kf, "b", "bad"), ==, "\xef\xbf\xbd");
  text = msvm_key_file_to_data(kf, NULL);
  g_assert_cmpstr(text, ==, "[b]\nk=two\nf=true\nbad=\xef\xbf\xbd\n\n[a]\nn=5\n");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/keyfile/gkeyfile-reads-ours", test_gkeyfile_reads_ours);
  g_test_add_func("/keyfile/ours-reads-gkeyfile", test_ours_reads_gkeyfile);
  g_test_add_func("/keyfile/tolerated", test_tolerated);
  g_test_add_func("/keyfile/refused", test_refused);
  g_test_add_func("/keyfile/numbers", test_numbers);
  g_test_add_func("/keyfile/set-replaces", test_set_replaces);
  return g_test_run();
}
