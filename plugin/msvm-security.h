/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security.h: public API of libmsvm-security, the Msvm_SecurityService
 * provider for QEMU/libvirt hosts (DESIGN.md sections 5 to 8 and 12).
 *
 * Every method takes the embedded Msvm_SecuritySettingData instance as the
 * caller received it (CIM-XML, the instance as an escaped string or CDATA in
 * a VALUE, or MOF; UTF-8 or UTF-16 with BOM) and answers in Hyper-V's return
 * code set: on success the return value is 0 (Completed with No Error) or
 * 4096 (Method Parameters Checked - Job Started, with a job reference); on
 * failure the GError has domain MSVM_ERROR and its code IS the return value
 * (msvm-error.h).  Nothing is printed; nothing exits.
 *
 * The API is introspectable (namespace MsvmSecurity 1.0, docs/python.rst):
 * MsvmService is a GObject, MsvmCallOptions, MsvmCallResult and MsvmJob are
 * boxed types, and the annotations of every function are in its gtk-doc
 * comment in the .c file that defines it.
 *
 * The library is synchronous and not thread-safe per MsvmService; use one
 * service per thread.  Link with `pkg-config --libs msvm-security`.
 */
#pragma once

#include <glib-object.h>

#include "msvm-error.h"

G_BEGIN_DECLS

#if defined(MSVM_SECURITY_COMPILATION)
#define MSVM_PUBLIC __attribute__((visibility("default")))
#else
#define MSVM_PUBLIC
#endif

/**
 * MSVM_SECURITY_PROTECTOR_MAX_SIZE:
 *
 * The largest key protector or security policy accepted, in bytes (64 KiB).
 */
#define MSVM_SECURITY_PROTECTOR_MAX_SIZE 65536

/* --- the service --------------------------------------------------------- */

/* (declares msvm_service_get_type(), exported) */
#define MSVM_TYPE_SERVICE (msvm_service_get_type())
MSVM_PUBLIC G_DECLARE_FINAL_TYPE(MsvmService, msvm_service, MSVM, SERVICE, GObject)

/**
 * MsvmCallFlags:
 * @MSVM_CALL_NONE: no flag.
 * @MSVM_CALL_DEFER: the VM is running: define the new secret and definition
 *   now and leave the re-key to the hook before the next start (4096 and a
 *   job).  Needs the hook installed and loaded by the running daemon, else
 *   32770.
 * @MSVM_CALL_FORCE: go ahead despite a managed-save image, memory snapshots
 *   (they keep vTPM state under the old passphrase) or nova's metadata.
 *
 * How a changing method goes about it.
 */
typedef enum {
  MSVM_CALL_NONE = 0,
  MSVM_CALL_DEFER = 1 << 0,
  MSVM_CALL_FORCE = 1 << 1,
} MsvmCallFlags;

#define MSVM_TYPE_CALL_FLAGS (msvm_call_flags_get_type())
MSVM_PUBLIC GType msvm_call_flags_get_type(void) G_GNUC_CONST;

/**
 * MsvmSettingsFormat:
 * @MSVM_SETTINGS_FORMAT_CIM_XML: a CIM-XML INSTANCE element.
 * @MSVM_SETTINGS_FORMAT_MOF: a MOF instance.
 *
 * The serialization msvm_service_get_security_settings() answers in.
 */
typedef enum {
  MSVM_SETTINGS_FORMAT_CIM_XML,
  MSVM_SETTINGS_FORMAT_MOF,
} MsvmSettingsFormat;

#define MSVM_TYPE_SETTINGS_FORMAT (msvm_settings_format_get_type())
MSVM_PUBLIC GType msvm_settings_format_get_type(void) G_GNUC_CONST;

/* --- call options (opaque) ------------------------------------------------ */

/**
 * MsvmCallOptions:
 *
 * The options of one method call: the VM named apart from the instance's
 * InstanceID, #MsvmCallFlags, the passphrase of a TPM secret the project
 * did not create.  Create with msvm_call_options_new() (in Python:
 * `MsvmSecurity.CallOptions()`); a %NULL options is the same as fresh ones.
 */
typedef struct _MsvmCallOptions MsvmCallOptions;

#define MSVM_TYPE_CALL_OPTIONS (msvm_call_options_get_type())
MSVM_PUBLIC GType msvm_call_options_get_type(void) G_GNUC_CONST;
MSVM_PUBLIC MsvmCallOptions *msvm_call_options_new(void);
MSVM_PUBLIC MsvmCallOptions *msvm_call_options_copy(const MsvmCallOptions *options);
MSVM_PUBLIC void msvm_call_options_free(MsvmCallOptions *options);
MSVM_PUBLIC void msvm_call_options_set_domain(MsvmCallOptions *options, const char *domain);
MSVM_PUBLIC const char *msvm_call_options_get_domain(const MsvmCallOptions *options);
MSVM_PUBLIC void msvm_call_options_set_flags(MsvmCallOptions *options, MsvmCallFlags flags);
MSVM_PUBLIC MsvmCallFlags msvm_call_options_get_flags(const MsvmCallOptions *options);
MSVM_PUBLIC void msvm_call_options_set_old_passphrase(MsvmCallOptions *options,
                                                      const guint8 *passphrase,
                                                      gsize passphrase_len);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmCallOptions, msvm_call_options_free)

