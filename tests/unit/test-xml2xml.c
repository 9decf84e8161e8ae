/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-xml2xml: golden tests of the domain translation (DESIGN.md section 4),
 * in the style of libvirt's qemuxml2xmltest, and of `msvm-security
 * translate`.
 *
 * tests/data/xml2xml/ holds one case per NAME:
 *   NAME.settings.{xml,mof,bin}  the instance (read with msvm_instance_parse)
 *   NAME.in.xml                  the input domain (or opts input=FILE)
 *   NAME.out.xml                 the expected domain
 *   NAME.stash-in.xml            the stash given (or opts stash=FILE)
 *   NAME.stash-out.xml           the expected stash (absent: none expected)
 *   NAME.msg                     the expected message (absent: none)
 *   NAME.opts                    key=value lines: secret=UUID, force=1,
 *                                check_host=1, host_has_secure_boot=0|1,
 *                                input=FILE, stash=FILE, same-as=FILE (the
 *                                output equals FILE but for the project's
 *                                metadata and the TPM device)
 * Refusals are NAME-invalid.* with NAME-invalid.err: the return code on the
 * first line, a substring of the message on the second; the document must
 * come back unchanged.
 *
 * Every valid case also checks: the output validates against libvirt's
 * schema (virt-xml-validate), nothing of the stash (passwords) is in the
 * metadata, msvm_domain_read_settings() gives back the merged settings, and
 * applying the same settings again changes nothing.
 *
 * MSVM_TEST_REGENERATE_OUTPUT=1 rewrites the expected files.
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-instance.h"

#define TEST_SECRET "3a1f6c2e-9b4d-4e8a-a7c5-0d2b4f6e8a1c"

static char *datadir;
static char *tmpdir;
static gboolean regenerate;

typedef struct {
  char *name;
  gboolean invalid;
} Case;

static void
case_free(gpointer data)
{
  Case *c = data;

  g_free(c->name);
  g_free(c);
}

static char *
case_file(const char *name, const char *suffix)
{
  g_autofree char *base = g_strconcat(name, suffix, NULL);

  return g_build_filename(datadir, base, NULL);
}

static char *
read_text(const char *path)
{
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  if (!g_file_get_contents(path, &text, NULL, &error))
    g_error("%s", error->message);
  return text;
}

static GHashTable *
read_opts(const char *name)
{
  static const char *const known[] = {
    "secret", "force", "check_host", "host_has_secure_boot", "input", "stash", "same-as", NULL
  };
  GHashTable *opts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *path = case_file(name, ".opts");
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    return opts;
  text = read_text(path);
  lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    char *eq = strchr(lines[i], '=');
    if (*lines[i] == '\0' || *lines[i] == '#')
      continue;
    g_assert_nonnull(eq);
    *eq = '\0';
    if (!g_strv_contains(known, lines[i]))
      g_error("%s: unknown option %s", path, lines[i]);
    g_hash_table_insert(opts, g_strdup(lines[i]), g_strdup(eq + 1));
  }
  return opts;
}

static MsvmSettings *
load_settings(const char *name)
{
  static const char *const exts[] = { ".settings.xml", ".settings.mof", ".settings.bin" };
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS(exts); i++) {
    g_autofree char *path = case_file(name, exts[i]);
    g_autofree char *data = NULL;
    gsize len = 0;
    MsvmSettings *settings = NULL;
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
      continue;
    g_assert_true(g_file_get_contents(path, &data, &len, &error));
    if (!msvm_instance_parse((const guint8 *)data, len, &settings, &error))
      g_error("%s: %s", path, error->message);
    return settings;
  }
  g_error("case %s has no settings file", name);
  return NULL;
}

static xmlDocPtr
load_domain(const char *path, char **ret_text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = read_text(path);
  xmlDocPtr doc = msvm_domain_parse(text, strlen(text), &error);

  g_assert_no_error(error);
  if (ret_text != NULL)
    *ret_text = g_steal_pointer(&text);
  return doc;
}

/* Compare @actual with the expected file (NULL @actual: the file must not
 * exist), or rewrite it when regenerating. */
static void
check_golden(const char *path, const char *actual)
{
  g_autofree char *expected = NULL;

  if (regenerate) {
    if (actual == NULL) {
      g_unlink(path);
    } else {
      g_autoptr(GError) error = NULL;
      g_assert_true(g_file_set_contents(path, actual, -1, &error));
    }
    return;
  }
  if (actual == NULL) {
    if (g_file_test(path, G_FILE_TEST_EXISTS))
      g_error("%s exists but nothing was produced", path);
    return;
  }
  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    g_error("%s is missing (regenerate with MSVM_TEST_REGENERATE_OUTPUT=1)", path);
  expected = read_text(path);
  g_assert_cmpstr(actual, ==, expected);
}

/* libvirt's own schema check. */
static void
check_schema(const char *name, const char *xml)
{
  g_autofree char *prog = g_find_program_in_path("virt-xml-validate");
  g_autofree char *file = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  if (prog == NULL) {
    g_test_message("virt-xml-validate is not installed: schema check of %s skipped", name);
    return;
  }
  file = g_strdup_printf("%s/%s.xml", tmpdir, name);
  g_assert_true(g_file_set_contents(file, xml, -1, &error));
  {
    const char *argv[] = { prog, file, "domain", NULL };
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &err, &status, &error));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    g_error("%s does not validate against libvirt's schema:\n%s%s", name, out, err);
  g_unlink(file);
}

/* Remove the project's metadata element and the TPM devices: what must be
 * left of a shielded-then-unshielded domain is the original. */
static char *
strip_ours(const char *path_or_null, xmlDocPtr doc_or_null)
{
  xmlDocPtr doc = doc_or_null ? xmlCopyDoc(doc_or_null, 1) : load_domain(path_or_null, NULL);
  xmlNodePtr root = xmlDocGetRootElement(doc);
  GPtrArray *gone = g_ptr_array_new();
  char *text;

  for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE)
      continue;
    for (xmlNodePtr d = c->children; d != NULL; d = d->next) {
      if (d->type != XML_ELEMENT_NODE)
        continue;
      if ((xmlStrcmp(c->name, BAD_CAST "metadata") == 0 && d->ns != NULL &&
           xmlStrcmp(d->ns->href, BAD_CAST MSVM_METADATA_NS) == 0) ||
          (xmlStrcmp(c->name, BAD_CAST "devices") == 0 &&
           xmlStrcmp(d->name, BAD_CAST "tpm") == 0))
        g_ptr_array_add(gone, d);
    }
  }
  for (guint i = 0; i < gone->len; i++) {
    xmlNodePtr n = gone->pdata[i];
    if (n->prev != NULL && n->prev->type == XML_TEXT_NODE) {
      xmlNodePtr t = n->prev;
      xmlUnlinkNode(t);
      xmlFreeNode(t);
    }
    xmlUnlinkNode(n);
    xmlFreeNode(n);
  }
  g_ptr_array_free(gone, TRUE);
  /* a <metadata> created for the project's element only */
  for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "metadata") == 0 &&
        xmlChildElementCount(c) == 0) {
      if (c->prev != NULL && c->prev->type == XML_TEXT_NODE) {
        xmlNodePtr t = c->prev;
        xmlUnlinkNode(t);
        xmlFreeNode(t);
      }
      xmlUnlinkNode(c);
      xmlFreeNode(c);
      break;
    }
  }
  text = msvm_domain_format(doc);
  xmlFreeDoc(doc);
  return text;
}

static char *
metadata_text(xmlDocPtr doc)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlBufferPtr buf = xmlBufferCreate();
  char *text;

  for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "metadata") == 0)
      xmlNodeDump(buf, doc, c, 0, 0);
  }
  text = g_strdup((const char *)xmlBufferContent(buf));
  xmlBufferFree(buf);
  return text;
}

static void
test_case(gconstpointer data)
{
  const Case *c = data;
  g_autoptr(GHashTable) opts = read_opts(c->name);
  g_autoptr(MsvmSettings) settings = load_settings(c->name);
  g_autoptr(GError) error = NULL;
  const char *input_opt = g_hash_table_lookup(opts, "input");
  const char *stash_opt = g_hash_table_lookup(opts, "stash");
  const char *same_as = g_hash_table_lookup(opts, "same-as");
  g_autofree char *input = input_opt ? g_build_filename(datadir, input_opt, NULL)
                                     : case_file(c->name, ".in.xml");
  g_autofree char *stash_path = stash_opt ? g_build_filename(datadir, stash_opt, NULL)
                                          : case_file(c->name, ".stash-in.xml");
  g_autofree char *stash = NULL;
  g_autofree char *before = NULL;
  g_autofree char *out = NULL;
  g_autofree char *stash_out = NULL;
  g_autofree char *message = NULL;
  g_autofree char *out_path = case_file(c->name, ".out.xml");
  g_autofree char *stash_out_path = case_file(c->name, ".stash-out.xml");
  g_autofree char *msg_path = case_file(c->name, ".msg");
  MsvmTranslateOptions o = {
    .secret_uuid = g_hash_table_lookup(opts, "secret"),
    .force = g_strcmp0(g_hash_table_lookup(opts, "force"), "1") == 0,
    .check_host = g_strcmp0(g_hash_table_lookup(opts, "check_host"), "1") == 0,
    .host_has_secure_boot =
      g_strcmp0(g_hash_table_lookup(opts, "host_has_secure_boot"), "1") == 0,
  };
  xmlDocPtr doc = load_domain(input, NULL);
  gboolean ok;

  if (g_file_test(stash_path, G_FILE_TEST_EXISTS))
    stash = read_text(stash_path);
  before = msvm_domain_format(doc);
  ok = msvm_domain_apply(doc, settings, &o, stash, &stash_out, &message, &error);

  if (c->invalid) {
    g_autofree char *err_path = case_file(c->name, ".err");
    g_autofree char *after = msvm_domain_format(doc);
    g_autofree char *expected = NULL;
    g_auto(GStrv) lines = NULL;

    g_assert_false(ok);
    g_assert_nonnull(error);
    g_assert_true(error->domain == MSVM_ERROR);
    g_assert_null(stash_out);
    g_assert_null(message);
    /* a refusal leaves the document exactly as it was */
    g_assert_cmpstr(after, ==, before);
    g_test_message("%s: %d %s", c->name, error->code, error->message);
    if (regenerate && !g_file_test(err_path, G_FILE_TEST_EXISTS)) {
      g_autofree char *text = g_strdup_printf("%d\n%s\n", error->code, error->message);
      g_assert_true(g_file_set_contents(err_path, text, -1, NULL));
    }
    expected = read_text(err_path);
    lines = g_strsplit(expected, "\n", 3);
    g_assert_cmpint(error->code, ==, (int)g_ascii_strtoll(lines[0], NULL, 10));
    if (lines[1] != NULL && *lines[1] != '\0' && strstr(error->message, lines[1]) == NULL)
      g_error("%s: message \"%s\" does not contain \"%s\"", c->name, error->message, lines[1]);
    xmlFreeDoc(doc);
    return;
  }

  g_assert_no_error(error);
  g_assert_true(ok);
  out = msvm_domain_format(doc);
  check_golden(out_path, out);
  check_golden(stash_out_path, stash_out);
  {
    g_autofree char *msg_line = message ? g_strconcat(message, "\n", NULL) : NULL;
    check_golden(msg_path, msg_line);
  }
  check_schema(c->name, out);

  /* nothing secret in the domain's metadata */
  {
    g_autofree char *md = metadata_text(doc);
    g_assert_null(strstr(md, "passwd"));
    g_assert_null(strstr(md, "do-not-leak"));
    if (stash_out != NULL)
      g_assert_null(strstr(out, "do-not-leak"));
  }

  /* the reverse: what the domain records is the merged instance */
  {
    xmlDocPtr indoc = load_domain(input, NULL);
    g_autoptr(MsvmSettings) expected = NULL;
    g_autoptr(MsvmSettings) actual = NULL;
    g_autofree char *instance_id = NULL;
    g_autofree char *expected_mof = NULL;
    g_autofree char *actual_mof = NULL;

    g_assert_true(msvm_domain_read_settings(indoc, &expected, &error));
    g_assert_no_error(error);
    instance_id = g_strdup(expected->values[MSVM_PROP_INSTANCE_ID].string);
    msvm_settings_merge(expected, settings);
    /* InstanceID always comes back from the domain's UUID */
    msvm_settings_set_string(expected, MSVM_PROP_INSTANCE_ID, instance_id);
    g_assert_true(msvm_domain_read_settings(doc, &actual, &error));
    g_assert_no_error(error);
    g_assert_true(msvm_domain_is_managed(doc));
    expected_mof = msvm_settings_format_mof(expected);
    actual_mof = msvm_settings_format_mof(actual);
    g_assert_cmpstr(actual_mof, ==, expected_mof);
    xmlFreeDoc(indoc);
  }

  /* the same settings again change nothing */
  {
    xmlDocPtr again = msvm_domain_parse(out, strlen(out), &error);
    g_autofree char *out2 = NULL;
    g_autofree char *stash2 = NULL;
    g_autofree char *message2 = NULL;

    g_assert_no_error(error);
    g_assert_true(msvm_domain_apply(again, settings, &o, stash_out, &stash2, &message2, &error));
    g_assert_no_error(error);
    out2 = msvm_domain_format(again);
    g_assert_cmpstr(out2, ==, out);
    g_assert_cmpstr(stash2, ==, stash_out);
    xmlFreeDoc(again);
  }

  if (same_as != NULL) {
    g_autofree char *path = g_build_filename(datadir, same_as, NULL);
    g_autofree char *want = strip_ours(path, NULL);
    g_autofree char *have = strip_ours(NULL, doc);
    g_assert_cmpstr(have, ==, want);
  }
  xmlFreeDoc(doc);
}

/* ---- API checks beyond the golden files */

static void
test_helpers(void)
{
  g_autofree char *path = g_build_filename(datadir, "tpm-replace-secret.in.xml", NULL);
  g_autofree char *text = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *formatted = NULL;
  xmlDocPtr doc = load_domain(path, &text);
  guint8 uuid[16];
  static const guint8 want[16] = { 0x5f, 0x2b, 0x7a, 0x1c, 0x3d, 0x4e, 0x4f, 0x60,
                                   0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b };
  g_autoptr(GError) error = NULL;

  /* a libvirt-written document comes back byte for byte */
  formatted = msvm_domain_format(doc);
  g_assert_cmpstr(formatted, ==, text);
  g_assert_true(msvm_domain_get_uuid(doc, uuid, &error));
  g_assert_cmpmem(uuid, 16, want, 16);
  secret = msvm_domain_get_tpm_secret(doc);
  g_assert_cmpstr(secret, ==, "0b9e2c4a-1d3f-4a5b-8c7d-9e0f1a2b3c4d");
  g_assert_false(msvm_domain_is_managed(doc));
  xmlFreeDoc(doc);
}

static void
test_parse_refusals(void)
{
  static const char *const bad[] = {
    "",
    "<domain",
    "<notdomain/>",
    "<!DOCTYPE domain [<!ENTITY x 'y'>]><domain>&x;</domain>",
    "<!DOCTYPE domain SYSTEM 'http://example.com/x.dtd'><domain/>",
    "<domain><name>a</name></domain><extra/>",
    /* not namespace-well-formed: an attribute ":bus", then a warning (a
     * processing instruction named xmle) that used to hide the error (the domain fuzz
     * target found it: the device, copied into the stash, did not parse
     * again) */
    "<domain><devices><redirdev :bus='usb'/></devices><?xmle x?></domain>",
    "<domain><devices><redirdev bus='usb' u:type='spicevmc'/></devices><?xmle x?></domain>",
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    xmlDocPtr doc = msvm_domain_parse(bad[i], strlen(bad[i]), &error);
    g_assert_null(doc);
    g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  }
}

static void
test_read_unmanaged(void)
{
  g_autofree char *path = g_build_filename(datadir, "tpm-false.in.xml", NULL);
  xmlDocPtr doc = load_domain(path, NULL);
  g_autoptr(MsvmSettings) s = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true(msvm_domain_read_settings(doc, &s, &error));
  g_assert_cmpstr(s->values[MSVM_PROP_INSTANCE_ID].string, ==,
                  "Microsoft:5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B");
  g_assert_true(msvm_settings_is_true(s, MSVM_PROP_TPM_ENABLED));
  g_assert_false(s->values[MSVM_PROP_SHIELDING_REQUESTED].present);
  xmlFreeDoc(doc);
}

/* ---- the CLI */

typedef struct {
  char *out;
  char *err;
  int status;
} Run;

static void
run_clear(Run *r)
{
  g_free(r->out);
  g_free(r->err);
}

static void
run_cli(Run *r, const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  const char *builddir = g_getenv("MSVM_BUILDDIR");
  va_list ap;
  int status = 0;

  g_assert_nonnull(builddir);
  g_ptr_array_add(argv, g_build_filename(builddir, "hooks", "msvm-security", NULL));
  va_start(ap, first);
  for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
    g_ptr_array_add(argv, g_strdup(a));
  va_end(ap);
  g_ptr_array_add(argv, NULL);
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                             &r->out, &r->err, &status, &error));
  g_assert_no_error(error);
  g_assert_true(WIFEXITED(status));
  r->status = WEXITSTATUS(status);
}

static char *
sample(const char *name)
{
  const char *dir = g_getenv("MSVM_SHARED_SAMPLES");
  g_autofree char *path = NULL;

  /* ../shared/samples beside the checkout, else the project's own copies
   * (tests/e2e/samples), so a lone checkout runs these checks too. */
  if (dir != NULL) {
    path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_EXISTS))
      return g_steal_pointer(&path);
  }
  g_assert_nonnull(g_getenv("MSVM_SOURCEDIR"));
  return g_build_filename(g_getenv("MSVM_SOURCEDIR"), "tests", "e2e", "samples", name, NULL);
}

static void
test_cli_samples(void)
{
  static const char *const instances[] = {
    "minimal.xml", "minimal-utf16le.xml", "wmi-cimdtd20.xml", "shielded.mof"
  };
  g_autofree char *q35 = sample("domain-q35-uefi.xml");

  for (gsize i = 0; i < G_N_ELEMENTS(instances); i++) {
    g_autofree char *settings = sample(instances[i]);
    g_autofree char *stash = g_build_filename(tmpdir, "cli-stash.xml", NULL);
    g_autofree char *name = g_strdup_printf("cli-%s", instances[i]);
    Run r = { 0 };
    struct stat st;

    g_unlink(stash);
    run_cli(&r, "translate", "--settings", settings, "--domain-xml", q35,
            "--secret", TEST_SECRET, "--stash", stash, NULL);
    g_test_message("%s: %s", instances[i], r.err);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_true(g_str_has_prefix(r.err, "ReturnValue: 0 (Completed with No Error)"));
    g_assert_true(g_str_has_prefix(r.out, "<domain"));
    g_assert_nonnull(strstr(r.out, "<encryption secret='" TEST_SECRET "'/>"));
    check_schema(name, r.out);
    if (strstr(instances[i], "shielded") != NULL) {
      g_autofree char *stash_text = read_text(stash);
      g_assert_null(strstr(r.out, "do-not-leak"));
      g_assert_nonnull(strstr(r.out, "name='secure-boot'"));
      g_assert_nonnull(strstr(r.out, "<smm state='on'/>"));
      g_assert_nonnull(strstr(stash_text, "passwd='do-not-leak'"));
      g_assert_cmpint(g_stat(stash, &st), ==, 0);
      g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    } else {
      g_assert_false(g_file_test(stash, G_FILE_TEST_EXISTS));
    }
    run_clear(&r);
    g_unlink(stash);
  }
}

static void
test_cli_refusals(void)
{
  g_autofree char *bios = sample("domain-bios.xml");
  g_autofree char *q35 = sample("domain-q35-uefi.xml");
  g_autofree char *shielded = sample("shielded.mof");
  g_autofree char *invalid = sample("invalid-type.xml");
  g_autofree char *minimal = sample("minimal.xml");
  g_autofree char *stash = g_build_filename(tmpdir, "cli-refused-stash.xml", NULL);
  Run r = { 0 };

  run_cli(&r, "translate", "--settings", shielded, "--domain-xml", bios,
          "--secret", TEST_SECRET, "--stash", stash, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_cmpstr(r.out, ==, "");
  g_assert_true(g_str_has_prefix(r.err, "ReturnValue: 32775 (Invalid state for this operation)\n"));
  g_assert_false(g_file_test(stash, G_FILE_TEST_EXISTS));
  run_clear(&r);

  run_cli(&r, "translate", "--settings", invalid, "--domain-xml", q35,
          "--secret", TEST_SECRET, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_cmpstr(r.out, ==, "");
  g_assert_true(g_str_has_prefix(r.err, "ReturnValue: 32776 (Incorrect data type)\n"));
  run_clear(&r);

  /* no --secret where a protector is needed */
  run_cli(&r, "translate", "--settings", minimal, "--domain-xml", q35, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_cmpstr(r.out, ==, "");
  g_assert_true(g_str_has_prefix(r.err, "ReturnValue: 32775 "));
  run_clear(&r);

  /* shielding would drop devices without --stash */
  run_cli(&r, "translate", "--settings", shielded, "--domain-xml", q35,
          "--secret", TEST_SECRET, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_cmpstr(r.out, ==, "");
  g_assert_true(g_str_has_prefix(r.err, "ReturnValue: 32773 "));
  run_clear(&r);

  /* usage errors */
  run_cli(&r, "translate", "--domain-xml", q35, NULL);
  g_assert_cmpint(r.status, ==, 2);
  run_clear(&r);
  run_cli(&r, "translate", "--settings", minimal, "--domain-xml", q35, "--bogus", NULL);
  g_assert_cmpint(r.status, ==, 2);
  run_clear(&r);
}

static void
test_cli_json_and_roundtrip(void)
{
  g_autofree char *q35 = sample("domain-q35-uefi.xml");
  g_autofree char *shielded = sample("shielded.mof");
  g_autofree char *stash = g_build_filename(tmpdir, "cli-rt-stash.xml", NULL);
  g_autofree char *mid = g_build_filename(tmpdir, "cli-rt-shielded.xml", NULL);
  g_autofree char *unshield = g_build_filename(tmpdir, "cli-rt-unshield.mof", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) error = NULL;
  g_autofree char *original = read_text(q35);
  JsonObject *obj;
  const char *payload;
  Run r = { 0 };

  g_unlink(stash);
  run_cli(&r, "--json", "translate", "--settings", shielded, "--domain-xml", q35,
          "--secret", TEST_SECRET, "--stash", stash, NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_true(json_parser_load_from_data(parser, r.out, -1, &error));
  g_assert_no_error(error);
  obj = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpint(json_object_get_int_member(obj, "ReturnValue"), ==, 0);
  g_assert_cmpstr(json_object_get_string_member(obj, "ReturnName"), ==,
                  "Completed with No Error");
  g_assert_nonnull(strstr(json_object_get_string_member(obj, "Message"), "--reset-nvram"));
  payload = json_object_get_string_member(obj, "Payload");
  g_assert_true(g_str_has_prefix(payload, "<domain"));
  g_assert_null(strstr(payload, "do-not-leak"));
  g_assert_true(g_file_set_contents(mid, payload, -1, NULL));
  run_clear(&r);

  g_assert_true(g_file_set_contents(
    unshield, "instance of Msvm_SecuritySettingData { ShieldingRequested = FALSE; };\n", -1,
    NULL));
  run_cli(&r, "translate", "--settings", unshield, "--domain-xml", mid,
          "--secret", TEST_SECRET, "--stash", stash, NULL);
  g_assert_cmpint(r.status, ==, 0);
  /* the devices are back, byte for byte, and the stash is gone */
  g_assert_nonnull(strstr(r.out, "    <console type='pty'/>\n    <input type='tablet' bus='usb'/>\n"));
  g_assert_nonnull(strstr(r.out, "    <graphics type='vnc' port='-1' autoport='yes' passwd='do-not-leak'/>\n    <video>\n"));
  g_assert_null(strstr(r.out, "secure-boot"));
  g_assert_null(strstr(r.out, "smm"));
  g_assert_false(g_file_test(stash, G_FILE_TEST_EXISTS));
  check_schema("cli-roundtrip", r.out);
  run_clear(&r);
  g_unlink(mid);
  g_unlink(unshield);
}

/* ---- real libvirt: its own re-dump of our output is our output */

static gboolean
virsh(const char *root, const char *command, char **ret_out)
{
  g_autofree char *prog = g_find_program_in_path("virsh");
  g_autofree char *setpriv = g_find_program_in_path("setpriv");
  g_autofree char *uri = g_strdup_printf("qemu:///embed?root=%s", root);
  g_autofree char *home = g_strdup_printf("HOME=%s", root);
  g_autofree char *cfg = g_strdup_printf("XDG_CONFIG_HOME=%s/cf", root);
  g_autofree char *cache = g_strdup_printf("XDG_CACHE_HOME=%s/c", root);
  g_autofree char *run = g_strdup_printf("XDG_RUNTIME_DIR=%s/r", root);
  const char *envp[] = { home, cfg, cache, run, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                         "LC_ALL=C", NULL };
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  /* The embedded QEMU driver runs in virsh itself.  As root it wants the
   * libvirt-qemu user of a full libvirt-daemon-system install; as any other
   * user it runs as that user, so root drops to nobody. */
  if (geteuid() == 0) {
    g_assert_nonnull(setpriv);
    g_ptr_array_add(argv, setpriv);
    g_ptr_array_add(argv, "--reuid=65534");
    g_ptr_array_add(argv, "--regid=65534");
    g_ptr_array_add(argv, "--clear-groups");
  }
  g_ptr_array_add(argv, prog);
  g_ptr_array_add(argv, "-q");
  g_ptr_array_add(argv, "-c");
  g_ptr_array_add(argv, uri);
  g_ptr_array_add(argv, (char *)command);
  g_ptr_array_add(argv, NULL);
  g_autofree char *out = NULL;

  /* stdout is always captured: anything virsh printed to ours would break
   * the TAP stream. */
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, (char **)envp, G_SPAWN_DEFAULT,
                             NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error(error);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    g_test_message("virsh %s failed: %s", command, err);
    return FALSE;
  }
  if (ret_out != NULL)
    *ret_out = g_steal_pointer(&out);
  return TRUE;
}

static void
libvirt_redump(const char *root, const char *name)
{
  g_autofree char *path = g_build_filename(datadir, name, NULL);
  g_autofree char *text = read_text(path);
  g_autofree char *copy = g_build_filename(tmpdir, "libvirt-input.xml", NULL);
  g_autofree char *define = g_strdup_printf("define %s", copy);
  g_autofree char *out = NULL;
  g_autofree char *dumped = NULL;

  g_assert_true(g_file_set_contents(copy, text, -1, NULL));
  g_assert_cmpint(g_chmod(copy, 0644), ==, 0);
  g_assert_true(virsh(root, define, &out));
  g_assert_true(virsh(root, "dumpxml --inactive --security-info sample-uefi", &dumped));
  /* virsh adds one newline after the document */
  if (g_str_has_suffix(dumped, "\n\n"))
    dumped[strlen(dumped) - 1] = '\0';
  g_assert_cmpstr(dumped, ==, text);
  g_unlink(copy);
}

static void
test_libvirt_roundtrip(void)
{
  g_autofree char *prog = g_find_program_in_path("virsh");
  g_autofree char *setpriv = g_find_program_in_path("setpriv");
  g_autofree char *root = g_build_filename(tmpdir, "embed", NULL);
  g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");

  if (prog == NULL || qemu == NULL || (geteuid() == 0 && setpriv == NULL)) {
    g_test_skip("virsh, qemu-system-x86_64 or setpriv is missing");
    return;
  }
  g_assert_cmpint(g_mkdir_with_parents(root, 0777), ==, 0);
  g_assert_cmpint(g_chmod(tmpdir, 0755), ==, 0);
  g_assert_cmpint(g_chmod(root, 0777), ==, 0);
  if (!virsh(root, "uri", NULL)) {
    g_test_skip("libvirt's embedded QEMU driver does not start here");
  } else {
    /* the input is libvirt 9.0's own formatting; libvirt accepts what the
     * translation made of it, and writes it back identically */
    libvirt_redump(root, "libvirt-dump-shield.in.xml");
    libvirt_redump(root, "libvirt-dump-shield.out.xml");
    libvirt_redump(root, "libvirt-dump-shield-unshield.out.xml");
  }
  {
    const char *argv[] = { "rm", "-rf", root, NULL };
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               NULL, NULL, NULL, NULL));
  }
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char **)a, *(const char **)b);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const char *name;
  int rc;

  g_test_init(&argc, &argv, NULL);
  datadir = g_build_filename(g_getenv("MSVM_TEST_DATADIR") ? g_getenv("MSVM_TEST_DATADIR")
                                                            : MSVM_SOURCEDIR "/tests/data",
                             "xml2xml", NULL);
  regenerate = g_strcmp0(g_getenv("MSVM_TEST_REGENERATE_OUTPUT"), "1") == 0;
  tmpdir = g_dir_make_tmp("msvm-xml2xml-XXXXXX", &error);
  g_assert_no_error(error);

  dir = g_dir_open(datadir, 0, &error);
  g_assert_no_error(error);
  while ((name = g_dir_read_name(dir)) != NULL) {
    if (g_str_has_suffix(name, ".settings.xml") || g_str_has_suffix(name, ".settings.mof") ||
        g_str_has_suffix(name, ".settings.bin"))
      g_ptr_array_add(names, g_strndup(name, strlen(name) - strlen(".settings.xml")));
  }
  /* chained cases read an earlier case's output: run in name order */
  g_ptr_array_sort(names, compare_strings);
  for (guint i = 0; i < names->len; i++) {
    Case *c = g_new0(Case, 1);
    g_autofree char *path = NULL;
    c->name = g_strdup(names->pdata[i]);
    c->invalid = g_str_has_suffix(c->name, "-invalid");
    path = g_strdup_printf("/xml2xml/%s", c->name);
    g_test_add_data_func_full(path, c, test_case, case_free);
  }
  g_test_add_func("/xml2xml-api/helpers", test_helpers);
  g_test_add_func("/xml2xml-api/parse-refusals", test_parse_refusals);
  g_test_add_func("/xml2xml-api/read-unmanaged", test_read_unmanaged);
  g_test_add_func("/translate-cli/samples", test_cli_samples);
  g_test_add_func("/translate-cli/refusals", test_cli_refusals);
  g_test_add_func("/translate-cli/json-and-roundtrip", test_cli_json_and_roundtrip);
  g_test_add_func("/translate-libvirt/redump", test_libvirt_roundtrip);

  rc = g_test_run();
  g_rmdir(tmpdir);
  g_free(tmpdir);
  g_free(datadir);
  return rc;
}
