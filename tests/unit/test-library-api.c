/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-library-api.c: a client of libmsvm-security built the way an outside
 * program is: only <msvm-security.h> (and msvm-error.h), linked with the
 * shared library.  What needs no daemon: remote and foreign URIs are
 * refused with 32770 before any connection, the return codes have their
 * Hyper-V names, the boxed types copy and free, a service that is not
 * connected answers 32777 (the guardian calls too).
 */
#include "config.h"

#include "msvm-security.h"

static void
test_remote_refused(void)
{
  const char *uris[] = { "qemu+ssh://host.example/system", "qemu://host.example/system",
                         "qemu+tcp://10.0.0.1/session", "test:///default" };

  for (gsize i = 0; i < G_N_ELEMENTS(uris); i++) {
    g_autoptr(GError) error = NULL;
    MsvmService *svc = msvm_service_open(uris[i], &error);
    g_assert_null(svc);
    g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED);
    g_assert_cmpuint(msvm_error_to_return_code(error), ==, 32770);
  }
}

static void
test_codes(void)
{
  g_assert_cmpstr(msvm_return_code_name(0), ==, "Completed with No Error");
  g_assert_cmpstr(msvm_return_code_name(4096), ==, "Method Parameters Checked - Job Started");
  g_assert_cmpstr(msvm_return_code_name(32775), ==, "Invalid state for this operation");
  g_assert_null(msvm_return_code_name(5));
  g_assert_cmpuint(MSVM_SECURITY_PROTECTOR_MAX_SIZE, ==, 65536);
}

static void
test_result_boxed(void)
{
  MsvmCallResult r = { .return_value = 4096, .job = g_strdup("j"), .message = g_strdup("m") };
  g_autoptr(MsvmCallResult) copy = g_boxed_copy(MSVM_TYPE_CALL_RESULT, &r);

  g_assert_cmpuint(copy->return_value, ==, 4096);
  g_assert_cmpstr(copy->job, ==, "j");
  g_assert_true(copy->job != r.job);
  g_assert_cmpstr(copy->message, ==, "m");
  g_free(r.job);
  g_free(r.message);
  msvm_call_result_free(NULL);
  msvm_job_free(NULL);
  msvm_call_options_free(NULL);
  msvm_service_close(NULL);
}

static void
test_guardian_info_boxed(void)
{
  MsvmGuardianInfo i = { .name = "host-b", .local = FALSE, .signing_fingerprint = "AB:CD",
                         .encryption_fingerprint = "EF:01", .subject = "CN=host-b" };
  g_autoptr(MsvmGuardianInfo) copy = g_boxed_copy(MSVM_TYPE_GUARDIAN_INFO, &i);

  g_assert_cmpstr(copy->name, ==, "host-b");
  g_assert_true(copy->name != i.name);
  g_assert_false(copy->local);
  g_assert_cmpstr(copy->signing_fingerprint, ==, "AB:CD");
  g_assert_cmpstr(copy->encryption_fingerprint, ==, "EF:01");
  g_assert_cmpstr(copy->subject, ==, "CN=host-b");
  msvm_guardian_info_free(NULL);
  g_assert_cmpstr(MSVM_SECURITY_GUARDIAN_LOCAL, ==, "local");
  g_assert_cmpint(MSVM_EXPORT_WITH_STATE, ==, 1);
}

static void
test_job_boxed(void)
{
  MsvmJob j = { .instance_id = "18a06ba2-de11-4853-b779-f49baee71a9d", .reference = "r",
                .vm_uuid = "v", .method = "SetSecurityPolicy", .job_state = 4,
                .error_code = 0, .error_description = NULL, .percent_complete = 50,
                .time_submitted = "t1", .time_of_last_state_change = "t2" };
  g_autoptr(MsvmJob) copy = msvm_job_copy(&j);

  g_assert_cmpstr(copy->instance_id, ==, j.instance_id);
  g_assert_true(copy->instance_id != j.instance_id);
  g_assert_cmpstr(copy->method, ==, "SetSecurityPolicy");
  g_assert_cmpuint(copy->job_state, ==, 4);
  g_assert_cmpuint(copy->percent_complete, ==, 50);
  g_assert_null(copy->error_description);
  g_assert_cmpstr(copy->time_of_last_state_change, ==, "t2");
}

static void
test_options(void)
{
  g_autoptr(MsvmCallOptions) o = msvm_call_options_new();
  g_autoptr(MsvmCallOptions) c = NULL;

  g_assert_null(msvm_call_options_get_domain(o));
  g_assert_cmpuint(msvm_call_options_get_flags(o), ==, MSVM_CALL_NONE);
  msvm_call_options_set_domain(o, "vm1");
  msvm_call_options_set_flags(o, MSVM_CALL_DEFER | MSVM_CALL_FORCE);
  msvm_call_options_set_old_passphrase(o, (const guint8 *)"pw", 2);
  c = msvm_call_options_copy(o);
  msvm_call_options_set_domain(o, NULL);
  msvm_call_options_set_old_passphrase(o, NULL, 0);
  g_assert_null(msvm_call_options_get_domain(o));
  g_assert_cmpstr(msvm_call_options_get_domain(c), ==, "vm1");
  g_assert_cmpuint(msvm_call_options_get_flags(c), ==, MSVM_CALL_DEFER | MSVM_CALL_FORCE);
}

