/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmd-job.c: `msvm-security job show ID | wait ID [--timeout S] | list`.
 *
 * ID is a job's InstanceID or its reference Msvm_ConcreteJob.InstanceID="...".
 * show/list write the CIM_ConcreteJob instances (MOF) on standard output and
 * the report on standard error; with --json one object whose "ConcreteJob"
 * (show, wait) or "ConcreteJobs" (list) holds the properties.  `wait` polls
 * until JobState is 7 or later and returns 0 only for JobState 7 with
 * ErrorCode 0; an Exception returns the job's ErrorCode; --timeout expiring
 * returns 32772 (Timeout).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "msvm-cli.h"
#include "msvm-error.h"
#include "msvm-cli-service.h"
#include "msvm-security.h"

static const char *
job_state_name(guint s)
{
  switch (s) {
  case 2: return "New";
  case 3: return "Starting";
  case 4: return "Running";
  case 5: return "Suspended";
  case 6: return "Shutting Down";
  case 7: return "Completed";
  case 8: return "Terminated";
  case 9: return "Killed";
  case 10: return "Exception";
  case 11: return "Service";
  default: return "Unknown";
  }
}

static char *
mof_escape(const char *s)
{
  GString *out = g_string_new(NULL);
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c(out, '\\');
    g_string_append_c(out, *p);
  }
  return g_string_free(out, FALSE);
}

static void
job_mof(GString *out, const MsvmJob *j)
{
  g_autofree char *desc = j->error_description ? mof_escape(j->error_description) : NULL;

  g_string_append_printf(out,
    "instance of CIM_ConcreteJob\n{\n"
    "\tInstanceID = \"%s\";\n"
    "\tName = \"%s\";\n"
    "\tJobState = %u; // %s\n"
    "\tErrorCode = %u;\n",
    j->instance_id, j->method ? j->method : "", j->job_state, job_state_name(j->job_state),
    j->error_code);
  if (desc != NULL)
    g_string_append_printf(out, "\tErrorDescription = \"%s\";\n", desc);
  else
    g_string_append(out, "\tErrorDescription = NULL;\n");
  g_string_append_printf(out,
    "\tPercentComplete = %u;\n"
    "\tTimeSubmitted = \"%s\";\n"
    "\tTimeOfLastStateChange = \"%s\";\n"
    "\tDescription = \"VM %s\";\n"
    "};\n",
    j->percent_complete, j->time_submitted, j->time_of_last_state_change,
    j->vm_uuid ? j->vm_uuid : "");
}

static void
job_json(JsonBuilder *b, const MsvmJob *j)
{
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "InstanceID");
  json_builder_add_string_value(b, j->instance_id);
  json_builder_set_member_name(b, "Reference");
  json_builder_add_string_value(b, j->reference);
  json_builder_set_member_name(b, "Name");
  json_builder_add_string_value(b, j->method ? j->method : "");
  json_builder_set_member_name(b, "VirtualSystem");
  json_builder_add_string_value(b, j->vm_uuid ? j->vm_uuid : "");
  json_builder_set_member_name(b, "JobState");
  json_builder_add_int_value(b, j->job_state);
  json_builder_set_member_name(b, "ErrorCode");
  json_builder_add_int_value(b, j->error_code);
  json_builder_set_member_name(b, "ErrorDescription");
  if (j->error_description)
    json_builder_add_string_value(b, j->error_description);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "PercentComplete");
  json_builder_add_int_value(b, j->percent_complete);
  json_builder_set_member_name(b, "TimeSubmitted");
  json_builder_add_string_value(b, j->time_submitted);
  json_builder_set_member_name(b, "TimeOfLastStateChange");
  json_builder_add_string_value(b, j->time_of_last_state_change);
  json_builder_end_object(b);
}

