/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-move.c: guardians and moving a protected VM between hosts through
 * the provider (DESIGN.md section 10; msvm-security.h): guardian show,
 * trust, list and forget; export-protector, import-protector, forget.
 *
 * Import, in order, each step undone when a later one fails (nothing is
 * left behind: no secret, no state directory, no store entry):
 *   1. open the bundle (decrypt, verify) and check everything: the store's
 *      entry (another seed: --force), the secrets already defined (only the
 *      entry's own, with the same value), a domain with that UUID (with a
 *      state: refused), a state directory already there (refused);
 *   2. under the VM's store lock: undefine the secrets of generations the
 *      old entry has and the bundle drops (none a domain names: checked in
 *      1; a new lineage reuses their usage names), then define the
 *      generations' secrets that do not exist yet (same UUID, same usage
 *      name, same value);
 *   3. with a state: build the TPM state directory beside its place, with
 *      the swtpm user's ownership, fsync it, rename it into place;
 *   4. write the store entry (atomically);
 *   5. with a state: define the domain (the last step; its failure undoes
 *      2-4, the old entry's secrets defined again from it).
 */
#include "config.h"

#include "msvm-security.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "msvm-bundle.h"
#include "msvm-cause.h"
#include "msvm-domain.h"
#include "msvm-errno.h"
#include "msvm-error.h"
#include "msvm-fault.h"
#include "msvm-file.h"
#include "msvm-guardian.h"
#include "msvm-io.h"
#include "msvm-secret.h"
#include "msvm-service-private.h"
#include "msvm-settings.h"
#include "msvm-store.h"
#include "msvm-store-private.h"
#include "msvm-uuid.h"
#include "msvm-virt.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

#define IMPORT_SIDE_DIR ".tpm2.msvm-import"
#define QEMU_CONF "/etc/libvirt/qemu.conf"

/* --- guardians ------------------------------------------------------------------ */

static MsvmGuardianInfo *
info_of(const MsvmGuardianPeer *p)
{
  MsvmGuardianInfo *i = g_new0(MsvmGuardianInfo, 1);

  i->name = g_strdup(p->name);
  i->local = p->local;
  i->signing_fingerprint = g_strdup(p->signing_fingerprint);
  i->encryption_fingerprint = g_strdup(p->encryption_fingerprint);
  i->subject = g_strdup(p->subject);
  return i;
}

/* A success's answer: 0 and a note. */
static MsvmCallResult *
result_new(char *message)
{
  MsvmCallResult *r = g_new0(MsvmCallResult, 1);

  r->return_value = MSVM_RC_COMPLETED;
  r->message = message;
  return r;
}

/**
 * msvm_service_guardian_show:
 * @service: a service
 * @ret_certificates: (out) (transfer full): the signing and the encryption
 *   certificate, one PEM text: what a peer trusts
 * @error: return location for a #MSVM_ERROR error
 *
 * This store's guardian (Export-HgsGuardian).  It is created on first use:
 * an EC P-256 signing and an EC P-256 encryption key pair with self-signed
 * certificates, in the store's owner-only `guardian/` folder.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_guardian_show(MsvmService *svc, char **ret_certificates, GError **error)
{
  g_autoptr(MsvmGuardian) g = NULL;
  char *pem;

  g_return_val_if_fail(ret_certificates != NULL, FALSE);
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  g = msvm_guardian_open(svc->store_root, error);
  if (g == NULL)
    return FALSE;
  pem = msvm_guardian_certificates_pem(g);
  if (pem == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot encode the certificates");
    return FALSE;
  }
  *ret_certificates = pem;
  return TRUE;
}

/**
 * msvm_service_guardian_trust:
 * @service: a service
 * @name: the name the peer is known by here: 1-64 of `[A-Za-z0-9._-]`, not
 *   starting with `.` or `-`, not "local"
 * @certificates: (array length=certificates_len): what the peer's
 *   msvm_service_guardian_show() gave (PEM text)
 * @certificates_len: its length in bytes
 * @flags: %MSVM_CALL_FORCE: replace the certificates of a peer already
 *   trusted under @name
 * @ret_result: (out) (transfer full): 0 and a note naming the certificates'
 *   SHA-256 fingerprints
 * @error: return location for a #MSVM_ERROR error
 *
 * Trusts a peer guardian (Import-HgsGuardian): bundles it signs import
 * here, bundles for it can be exported.  The same name with other
 * certificates: 32775 unless @flags has %MSVM_CALL_FORCE; the same
 * certificates again: 0, nothing changes; a bad name or certificate text:
 * 32773; a read-only connection: 32769.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_guardian_trust(MsvmService *svc, const char *name, const guint8 *certificates,
                            gsize certificates_len, MsvmCallFlags flags,
                            MsvmCallResult **ret_result, GError **error)
{
  g_autoptr(MsvmGuardian) g = NULL;
  g_autoptr(MsvmGuardianPeer) peer = NULL;
  gboolean changed = FALSE;

  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_writable(svc, error) || !msvm_guardian_check_name(name, error))
    return FALSE;
  g = msvm_guardian_open(svc->store_root, error);
  if (g == NULL ||
      !msvm_guardian_trust(g, name, certificates, certificates_len,
                           (flags & MSVM_CALL_FORCE) != 0, &changed, &peer, error))
    return FALSE;
  *ret_result = result_new(
    g_strdup_printf(changed ? "guardian '%s' is trusted: signing certificate SHA-256 %s, "
                              "encryption certificate SHA-256 %s"
                            : "guardian '%s' was already trusted with these certificates "
                              "(signing SHA-256 %s, encryption SHA-256 %s); nothing changed",
                    name, peer->signing_fingerprint, peer->encryption_fingerprint));
  return TRUE;
}

/**
 * msvm_service_guardian_list:
 * @service: a service
 * @ret_guardians: (out) (transfer full) (element-type MsvmGuardianInfo):
 *   this store's guardian (name "local"), then the trusted ones by name
 *   (free with `g_list_free_full(list, (GDestroyNotify)msvm_guardian_info_free)`,
 *   or hold in a `g_autolist(MsvmGuardianInfo)`)
 * @error: return location for a #MSVM_ERROR error
 *
 * Lists the guardians with their certificates' SHA-256 fingerprints
 * (Get-HgsGuardian).  This store's guardian is created on first use.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_guardian_list(MsvmService *svc, GList **ret_guardians, GError **error)
{
  g_autoptr(MsvmGuardian) g = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  GList *out = NULL;

  g_return_val_if_fail(ret_guardians != NULL, FALSE);
  if (!msvm_service_check_open(svc, error))
    return FALSE;
  g = msvm_guardian_open(svc->store_root, error);
  if (g == NULL || !msvm_guardian_list(g, &peers, error))
    return FALSE;
  for (guint i = peers->len; i > 0; i--)
    out = g_list_prepend(out, info_of(g_ptr_array_index(peers, i - 1)));
  *ret_guardians = out;
  return TRUE;
}

/**
 * msvm_service_guardian_forget:
 * @service: a service
 * @name: a trusted guardian's name
 * @ret_result: (out) (transfer full): 0 and a note
 * @error: return location for a #MSVM_ERROR error
 *
 * Stops trusting the guardian @name (Remove-HgsGuardian): its bundles no
 * longer import, none is exported for it.  Unknown: 32777; "local" or a
 * bad name: 32773; a read-only connection: 32769.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_guardian_forget(MsvmService *svc, const char *name, MsvmCallResult **ret_result,
                             GError **error)
{
  g_autoptr(MsvmGuardian) g = NULL;

  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_writable(svc, error) || !msvm_guardian_check_name(name, error))
    return FALSE;
  g = msvm_guardian_open(svc->store_root, error);
  if (g == NULL || !msvm_guardian_forget(g, name, error))
    return FALSE;
  *ret_result = result_new(g_strdup_printf("guardian '%s' is no longer trusted", name));
  return TRUE;
}

/* --- shared ---------------------------------------------------------------------- */

static gboolean
check_guardian_name(const char *name, GError **error)
{
  if (g_strcmp0(name, MSVM_GUARDIAN_LOCAL) == 0)
    return TRUE;
  return msvm_guardian_check_name(name, error);
}

static char *
usage_description(const guint8 uuid[16], guint number)
{
  g_autofree char *u = msvm_uuid_to_string(uuid);
  return g_strdup_printf("msvm-security vTPM passphrase of VM %s, generation %u", u, number);
}

static gboolean
define_secret(MsvmService *svc, const MsvmStore *store, const MsvmGeneration *gen,
              GError **error)
{
  g_autofree char *usage = msvm_store_secret_usage(store->uuid, gen->number);
  g_autofree char *desc = usage_description(store->uuid, gen->number);
  char *pass = NULL;
  gsize len = 0;
  gboolean ok;

  if (!msvm_store_generation_passphrase(store, gen, &pass, &len, error))
    return FALSE;
  ok = msvm_virt_define_secret(svc->conn, gen->secret_uuid, usage, desc, (const guint8 *)pass,
                               len, error);
  msvm_passphrase_free(pass, len);
  return ok;
}

/* Do two generations (of stores with the same seed and VM) hold the same
 * passphrase? */
static gboolean
same_halves(const MsvmGeneration *a, const MsvmGeneration *b)
{
  if (a->foreign || b->foreign || a->has_key_protector != b->has_key_protector ||
      a->has_policy != b->has_policy)
    return FALSE;
  if (a->has_key_protector &&
      (a->key_protector_len != b->key_protector_len ||
       memcmp(a->key_protector, b->key_protector, a->key_protector_len) != 0))
    return FALSE;
  if (a->has_policy &&
      (a->policy_len != b->policy_len || memcmp(a->policy, b->policy, a->policy_len) != 0))
    return FALSE;
  return TRUE;
}

static gboolean
secret_listed(const char *secret, GStrv list)
{
  for (gsize i = 0; list != NULL && list[i] != NULL; i++) {
    if (msvm_uuid_equal_text(secret, list[i]))
      return TRUE;
  }
  return FALSE;
}

/* --- export ------------------------------------------------------------------------ */

/* A state file as it is on disk, or nothing when it is not there. */
static gboolean
read_state_file(const char *dir, const char *name, MsvmBundle *b, GError **error)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GBytes) data = NULL;
  gboolean missing = FALSE;
  guint32 mode = 0;

  if (!msvm_store_read_file(path, MSVM_BUNDLE_FILE_MAX, "vTPM state", FALSE, &data, &mode,
                            &missing, error))
    return FALSE;
  if (missing)
    return TRUE;
  if (g_bytes_get_size(data) == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE, "%s is empty", path);
    return FALSE;
  }
  msvm_bundle_add_state_file(b, name, mode & 0777, data);
  return TRUE;
}

