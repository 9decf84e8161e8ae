/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-service.c: the Msvm_SecurityService methods (DESIGN.md sections 5-7)
 * and the order of a protector change (section 6):
 *
 *   1. validate everything (a dry run without the lock, then again under it);
 *      take the per-VM lock; load the store; finish an unfinished change;
 *   2. write the journal (target generation, generations in force, the
 *      definition to define, the stash);
 *   3. define the target generation's secret;
 *   4. define the domain naming it; `current` becomes the target;
 *   5. stopped VM: re-key the state from `state` to `current`, verify, set
 *      `state`; running VM with --defer: a job stays open (4096);
 *   6. close the journal; retire the generations nothing needs.
 *
 * A crash anywhere is finished by the next call (or `recover`): the journal
 * rolls the change forward (the secret and the journaled definition are
 * defined again, idempotently), then the state is re-keyed to `current`.
 */
#include "config.h"

#include "msvm-security.h"
#include "msvm-types-private.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "msvm-cause.h"
#include "msvm-change.h"
#include "msvm-daemon.h"
#include "msvm-domain.h"
#include "msvm-error.h"
#include "msvm-secret.h"
#include "msvm-fault.h"
#include "msvm-instance.h"
#include "msvm-kdf.h"
#include "msvm-rekey.h"
#include "msvm-service-private.h"
#include "msvm-settings.h"
#include "msvm-store.h"
#include "msvm-virt.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

typedef enum {
  OP_SET_SECURITY_POLICY,
  OP_SET_KEY_PROTECTOR,
  OP_MODIFY_SECURITY_SETTINGS,
  OP_RESTORE_LAST_KNOWN_GOOD,
} MsvmOp;

static const char *const op_names[] = {
  "SetSecurityPolicy", "SetKeyProtector", "ModifySecuritySettings",
  "RestoreLastKnownGoodKeyProtector",
};

static const guint8 no_key_protector[4] = { 0, 0, 0, 4 };

/* --- service ------------------------------------------------------------------ */

/**
 * MsvmService:
 *
 * A connection to a libvirt daemon, through which the Msvm_SecurityService
 * methods change its VMs (in Python, `MsvmSecurity.Service`).  Open one with
 * msvm_service_open(); close it with msvm_service_close() or let the last
 * reference go.  A service made otherwise (g_object_new()) or closed answers
 * every method with 32777 (System is not available).
 */
G_DEFINE_FINAL_TYPE(MsvmService, msvm_service, G_TYPE_OBJECT)

static void
msvm_service_finalize(GObject *object)
{
  MsvmService *svc = MSVM_SERVICE(object);

  msvm_service_close(svc);
  g_free(svc->store_root);
  G_OBJECT_CLASS(msvm_service_parent_class)->finalize(object);
}

static void
msvm_service_class_init(MsvmServiceClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = msvm_service_finalize;
}

static void
msvm_service_init(MsvmService *svc)
{
}

static MsvmService *
service_open(const char *uri, gboolean read_only, GError **error)
{
  g_autoptr(MsvmService) svc = g_object_new(MSVM_TYPE_SERVICE, NULL);

  svc->read_only = read_only;
  svc->conn = msvm_virt_connect(uri, read_only, &svc->system, error);
  if (svc->conn == NULL)
    return NULL;
  svc->store_root = msvm_store_root(svc->system, geteuid(), error);
  if (svc->store_root == NULL)
    return NULL;
  return g_steal_pointer(&svc);
}

/**
 * msvm_service_open: (constructor)
 * @uri: (nullable): a libvirt URI (`qemu:///system` or `qemu:///session`),
 *   or %NULL for libvirt's default
 * @error: return location for a #MSVM_ERROR error
 *
 * Connects to libvirt.  Remote URIs (a host name or a transport) are
 * refused with 32770 (Not Supported); permission refused is 32769; no
 * daemon 32777.  Installs a silent libvirt error handler.
 *
 * Returns: (transfer full): the service, or %NULL with @error set
 */
MSVM_PUBLIC MsvmService *
msvm_service_open(const char *uri, GError **error)
{
  return service_open(uri, FALSE, error);
}

/**
 * msvm_service_open_read_only: (constructor)
 * @uri: (nullable): a libvirt URI, or %NULL for libvirt's default
 * @error: return location for a #MSVM_ERROR error
 *
 * As msvm_service_open() over a read-only libvirt connection (`virsh -r`):
 * the reading methods work; the four changing methods and
 * msvm_service_recover() answer 32769 (Access Denied) and change nothing.
 *
 * Returns: (transfer full): the service, or %NULL with @error set
 */
MSVM_PUBLIC MsvmService *
msvm_service_open_read_only(const char *uri, GError **error)
{
  return service_open(uri, TRUE, error);
}

gboolean
msvm_service_check_open(MsvmService *svc, GError **error)
{
  if (svc != NULL && svc->conn != NULL && svc->store_root != NULL)
    return TRUE;
  g_set_error_literal(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE,
                      svc == NULL ? "no msvm-security service given"
                                  : "the msvm-security service is not connected to libvirt "
                                    "(closed, or not made by msvm_service_open)");
  return FALSE;
}

/* A change needs a read-write connection: refuse before anything is read,
 * locked or created. */
gboolean
msvm_service_check_writable(MsvmService *svc, GError **error)
{
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  if (!svc->read_only)
    return TRUE;
  g_set_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED,
              "the libvirt connection is read-only: changing a VM's security settings or "
              "key protector needs a read-write connection");
  return FALSE;
}

/**
 * msvm_service_close:
 * @service: (nullable): a service
 *
 * Closes the libvirt connection now (idempotent); afterwards every method
 * answers 32777.  The object itself goes with its last reference
 * (g_object_unref(), or `g_autoptr(MsvmService)`), which closes it too.
 */
MSVM_PUBLIC void
msvm_service_close(MsvmService *svc)
{
  if (svc == NULL)
    return;
  g_return_if_fail(MSVM_IS_SERVICE(svc));
  if (svc->conn != NULL)
    virConnectClose(svc->conn);
  svc->conn = NULL;
}

/**
 * msvm_service_is_system:
 * @service: a service
 *
 * Returns: %TRUE when the service uses the system store (a privileged
 *   daemon, `qemu:///system`)
 */
