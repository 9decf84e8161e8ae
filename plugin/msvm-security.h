/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security.h: public API of libmsvm-security, the Msvm_SecurityService
 * provider for QEMU/libvirt hosts (DESIGN.md sections 5 to 8).
 *
 * Every method takes the embedded Msvm_SecuritySettingData instance as the
 * caller received it (CIM-XML, the instance as an escaped string or CDATA in
 * a VALUE, or MOF; UTF-8 or UTF-16 with BOM) and answers in Hyper-V's return
 * code set: on success the return value is 0 (Completed with No Error) or
 * 4096 (Method Parameters Checked - Job Started, with a job reference); on
 * failure the GError has domain MSVM_ERROR and its code IS the return value
 * (msvm-error.h).  Nothing is printed; nothing exits.
 *
 * The library is synchronous and not thread-safe per MsvmService; use one
 * service per thread.  Link with `pkg-config --libs msvm-security`.
 */
#pragma once

#include <glib.h>

#include "msvm-error.h"

G_BEGIN_DECLS

#if defined(MSVM_SECURITY_COMPILATION)
#define MSVM_PUBLIC __attribute__((visibility("default")))
#else
#define MSVM_PUBLIC
#endif

/* Largest key protector or security policy accepted, in bytes. */
#define MSVM_SECURITY_PROTECTOR_MAX_SIZE (64u * 1024u)

typedef struct _MsvmService MsvmService;

typedef enum {
  MSVM_CALL_NONE = 0,
  /* Running VM: define the new secret and definition now and leave the
   * re-key to the hook before the next start (4096 and a job).  Needs the
   * hook installed and loaded by the running daemon, else 32770. */
  MSVM_CALL_DEFER = 1 << 0,
  /* Go ahead despite a managed-save image, memory snapshots (they keep
   * vTPM state under the old passphrase) or nova's metadata. */
  MSVM_CALL_FORCE = 1 << 1,
} MsvmCallFlags;

typedef struct {
  const char *domain;           /* --domain NAME|UUID, or NULL: the InstanceID names the VM */
  guint flags;                  /* MsvmCallFlags */
  /* Passphrase of an existing TPM <encryption> secret the project did not
   * create (its exact value), or NULL. */
  const guint8 *old_passphrase;
  gsize old_passphrase_len;
} MsvmCallOptions;

typedef struct {
  guint32 return_value;         /* 0 or 4096 */
  char *job;                    /* Msvm_ConcreteJob.InstanceID="<uuid>" with 4096, else NULL */
  char *message;                /* a human note, or NULL */
} MsvmCallResult;

MSVM_PUBLIC void msvm_call_result_clear(MsvmCallResult *result);

/* Connect to libvirt (@uri NULL: libvirt's default).  Remote URIs (a host
 * name or a transport) are refused with 32770; permission refused is 32769;
 * no daemon 32777.  Installs a silent libvirt error handler. */
MSVM_PUBLIC MsvmService *msvm_service_open(const char *uri, GError **error);
/* The same over a read-only libvirt connection (virsh -r): the reading
 * methods work; SetSecurityPolicy, SetKeyProtector, ModifySecuritySettings,
 * RestoreLastKnownGoodKeyProtector and recover answer 32769 (Access Denied)
 * and change nothing. */
MSVM_PUBLIC MsvmService *msvm_service_open_read_only(const char *uri, GError **error);
MSVM_PUBLIC void msvm_service_close(MsvmService *service);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmService, msvm_service_close)

/* TRUE when the service uses the system store (privileged daemon). */
MSVM_PUBLIC gboolean msvm_service_is_system(MsvmService *service);

/* Msvm_SecurityService.SetSecurityPolicy: apply the settings and set the
 * policy half of the VM's key protector, as one change. */
MSVM_PUBLIC gboolean msvm_service_set_security_policy(MsvmService *service,
                                                      const guint8 *settings, gsize settings_len,
                                                      const guint8 *policy, gsize policy_len,
                                                      const MsvmCallOptions *opts,
                                                      MsvmCallResult *ret_result, GError **error);