static gboolean
export_checks_with_state(virDomainPtr dom, const char *name, const MsvmStore *store,
                         GError **error)
{
  gboolean has = FALSE;
  int active = virDomainIsActive(dom);

  if (active < 0)
    return msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the domain's state");
  if (active > 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s is running: --with-state exports a stopped VM (a running one moves "
                "with virsh migrate, after an export without --with-state)", name);
    return FALSE;
  }
  if (virDomainIsPersistent(dom) == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s is transient: it has no persistent definition to export", name);
    return FALSE;
  }
  if (!msvm_virt_has_managed_save(dom, &has, error))
    return FALSE;
  if (has) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s has a managed-save image, which holds its vTPM state and does not "
                "move with the export: start it and shut it down, or remove the image", name);
    return FALSE;
  }
  if (store->state != store->current || msvm_store_has_open_jobs(store)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s has an unfinished key protector change (its vTPM state is not yet "
                "under the current protector): run msvm-security recover --domain %s first",
                name, name);
    return FALSE;
  }
  return TRUE;
}

/**
 * msvm_service_export_protector:
 * @service: a service
 * @domain: the VM's name or UUID
 * @guardian: the guardian the bundle is for: a trusted name, or
 *   %MSVM_SECURITY_GUARDIAN_LOCAL (a backup this store imports again)
 * @flags: %MSVM_EXPORT_WITH_STATE: the definition and the vTPM state too
 * @ret_bundle: (out) (transfer full): the bundle, DER (CMS
 *   AuthEnvelopedData); the caller writes it to a file of its own
 * @ret_result: (out) (transfer full): 0 and a note naming what is inside
 * @error: return location for a #MSVM_ERROR error
 *
 * The VM's key protector for @guardian (Grant-HgsKeyProtectorAccess): its
 * seed and every generation still needed with its halves and secret UUID,
 * the recorded settings and the shielding stash, signed by this guardian
 * (CMS SignedData) and encrypted for @guardian (AES-256-GCM).  Nothing on
 * this host changes.  No protector or an unfinished change: 32775;
 * unknown guardian or VM: 32777.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_export_protector(MsvmService *svc, const char *domain, const char *guardian,
                              MsvmExportFlags flags, GBytes **ret_bundle,
                              MsvmCallResult **ret_result, GError **error)
{
  gboolean with_state = (flags & MSVM_EXPORT_WITH_STATE) != 0;
  g_autoptr(virDomain) dom = NULL;
  g_autoptr(MsvmStore) store = NULL;
  g_autoptr(MsvmBundle) b = NULL;
  g_autoptr(MsvmGuardian) g = NULL;
  g_autoptr(GPtrArray) unneeded = NULL;
  g_autoptr(GPtrArray) needed = g_ptr_array_new();
  g_auto(GStrv) in_use = NULL;
  g_autofree char *name = NULL;
  g_autofree char *state_dir = NULL;
  GBytes *sealed = NULL;
  guint8 uuid[16];
  int lock = -1;
  gboolean ok = FALSE;

  g_return_val_if_fail(ret_bundle != NULL, FALSE);
  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_open(svc, error) || !check_guardian_name(guardian, error))
    goto out;
  if (domain == NULL || *domain == '\0') {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "no VM named");
    goto out;
  }
  dom = msvm_virt_find_domain(svc->conn, NULL, domain, error);
  if (dom == NULL)
    goto out;
  if (virDomainGetUUID(dom, uuid) < 0) {
    msvm_virt_error(error, MSVM_RC_FAILED, "cannot read the domain UUID");
    goto out;
  }
  name = g_strdup(virDomainGetName(dom));
  if (!msvm_store_load(svc->store_root, uuid, &store, error))
    goto out;
  if (!store->exists || !store->has_seed || store->current == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s has no msvm-security key protector: nothing to export", name);
    goto out;
  }
  /* a consistent copy: no change runs meanwhile (nothing is written) */
  lock = msvm_store_lock(svc->store_root, uuid, TRUE, error);
  if (lock < 0)
    goto out;
  g_clear_pointer(&store, msvm_store_free);
  if (!msvm_store_load(svc->store_root, uuid, &store, error))
    goto out;
  if (store->journal.open) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s has an interrupted key protector change: run msvm-security recover "
                "--domain %s first", name, name);
    goto out;
  }
  if (with_state && !export_checks_with_state(dom, name, store, error))
    goto out;
  /* the generations anything still needs (DESIGN.md section 5) */
  if (!msvm_virt_secrets_in_use(svc->conn, &in_use, error))
    goto out;
  unneeded = msvm_store_unneeded_generations(store, (const char *const *)in_use);
  for (guint i = 0; i < store->generations->len; i++) {
    MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (!g_ptr_array_find(unneeded, GUINT_TO_POINTER(gen->number), NULL))
      g_ptr_array_add(needed, GUINT_TO_POINTER(gen->number));
  }
  b = msvm_bundle_new(uuid);
  if (!msvm_bundle_set_protector(b, store, needed, error))
    goto out;
  b->exported = g_get_real_time() / G_USEC_PER_SEC;
  b->source_host = g_strdup(g_get_host_name());
  {
    /* the recorded settings, from the definition's metadata */
    g_autofree char *xml = msvm_virt_inactive_xml(dom, FALSE, NULL);
    g_autoptr(xmlDoc) doc = xml ? msvm_domain_parse(xml, strlen(xml), NULL) : NULL;
    g_autoptr(MsvmSettings) s = NULL;
    if (doc != NULL && msvm_domain_read_settings(doc, &s, NULL))
      b->settings = msvm_settings_format_cim_xml(s);
  }
  if (with_state) {
    char *xml = msvm_virt_inactive_xml(dom, TRUE, error);
    struct stat st;
    if (xml == NULL)
      goto out;
    /* (the secure definition may hold passwords) */
    b->definition = msvm_secret_bytes_new(xml, strlen(xml));
    msvm_wipe(xml, strlen(xml));
    g_free(xml);
    state_dir = msvm_swtpm_state_dir(svc->system, geteuid(), uuid, "2.0", error);
    if (state_dir == NULL)
      goto out;
    b->state_files = g_ptr_array_new_with_free_func((GDestroyNotify)msvm_bundle_file_free);
    if (lstat(state_dir, &st) == 0) {
      if (!read_state_file(state_dir, MSVM_BUNDLE_PERMALL, b, error) ||
          !read_state_file(state_dir, MSVM_BUNDLE_VOLATILE, b, error))
        goto out;
      if (b->state_files->len > 0 &&
          g_strcmp0(((MsvmBundleFile *)g_ptr_array_index(b->state_files, 0))->name,
                    MSVM_BUNDLE_PERMALL) != 0) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                    "%s has a volatile state but no %s", state_dir, MSVM_BUNDLE_PERMALL);
        goto out;
      }
    }
  }
  g = msvm_guardian_open(svc->store_root, error);
  if (g == NULL || !msvm_bundle_seal(b, g, guardian, &sealed, error))
    goto out;
  *ret_bundle = sealed;
  *ret_result = result_new(
    g_strdup_printf("VM %s: key protector (%u generation%s) exported for guardian '%s'%s", name,
                    needed->len, needed->len == 1 ? "" : "s", guardian,
                    with_state ? (b->state_files->len > 0
                                    ? ", with its definition and vTPM state"
                                    : ", with its definition (it has no vTPM state yet)")
                               : ""));
  ok = TRUE;