/* The types GObject introspection and Python see. */
static void
test_types(void)
{
  g_assert_cmpstr(g_type_name(MSVM_TYPE_SERVICE), ==, "MsvmService");
  g_assert_true(g_type_is_a(MSVM_TYPE_SERVICE, G_TYPE_OBJECT));
  g_assert_true(G_TYPE_IS_BOXED(MSVM_TYPE_CALL_OPTIONS));
  g_assert_true(G_TYPE_IS_BOXED(MSVM_TYPE_CALL_RESULT));
  g_assert_true(G_TYPE_IS_BOXED(MSVM_TYPE_JOB));
  g_assert_true(G_TYPE_IS_FLAGS(MSVM_TYPE_CALL_FLAGS));
  g_assert_true(G_TYPE_IS_ENUM(MSVM_TYPE_SETTINGS_FORMAT));
  g_assert_true(G_TYPE_IS_BOXED(MSVM_TYPE_GUARDIAN_INFO));
  g_assert_true(G_TYPE_IS_FLAGS(MSVM_TYPE_EXPORT_FLAGS));
  g_assert_cmpstr(g_type_name(MSVM_TYPE_EXPORT_FLAGS), ==, "MsvmExportFlags");
  g_assert_cmpstr(g_quark_to_string(MSVM_ERROR), ==, "msvm-security-error-quark");
}

/* A service that is not connected (g_object_new, as Python's
 * MsvmSecurity.Service() makes one, or closed) answers 32777, never
 * crashes. */
static void
test_unconnected(void)
{
  g_autoptr(MsvmService) svc = g_object_new(MSVM_TYPE_SERVICE, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmCallResult) r = NULL;
  g_autoptr(GBytes) kp = NULL;
  g_autoptr(MsvmJob) job = NULL;
  GList *jobs = NULL;
  GList *guardians = NULL;
  g_autoptr(GBytes) bundle = NULL;
  g_autofree char *text = NULL;
  const guint8 s[] = "<INSTANCE/>";

  g_assert_false(msvm_service_set_key_protector(svc, s, sizeof(s), s, 4, NULL, &r, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(r);
  g_clear_error(&error);
  g_assert_false(msvm_service_get_key_protector(svc, s, sizeof(s), NULL, &kp, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(kp);
  g_clear_error(&error);
  g_assert_false(msvm_service_get_security_settings(svc, "vm", MSVM_SETTINGS_FORMAT_MOF, &text,
                                                    &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_clear_error(&error);
  g_assert_false(msvm_service_recover(svc, "vm", &r, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_clear_error(&error);
  g_assert_false(msvm_service_get_job(svc, "18a06ba2-de11-4853-b779-f49baee71a9d", &job,
                                      &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_clear_error(&error);
  g_assert_false(msvm_service_list_jobs(svc, &jobs, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(jobs);
  g_clear_error(&error);
  /* the guardian calls too (issue 10) */
  g_assert_false(msvm_service_guardian_show(svc, &text, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(text);
  g_clear_error(&error);
  g_assert_false(msvm_service_guardian_trust(svc, "host-b", s, sizeof(s), MSVM_CALL_NONE, &r,
                                             &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(r);
  g_clear_error(&error);
  g_assert_false(msvm_service_guardian_list(svc, &guardians, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(guardians);
  g_clear_error(&error);
  g_assert_false(msvm_service_guardian_forget(svc, "host-b", &r, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_clear_error(&error);
  g_assert_false(msvm_service_export_protector(svc, "vm", MSVM_SECURITY_GUARDIAN_LOCAL,
                                               MSVM_EXPORT_WITH_STATE, &bundle, &r, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(bundle);
  g_assert_null(r);
  g_clear_error(&error);
  g_assert_false(msvm_service_import_protector(svc, s, sizeof(s), MSVM_CALL_FORCE, &r, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_clear_error(&error);
  g_assert_false(msvm_service_forget(svc, "18a06ba2-de11-4853-b779-f49baee71a9d", &r, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE);
  g_assert_null(r);
  msvm_service_close(svc);
  msvm_service_close(svc); /* idempotent */
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/library-api/remote-refused", test_remote_refused);
  g_test_add_func("/library-api/codes", test_codes);
  g_test_add_func("/library-api/result-boxed", test_result_boxed);
  g_test_add_func("/library-api/job-boxed", test_job_boxed);
  g_test_add_func("/library-api/guardian-info-boxed", test_guardian_info_boxed);
  g_test_add_func("/library-api/options", test_options);
  g_test_add_func("/library-api/types", test_types);
  g_test_add_func("/library-api/unconnected", test_unconnected);
  return g_test_run();
}