/* --- call results ---------------------------------------------------------- */

/**
 * MsvmCallResult:
 * @return_value: 0 (Completed with No Error) or 4096 (Method Parameters
 *   Checked - Job Started); a failure is a #GError instead.
 * @job: (nullable): with 4096, the job reference
 *   `Msvm_ConcreteJob.InstanceID="<uuid>"` (msvm_service_get_job() reads it);
 *   else %NULL.
 * @message: (nullable): a human note, or %NULL.
 *
 * What a method answered when it did not fail.
 */
typedef struct {
  guint32 return_value;
  char *job;
  char *message;
} MsvmCallResult;

#define MSVM_TYPE_CALL_RESULT (msvm_call_result_get_type())
MSVM_PUBLIC GType msvm_call_result_get_type(void) G_GNUC_CONST;
MSVM_PUBLIC MsvmCallResult *msvm_call_result_copy(const MsvmCallResult *result);
MSVM_PUBLIC void msvm_call_result_free(MsvmCallResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmCallResult, msvm_call_result_free)

/* --- jobs (CIM_ConcreteJob) ------------------------------------------------- */

/**
 * MsvmJob:
 * @instance_id: the job's InstanceID, a UUID.
 * @reference: `Msvm_ConcreteJob.InstanceID="<uuid>"`.
 * @vm_uuid: the UUID of the VM the job changes.
 * @method: the method that started it (for example `SetSecurityPolicy`).
 * @job_state: JobState: 2 New, 3 Starting, 4 Running, 7 Completed,
 *   10 Exception; Hyper-V clients poll until it is 7 or more.
 * @error_code: ErrorCode: 0, or the return code it failed with.
 * @error_description: (nullable): ErrorDescription, a line, or %NULL.
 * @percent_complete: PercentComplete.
 * @time_submitted: TimeSubmitted, a CIM datetime
 *   (`yyyymmddhhmmss.mmmmmm+000`).
 * @time_of_last_state_change: TimeOfLastStateChange, a CIM datetime.
 *
 * A CIM_ConcreteJob, as the store keeps it (any process can poll it).
 */
typedef struct {
  char *instance_id;
  char *reference;
  char *vm_uuid;
  char *method;
  guint job_state;
  guint32 error_code;
  char *error_description;
  guint percent_complete;
  char *time_submitted;
  char *time_of_last_state_change;
} MsvmJob;

#define MSVM_TYPE_JOB (msvm_job_get_type())
MSVM_PUBLIC GType msvm_job_get_type(void) G_GNUC_CONST;
MSVM_PUBLIC MsvmJob *msvm_job_copy(const MsvmJob *job);
MSVM_PUBLIC void msvm_job_free(MsvmJob *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmJob, msvm_job_free)

/* --- the service's methods (msvm-service.c) -------------------------------- */

MSVM_PUBLIC MsvmService *msvm_service_open(const char *uri, GError **error);
MSVM_PUBLIC MsvmService *msvm_service_open_read_only(const char *uri, GError **error);
MSVM_PUBLIC void msvm_service_close(MsvmService *service);
MSVM_PUBLIC gboolean msvm_service_is_system(MsvmService *service);

MSVM_PUBLIC gboolean msvm_service_set_security_policy(MsvmService *service,
                                                      const guint8 *settings, gsize settings_len,
                                                      const guint8 *policy, gsize policy_len,
                                                      const MsvmCallOptions *options,
                                                      MsvmCallResult **ret_result,
                                                      GError **error);
MSVM_PUBLIC gboolean msvm_service_set_key_protector(MsvmService *service,
                                                    const guint8 *settings, gsize settings_len,
                                                    const guint8 *key_protector,
                                                    gsize key_protector_len,
                                                    const MsvmCallOptions *options,
                                                    MsvmCallResult **ret_result,
                                                    GError **error);
MSVM_PUBLIC gboolean msvm_service_modify_security_settings(MsvmService *service,
                                                           const guint8 *settings,
                                                           gsize settings_len,
                                                           const MsvmCallOptions *options,
                                                           MsvmCallResult **ret_result,
                                                           GError **error);
MSVM_PUBLIC gboolean msvm_service_restore_last_known_good_key_protector(
  MsvmService *service, const guint8 *settings, gsize settings_len,
  const MsvmCallOptions *options, MsvmCallResult **ret_result, GError **error);
