/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-library-api.c: a client of libmsvm-security built the way an outside
 * program is: only <msvm-security.h> (and msvm-error.h), linked with the
 * shared library.  What needs no daemon: remote and foreign URIs are
 * refused with 32770 before any connection, the return codes have their
 * Hyper-V names, results clear.
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
test_result_clear(void)
{
  MsvmCallResult r = { .return_value = 4096, .job = g_strdup("j"), .message = g_strdup("m") };

  msvm_call_result_clear(&r);
  g_assert_null(r.job);
  g_assert_null(r.message);
  g_assert_cmpuint(r.return_value, ==, 0);
  msvm_call_result_clear(NULL);
  msvm_job_free(NULL);
  msvm_service_close(NULL);
  msvm_guardian_info_free(NULL);
  g_assert_cmpstr(MSVM_SECURITY_GUARDIAN_LOCAL, ==, "local");
  g_assert_cmpint(MSVM_EXPORT_WITH_STATE, ==, 1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/library-api/remote-refused", test_remote_refused);
  g_test_add_func("/library-api/codes", test_codes);
  g_test_add_func("/library-api/result-clear", test_result_clear);
  return g_test_run();
}