MSVM_PUBLIC gboolean
msvm_service_is_system(MsvmService *svc)
{
  g_return_val_if_fail(MSVM_IS_SERVICE(svc), FALSE);
  return svc->system;
}

/* --- per-VM context --------------------------------------------------------------- */

typedef struct {
  MsvmService *svc;
  virDomainPtr dom;
  guint8 uuid[16];
  char *uuid_str;
  char *name;
  char *state_dir;
  int lock_fd;
  MsvmStore *store;
  gboolean active;
} VmCtx;

static void
vm_ctx_clear(VmCtx *ctx)
{
  if (ctx->dom != NULL)
    virDomainFree(ctx->dom);
  g_free(ctx->uuid_str);
  g_free(ctx->name);
  g_free(ctx->state_dir);
  msvm_store_free(ctx->store);
  if (ctx->lock_fd >= 0)
    close(ctx->lock_fd);
  memset(ctx, 0, sizeof(*ctx));
  ctx->lock_fd = -1;
}

/* Whether the domain runs now (it may have started or stopped meanwhile). */
static gboolean
vm_ctx_refresh_active(VmCtx *ctx, GError **error)
{
  int active = virDomainIsActive(ctx->dom);

  if (active < 0)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the domain's state");
  ctx->active = active > 0;
  return TRUE;
}

static gboolean
vm_ctx_find(MsvmService *svc, const guint8 *settings_uuid, const char *domain, VmCtx *ctx,
            GError **error)
{
  const char *name;

  ctx->svc = svc;
  ctx->lock_fd = -1;
  ctx->dom = msvm_virt_find_domain(svc->conn, settings_uuid, domain, error);
  if (ctx->dom == NULL)
    return FALSE;
  if (virDomainGetUUID(ctx->dom, ctx->uuid) < 0)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the domain UUID");
  ctx->uuid_str = msvm_uuid_to_string(ctx->uuid);
  name = virDomainGetName(ctx->dom);
  ctx->name = g_strdup(name ? name : ctx->uuid_str);
  ctx->state_dir = msvm_swtpm_state_dir(svc->system, geteuid(), ctx->uuid, "2.0", error);
  if (ctx->state_dir == NULL)
    return FALSE;
  return vm_ctx_refresh_active(ctx, error);
}

/* Load the store without the lock (the file is replaced atomically). */
static gboolean
vm_ctx_peek(VmCtx *ctx, GError **error)
{
  g_clear_pointer(&ctx->store, msvm_store_free);
  return msvm_store_load(ctx->svc->store_root, ctx->uuid, &ctx->store, error);
}

static gboolean
vm_ctx_lock(VmCtx *ctx, GError **error)
{
  ctx->lock_fd = msvm_store_lock(ctx->svc->store_root, ctx->uuid, TRUE, error);
  if (ctx->lock_fd < 0)
    return FALSE;
  if (!vm_ctx_peek(ctx, error))
    return FALSE;
  /* the domain may have started or stopped while we waited */
  return vm_ctx_refresh_active(ctx, error);
}

static gboolean
state_dir_exists(const VmCtx *ctx)
{
  struct stat st;
  return lstat(ctx->state_dir, &st) == 0;
}

/* --- generations ------------------------------------------------------------------ */

static char *
usage_name(const VmCtx *ctx, guint number)
{
  return msvm_store_secret_usage(ctx->uuid, number);
}

static gboolean
usage_taken(const VmCtx *ctx, guint number)
{
  g_autofree char *usage = usage_name(ctx, number);
  virSecretPtr s = virSecretLookupByUsage(ctx->svc->conn, VIR_SECRET_USAGE_TYPE_VTPM, usage);

  if (s == NULL)
    return FALSE;
  virSecretFree(s);
  return TRUE;
}

static gboolean
define_generation_secret(VmCtx *ctx, const MsvmGeneration *gen, GError **error)
{
  g_autofree char *usage = NULL;
  g_autofree char *desc = NULL;
  char *pass = NULL;
  gsize len = 0;
  gboolean ok;

  if (gen->foreign)
    return TRUE; /* not ours: never (re)defined */
  usage = usage_name(ctx, gen->number);
  desc = g_strdup_printf("msvm-security vTPM passphrase of VM %s, generation %u",
                         ctx->uuid_str, gen->number);
  if (!msvm_store_generation_passphrase(ctx->store, gen, &pass, &len, error))
    return FALSE;
  ok = msvm_virt_define_secret(ctx->svc->conn, gen->secret_uuid, usage, desc,
                               (const guint8 *)pass, len, error);
  msvm_passphrase_free(pass, len);
  return ok;
}

/* --- the change protocol's host: what needs the daemon (msvm-change.h) ------------- */

static gboolean
host_define_secret(gpointer data, const MsvmStore *store, const MsvmGeneration *gen,
                   GError **error)
{
  return define_generation_secret(data, gen, error);
}

static gboolean
host_secret_exists(gpointer data, const char *secret_uuid)
{
  VmCtx *ctx = data;
  return msvm_virt_secret_exists(ctx->svc->conn, secret_uuid);
}

static gboolean
host_undefine_secret(gpointer data, const char *secret_uuid, GError **error)
{
  VmCtx *ctx = data;
  return msvm_virt_undefine_secret(ctx->svc->conn, secret_uuid, error);
}

static gboolean
host_secrets_in_use(gpointer data, GStrv *ret_secrets, GError **error)
{
  VmCtx *ctx = data;
  return msvm_virt_secrets_in_use(ctx->svc->conn, ret_secrets, error);
}

static gboolean
host_define_domain(gpointer data, const char *xml, GError **error)
{
  VmCtx *ctx = data;

  if (!msvm_virt_define(ctx->svc->conn, xml, error))
    return FALSE;
  if (msvm_fault_fail("define-domain")) {
    /* test builds: a define libvirt applied but reported as failed */
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "cannot define the domain: injected failure after the define");
    return FALSE;
  }
  return TRUE;
}

/* The facts of the persistent definition the protocol needs. */
static gboolean
read_definition_facts(VmCtx *ctx, MsvmDefinitionFacts *ret_facts, GError **error)
{
  g_autofree char *xml = msvm_virt_inactive_xml(ctx->dom, FALSE, error);
  g_autoptr(xmlDoc) doc = NULL;

  if (xml == NULL)
    return FALSE;
  doc = msvm_domain_parse(xml, strlen(xml), error);
  if (doc == NULL)
    return FALSE;
  ret_facts->secret = msvm_domain_get_tpm_secret(doc);
  ret_facts->change_id = msvm_domain_get_change_id(doc);
  return TRUE;
}