/* Msvm_SecurityService.SetKeyProtector: the settings name the VM; set the
 * key-protector half (the four bytes 00 00 00 04 clear it). */
MSVM_PUBLIC gboolean msvm_service_set_key_protector(MsvmService *service,
                                                    const guint8 *settings, gsize settings_len,
                                                    const guint8 *key_protector, gsize kp_len,
                                                    const MsvmCallOptions *opts,
                                                    MsvmCallResult *ret_result, GError **error);

/* Msvm_SecurityService.ModifySecuritySettings. */
MSVM_PUBLIC gboolean msvm_service_modify_security_settings(MsvmService *service,
                                                           const guint8 *settings,
                                                           gsize settings_len,
                                                           const MsvmCallOptions *opts,
                                                           MsvmCallResult *ret_result,
                                                           GError **error);

/* Msvm_SecurityService.RestoreLastKnownGoodKeyProtector. */
MSVM_PUBLIC gboolean msvm_service_restore_last_known_good_key_protector(
  MsvmService *service, const guint8 *settings, gsize settings_len,
  const MsvmCallOptions *opts, MsvmCallResult *ret_result, GError **error);

/* Msvm_SecurityService.GetKeyProtector: the key-protector bytes, or
 * 00 00 00 04 when none is set. */
MSVM_PUBLIC gboolean msvm_service_get_key_protector(MsvmService *service,
                                                    const guint8 *settings, gsize settings_len,
                                                    const MsvmCallOptions *opts,
                                                    GBytes **ret_key_protector, GError **error);

typedef enum {
  MSVM_SETTINGS_FORMAT_CIM_XML,
  MSVM_SETTINGS_FORMAT_MOF,
} MsvmSettingsFormat;

/* The VM's Msvm_SecuritySettingData as applied (from the domain's metadata). */
MSVM_PUBLIC gboolean msvm_service_get_security_settings(MsvmService *service,
                                                        const char *domain,
                                                        MsvmSettingsFormat format,
                                                        char **ret_text, GError **error);

/* Finish an interrupted or deferred change of a stopped VM (DESIGN.md
 * section 6); on a running VM only the definition part is finished. */
MSVM_PUBLIC gboolean msvm_service_recover(MsvmService *service, const char *domain,
                                          MsvmCallResult *ret_result, GError **error);

/* --- jobs (CIM_ConcreteJob) --------------------------------------------- */

typedef struct {
  char *instance_id;            /* UUID */
  char *reference;              /* Msvm_ConcreteJob.InstanceID="<uuid>" */
  char *vm_uuid;
  char *method;
  guint job_state;              /* 2 New, 3 Starting, 4 Running, 7 Completed, 10 Exception */
  guint32 error_code;           /* 0, or a return code */
  char *error_description;      /* NULL or a line */
  guint percent_complete;
  char *time_submitted;         /* CIM datetime yyyymmddhhmmss.mmmmmm+000 */
  char *time_of_last_state_change;
} MsvmJob;

MSVM_PUBLIC void msvm_job_free(MsvmJob *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmJob, msvm_job_free)

/* A job by id or reference (32773 when malformed, 32777 when unknown). */
MSVM_PUBLIC gboolean msvm_service_get_job(MsvmService *service, const char *id_or_reference,
                                          MsvmJob **ret_job, GError **error);
/* Every job of this store, oldest first (MsvmJob*). */
MSVM_PUBLIC gboolean msvm_service_list_jobs(MsvmService *service, GPtrArray **ret_jobs,
                                            GError **error);

/* --- guardians and moving VMs between hosts (DESIGN.md section 10) ------- */

/* The guardian name that stands for this store's own guardian (the target
 * of a backup: an export this host can import again). */
#define MSVM_SECURITY_GUARDIAN_LOCAL "local"

typedef struct {
  char *name;                   /* a trusted guardian's name, or "local" */
  gboolean local;               /* this store's own guardian */
  char *signing_fingerprint;    /* SHA-256 of the certificate's DER, AB:CD:... */
  char *encryption_fingerprint;
  char *subject;                /* the signing certificate's subject */
} MsvmGuardianInfo;