out:
  if (lock >= 0)
    close(lock);
  if (!ok)
    msvm_error_to_public(error);
  return ok;
}

/* --- import ------------------------------------------------------------------------ */

/* The owner libvirt gives vTPM state: the session user, or the system
 * daemon's swtpm_user/swtpm_group (qemu.conf; default tss). */
static gboolean
swtpm_owner(gboolean system, uid_t *ret_uid, gid_t *ret_gid, GError **error)
{
  g_autofree char *user = g_strdup("tss");
  g_autofree char *group = NULL;
  g_autofree char *conf = NULL;
  struct passwd *pw;

  if (!system) {
    *ret_uid = geteuid();
    *ret_gid = getegid();
    return TRUE;
  }
  if (g_file_get_contents(QEMU_CONF, &conf, NULL, NULL)) {
    g_auto(GStrv) lines = g_strsplit(conf, "\n", -1);
    for (gsize i = 0; lines[i] != NULL; i++) {
      char key[32], val[256];
      if (sscanf(lines[i], " %31[a-z_] = \"%255[^\"]\"", key, val) != 2)
        continue;
      if (strcmp(key, "swtpm_user") == 0) {
        g_free(user);
        user = g_strdup(val);
      } else if (strcmp(key, "swtpm_group") == 0) {
        g_free(group);
        group = g_strdup(val);
      }
    }
  }
  pw = getpwnam(user);
  if (pw == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                "the swtpm user '%s' (qemu.conf swtpm_user) does not exist", user);
    return FALSE;
  }
  *ret_uid = pw->pw_uid;
  *ret_gid = pw->pw_gid;
  if (group != NULL) {
    struct group *gr = getgrnam(group);
    if (gr == NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "the swtpm group '%s' (qemu.conf swtpm_group) does not exist", group);
      return FALSE;
    }
    *ret_gid = gr->gr_gid;
  }
  return TRUE;
}

