/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-types.c: the value types of the public API, registered with the
 * GObject type system so that they are introspectable (DESIGN.md section
 * 12): the enums and flags, MsvmCallOptions, MsvmCallResult, MsvmJob and
 * MsvmGuardianInfo.
 */
#include "config.h"

#include "msvm-types-private.h"

#include "msvm-secret.h"

G_DEFINE_FLAGS_TYPE(MsvmCallFlags, msvm_call_flags,
  G_DEFINE_ENUM_VALUE(MSVM_CALL_NONE, "none"),
  G_DEFINE_ENUM_VALUE(MSVM_CALL_DEFER, "defer"),
  G_DEFINE_ENUM_VALUE(MSVM_CALL_FORCE, "force"))

G_DEFINE_FLAGS_TYPE(MsvmExportFlags, msvm_export_flags,
  G_DEFINE_ENUM_VALUE(MSVM_EXPORT_NONE, "none"),
  G_DEFINE_ENUM_VALUE(MSVM_EXPORT_WITH_STATE, "with-state"))

G_DEFINE_ENUM_TYPE(MsvmSettingsFormat, msvm_settings_format,
  G_DEFINE_ENUM_VALUE(MSVM_SETTINGS_FORMAT_CIM_XML, "cim-xml"),
  G_DEFINE_ENUM_VALUE(MSVM_SETTINGS_FORMAT_MOF, "mof"))

/* --- MsvmCallOptions ------------------------------------------------------ */

G_DEFINE_BOXED_TYPE(MsvmCallOptions, msvm_call_options, msvm_call_options_copy,
                    msvm_call_options_free)

/**
 * msvm_call_options_new: (constructor)
 *
 * Options with no domain (the settings' InstanceID names the VM), no flag
 * and no old passphrase: what a %NULL options means.
 *
 * Returns: (transfer full): new options; free with msvm_call_options_free()
 */
MSVM_PUBLIC MsvmCallOptions *
msvm_call_options_new(void)
{
  return g_new0(MsvmCallOptions, 1);
}

/**
 * msvm_call_options_copy:
 * @options: options
 *
 * A copy of @options (the old passphrase too, in memory of its own).
 *
 * Returns: (transfer full): the copy
 */
MSVM_PUBLIC MsvmCallOptions *
msvm_call_options_copy(const MsvmCallOptions *options)
{
  MsvmCallOptions *copy;

  g_return_val_if_fail(options != NULL, NULL);
  copy = msvm_call_options_new();
  copy->domain = g_strdup(options->domain);
  copy->flags = options->flags;
  if (options->old_passphrase != NULL)
    copy->old_passphrase = g_bytes_ref(options->old_passphrase);
  return copy;
}

/**
 * msvm_call_options_free:
 * @options: (nullable): options
 *
 * Frees @options and wipes the old passphrase they held.
 */
MSVM_PUBLIC void
msvm_call_options_free(MsvmCallOptions *options)
{
  if (options == NULL)
    return;
  g_free(options->domain);
  g_clear_pointer(&options->old_passphrase, g_bytes_unref);
  g_free(options);
}

/**
 * msvm_call_options_set_domain:
 * @options: options
 * @domain: (nullable): the VM's name or UUID, or %NULL
 *
 * Names the VM (the CLI's `--domain`); %NULL: the InstanceID of the
 * settings names it.  When both name a VM they must agree (else 32773).
 */
MSVM_PUBLIC void
msvm_call_options_set_domain(MsvmCallOptions *options, const char *domain)
{
  g_return_if_fail(options != NULL);
  g_free(options->domain);
  options->domain = g_strdup(domain);
}

/**
 * msvm_call_options_get_domain:
 * @options: options
 *
 * Returns: (transfer none) (nullable): the VM @options name, or %NULL
 */
MSVM_PUBLIC const char *
msvm_call_options_get_domain(const MsvmCallOptions *options)
{
  g_return_val_if_fail(options != NULL, NULL);
  return options->domain;
}

/**
 * msvm_call_options_set_flags:
 * @options: options
 * @flags: #MsvmCallFlags
 *
 * Sets the flags (they replace those set before).
 */
MSVM_PUBLIC void
msvm_call_options_set_flags(MsvmCallOptions *options, MsvmCallFlags flags)
{
  g_return_if_fail(options != NULL);
  options->flags = flags;
}

/**
 * msvm_call_options_get_flags:
 * @options: options
 *
 * Returns: the flags of @options
 */
MSVM_PUBLIC MsvmCallFlags
msvm_call_options_get_flags(const MsvmCallOptions *options)
{
  g_return_val_if_fail(options != NULL, MSVM_CALL_NONE);
  return options->flags;
}