static gboolean
host_read_definition(gpointer data, MsvmDefinitionFacts *ret_facts, GError **error)
{
  return read_definition_facts(data, ret_facts, error);
}

/* The protocol on this VM, under its lock, with the persistent definition
 * read now. */
static gboolean
vm_ctx_change(VmCtx *ctx, MsvmChange *change, MsvmChangeHost *host, GError **error)
{
  *host = (MsvmChangeHost){
    .data = ctx,
    .define_secret = host_define_secret,
    .secret_exists = host_secret_exists,
    .undefine_secret = host_undefine_secret,
    .secrets_in_use = host_secrets_in_use,
    .define_domain = host_define_domain,
    .read_definition = host_read_definition,
  };
  gboolean managed_save = FALSE;

  *change = (MsvmChange){
    .actor = MSVM_CHANGE_BY_PROVIDER,
    .store = ctx->store,
    .host = host,
    .state_dir = ctx->state_dir,
    .vm_name = ctx->name,
    .active = ctx->active,
  };
  /* A managed-save image holds the vTPM state its next start restores
   * (under the passphrase it was saved with): the state on disk is not to
   * be re-keyed, as for a running VM. */
  if (!ctx->active && !msvm_virt_has_managed_save(ctx->dom, &managed_save, error))
    return FALSE;
  change->active = ctx->active || managed_save;
  return read_definition_facts(ctx, &change->definition, error);
}

/* Finish whatever is unfinished (msvm_change_finish), then retire.  The
 * caller holds the lock. */
static gboolean
recover_locked(VmCtx *ctx, gboolean *ret_did, GError **error)
{
  MsvmChange change;
  MsvmChangeHost host;
  gboolean did = FALSE, ok;

  if (!vm_ctx_change(ctx, &change, &host, error)) {
    msvm_change_clear(&change);
    return FALSE;
  }
  ok = msvm_change_finish(&change, &did, error);
  if (ok)
    (void)msvm_change_retire(&change);
  else
    g_prefix_error(error, "VM %s: ", ctx->name);
  msvm_change_clear(&change);
  if (ok && ret_did != NULL)
    *ret_did = did;
  return ok;
}

/* --- validation ---------------------------------------------------------------------- */

static gboolean
parse_settings(const guint8 *data, gsize len, MsvmSettings **ret, GError **error)
{
  if (data == NULL || len == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "no Msvm_SecuritySettingData instance given");
    return FALSE;
  }
  if (!msvm_instance_parse(data, len, ret, error)) {
    g_prefix_error(error, "Msvm_SecuritySettingData: ");
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_bytes(const char *what, const guint8 *data, gsize len, GError **error)
{
  if (data == NULL || len == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "the %s is empty", what);
    return FALSE;
  }
  if (len > MSVM_SECURITY_PROTECTOR_MAX_SIZE) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "the %s is %" G_GSIZE_FORMAT " bytes, more than the limit of %u", what, len,
                MSVM_SECURITY_PROTECTOR_MAX_SIZE);
    return FALSE;
  }
  return TRUE;
}

/* Preconditions that need no store. */
static gboolean
check_domain_state(VmCtx *ctx, const MsvmCallOptions *opts, GError **error)
{
  gboolean defer = (opts->flags & MSVM_CALL_DEFER) != 0;
  gboolean force = (opts->flags & MSVM_CALL_FORCE) != 0;
  gboolean has = FALSE;

  if (virDomainIsPersistent(ctx->dom) == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s is transient: msvm-security changes persistent definitions only",
                ctx->name);
    return FALSE;
  }
  if (ctx->active && !defer) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s is running: stop it, or pass --defer to have the change finished "
                "before its next start", ctx->name);
    return FALSE;
  }
  if (ctx->active && !msvm_hook_check_loaded(ctx->svc->system ? 0 : geteuid(), error))
    return FALSE;
  if (!force) {
    if (!msvm_virt_has_managed_save(ctx->dom, &has, error))
      return FALSE;
    if (has) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "VM %s has a managed-save image, which holds its vTPM state under the old "
                  "passphrase: start it or remove the image (virsh managedsave-remove), or "
                  "force", ctx->name);
      return FALSE;
    }
    if (!msvm_virt_has_memory_snapshots(ctx->dom, &has, error))
      return FALSE;
    if (has) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "VM %s has snapshots with memory, which hold its vTPM state under the old "
                  "passphrase; force to go ahead", ctx->name);
      return FALSE;
    }
  }
  return TRUE;
}

/* Every emulator TPM of the definition names @secret (DESIGN.md section 4:
 * the <encryption> always names the current generation); a TPM 1.2 is
 * refused. */
static gboolean
ensure_tpm_secret(xmlDocPtr doc, const char *secret, GError **error)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);

  for (xmlNodePtr devs = root ? root->children : NULL; devs != NULL; devs = devs->next) {
    if (devs->type != XML_ELEMENT_NODE || !xmlStrEqual(devs->name, BAD_CAST "devices"))
      continue;
    for (xmlNodePtr tpm = devs->children; tpm != NULL; tpm = tpm->next) {
      if (tpm->type != XML_ELEMENT_NODE || !xmlStrEqual(tpm->name, BAD_CAST "tpm"))
        continue;
      for (xmlNodePtr be = tpm->children; be != NULL; be = be->next) {
        xmlChar *type, *version;
        gboolean emulator, v12;
        if (be->type != XML_ELEMENT_NODE || !xmlStrEqual(be->name, BAD_CAST "backend"))
          continue;
        type = xmlGetProp(be, BAD_CAST "type");
        version = xmlGetProp(be, BAD_CAST "version");
        emulator = type != NULL && xmlStrEqual(type, BAD_CAST "emulator");
        v12 = version != NULL && xmlStrEqual(version, BAD_CAST "1.2");
        xmlFree(type);
        xmlFree(version);
        if (!emulator)
          continue;
        if (v12) {
          g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                      "the VM has a TPM 1.2, whose state msvm-security does not handle");
          return FALSE;
        }
        if (secret == NULL)
          continue;
        {
          xmlNodePtr enc = NULL;
          for (xmlNodePtr c = be->children; c != NULL; c = c->next) {
            if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, BAD_CAST "encryption"))
              enc = c;
          }
          if (enc == NULL)
            enc = xmlNewChild(be, NULL, BAD_CAST "encryption", NULL);
          xmlSetProp(enc, BAD_CAST "secret", BAD_CAST secret);
        }
      }
    }
  }
  return TRUE;
}