static void
remove_tree_files(const char *dir)
{
  const char *names[] = { MSVM_BUNDLE_PERMALL, MSVM_BUNDLE_VOLATILE, ".lock", NULL };

  for (gsize i = 0; names[i] != NULL; i++) {
    g_autofree char *p = g_build_filename(dir, names[i], NULL);
    (void)unlink(p);
  }
  (void)rmdir(dir);
}

typedef struct {
  char *uuid_dir;          /* <swtpm>/<uuid> */
  gboolean created_uuid_dir;
  char *state_dir;         /* <swtpm>/<uuid>/tpm2, placed */
} Placed;

static gboolean
write_state_file(int dirfd, const char *dirpath, const MsvmBundleFile *f, uid_t uid, gid_t gid,
                 GError **error)
{
  gsize len = 0;
  const void *data = g_bytes_get_data(f->data, &len);
  mode_t mode = (f->mode & 0600) == 0600 ? (f->mode & 0660) : 0600;
  int fd = openat(dirfd, f->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  gboolean ok;

  if (fd < 0)
    return msvm_set_error_errno(error, errno, "cannot create %s/%s", dirpath, f->name);
  ok = msvm_write_full(fd, data, len) && fchmod(fd, mode) == 0 &&
       (geteuid() != 0 || fchown(fd, uid, gid) == 0) && fsync(fd) == 0;
  if (!ok) {
    int saved = errno;
    close(fd);
    return msvm_set_error_errno(error, saved, "cannot write %s/%s", dirpath, f->name);
  }
  close(fd);
  return TRUE;
}

/* Place the bundle's state as <swtpm>/<uuid>/tpm2: built beside it, then
 * renamed into place (RENAME_NOREPLACE). */
static gboolean
place_state(MsvmService *svc, const MsvmBundle *b, Placed *placed, GError **error)
{
  g_autofree char *side = NULL;
  uid_t uid;
  gid_t gid;
  int dirfd = -1;
  gboolean ok = FALSE;

  if (!swtpm_owner(svc->system, &uid, &gid, error))
    return FALSE;
  placed->state_dir = msvm_swtpm_state_dir(svc->system, geteuid(), b->store->uuid, "2.0",
                                           error);
  if (placed->state_dir == NULL)
    return FALSE;
  placed->uuid_dir = g_path_get_dirname(placed->state_dir);
  {
    g_autofree char *root = g_path_get_dirname(placed->uuid_dir);
    if (!msvm_mkdir_with_parents_durable(root, 0711, error) ||
        !msvm_mkdir_durable(placed->uuid_dir, 0711, &placed->created_uuid_dir, error))
      goto fail;
  }
  side = g_build_filename(placed->uuid_dir, IMPORT_SIDE_DIR, NULL);
  remove_tree_files(side); /* a leftover of a killed import */
  if (mkdir(side, 0700) < 0) {
    msvm_set_error_errno(error, errno, "cannot create %s", side);
    goto fail;
  }
  if ((geteuid() == 0 && chown(side, uid, gid) < 0)) {
    msvm_set_error_errno(error, errno, "cannot give %s to the swtpm user", side);
    goto fail_side;
  }
  dirfd = open(side, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (dirfd < 0) {
    msvm_set_error_errno(error, errno, "cannot open %s", side);
    goto fail_side;
  }
  for (guint i = 0; i < b->state_files->len; i++) {
    if (!write_state_file(dirfd, side, g_ptr_array_index(b->state_files, i), uid, gid, error))
      goto fail_side;
  }
  if (fsync(dirfd) < 0) {
    msvm_set_error_errno(error, errno, "cannot fsync %s", side);
    goto fail_side;
  }
  msvm_fault_point("import-state-rename");
  if (renameat2(AT_FDCWD, side, AT_FDCWD, placed->state_dir, RENAME_NOREPLACE) < 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "%s appeared meanwhile: a vTPM state is there already", placed->state_dir);
    else
      msvm_set_error_errno(error, errno, "cannot rename %s to %s", side, placed->state_dir);
    goto fail_side;
  }
  if (!msvm_fsync_dir(placed->uuid_dir, error)) {
    remove_tree_files(placed->state_dir);
    goto fail;
  }
  ok = TRUE;
  close(dirfd);
  return ok;
fail_side:
  if (dirfd >= 0)
    close(dirfd);
  remove_tree_files(side);
fail:
  g_clear_pointer(&placed->state_dir, g_free);
  if (placed->created_uuid_dir)
    (void)rmdir(placed->uuid_dir);
  return FALSE;
}

static void
unplace_state(Placed *placed)
{
  if (placed->state_dir != NULL)
    remove_tree_files(placed->state_dir);
  if (placed->created_uuid_dir)
    (void)rmdir(placed->uuid_dir);
  if (placed->uuid_dir != NULL) {
    g_autofree char *root = g_path_get_dirname(placed->uuid_dir);
    (void)msvm_fsync_dir(root, NULL);
  }
}

static void
placed_clear(Placed *p)
{
  g_free(p->uuid_dir);
  g_free(p->state_dir);
  memset(p, 0, sizeof(*p));
}

/* The checks of step 1, against the entry @old (maybe empty). Fills
 * @to_define (generations of the bundle whose secret is not defined) and
 * @to_retire (generations of the old entry the bundle drops). */
static gboolean
import_checks(MsvmService *svc, const MsvmBundle *b, const MsvmStore *old, gboolean force,
              virDomainPtr dom, GPtrArray *to_define, GPtrArray *to_retire, GError **error)
{
  const MsvmStore *s = b->store;
  g_autofree char *u = msvm_uuid_to_string(s->uuid);
  g_auto(GStrv) in_use = NULL;
  gboolean same_seed = old->exists && old->has_seed &&
                       memcmp(old->seed, s->seed, sizeof(s->seed)) == 0;

  if (old->exists && old->has_seed && !same_seed && !force) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "this store already holds VM %s under another seed (another protector "
                "lineage): force to replace it", u);
    return FALSE;
  }
  if (old->journal.open) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "VM %s has an interrupted key protector change on this host: run "
                "msvm-security recover --domain %s first", u, u);
    return FALSE;
  }
  if (dom != NULL) {
    int active = virDomainIsActive(dom);
    if (b->definition != NULL) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "a domain with UUID %s (%s) is defined on this host: an import with a state "
                  "defines it; undefine it first, or import without the state", u,
                  virDomainGetName(dom));
      return FALSE;
    }
    if (active != 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "VM %s (%s) is running on this host", u, virDomainGetName(dom));
      return FALSE;
    }
  }
  if (b->definition != NULL) {
    gsize len = 0;
    const char *xml = g_bytes_get_data(b->definition, &len);
    g_autoptr(xmlDoc) doc = msvm_domain_parse(xml, len, error);
    guint8 du[16];
    if (doc == NULL)
      return FALSE;
    if (!msvm_domain_get_uuid(doc, du, error))
      return FALSE;
    if (memcmp(du, s->uuid, 16) != 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "the bundle's definition is of another VM than its protector");
      return FALSE;
    }
  }
  /* secrets: one that exists is fine only when it is this entry's own,
   * under the same seed and halves (so it holds the same value) */
  for (guint i = 0; i < s->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(s->generations, i);
    if (msvm_virt_secret_exists(svc->conn, gen->secret_uuid)) {
      const MsvmGeneration *mine =
        same_seed ? msvm_store_find_generation_by_secret(old, gen->secret_uuid) : NULL;
      if (mine == NULL || !same_halves(mine, gen)) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                    "a libvirt secret with UUID %s is defined on this host and is not this "
                    "VM's generation %u: undefine it first (virsh secret-undefine)",
                    gen->secret_uuid, gen->number);
        return FALSE;
      }
    } else {
      g_ptr_array_add(to_define, (gpointer)gen);
    }
  }
  /* what the old entry had and the bundle drops: undefined after the
   * import, unless a domain names it (invariant 2) */
  if (old->exists && !msvm_virt_secrets_in_use(svc->conn, &in_use, error))
    return FALSE;
  for (guint i = 0; old->exists && i < old->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(old->generations, i);
    if (msvm_store_find_generation_by_secret(s, gen->secret_uuid) != NULL)
      continue;
    if (secret_listed(gen->secret_uuid, in_use)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "this host's entry for VM %s has generation %u, whose secret %s a domain "
                  "here still names and the bundle does not carry", u, gen->number,
                  gen->secret_uuid);
      return FALSE;
    }
    if (!gen->foreign)
      g_ptr_array_add(to_retire, (gpointer)gen);
  }
  /* (a definition without a state file, of a VM that never started, would
   * start on a state already there, under another key) */
  if (b->definition != NULL) {
    g_autofree char *sd = msvm_swtpm_state_dir(svc->system, geteuid(), s->uuid, "2.0", error);
    struct stat st;
    if (sd == NULL)
      return FALSE;
    if (lstat(sd, &st) == 0) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "%s exists: a vTPM state of VM %s is on this host already; remove it (or "
                  "import without the state)", sd, u);
      return FALSE;
    }
  }
  return TRUE;
}