/**
 * msvm_call_options_set_old_passphrase:
 * @options: options
 * @passphrase: (array length=passphrase_len) (nullable): the exact value
 *   of the TPM `<encryption>` secret the VM has now, or %NULL for none
 * @passphrase_len: its length in bytes
 *
 * The passphrase of an existing TPM secret the project did not create (the
 * CLI's `--old-passphrase-file`, DESIGN.md section 4).  It is copied into a
 * secret buffer (kept out of core dumps, wiped when the options are
 * freed); the caller wipes its own copy.
 */
MSVM_PUBLIC void
msvm_call_options_set_old_passphrase(MsvmCallOptions *options, const guint8 *passphrase,
                                     gsize passphrase_len)
{
  g_return_if_fail(options != NULL);
  g_clear_pointer(&options->old_passphrase, g_bytes_unref);
  if (passphrase != NULL)
    options->old_passphrase = msvm_secret_bytes_new(passphrase, passphrase_len);
}

/* --- MsvmCallResult --------------------------------------------------------- */

G_DEFINE_BOXED_TYPE(MsvmCallResult, msvm_call_result, msvm_call_result_copy,
                    msvm_call_result_free)

/**
 * msvm_call_result_copy:
 * @result: a result
 *
 * Returns: (transfer full): a copy of @result
 */
MSVM_PUBLIC MsvmCallResult *
msvm_call_result_copy(const MsvmCallResult *result)
{
  MsvmCallResult *copy;

  g_return_val_if_fail(result != NULL, NULL);
  copy = g_new0(MsvmCallResult, 1);
  copy->return_value = result->return_value;
  copy->job = g_strdup(result->job);
  copy->message = g_strdup(result->message);
  return copy;
}

/**
 * msvm_call_result_free:
 * @result: (nullable): a result
 *
 * Frees @result and its strings.
 */
MSVM_PUBLIC void
msvm_call_result_free(MsvmCallResult *result)
{
  if (result == NULL)
    return;
  g_free(result->job);
  g_free(result->message);
  g_free(result);
}

/* --- MsvmJob -------------------------------------------------------------------- */

G_DEFINE_BOXED_TYPE(MsvmJob, msvm_job, msvm_job_copy, msvm_job_free)

/**
 * msvm_job_copy:
 * @job: a job
 *
 * Returns: (transfer full): a copy of @job
 */
MSVM_PUBLIC MsvmJob *
msvm_job_copy(const MsvmJob *job)
{
  MsvmJob *copy;

  g_return_val_if_fail(job != NULL, NULL);
  copy = g_new0(MsvmJob, 1);
  *copy = *job;
  copy->instance_id = g_strdup(job->instance_id);
  copy->reference = g_strdup(job->reference);
  copy->vm_uuid = g_strdup(job->vm_uuid);
  copy->method = g_strdup(job->method);
  copy->error_description = g_strdup(job->error_description);
  copy->time_submitted = g_strdup(job->time_submitted);
  copy->time_of_last_state_change = g_strdup(job->time_of_last_state_change);
  return copy;
}

/**
 * msvm_job_free:
 * @job: (nullable): a job
 *
 * Frees @job and its strings.
 */
MSVM_PUBLIC void
msvm_job_free(MsvmJob *job)
{
  if (job == NULL)
    return;
  g_free(job->instance_id);
  g_free(job->reference);
  g_free(job->vm_uuid);
  g_free(job->method);
  g_free(job->error_description);
  g_free(job->time_submitted);
  g_free(job->time_of_last_state_change);
  g_free(job);
}

/* --- MsvmGuardianInfo ------------------------------------------------------------ */

G_DEFINE_BOXED_TYPE(MsvmGuardianInfo, msvm_guardian_info, msvm_guardian_info_copy,
                    msvm_guardian_info_free)

/**
 * msvm_guardian_info_copy:
 * @info: a guardian's description
 *
 * Returns: (transfer full): a copy of @info
 */
MSVM_PUBLIC MsvmGuardianInfo *
msvm_guardian_info_copy(const MsvmGuardianInfo *info)
{
  MsvmGuardianInfo *copy;

  g_return_val_if_fail(info != NULL, NULL);
  copy = g_new0(MsvmGuardianInfo, 1);
  copy->name = g_strdup(info->name);
  copy->local = info->local;
  copy->signing_fingerprint = g_strdup(info->signing_fingerprint);
  copy->encryption_fingerprint = g_strdup(info->encryption_fingerprint);
  copy->subject = g_strdup(info->subject);
  return copy;
}

/**
 * msvm_guardian_info_free:
 * @info: (nullable): a guardian's description
 *
 * Frees @info and its strings.
 */
MSVM_PUBLIC void
msvm_guardian_info_free(MsvmGuardianInfo *info)
{
  if (info == NULL)
    return;
  g_free(info->name);
  g_free(info->signing_fingerprint);
  g_free(info->encryption_fingerprint);
  g_free(info->subject);
  g_free(info);
}