/* --- the change ----------------------------------------------------------------------- */

typedef struct {
  /* inputs */
  MsvmOp op;
  const MsvmSettings *settings;
  const guint8 *payload;
  gsize payload_len;
  const MsvmCallOptions *opts;
  /* outputs of plan() */
  guint target;              /* 0: no protector */
  gboolean new_generation;
  char *new_xml;
  char *new_stash;
  char *message;
  char *change_id;           /* the marker new_xml carries */
  gboolean names_target;     /* new_xml has an emulator TPM naming the target's secret */
  gboolean nothing_to_do;
} Plan;

static void
plan_clear(Plan *p)
{
  g_clear_pointer(&p->new_xml, g_free);
  g_clear_pointer(&p->new_stash, msvm_secret_text_free);
  g_clear_pointer(&p->message, g_free);
  g_clear_pointer(&p->change_id, g_free);
  p->target = 0;
  p->new_generation = FALSE;
  p->nothing_to_do = FALSE;
  p->names_target = FALSE;
}

static gboolean
halves_equal(const MsvmGeneration *gen, const guint8 *kp, gsize kp_len, gboolean has_kp,
             const guint8 *pol, gsize pol_len, gboolean has_pol)
{
  if (gen == NULL || gen->foreign)
    return FALSE;
  if (gen->has_key_protector != has_kp || gen->has_policy != has_pol)
    return FALSE;
  if (has_kp && (gen->key_protector_len != kp_len ||
                 memcmp(gen->key_protector, kp, kp_len) != 0))
    return FALSE;
  if (has_pol && (gen->policy_len != pol_len || memcmp(gen->policy, pol, pol_len) != 0))
    return FALSE;
  return TRUE;
}

/* Try @pass (and @pass without one trailing newline) on the state. */
static gboolean
check_foreign_passphrase(const char *state_dir, const guint8 *pass, gsize len,
                         gsize *ret_len, GError **error)
{
  MsvmStateKey key = { .passphrase = pass, .passphrase_len = len,
                       .kdf = MSVM_KDF_PBKDF2, .cipher = MSVM_CIPHER_AES_256_CBC };
  g_autoptr(GError) e = NULL;

  if (msvm_state_dir_check(state_dir, &key, &e)) {
    *ret_len = len;
    return TRUE;
  }
  if (len > 1 && pass[len - 1] == '\n') {
    key.passphrase_len = len - 1;
    if (msvm_state_dir_check(state_dir, &key, NULL)) {
      *ret_len = len - 1;
      return TRUE;
    }
  }
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
              "the passphrase given with --old-passphrase-file does not open the vTPM "
              "state: %s", e->message);
  return FALSE;
}

/* Validate and compute the change against ctx->store (modified in memory:
 * a foreign generation, the target generation).  Never changes the host. */