/**
 * msvm_service_import_protector:
 * @service: a service
 * @bundle: (array length=bundle_len): what msvm_service_export_protector()
 *   gave on the other host
 * @bundle_len: its length in bytes
 * @flags: %MSVM_CALL_FORCE: replace an entry this store holds for the VM
 *   under another seed
 * @ret_result: (out) (transfer full): 0 and a note naming what was
 *   imported, defined and placed
 * @error: return location for a #MSVM_ERROR error
 *
 * Imports a bundle addressed to this guardian (another guardian's: 32769)
 * and signed by a trusted guardian or this one (unknown signer: 32769; any
 * altered byte: 32773).  Writes the VM's store entry and defines each
 * generation's libvirt secret with the same UUID and value; with a state
 * inside, places the vTPM state directory (owner: the daemon's swtpm user)
 * and defines the domain.  An entry under another seed: 32775 unless
 * @flags has %MSVM_CALL_FORCE; with a state, a domain with the VM's UUID
 * or a state directory already here: 32775; a read-only connection: 32769.
 * A failure leaves nothing behind: no store entry, no secret, no state
 * directory.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_import_protector(MsvmService *svc, const guint8 *bundle, gsize bundle_len,
                              MsvmCallFlags flags, MsvmCallResult **ret_result, GError **error)
{
  gboolean force = (flags & MSVM_CALL_FORCE) != 0;
  g_autoptr(MsvmGuardian) g = NULL;
  g_autoptr(MsvmBundle) b = NULL;
  g_autoptr(MsvmStore) old = NULL;
  g_autoptr(virDomain) dom = NULL;
  g_autoptr(GPtrArray) to_define = g_ptr_array_new();
  g_autoptr(GPtrArray) to_retire = g_ptr_array_new();
  g_autoptr(GPtrArray) retired = g_ptr_array_new();
  g_autoptr(GPtrArray) defined = g_ptr_array_new();
  g_autofree char *u = NULL;
  g_autofree char *vm_dir = NULL;
  g_autofree char *old_text = NULL;
  g_autofree char *dom_name = NULL;
  gsize old_len = 0;
  gboolean vm_dir_existed, store_written = FALSE, ok = FALSE;
  /* whether the VM had an entry when the lock was taken: until that is
   * known, the undo never removes the directory (another call may have
   * made the entry since vm_dir_existed was read) */
  gboolean entry_under_lock = TRUE;
  Placed placed = { 0 };
  MsvmStore *s;
  int lock = -1;

  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_writable(svc, error))
    goto out;
  g = msvm_guardian_open(svc->store_root, error);
  if (g == NULL || !msvm_bundle_open(g, bundle, bundle_len, &b, error))
    goto out;
  s = b->store;
  u = msvm_uuid_to_string(s->uuid);
  vm_dir = g_build_filename(svc->store_root, u, NULL);
  vm_dir_existed = g_file_test(vm_dir, G_FILE_TEST_IS_DIR);
  dom = virDomainLookupByUUID(svc->conn, s->uuid);
  if (!msvm_store_load(svc->store_root, s->uuid, &old, error) ||
      !import_checks(svc, b, old, force, dom, to_define, to_retire, error))
    goto out;

  /* under the lock, again (a change may have run meanwhile) */
  lock = msvm_store_lock(svc->store_root, s->uuid, TRUE, error);
  if (lock < 0)
    goto out;
  g_clear_pointer(&old, msvm_store_free);
  g_clear_pointer(&dom, virDomainFree);
  dom = virDomainLookupByUUID(svc->conn, s->uuid);
  g_ptr_array_set_size(to_define, 0);
  g_ptr_array_set_size(to_retire, 0);
  if (!msvm_store_load(svc->store_root, s->uuid, &old, error))
    goto undo;
  entry_under_lock = old->exists;
  if (!import_checks(svc, b, old, force, dom, to_define, to_retire, error))
    goto undo;
  if (old->exists)
    old_text = msvm_store_to_data(old, &old_len);

  /* 2. the secrets: first those of the old entry's generations the bundle
   * drops (a new lineage reuses their usage names; undone by defining
   * them again from the old entry), then the bundle's */
  for (guint i = 0; i < to_retire->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(to_retire, i);
    if (!msvm_virt_secret_exists(svc->conn, gen->secret_uuid))
      continue;
    msvm_fault_point("import-undefine-old-secret");
    if (!msvm_virt_undefine_secret(svc->conn, gen->secret_uuid, error))
      goto undo;
    g_ptr_array_add(retired, (gpointer)gen);
  }
  for (guint i = 0; i < to_define->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(to_define, i);
    msvm_fault_point("import-define-secret");
    if (!define_secret(svc, s, gen, error))
      goto undo;
    g_ptr_array_add(defined, gen->secret_uuid);
  }
  /* 3. the state */
  if (b->state_files != NULL && b->state_files->len > 0 && !place_state(svc, b, &placed, error))
    goto undo;
  /* 4. the store entry */
  g_free(s->dir);
  s->dir = g_strdup(vm_dir);
  msvm_fault_point("import-store");
  if (msvm_fault_fail("import-store")) {
    /* test builds: a failure after the secrets changed */
    g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED, "cannot write the store: injected failure");
    goto undo;
  }
  if (!msvm_store_save(s, error))
    goto undo;
  store_written = TRUE;
  /* 5. the domain */
  if (b->definition != NULL) {
    gsize len = 0;
    const char *xml = g_bytes_get_data(b->definition, &len);
    g_autofree char *text = g_strndup(xml, len);
    g_autoptr(virDomain) nd = NULL;
    msvm_fault_point("import-define-domain");
    if (!msvm_virt_define(svc->conn, text, error)) {
      msvm_wipe(text, len);
      goto undo;
    }
    msvm_wipe(text, len);
    if (msvm_fault_fail("import-define-domain")) {
      /* test builds: a failure at the last step, to see everything undone */
      nd = virDomainLookupByUUID(svc->conn, s->uuid);
      if (nd != NULL)
        (void)virDomainUndefineFlags(nd, VIR_DOMAIN_UNDEFINE_KEEP_TPM |
                                         VIR_DOMAIN_UNDEFINE_KEEP_NVRAM);
      g_set_error(error, MSVM_ERROR, MSVM_RC_FAILED,
                  "cannot define the domain: injected failure");
      goto undo;
    }
    nd = virDomainLookupByUUID(svc->conn, s->uuid);
    dom_name = g_strdup(nd ? virDomainGetName(nd) : u);
  }
  {
    g_autofree char *extra = dom_name != NULL
      ? g_strdup_printf("; vTPM state placed in %s and domain %s defined",
                        placed.state_dir ? placed.state_dir : "(no state yet)", dom_name)
      : g_strdup("");
    g_autofree char *ret = retired->len > 0
      ? g_strdup_printf("; %u secret%s of the entry this one replaced undefined", retired->len,
                        retired->len == 1 ? "" : "s")
      : g_strdup("");
    *ret_result = result_new(
      g_strdup_printf("VM %s: key protector from guardian '%s' (exported on %s) imported: %u "
                      "generation%s, %u secret%s defined%s%s",
                      u, b->signer,
                      b->source_host && *b->source_host ? b->source_host : "an unnamed host",
                      s->generations->len, s->generations->len == 1 ? "" : "s", defined->len,
                      defined->len == 1 ? "" : "s", extra, ret));
  }
  ok = TRUE;
  goto out;