MSVM_PUBLIC void msvm_guardian_info_free(MsvmGuardianInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MsvmGuardianInfo, msvm_guardian_info_free)

/* This store's guardian (created on first use: an EC P-256 signing and an
 * EC P-256 encryption key pair with self-signed certificates, in the
 * store's root-only guardian/ folder): both certificates as one PEM text,
 * what a peer trusts (Export-HgsGuardian). */
MSVM_PUBLIC gboolean msvm_service_guardian_show(MsvmService *service, char **ret_certificates,
                                                GError **error);

/* Trust a peer guardian: @certificates is what its guardian_show gave.
 * The same name with other certificates: 32775 unless @flags has
 * MSVM_CALL_FORCE; the same certificates again: 0, nothing changes; a bad
 * name (1-64 of [A-Za-z0-9._-], not "local") or bundle: 32773
 * (Import-HgsGuardian). */
MSVM_PUBLIC gboolean msvm_service_guardian_trust(MsvmService *service, const char *name,
                                                 const guint8 *certificates,
                                                 gsize certificates_len, guint flags,
                                                 MsvmCallResult *ret_result, GError **error);

/* This guardian, then the trusted ones by name (MsvmGuardianInfo*). */
MSVM_PUBLIC gboolean msvm_service_guardian_list(MsvmService *service, GPtrArray **ret_guardians,
                                                GError **error);

/* Stop trusting @name (unknown: 32777). */
MSVM_PUBLIC gboolean msvm_service_guardian_forget(MsvmService *service, const char *name,
                                                  MsvmCallResult *ret_result, GError **error);

typedef enum {
  MSVM_EXPORT_NONE = 0,
  /* also the persistent definition and the vTPM state files as they are
   * on disk (still encrypted): a cold move or a backup.  Needs the VM
   * stopped, no managed-save image and no change unfinished, else 32775. */
  MSVM_EXPORT_WITH_STATE = 1 << 0,
} MsvmExportFlags;

/* The VM's key protector for the guardian @guardian (a trusted name, or
 * "local"): its seed and every generation still needed with its halves and
 * secret UUID, the recorded settings and the shielding stash, signed by
 * this guardian (CMS SignedData) and encrypted for @guardian (CMS
 * AuthEnvelopedData, AES-256-GCM), DER in *@ret_bundle
 * (Grant-HgsKeyProtectorAccess).  Nothing on this host changes.  No
 * protector: 32775; unknown guardian: 32777. */
MSVM_PUBLIC gboolean msvm_service_export_protector(MsvmService *service, const char *domain,
                                                   const char *guardian, guint flags,
                                                   GBytes **ret_bundle,
                                                   MsvmCallResult *ret_result, GError **error);

/* Import a bundle addressed to this guardian (another guardian's: 32769)
 * and signed by a trusted guardian or this one (unknown signer: 32769; any
 * altered byte: 32773).  Writes the VM's store entry and defines each
 * generation's libvirt secret with the same UUID and value; with a state
 * inside, places the vTPM state directory (owner: the daemon's swtpm user)
 * and defines the domain.  An entry this store holds under another seed:
 * 32775 unless @flags has MSVM_CALL_FORCE; with a state, a domain with the
 * VM's UUID already defined here: 32775.  A failure leaves nothing behind:
 * no store entry, no secret, no state directory. */
MSVM_PUBLIC gboolean msvm_service_import_protector(MsvmService *service, const guint8 *bundle,
                                                   gsize bundle_len, guint flags,
                                                   MsvmCallResult *ret_result, GError **error);

/* After the VM left this host (virsh migrate --undefinesource, or undefine
 * after a cold move): undefine its secrets and remove its store entry.
 * @domain_uuid is the VM's UUID; refused while a domain with that UUID is
 * defined here, or while any domain names one of its secrets (32775); no
 * entry: 32777. */
MSVM_PUBLIC gboolean msvm_service_forget(MsvmService *service, const char *domain_uuid,
                                         MsvmCallResult *ret_result, GError **error);

G_END_DECLS