static gboolean
plan(VmCtx *ctx, Plan *p, GError **error)
{
  MsvmStore *store = ctx->store;
  const MsvmCallOptions *opts = p->opts;
  gboolean force = (opts->flags & MSVM_CALL_FORCE) != 0;
  g_autofree char *xml = NULL;
  g_autoptr(xmlDoc) doc = NULL;
  g_autofree char *existing = NULL;
  g_autoptr(MsvmSettings) update = NULL;
  MsvmGeneration *cur;
  MsvmTranslateOptions topts = { 0 };
  const char *target_secret = NULL;
  g_autofree char *previous_change_id = NULL;
  guint generations_before = store->generations->len;
  const guint8 *old_pass = NULL;
  gsize old_pass_len = 0;

  xml = msvm_virt_inactive_xml(ctx->dom, TRUE, error);
  if (xml == NULL)
    return FALSE;
  doc = msvm_domain_parse(xml, strlen(xml), error);
  if (doc == NULL)
    return FALSE;
  previous_change_id = msvm_domain_get_change_id(doc);

  /* An <encryption> secret the project did not create. */
  if (opts->old_passphrase != NULL) {
    old_pass = g_bytes_get_data(opts->old_passphrase, &old_pass_len);
    if (old_pass == NULL)
      old_pass = (const guint8 *)""; /* an empty passphrase is one too */
  }
  existing = msvm_domain_get_tpm_secret(doc);
  if (existing != NULL && msvm_store_find_generation_by_secret(store, existing) == NULL &&
      (old_pass != NULL || p->op != OP_MODIFY_SECURITY_SETTINGS ||
       store->current != 0)) {
    /* (ModifySecuritySettings on a VM without a protector neither names a
     * new secret nor re-keys: the foreign secret stays as it is.) */
    MsvmGeneration *f;
    gsize use_len = old_pass_len;
    if (old_pass == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "the vTPM of VM %s is encrypted with secret %s, which msvm-security did "
                  "not create: give its passphrase with --old-passphrase-file",
                  ctx->name, existing);
      return FALSE;
    }
    if (state_dir_exists(ctx) &&
        !check_foreign_passphrase(ctx->state_dir, old_pass, old_pass_len, &use_len, error))
      return FALSE;
    f = msvm_store_add_foreign_generation(store, existing, old_pass, use_len);
    store->current = f->number;
    store->state = f->number;
  }

  cur = msvm_store_get_generation(store, store->current);
  switch (p->op) {
  case OP_SET_SECURITY_POLICY:
  case OP_SET_KEY_PROTECTOR: {
    gboolean is_kp = p->op == OP_SET_KEY_PROTECTOR;
    gboolean clear = is_kp && p->payload_len == sizeof(no_key_protector) &&
                     memcmp(p->payload, no_key_protector, sizeof(no_key_protector)) == 0;
    gboolean cur_ours = cur != NULL && !cur->foreign;
    const guint8 *kp = is_kp ? p->payload : (cur_ours ? cur->key_protector : NULL);
    gsize kp_len = is_kp ? p->payload_len : (cur_ours ? cur->key_protector_len : 0);
    gboolean has_kp = is_kp ? !clear : (cur_ours && cur->has_key_protector);
    const guint8 *pol = !is_kp ? p->payload : (cur_ours ? cur->policy : NULL);
    gsize pol_len = !is_kp ? p->payload_len : (cur_ours ? cur->policy_len : 0);
    gboolean has_pol = !is_kp ? TRUE : (cur_ours && cur->has_policy);

    if (!has_kp && !has_pol) {
      if (cur == NULL || cur->foreign) {
        /* nothing set and nothing to clear: already the state asked for */
        p->target = store->current;
        break;
      }
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "clearing the key protector needs the security policy half set "
                  "(SetSecurityPolicy first)");
      return FALSE;
    }
    if (halves_equal(cur, kp, kp_len, has_kp, pol, pol_len, has_pol)) {
      p->target = store->current;
    } else {
      MsvmGeneration *gen = msvm_store_add_generation(store, kp, kp_len, has_kp, pol, pol_len,
                                                      has_pol);
      /* A store lost or deleted by hand leaves secrets behind whose usage
       * names would collide: skip their generation numbers. */
      for (guint tries = 0; tries < 1000 && usage_taken(ctx, gen->number); tries++) {
        msvm_store_drop_generation(store, gen->number);
        gen = msvm_store_add_generation(store, kp, kp_len, has_kp, pol, pol_len, has_pol);
      }
      p->target = gen->number;
      p->new_generation = TRUE;
    }
    break;
  }
  case OP_MODIFY_SECURITY_SETTINGS:
    p->target = store->current;
    break;
  case OP_RESTORE_LAST_KNOWN_GOOD:
    if (store->last_known_good == 0 ||
        msvm_store_get_generation(store, store->last_known_good) == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "VM %s has no last known good key protector", ctx->name);
      return FALSE;
    }
    p->target = store->last_known_good;
    break;
  }
  if (p->target != 0)
    target_secret = msvm_store_get_generation(store, p->target)->secret_uuid;

  /* SetKeyProtector and RestoreLastKnownGood only name the VM; the other two
   * apply the instance. */
  if (p->op == OP_SET_KEY_PROTECTOR || p->op == OP_RESTORE_LAST_KNOWN_GOOD) {
    update = msvm_settings_new();
  } else {
    update = msvm_settings_copy(p->settings);
  }
  topts.secret_uuid = target_secret;
  topts.force = force;
  topts.check_host = TRUE;
  topts.host_has_secure_boot = TRUE;
  if (msvm_settings_is_true(update, MSVM_PROP_SHIELDING_REQUESTED) &&
      !msvm_virt_host_has_secure_boot(ctx->svc->conn, xml, &topts.host_has_secure_boot, error))
    return FALSE;
  if (!msvm_domain_apply(doc, update, &topts, store->stash, &p->new_stash, &p->message, error))
    return FALSE;
  if (!ensure_tpm_secret(doc, target_secret, error))
    return FALSE;
  {
    g_autofree char *named = msvm_domain_get_tpm_secret(doc);
    p->names_target = named != NULL && target_secret != NULL &&
                      g_ascii_strcasecmp(named, target_secret) == 0;
  }
  /* The same settings applied again change nothing: no define, no journal
   * (the definition, even its change marker, stays byte for byte). */
  if (p->target == store->current && !p->new_generation &&
      store->generations->len == generations_before &&
      g_strcmp0(p->new_stash, store->stash) == 0) {
    g_autofree char *same = NULL;
    if (previous_change_id != NULL)
      (void)msvm_domain_set_change_id(doc, previous_change_id);
    same = msvm_domain_format(doc);
    if (same != NULL && strcmp(same, xml) == 0) {
      p->nothing_to_do = TRUE;
      p->new_xml = g_steal_pointer(&same);
      return TRUE;
    }
  }
  /* the marker that tells recovery whether this define took effect */
  p->change_id = g_uuid_string_random();
  if (!msvm_domain_set_change_id(doc, p->change_id)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the translated definition has no msvm-security metadata element");
    return FALSE;
  }
  p->new_xml = msvm_domain_format(doc);
  if (p->new_xml == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot serialize the domain definition");
    return FALSE;
  }
  return TRUE;
}