undo:
  /* everything this call did, in reverse */
  if (store_written) {
    g_autofree char *path = g_build_filename(vm_dir, "store", NULL);
    if (old_text != NULL)
      (void)msvm_atomic_write(path, old_text, old_len, 0600, MSVM_ATOMIC_WRITE_LOCKED, NULL);
    else
      (void)unlink(path);
  }
  unplace_state(&placed);
  for (guint i = 0; i < defined->len; i++)
    (void)msvm_virt_undefine_secret(svc->conn, g_ptr_array_index(defined, i), NULL);
  for (guint i = 0; i < retired->len; i++)
    (void)define_secret(svc, old, g_ptr_array_index(retired, i), NULL);
  if (!vm_dir_existed && !entry_under_lock) {
    g_autofree char *lockp = g_build_filename(vm_dir, "lock", NULL);
    g_autofree char *storep = g_build_filename(vm_dir, "store", NULL);
    (void)unlink(storep);
    (void)unlink(lockp);
    (void)rmdir(vm_dir);
    (void)msvm_fsync_dir(svc->store_root, NULL);
  }
out:
  if (old_text != NULL)
    msvm_wipe(old_text, old_len);
  placed_clear(&placed);
  if (lock >= 0)
    close(lock);
  if (!ok)
    msvm_error_to_public(error);
  return ok;
}