/* The report of DESIGN.md section 8 with the job(s) as payload. */
static int
report_jobs(const MsvmCli *cli, guint32 rc, const char *message, GPtrArray *jobs,
            gboolean single)
{
  const MsvmJob *first = jobs->len > 0 ? g_ptr_array_index(jobs, 0) : NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonNode) json = NULL;
  g_autoptr(GString) mof = g_string_new(NULL);
  g_autoptr(GBytes) text = NULL;
  MsvmReport report = {
    .return_value = rc,
    .job = single && first != NULL ? first->reference : NULL,
    .message = (char *)message,
    .payload_kind = MSVM_PAYLOAD_TEXT,
    .payload_key = single ? "ConcreteJob" : "ConcreteJobs",
  };

  for (guint i = 0; i < jobs->len; i++)
    job_mof(mof, g_ptr_array_index(jobs, i));
  text = g_bytes_new(mof->str, mof->len);
  report.payload = text;
  if (single) {
    if (first != NULL)
      job_json(b, first);
  } else {
    json_builder_begin_array(b);
    for (guint i = 0; i < jobs->len; i++)
      job_json(b, g_ptr_array_index(jobs, i));
    json_builder_end_array(b);
  }
  json = json_builder_get_root(b);
  report.payload_json = json;
  return msvm_cli_report(cli, &report);
}

int
msvm_cmd_job(MsvmCli *cli, int argc, char **argv)
{
  double timeout = -1;
  const GOptionEntry entries[] = {
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &timeout,
      "wait: give up after S seconds (32772 Timeout); default: wait as long as it takes", "S" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmService) svc = NULL;
  g_autoptr(GPtrArray) jobs = NULL;
  const char *sub;

  if (!msvm_cli_parse(cli, &argc, &argv, entries, "show ID | wait ID | list",
                      "Poll the CIM_ConcreteJob of a deferred change."))
    return MSVM_EXIT_USAGE;
  if (argc < 2)
    return msvm_cli_usage_error(cli, "which: show ID, wait ID or list?");
  sub = argv[1];
  if (strcmp(sub, "list") == 0) {
    if (argc != 2)
      return msvm_cli_usage_error(cli, "list takes no argument");
  } else if (strcmp(sub, "show") == 0 || strcmp(sub, "wait") == 0) {
    if (argc != 3)
      return msvm_cli_usage_error(cli, "%s takes one job ID", sub);
  } else {
    return msvm_cli_usage_error(cli, "unknown job command '%s'", sub);
  }

  svc = msvm_cli_open_service(cli, &error);
  if (svc == NULL)
    return msvm_cli_report_error(cli, error);

  jobs = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_job_free);
  if (strcmp(sub, "list") == 0) {
    GList *list = NULL;
    if (!msvm_service_list_jobs(svc, &list, &error))
      return msvm_cli_report_error(cli, error);
    for (GList *l = list; l != NULL; l = l->next)
      g_ptr_array_add(jobs, l->data); /* (the array owns them now) */
    g_list_free(list);
    return report_jobs(cli, 0, NULL, jobs, FALSE);
  }

  {
    gint64 deadline = timeout >= 0 ? g_get_monotonic_time() + (gint64)(timeout * G_USEC_PER_SEC)
                                   : G_MAXINT64;
    for (;;) {
      MsvmJob *job = NULL;
      if (!msvm_service_get_job(svc, argv[2], &job, &error))
        return msvm_cli_report_error(cli, error);
      g_ptr_array_set_size(jobs, 0);
      g_ptr_array_add(jobs, job);
      if (strcmp(sub, "show") == 0)
        return report_jobs(cli, 0, NULL, jobs, TRUE);
      if (job->job_state >= 7) {
        if (job->job_state == 7 && job->error_code == 0)
          return report_jobs(cli, 0, "the job completed", jobs, TRUE);
        {
          guint32 rc = job->error_code != 0 && msvm_return_code_name(job->error_code)
                         ? job->error_code : MSVM_RC_FAILED;
          g_autofree char *msg = g_strdup_printf("the job ended in state %u (%s)%s%s",
                                                 job->job_state,
                                                 job_state_name(job->job_state),
                                                 job->error_description ? ": " : "",
                                                 job->error_description
                                                   ? job->error_description : "");
          return report_jobs(cli, rc, msg, jobs, TRUE);
        }
      }
      if (g_get_monotonic_time() >= deadline)
        return report_jobs(cli, MSVM_RC_TIMEOUT, "the job has not finished", jobs, TRUE);
      g_usleep(G_USEC_PER_SEC / 4);
    }
  }
}