static gboolean
change(MsvmService *svc, MsvmOp op, const guint8 *settings_data, gsize settings_len,
       const guint8 *payload, gsize payload_len, const MsvmCallOptions *opts_in,
       MsvmCallResult **ret_result, GError **error)
{
  g_autoptr(MsvmCallResult) r = NULL;
  static const MsvmCallOptions no_opts = { 0 };
  const MsvmCallOptions *opts = opts_in ? opts_in : &no_opts;
  g_autoptr(MsvmSettings) settings = NULL;
  VmCtx ctx = { .lock_fd = -1 };
  Plan p = { .op = op, .opts = opts, .payload = payload, .payload_len = payload_len };
  MsvmStore *store;
  MsvmStoreJob *job = NULL;
  MsvmChange change = { 0 };
  MsvmChangeHost host;
  MsvmChangeIntent intent;
  char *job_id = NULL;
  gboolean ok = FALSE, did = FALSE;

  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_writable(svc, error))
    return FALSE;

  if (!parse_settings(settings_data, settings_len, &settings, error))
    return FALSE;
  if (op == OP_SET_SECURITY_POLICY && !check_bytes("security policy", payload, payload_len, error))
    return FALSE;
  if (op == OP_SET_KEY_PROTECTOR && !check_bytes("key protector", payload, payload_len, error))
    return FALSE;
  p.settings = settings;

  do {
    if (!vm_ctx_find(svc, settings->has_vm_uuid ? settings->vm_uuid : NULL, opts->domain,
                     &ctx, error))
      break;
    if (!check_domain_state(&ctx, opts, error))
      break;
    /* 1. dry run without the lock, so that a refused call leaves no trace */
    if (!vm_ctx_peek(&ctx, error))
      break;
    if (!ctx.store->journal.open && (ctx.active || ctx.store->state == ctx.store->current)) {
      if (!plan(&ctx, &p, error))
        break;
      plan_clear(&p);
    }
    /* ... then for real, under the lock */
    if (!vm_ctx_lock(&ctx, error))
      break;
    if (!check_domain_state(&ctx, opts, error))
      break;
    if (!vm_ctx_change(&ctx, &change, &host, error))
      break;
    /* 1. whatever an earlier change left unfinished */
    if (!msvm_change_finish(&change, &did, error)) {
      g_prefix_error(error, "finishing the earlier unfinished change of VM %s: ", ctx.name);
      break;
    }
    if (did)
      (void)msvm_change_retire(&change);
    if (!plan(&ctx, &p, error))
      break;
    if (p.nothing_to_do) {
      r = g_new0(MsvmCallResult, 1);
      r->return_value = MSVM_RC_COMPLETED;
      r->message = g_strdup(p.message);
      ok = TRUE;
      break;
    }
    intent = (MsvmChangeIntent){
      .target = p.target,
      .new_generation = p.new_generation,
      .change_id = p.change_id,
      .stash = p.new_stash,
      /* a job only when the next start has something to wait for: the new
       * definition names the target's secret and the state is not under it
       * (a TPM disabled or removed is re-keyed whenever it is back) */
      .job_method = ctx.active && p.target != 0 && p.names_target &&
                        ctx.store->state != p.target ? op_names[op] : NULL,
    };
    /* 2. the journal, 3. the target's secret, 4. the definition (the commit
     * point), 4b. recorded; a failed step abandoned the journal, and what it
     * had added is retired right away */
    if (msvm_change_open_journal(&change, &intent, &job_id, error) == MSVM_STEP_FAILED)
      break;
    if (msvm_change_define_secret(&change, error) == MSVM_STEP_FAILED ||
        msvm_change_define_domain(&change, p.new_xml, error) == MSVM_STEP_FAILED) {
      (void)msvm_change_retire(&change);
      break;
    }
    if (msvm_change_record_defined(&change, error) == MSVM_STEP_FAILED)
      break;
    /* 5. re-key the stopped VM, close the jobs; 6. retire */
    if (!msvm_change_finish(&change, NULL, error)) {
      g_prefix_error(error, "the new settings are defined but the vTPM state was not "
                            "re-keyed (msvm-security recover --domain %s finishes it): ",
                     ctx.name);
      break;
    }
    (void)msvm_change_retire(&change);
    store = ctx.store;
    job = job_id != NULL ? msvm_store_get_job(store, job_id) : NULL;

    r = g_new0(MsvmCallResult, 1);
    r->return_value = MSVM_RC_COMPLETED;
    if (job != NULL && job->state < MSVM_JOB_COMPLETED) {
      r->return_value = MSVM_RC_JOB_STARTED;
      r->job = msvm_job_reference(job->id);
    }
    r->message = g_strdup(p.message);
    if (r->return_value == MSVM_RC_JOB_STARTED) {
      g_autofree char *old = r->message;
      r->message = g_strdup_printf(
        "%s%sVM %s is running: the vTPM state is re-keyed before its next start",
        old ? old : "", old ? "; " : "", ctx.name);
    }
    ok = TRUE;
  } while (0);

  plan_clear(&p);
  msvm_change_clear(&change);
  g_free(job_id);
  vm_ctx_clear(&ctx);
  if (!ok)
    msvm_error_to_public(error); /* the boundary: causes become return codes */
  else
    *ret_result = g_steal_pointer(&r);
  return ok;
}

/**
 * msvm_service_set_security_policy:
 * @service: a service
 * @settings: (array length=settings_len): the embedded
 *   Msvm_SecuritySettingData instance, as the caller received it
 * @settings_len: its length in bytes
 * @policy: (array length=policy_len): the security policy (1 byte to
 *   %MSVM_SECURITY_PROTECTOR_MAX_SIZE)
 * @policy_len: its length in bytes
 * @options: (nullable): the call's options, or %NULL for none
 * @ret_result: (out) (transfer full): what the method answered: 0, or 4096
 *   with a job reference
 * @error: return location for a #MSVM_ERROR error, whose code is the
 *   Hyper-V return value
 *
 * Msvm_SecurityService.SetSecurityPolicy: applies the settings and sets the
 * policy half of the VM's vTPM key protector, as one change (a new
 * generation; the stopped VM's vTPM state is re-keyed).
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_set_security_policy(MsvmService *svc, const guint8 *settings, gsize settings_len,
                                 const guint8 *policy, gsize policy_len,
                                 const MsvmCallOptions *options, MsvmCallResult **ret_result,
                                 GError **error)
{
  return change(svc, OP_SET_SECURITY_POLICY, settings, settings_len, policy, policy_len,
                options, ret_result, error);
}

/**
 * msvm_service_set_key_protector:
 * @service: a service
 * @settings: (array length=settings_len): the embedded
 *   Msvm_SecuritySettingData instance naming the VM
 * @settings_len: its length in bytes
 * @key_protector: (array length=key_protector_len): the key protector
 *   (1 byte to %MSVM_SECURITY_PROTECTOR_MAX_SIZE; the four bytes
 *   00 00 00 04 clear it)
 * @key_protector_len: its length in bytes
 * @options: (nullable): the call's options, or %NULL for none
 * @ret_result: (out) (transfer full): what the method answered: 0, or 4096
 *   with a job reference
 * @error: return location for a #MSVM_ERROR error, whose code is the
 *   Hyper-V return value
 *
 * Msvm_SecurityService.SetKeyProtector: sets the key-protector half of the
 * VM's vTPM key protector (a new generation; the stopped VM's vTPM state is
 * re-keyed).
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_set_key_protector(MsvmService *svc, const guint8 *settings, gsize settings_len,
                               const guint8 *key_protector, gsize key_protector_len,
                               const MsvmCallOptions *options, MsvmCallResult **ret_result,
                               GError **error)
{
  return change(svc, OP_SET_KEY_PROTECTOR, settings, settings_len, key_protector,
                key_protector_len, options, ret_result, error);
}

/**
 * msvm_service_modify_security_settings:
 * @service: a service
 * @settings: (array length=settings_len): the embedded
 *   Msvm_SecuritySettingData instance
 * @settings_len: its length in bytes
 * @options: (nullable): the call's options, or %NULL for none
 * @ret_result: (out) (transfer full): what the method answered: 0, or 4096
 *   with a job reference
 * @error: return location for a #MSVM_ERROR error, whose code is the
 *   Hyper-V return value
 *
 * Msvm_SecurityService.ModifySecuritySettings: applies the settings
 * (TpmEnabled, EncryptStateAndVmMigrationTraffic, ShieldingRequested, ...:
 * docs/mapping.rst); where that adds encryption over a plaintext state, it
 * re-keys as any change does.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_modify_security_settings(MsvmService *svc, const guint8 *settings,
                                      gsize settings_len, const MsvmCallOptions *options,
                                      MsvmCallResult **ret_result, GError **error)
{
  return change(svc, OP_MODIFY_SECURITY_SETTINGS, settings, settings_len, NULL, 0, options,
                ret_result, error);
}

/**
 * msvm_service_restore_last_known_good_key_protector:
 * @service: a service
 * @settings: (array length=settings_len): the embedded
 *   Msvm_SecuritySettingData instance naming the VM
 * @settings_len: its length in bytes
 * @options: (nullable): the call's options, or %NULL for none
 * @ret_result: (out) (transfer full): what the method answered: 0, or 4096
 *   with a job reference
 * @error: return location for a #MSVM_ERROR error, whose code is the
 *   Hyper-V return value
 *
 * Msvm_SecurityService.RestoreLastKnownGoodKeyProtector: makes the last
 * known good generation (the one of the last start with the hook; without
 * it, the one before the latest change) current again, re-keying the
 * state.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_restore_last_known_good_key_protector(MsvmService *svc, const guint8 *settings,
                                                   gsize settings_len,
                                                   const MsvmCallOptions *options,
                                                   MsvmCallResult **ret_result, GError **error)
{
  return change(svc, OP_RESTORE_LAST_KNOWN_GOOD, settings, settings_len, NULL, 0, options,
                ret_result, error);
}

/* --- reads ------------------------------------------------------------------------------ */