/* --- forget ------------------------------------------------------------------------- */

/**
 * msvm_service_forget:
 * @service: a service
 * @domain_uuid: the UUID of the VM that left this host
 * @ret_result: (out) (transfer full): 0 and a note naming how many secrets
 *   were undefined
 * @error: return location for a #MSVM_ERROR error
 *
 * After the VM left this host (virsh migrate --undefinesource, or undefine
 * after a cold move): undefines its secrets and removes its store entry.
 * Refused while a domain with that UUID is defined here, or while any
 * domain names one of its secrets (32775); a name instead of a UUID: 32773;
 * no entry: 32777; a read-only connection: 32769.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
MSVM_PUBLIC gboolean
msvm_service_forget(MsvmService *svc, const char *domain_uuid, MsvmCallResult **ret_result,
                    GError **error)
{
  g_autoptr(MsvmStore) store = NULL;
  g_autoptr(virDomain) dom = NULL;
  g_auto(GStrv) in_use = NULL;
  g_autofree char *u = NULL;
  g_autofree char *vm_dir = NULL;
  guint8 uuid[16];
  guint undefined = 0;
  int lock = -1;
  gboolean kept_dir = FALSE;
  gboolean ok = FALSE;

  g_return_val_if_fail(ret_result != NULL, FALSE);
  if (!msvm_service_check_writable(svc, error))
    goto out;
  if (domain_uuid == NULL || !msvm_uuid_parse(domain_uuid, uuid)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "forget takes the VM's UUID (its domain is gone from this host), not '%s'",
                domain_uuid ? domain_uuid : "");
    goto out;
  }
  u = msvm_uuid_to_string(uuid);
  dom = virDomainLookupByUUID(svc->conn, uuid);
  if (dom != NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "domain %s (%s) is still defined on this host: forget is for a VM that left "
                "it (virsh migrate --undefinesource, or undefine after a cold move)", u,
                virDomainGetName(dom));
    goto out;
  }
  vm_dir = g_build_filename(svc->store_root, u, NULL);
  if (!msvm_store_load(svc->store_root, uuid, &store, error))
    goto out;
  if (!store->exists) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_NOT_AVAILABLE,
                "this store has no entry for VM %s", u);
    goto out;
  }
  lock = msvm_store_lock(svc->store_root, uuid, TRUE, error);
  if (lock < 0)
    goto out;
  g_clear_pointer(&store, msvm_store_free);
  if (!msvm_store_load(svc->store_root, uuid, &store, error))
    goto out;
  dom = virDomainLookupByUUID(svc->conn, uuid);
  if (dom != NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                "domain %s was defined on this host meanwhile", u);
    goto out;
  }
  if (!msvm_virt_secrets_in_use(svc->conn, &in_use, error))
    goto out;
  for (guint i = 0; i < store->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (secret_listed(gen->secret_uuid, in_use)) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_STATE,
                  "the secret %s of VM %s (generation %u) is named by a domain on this host "
                  "(a clone?): undefine or change that domain first", gen->secret_uuid, u,
                  gen->number);
      goto out;
    }
  }
  for (guint i = 0; i < store->generations->len; i++) {
    const MsvmGeneration *gen = g_ptr_array_index(store->generations, i);
    if (gen->foreign)
      continue; /* not ours: never undefined */
    if (!msvm_virt_secret_exists(svc->conn, gen->secret_uuid))
      continue;
    msvm_fault_point("forget-undefine-secret");
    if (!msvm_virt_undefine_secret(svc->conn, gen->secret_uuid, error))
      goto out;
    undefined++;
  }
  /* the entry, every file of it (the store holds the seed); the lock file
   * last: while it is there, a newcomer waits on it and writes nothing that
   * this loop would then remove */
  {
    g_autoptr(GDir) d = g_dir_open(vm_dir, 0, NULL);
    g_autofree char *lock_path = g_build_filename(vm_dir, "lock", NULL);
    const char *f;
    while (d != NULL && (f = g_dir_read_name(d)) != NULL) {
      g_autofree char *p = g_build_filename(vm_dir, f, NULL);
      if (g_str_equal(f, "lock"))
        continue;
      if (unlink(p) < 0 && errno != ENOENT) {
        msvm_set_error_errno(error, errno, "cannot remove %s", p);
        goto out;
      }
    }
    if (unlink(lock_path) < 0 && errno != ENOENT) {
      msvm_set_error_errno(error, errno, "cannot remove %s", lock_path);
      goto out;
    }
  }
  /* The directory goes while the lock is still held (on the unlinked lock
   * file: a waiter then finds its lock file gone and takes the lock again on
   * a new one, msvm_store_lock_file).  A process that made a new lock file
   * since is using the directory: it stays, the entry is gone all the same. */
  msvm_fault_point("forget-remove-directory");
  if (rmdir(vm_dir) < 0) {
    kept_dir = errno == ENOTEMPTY || errno == EEXIST;
    if (!kept_dir && errno != ENOENT) {
      msvm_set_error_errno(error, errno, "cannot remove %s", vm_dir);
      goto out;
    }
  }
  if (!msvm_fsync_dir(svc->store_root, error))
    goto out;
  *ret_result = result_new(g_strdup_printf("VM %s: %u secret%s undefined and its store entry "
                                           "removed%s",
                                           u, undefined, undefined == 1 ? "" : "s",
                                           kept_dir ? " (its directory stays: another "
                                                      "msvm-security call holds its lock)"
                                                    : ""));
  ok = TRUE;
out:
  if (lock >= 0)
    close(lock);
  if (!ok)
    msvm_error_to_public(error);
  return ok;
}