MSVM_PUBLIC gboolean msvm_service_get_key_protector(MsvmService *service,
                                                    const guint8 *settings, gsize settings_len,
                                                    const MsvmCallOptions *options,
                                                    GBytes **ret_key_protector, GError **error);
MSVM_PUBLIC gboolean msvm_service_get_security_settings(MsvmService *service,
                                                        const char *domain,
                                                        MsvmSettingsFormat format,
                                                        char **ret_text, GError **error);
MSVM_PUBLIC gboolean msvm_service_recover(MsvmService *service, const char *domain,
                                          MsvmCallResult **ret_result, GError **error);
MSVM_PUBLIC gboolean msvm_service_get_job(MsvmService *service, const char *id_or_reference,
                                          MsvmJob **ret_job, GError **error);
MSVM_PUBLIC gboolean msvm_service_list_jobs(MsvmService *service, GList **ret_jobs,
                                            GError **error);

/* --- guardians and moving VMs between hosts (DESIGN.md section 10) ------- */
/* (defined in msvm-move.c and msvm-types.c, annotations there) */

/**
 * MSVM_SECURITY_GUARDIAN_LOCAL:
 *
 * The guardian name that stands for this store's own guardian: the target
 * of a backup, an export this host can import again.
 */
#define MSVM_SECURITY_GUARDIAN_LOCAL "local"

/**
 * MsvmGuardianInfo:
 * @name: a trusted guardian's name, or "local" for this store's own
 * @local: %TRUE for this store's own guardian
 * @signing_fingerprint: SHA-256 of the signing certificate's DER,
 *   `AB:CD:...`
 * @encryption_fingerprint: SHA-256 of the encryption certificate's DER
 * @subject: the signing certificate's subject
 *
 * A guardian msvm_service_guardian_list() names: this one or a trusted
 * peer.
 */
typedef struct {
  char *name;
  gboolean local;
  char *signing_fingerprint;
  char *encryption_fingerprint;
  char *subject;
} MsvmGuardianInfo;

#define MSVM_TYPE_GUARDIAN_INFO (msvm_guardian_info_get_type())
MSVM_PUBLIC GType msvm_guardian_info_get_type(void) G_GNUC_CONST;
MSVM_PUBLIC MsvmGuardianInfo *msvm_guardian_info_copy(const MsvmGuardianInfo *info);
MSVM_PUBLIC void msvm_guardian_info_free(MsvmGuardianInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmGuardianInfo, msvm_guardian_info_free)

/**
 * MsvmExportFlags:
 * @MSVM_EXPORT_NONE: the key protector only (a live migration).
 * @MSVM_EXPORT_WITH_STATE: also the persistent definition and the vTPM
 *   state files as they are on disk (still encrypted): a cold move or a
 *   backup.  Needs the VM stopped, no managed-save image and no change
 *   unfinished, else 32775.
 *
 * What msvm_service_export_protector() puts in the bundle.
 */
typedef enum {
  MSVM_EXPORT_NONE = 0,
  MSVM_EXPORT_WITH_STATE = 1 << 0,
} MsvmExportFlags;

#define MSVM_TYPE_EXPORT_FLAGS (msvm_export_flags_get_type())
MSVM_PUBLIC GType msvm_export_flags_get_type(void) G_GNUC_CONST;

MSVM_PUBLIC gboolean msvm_service_guardian_show(MsvmService *service, char **ret_certificates,
                                                GError **error);
MSVM_PUBLIC gboolean msvm_service_guardian_trust(MsvmService *service, const char *name,
                                                 const guint8 *certificates,
                                                 gsize certificates_len, MsvmCallFlags flags,
                                                 MsvmCallResult **ret_result, GError **error);
MSVM_PUBLIC gboolean msvm_service_guardian_list(MsvmService *service, GList **ret_guardians,
                                                GError **error);
MSVM_PUBLIC gboolean msvm_service_guardian_forget(MsvmService *service, const char *name,
                                                  MsvmCallResult **ret_result, GError **error);
MSVM_PUBLIC gboolean msvm_service_export_protector(MsvmService *service, const char *domain,
                                                   const char *guardian, MsvmExportFlags flags,
                                                   GBytes **ret_bundle,
                                                   MsvmCallResult **ret_result, GError **error);
MSVM_PUBLIC gboolean msvm_service_import_protector(MsvmService *service, const guint8 *bundle,
                                                   gsize bundle_len, MsvmCallFlags flags,
                                                   MsvmCallResult **ret_result, GError **error);
MSVM_PUBLIC gboolean msvm_service_forget(MsvmService *service, const char *domain_uuid,
                                         MsvmCallResult **ret_result, GError **error);

G_END_DECLS