/* Finish an unfinished change under the lock (reads do it too: "any later
 * call on the stopped VM first finishes"): an open journal, a stopped VM's
 * state behind `current`, or a definition that names another generation. */
static gboolean
finish_if_needed(VmCtx *ctx, GError **error)
{
  MsvmDefinitionFacts facts = { 0 };
  const MsvmGeneration *named, *current;
  gboolean needed;

  if (!vm_ctx_peek(ctx, error))
    return FALSE;
  if (!ctx->store->exists)
    return TRUE;
  if (!read_definition_facts(ctx, &facts, error))
    return FALSE;
  named = msvm_store_find_generation_by_secret(ctx->store, facts.secret);
  current = msvm_store_get_generation(ctx->store, ctx->store->current);
  needed = ctx->store->journal.open ||
           (!ctx->active && ctx->store->state != ctx->store->current) ||
           (named != NULL && named != current);
  msvm_definition_facts_clear(&facts);
  if (!needed || ctx->svc->read_only)
    return TRUE; /* a read-only connection reads what the store says */
  g_clear_pointer(&ctx->store, msvm_store_free);
  if (!vm_ctx_lock(ctx, error))
    return FALSE;
  return recover_locked(ctx, NULL, error);
}

/**
 * msvm_service_get_key_protector:
 * @service: a service
 * @settings: (array length=settings_len): the embedded
 *   Msvm_SecuritySettingData instance naming the VM
 * @settings_len: its length in bytes
 * @options: (nullable): the call's options (the domain), or %NULL
 * @ret_key_protector: (out) (transfer full): the key-protector bytes, or
 *   00 00 00 04 when none is set (a buffer kept out of core dumps and wiped
 *   when freed)
 * @error: return location for a #MSVM_ERROR error
 *
 * Msvm_SecurityService.GetKeyProtector.  On a stopped VM an unfinished
 * change is finished first.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_get_key_protector(MsvmService *svc, const guint8 *settings_data,
                               gsize settings_len, const MsvmCallOptions *opts_in,
                               GBytes **ret_key_protector, GError **error)
{
  static const MsvmCallOptions no_opts = { 0 };
  const MsvmCallOptions *opts = opts_in ? opts_in : &no_opts;
  g_autoptr(MsvmSettings) settings = NULL;
  VmCtx ctx = { .lock_fd = -1 };
  gboolean ok = FALSE;

  g_return_val_if_fail(ret_key_protector != NULL, FALSE);
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  if (!parse_settings(settings_data, settings_len, &settings, error))
    return FALSE;
  if (vm_ctx_find(svc, settings->has_vm_uuid ? settings->vm_uuid : NULL, opts->domain, &ctx,
                  error) &&
      finish_if_needed(&ctx, error)) {
    MsvmGeneration *cur = msvm_store_get_generation(ctx.store, ctx.store->current);
    if (cur != NULL && cur->has_key_protector)
      *ret_key_protector = msvm_secret_bytes_new(cur->key_protector, cur->key_protector_len);
    else
      *ret_key_protector = msvm_secret_bytes_new(no_key_protector, sizeof(no_key_protector));
    ok = TRUE;
  }
  vm_ctx_clear(&ctx);
  if (!ok)
    msvm_error_to_public(error);
  return ok;
}

/**
 * msvm_service_get_security_settings:
 * @service: a service
 * @domain: the VM's name or UUID
 * @format: the serialization to answer in
 * @ret_text: (out) (transfer full): the VM's Msvm_SecuritySettingData as
 *   applied (from the domain's metadata)
 * @error: return location for a #MSVM_ERROR error
 *
 * The settings the project applied to a VM, as an instance a Hyper-V
 * client reads (os-win's is_secure_vm reads
 * EncryptStateAndVmMigrationTraffic from it).
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_get_security_settings(MsvmService *svc, const char *domain,
                                   MsvmSettingsFormat format, char **ret_text, GError **error)
{
  VmCtx ctx = { .lock_fd = -1 };
  g_autofree char *xml = NULL;
  g_autoptr(xmlDoc) doc = NULL;
  g_autoptr(MsvmSettings) s = NULL;
  gboolean ok = FALSE;

  g_return_val_if_fail(ret_text != NULL, FALSE);
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  if (vm_ctx_find(svc, NULL, domain, &ctx, error) &&
      (xml = msvm_virt_inactive_xml(ctx.dom, FALSE, error)) != NULL &&
      (doc = msvm_domain_parse(xml, strlen(xml), error)) != NULL &&
      msvm_domain_read_settings(doc, &s, error)) {
    *ret_text = format == MSVM_SETTINGS_FORMAT_MOF ? msvm_settings_format_mof(s)
                                                   : msvm_settings_format_cim_xml(s);
    ok = TRUE;
  }
  vm_ctx_clear(&ctx);
  return ok;
}

/**
 * msvm_service_recover:
 * @service: a service
 * @domain: the VM's name or UUID
 * @ret_result: (out) (transfer full): 0, or 4096 with the job that is
 *   still open (a running VM's deferred change)
 * @error: return location for a #MSVM_ERROR error
 *
 * Finishes an interrupted or deferred change of a stopped VM (DESIGN.md
 * section 6: the CLI's `recover`); on a running VM only the definition part
 * is finished.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_recover(MsvmService *svc, const char *domain, MsvmCallResult **ret_result,
                     GError **error)
{
  g_autoptr(MsvmCallResult) r = NULL;
  VmCtx ctx = { .lock_fd = -1 };
  gboolean ok = FALSE, did = FALSE;

  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_writable(svc, error))
    return FALSE;
  if (vm_ctx_find(svc, NULL, domain, &ctx, error) && vm_ctx_peek(&ctx, error)) {
    g_autofree char *vm_dir = g_build_filename(svc->store_root, ctx.uuid_str, NULL);
    if (!ctx.store->exists && g_file_test(vm_dir, G_FILE_TEST_IS_DIR)) {
      /* a first change killed before its store was written: the lock
       * clears the partial write */
      int fd = msvm_store_lock(svc->store_root, ctx.uuid, TRUE, NULL);
      if (fd >= 0)
        close(fd);
    }
    if (!ctx.store->exists) {
      r = g_new0(MsvmCallResult, 1);
      r->message = g_strdup_printf("VM %s has no msvm-security store: nothing to do",
                                            ctx.name);
      ok = TRUE;
    } else if (vm_ctx_lock(&ctx, error) && recover_locked(&ctx, &did, error)) {
      r = g_new0(MsvmCallResult, 1);
      if (msvm_store_has_open_jobs(ctx.store)) {
        r->return_value = MSVM_RC_JOB_STARTED;
        for (guint i = 0; i < ctx.store->jobs->len; i++) {
          MsvmStoreJob *j = g_ptr_array_index(ctx.store->jobs, i);
          if (j->state < MSVM_JOB_COMPLETED) {
            g_free(r->job);
            r->job = msvm_job_reference(j->id);
          }
        }
        r->message = g_strdup_printf(
          "VM %s is running: the vTPM state is re-keyed before its next start", ctx.name);
      } else {
        r->message = g_strdup_printf(did ? "VM %s: the unfinished change is finished"
                                                  : "VM %s: nothing was unfinished",
                                              ctx.name);
      }
      ok = TRUE;
    }
  }
  vm_ctx_clear(&ctx);
  if (!ok)
    msvm_error_to_public(error);
  else
    *ret_result = g_steal_pointer(&r);
  return ok;
}

/* --- jobs ---------------------------------------------------------------------------------- */

static char *
cim_datetime(gint64 usec)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(usec / G_USEC_PER_SEC);
  g_autofree char *base = NULL;

  if (dt == NULL)
    return g_strdup("00000000000000.000000+000");
  base = g_date_time_format(dt, "%Y%m%d%H%M%S");
  return g_strdup_printf("%s.%06d+000", base, (int)(usec % G_USEC_PER_SEC));
}

static MsvmJob *
job_public(const MsvmStoreJob *j, const char *vm_uuid)
{
  MsvmJob *job = g_new0(MsvmJob, 1);

  job->instance_id = g_strdup(j->id);
  job->reference = msvm_job_reference(j->id);
  job->vm_uuid = g_strdup(vm_uuid);
  job->method = g_strdup(j->method);
  job->job_state = j->state;
  job->error_code = j->error_code;
  job->error_description = g_strdup(j->error_description);
  job->percent_complete = j->percent_complete;
  job->time_submitted = cim_datetime(j->time_submitted);
  job->time_of_last_state_change = cim_datetime(j->time_changed);
  return job;
}

/**
 * msvm_service_get_job:
 * @service: a service
 * @id_or_reference: a job's InstanceID, or its reference
 *   `Msvm_ConcreteJob.InstanceID="<uuid>"` (a #MsvmCallResult's job)
 * @ret_job: (out) (transfer full): the job
 * @error: return location for a #MSVM_ERROR error: 32773 when
 *   @id_or_reference is malformed, 32777 when no such job is known
 *
 * Reads a job (a CIM_ConcreteJob) of this service's store: a Hyper-V
 * client polls it until its job_state is 7 or more.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_get_job(MsvmService *svc, const char *id_or_reference, MsvmJob **ret_job,
                     GError **error)
{
  g_autofree char *id = msvm_job_id_from_reference(id_or_reference);
  g_autoptr(MsvmStoreJob) j = NULL;
  g_autofree char *vm = NULL;

  g_return_val_if_fail(ret_job != NULL, FALSE);
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  if (id == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s is not a job id or a Msvm_ConcreteJob reference",
                id_or_reference ? id_or_reference : "(null)");
    return FALSE;
  }
  if (!msvm_store_find_job(svc->store_root, id, &j, &vm, error))
    return FALSE;
  if (j == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE, "no job %s", id);
    return FALSE;
  }
  *ret_job = job_public(j, vm);
  return TRUE;
}

/**
 * msvm_service_list_jobs:
 * @service: a service
 * @ret_jobs: (out) (transfer full) (element-type MsvmJob): every job of
 *   this service's store, oldest first; %NULL when there is none (free with
 *   `g_list_free_full(jobs, (GDestroyNotify)msvm_job_free)`, or hold in a
 *   `g_autolist(MsvmJob)`)
 * @error: return location for a #MSVM_ERROR error
 *
 * Lists the jobs (the CLI's `job list`).  (A #GList, not a #GPtrArray
 * with a free function: PyGObject 3.42 takes the elements of a (transfer
 * full) array and then frees the array with its free function, which frees
 * them under its feet.)
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_list_jobs(MsvmService *svc, GList **ret_jobs, GError **error)
{
  g_autoptr(GPtrArray) jobs = NULL;
  g_autoptr(GPtrArray) vms = NULL;
  GList *out = NULL;

  g_return_val_if_fail(ret_jobs != NULL, FALSE);
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  if (!msvm_store_list_jobs(svc->store_root, &jobs, &vms, error))
    return FALSE;
  for (guint i = jobs->len; i > 0; i--)
    out = g_list_prepend(out, job_public(g_ptr_array_index(jobs, i - 1),
                                         g_ptr_array_index(vms, i - 1)));
  *ret_jobs = out;
  return TRUE;
}
