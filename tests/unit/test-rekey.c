/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Re-keying swtpm TPM 2.0 state directories (tpm/msvm-rekey.c) on copies of
 * the golden states made by the real swtpm (tests/data/tpm2state-*), with
 * the real libtpms check in the msvm-security-tpm-validate helper.  No
 * running swtpm is needed; the lock test holds swtpm's kind of lock (a
 * classic POSIX fcntl write lock) from a child process.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "msvm-cause.h"
#include "msvm-error.h"
#include "msvm-rekey.h"
#include "msvm-state-file.h"

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define PASS_B "a brand new passphrase"

typedef struct {
  char *tmp;      /* temporary parent directory */
  char *dir;      /* tmp/tpm2 */
} Fixture;

static char *
golden_dir(const char *name)
{
  return g_build_filename(g_getenv("MSVM_TEST_DATADIR"), name, NULL);
}

static GBytes *
read_bytes(const char *path)
{
  char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_get_contents(path, &data, &len, &error));
  g_assert_no_error(error);
  return g_bytes_new_take(data, len);
}

static GBytes *
golden_passphrase(const char *name)
{
  g_autofree char *d = golden_dir(name);
  g_autofree char *p = g_build_filename(d, "passphrase", NULL);
  return read_bytes(p);
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
  g_autoptr(GBytes) b = read_bytes(from);
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_set_contents_full(to, g_bytes_get_data(b, NULL),
                                         (gssize)g_bytes_get_size(b),
                                         G_FILE_SET_CONTENTS_NONE, (int)mode, &error));
  g_assert_no_error(error);
}

/* A fresh copy of a golden state as tmp/tpm2 with an empty .lock. */
static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  const char *name = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *src = NULL;
  g_autoptr(GDir) d = NULL;
  const char *e;

  f->tmp = g_dir_make_tmp("msvm-rekey-XXXXXX", &error);
  g_assert_no_error(error);
  f->dir = g_build_filename(f->tmp, "tpm2", NULL);
  g_assert_cmpint(g_mkdir(f->dir, 0750), ==, 0);
  {
    g_autofree char *lock = g_build_filename(f->dir, ".lock", NULL);
    copy_file("/dev/null", lock, 0640);
  }
  if (name == NULL)
    return;
  src = g_build_filename(g_getenv("MSVM_TEST_DATADIR"), name, "tpm2", NULL);
  d = g_dir_open(src, 0, &error);
  g_assert_no_error(error);
  while ((e = g_dir_read_name(d)) != NULL) {
    g_autofree char *from = g_build_filename(src, e, NULL);
    g_autofree char *to = g_build_filename(f->dir, e, NULL);
    copy_file(from, to, 0640);
  }
}

static void
remove_tree(const char *path)
{
  GStatBuf st;
  if (g_lstat(path, &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *e;
    chmod(path, 0700);
    while (d != NULL && (e = g_dir_read_name(d)) != NULL) {
      g_autofree char *p = g_build_filename(path, e, NULL);
      remove_tree(p);
    }
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  chmod(f->tmp, 0700);
  remove_tree(f->tmp);
  g_free(f->tmp);
  g_free(f->dir);
}

/* Everything of a directory: names, contents, modes, owners. */
static char *
snapshot(const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  GString *s = g_string_new(NULL);
  GStatBuf st;
  const char *e;

  g_assert_nonnull(d);
  g_assert_cmpint(g_lstat(dir, &st), ==, 0);
  g_string_append_printf(s, ". %o %u:%u\n", st.st_mode, st.st_uid, st.st_gid);
  while ((e = g_dir_read_name(d)) != NULL)
    g_ptr_array_add(names, g_strdup(e));
  g_ptr_array_sort(names, compare_names);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *p = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
    g_autofree char *sum = NULL;
    g_assert_cmpint(g_lstat(p, &st), ==, 0);
    if (S_ISREG(st.st_mode)) {
      g_autoptr(GBytes) b = read_bytes(p);
      sum = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, b);
    }
    g_string_append_printf(s, "%s %o %u:%u %s\n", (char *)g_ptr_array_index(names, i),
                           st.st_mode, st.st_uid, st.st_gid, sum ? sum : "-");
  }
  return g_string_free(s, FALSE);
}

static void
assert_no_side_dir(const Fixture *f)
{
  g_autoptr(GDir) d = g_dir_open(f->tmp, 0, NULL);
  const char *e;
  while ((e = g_dir_read_name(d)) != NULL)
    g_assert_cmpstr(e, ==, "tpm2");
}

/* Decode every tpm2-00.* file of @dir under a key; name -> plaintext. */
static GHashTable *
decode_dir(const char *dir, const guint8 *pass, gsize pass_len, MsvmStateKdf kdf)
{
  GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)g_bytes_unref);
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *e;

  while ((e = g_dir_read_name(d)) != NULL) {
    g_autofree char *p = NULL;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GError) error = NULL;
    GBytes *plain = NULL;
    if (!g_str_has_prefix(e, "tpm2-00."))
      continue;
    p = g_build_filename(dir, e, NULL);
    b = read_bytes(p);
    g_assert_true(msvm_state_file_decode(g_bytes_get_data(b, NULL), g_bytes_get_size(b), pass,
                                         pass_len, kdf, &plain, &error));
    g_assert_no_error(error);
    g_hash_table_insert(h, g_strdup(e), plain);
  }
  return h;
}

static void
assert_same_state(GHashTable *a, GHashTable *b)
{
  GHashTableIter it;
  gpointer k, v;

  g_assert_cmpuint(g_hash_table_size(a), ==, g_hash_table_size(b));
  g_assert_cmpuint(g_hash_table_size(a), >=, 2);
  g_hash_table_iter_init(&it, a);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    GBytes *other = g_hash_table_lookup(b, k);
    g_assert_nonnull(other);
    g_assert_true(g_bytes_equal(v, other));
  }
}

static guint16
header_flags(const char *dir, const char *file)
{
  g_autofree char *p = g_build_filename(dir, file, NULL);
  g_autoptr(GBytes) b = read_bytes(p);
  const guint8 *d = g_bytes_get_data(b, NULL);
  return (guint16)((d[4] << 8) | d[5]);
}

static MsvmStateKey
key_of(GBytes *pass, MsvmStateKdf kdf, MsvmStateCipher cipher)
{
  MsvmStateKey k = { .kdf = kdf, .cipher = cipher };
  if (pass != NULL)
    k.passphrase = g_bytes_get_data(pass, &k.passphrase_len);
  return k;
}

/* A -> B (AES-128, kdf=sha512) -> A again; the TPM state never changes. */
static void
test_there_and_back(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_SHA512, MSVM_CIPHER_AES_128_CBC);
  g_autoptr(GHashTable) before = decode_dir(f->dir, a.passphrase, a.passphrase_len, a.kdf);
  g_autoptr(GHashTable) mid = NULL;
  g_autoptr(GHashTable) after = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
  assert_no_side_dir(f);
  g_assert_cmpuint(header_flags(f->dir, "tpm2-00.permall"), ==, 0x01);
  mid = decode_dir(f->dir, b.passphrase, b.passphrase_len, b.kdf);
  assert_same_state(before, mid);
  g_assert_true(msvm_state_dir_check(f->dir, &b, &error));
  g_assert_no_error(error);
  g_assert_false(msvm_state_dir_check(f->dir, &a, &error));
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
  g_clear_error(&error);

  g_assert_true(msvm_rekey_state_dir(f->dir, &b, &a, &error));
  g_assert_no_error(error);
  assert_no_side_dir(f);
  g_assert_cmpuint(header_flags(f->dir, "tpm2-00.permall"), ==, 0x09);
  g_assert_cmpuint(header_flags(f->dir, "tpm2-00.volatilestate"), ==, 0x09);
  after = decode_dir(f->dir, a.passphrase, a.passphrase_len, a.kdf);
  assert_same_state(before, after);
}

/* A plaintext state gets encrypted. */
static void
test_plaintext_to_encrypted(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autoptr(GHashTable) before = decode_dir(f->dir, NULL, 0, MSVM_KDF_PBKDF2);
  g_autoptr(GHashTable) after = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true(msvm_rekey_state_dir(f->dir, NULL, &b, &error));
  g_assert_no_error(error);
  assert_no_side_dir(f);
  g_assert_cmpuint(header_flags(f->dir, "tpm2-00.permall"), ==, 0x09);
  after = decode_dir(f->dir, b.passphrase, b.passphrase_len, b.kdf);
  assert_same_state(before, after);
  /* and it no longer opens as plaintext */
  g_assert_false(msvm_state_dir_check(f->dir, NULL, &error));
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
}

/* swtpm's AES-128 default mode to libvirt's AES-256. */
static void
test_aes128_to_aes256(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes128-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_128_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autoptr(GHashTable) before = decode_dir(f->dir, a.passphrase, a.passphrase_len, a.kdf);
  g_autoptr(GHashTable) after = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint(header_flags(f->dir, "tpm2-00.permall"), ==, 0x01);
  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(header_flags(f->dir, "tpm2-00.permall"), ==, 0x09);
  after = decode_dir(f->dir, b.passphrase, b.passphrase_len, b.kdf);
  assert_same_state(before, after);
}

/* kdf=sha512 state to PBKDF2. */
static void
test_sha512_to_pbkdf2(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-sha512");
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_SHA512, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autoptr(GHashTable) before = decode_dir(f->dir, a.passphrase, a.passphrase_len, a.kdf);
  g_autoptr(GHashTable) after = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
  after = decode_dir(f->dir, b.passphrase, b.passphrase_len, b.kdf);
  assert_same_state(before, after);
}

/* A failing re-key: @code, the message holds @needle, and every byte,
 * mode and owner of the directory is as it was, with no side directory. */
static void
expect_failure(Fixture *f, const MsvmStateKey *old_key, const MsvmStateKey *new_key,
               guint32 code, const char *needle)
{
  g_autofree char *before = snapshot(f->dir);
  g_autofree char *after = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false(msvm_rekey_state_dir(f->dir, old_key, new_key, &error));
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, code);
  if (needle != NULL && strstr(error->message, needle) == NULL)
    g_error("expected \"%s\" in \"%s\"", needle, error->message);
  after = snapshot(f->dir);
  g_assert_cmpstr(before, ==, after);
  assert_no_side_dir(f);
}

static void
test_wrong_passphrase(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  MsvmStateKey a_sha = key_of(pass_a, MSVM_KDF_SHA512, MSVM_CIPHER_AES_256_CBC);

  expect_failure(f, &b, &b, MSVM_RC_INVALID_STATE, "HMAC mismatch");
  /* right passphrase, wrong KDF */
  expect_failure(f, &a_sha, &b, MSVM_RC_INVALID_STATE, "HMAC mismatch");
  /* no old passphrase for an encrypted state */
  expect_failure(f, NULL, &b, MSVM_RC_INVALID_STATE, "is encrypted");
}

static void
test_plaintext_with_passphrase(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);

  expect_failure(f, &b, &b, MSVM_RC_INVALID_STATE, "not encrypted");
}

/* The lock holder: a child that takes swtpm's kind of lock (a classic POSIX
 * whole-file write lock) on .lock and keeps it until told to go. */
static pid_t
hold_lock(const char *lock_path, int *ret_release_fd)
{
  int ready[2], release[2];
  pid_t pid;
  char c;

  g_assert_cmpint(pipe(ready), ==, 0);
  g_assert_cmpint(pipe(release), ==, 0);
  pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int fd;
    char r;
    close(ready[0]);
    close(release[1]);
    fd = open(lock_path, O_RDWR);
    r = (fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0) ? 'y' : 'n';
    if (write(ready[1], &r, 1) != 1)
      _exit(1);
    if (read(release[0], &r, 1) < 0)
      _exit(1);
    _exit(0);
  }
  close(ready[1]);
  close(release[0]);
  g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
  close(ready[0]);
  g_assert_cmpint(c, ==, 'y');
  *ret_release_fd = release[1];
  return pid;
}

static void
release_lock(pid_t pid, int release_fd)
{
  int status;
  close(release_fd);
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_lock_held(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *lock = g_build_filename(f->dir, ".lock", NULL);
  g_autoptr(GError) error = NULL;
  int release_fd;
  pid_t pid = hold_lock(lock, &release_fd);

  expect_failure(f, &a, &b, MSVM_RC_IN_USE, "locked");
  /* the read-only check refuses too */
  g_assert_false(msvm_state_dir_check(f->dir, &a, &error));
  g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_IN_USE);
  g_clear_error(&error);
  release_lock(pid, release_fd);
  /* and once swtpm is gone it works */
  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
}

/* A process that has the directory as its --tpmstate but holds no lock (a
 * swtpm before CMD_INIT): here /bin/sh showing swtpm's command line, waiting
 * on a pipe.  The real swtpm: tests/integration/test-rekey-inuse.sh. */
static void
test_named_by_process(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *arg = g_strdup_printf("dir=%s/,mode=0600", f->dir);
  g_autofree char *cmdline_path = NULL;
  g_autofree char *needle = NULL;
  const char *argv[] = { "/bin/sh", "swtpm", "-c", "read x", "swtpm", "socket", "--tpmstate",
                         arg, "--tpm2", NULL };
  g_autoptr(GError) error = NULL;
  GPid pid;
  int stdin_fd, status;
  gboolean shown = FALSE;

  g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                         G_SPAWN_FILE_AND_ARGV_ZERO | G_SPAWN_DO_NOT_REAP_CHILD,
                                         NULL, NULL, &pid, &stdin_fd, NULL, NULL, &error));
  g_assert_no_error(error);
  cmdline_path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
  for (guint i = 0; i < 500 && !shown; i++) {
    g_autofree char *data_ = NULL;
    gsize len = 0;
    shown = g_file_get_contents(cmdline_path, &data_, &len, NULL) &&
            memmem(data_, len, "--tpmstate", strlen("--tpmstate")) != NULL;
    if (!shown)
      g_usleep(10000);
  }
  g_assert_true(shown);

  needle = g_strdup_printf("a swtpm holds this TPM state directory (process %d,", (int)pid);
  expect_failure(f, &a, &b, MSVM_RC_IN_USE, needle);
  kill(pid, SIGKILL);
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  close(stdin_fd);
  /* and once it is gone the re-key works */
  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
}

/* Owner, group and modes of the directory and of each file are kept. */
static void
test_owner_and_mode(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_128_CBC);
  g_autofree char *permall = g_build_filename(f->dir, "tpm2-00.permall", NULL);
  g_autofree char *vol = g_build_filename(f->dir, "tpm2-00.volatilestate", NULL);
  g_autofree char *lock = g_build_filename(f->dir, ".lock", NULL);
  uid_t uid = geteuid() == 0 ? 4242 : geteuid();
  gid_t gid = geteuid() == 0 ? 4343 : getegid();
  g_autoptr(GError) error = NULL;
  GStatBuf st;

  g_assert_cmpint(chmod(f->dir, 0710), ==, 0);
  g_assert_cmpint(chmod(permall, 0600), ==, 0);
  g_assert_cmpint(chmod(vol, 0640), ==, 0);
  g_assert_cmpint(chmod(lock, 0604), ==, 0);
  if (geteuid() == 0) {
    g_assert_cmpint(chown(f->dir, uid, gid), ==, 0);
    g_assert_cmpint(chown(permall, uid, gid), ==, 0);
    g_assert_cmpint(chown(vol, uid, 4444), ==, 0);
    g_assert_cmpint(chown(lock, uid, gid), ==, 0);
  }
  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
  assert_no_side_dir(f);

  g_assert_cmpint(g_lstat(f->dir, &st), ==, 0);
  g_assert_cmpuint(st.st_mode & 07777, ==, 0710);
  g_assert_cmpuint(st.st_uid, ==, uid);
  g_assert_cmpuint(st.st_gid, ==, gid);
  g_assert_cmpint(g_lstat(permall, &st), ==, 0);
  g_assert_cmpuint(st.st_mode & 07777, ==, 0600);
  g_assert_cmpuint(st.st_uid, ==, uid);
  g_assert_cmpuint(st.st_gid, ==, gid);
  g_assert_cmpint(g_lstat(vol, &st), ==, 0);
  g_assert_cmpuint(st.st_mode & 07777, ==, 0640);
  g_assert_cmpuint(st.st_gid, ==, geteuid() == 0 ? 4444 : gid);
  g_assert_cmpint(g_lstat(lock, &st), ==, 0);
  g_assert_cmpuint(st.st_mode & 07777, ==, 0604);
  g_assert_cmpuint(st.st_uid, ==, uid);
}

/* A leftover side directory of an interrupted run is garbage. */
static void
test_leftover_side_dir(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *side = g_build_filename(f->tmp, ".tpm2.msvm-rekey", NULL);
  g_autofree char *sub = g_build_filename(side, "sub", NULL);
  g_autofree char *junk = g_build_filename(side, "tpm2-00.permall", NULL);
  g_autofree char *junk2 = g_build_filename(sub, "x", NULL);
  g_autofree char *link = g_build_filename(side, "link", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint(g_mkdir(side, 0700), ==, 0);
  g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
  copy_file("/dev/null", junk, 0600);
  copy_file("/dev/null", junk2, 0600);
  /* a symlink in the garbage is removed, never followed */
  g_assert_cmpint(symlink(f->dir, link), ==, 0);
  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
  assert_no_side_dir(f);
  g_assert_true(msvm_state_dir_check(f->dir, &b, &error));
  g_assert_no_error(error);
}

/* msvm_rekey_remove_leftover: deletes the side directory under the lock,
 * leaves the state alone, refuses while swtpm holds the lock. */
static void
test_remove_leftover(Fixture *f, gconstpointer data)
{
  g_autofree char *side = g_build_filename(f->tmp, ".tpm2.msvm-rekey", NULL);
  g_autofree char *junk = g_build_filename(side, "tpm2-00.permall", NULL);
  g_autofree char *lock = g_build_filename(f->dir, ".lock", NULL);
  g_autofree char *before = snapshot(f->dir);
  g_autofree char *after = NULL;
  g_autoptr(GError) error = NULL;
  int release_fd;
  pid_t pid;

  /* nothing to do */
  g_assert_true(msvm_rekey_remove_leftover(f->dir, &error));
  g_assert_no_error(error);
  g_assert_cmpint(g_mkdir(side, 0700), ==, 0);
  copy_file("/dev/null", junk, 0600);
  pid = hold_lock(lock, &release_fd);
  g_assert_false(msvm_rekey_remove_leftover(f->dir, &error));
  g_assert_error(error, MSVM_CAUSE_ERROR, MSVM_CAUSE_IN_USE);
  g_clear_error(&error);
  g_assert_true(g_file_test(junk, G_FILE_TEST_EXISTS));
  release_lock(pid, release_fd);
  g_assert_true(msvm_rekey_remove_leftover(f->dir, &error));
  g_assert_no_error(error);
  assert_no_side_dir(f);
  after = snapshot(f->dir);
  g_assert_cmpstr(before, ==, after);
}

/* An authentic file (right passphrase) whose content is not a TPM state:
 * libtpms refuses it, nothing changes. */
static void
test_invalid_tpm_state(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *permall = g_build_filename(f->dir, "tpm2-00.permall", NULL);
  g_autoptr(GHashTable) plain = decode_dir(f->dir, a.passphrase, a.passphrase_len, a.kdf);
  GBytes *p = g_hash_table_lookup(plain, "tpm2-00.permall");
  g_autofree guint8 *broken = g_memdup2(g_bytes_get_data(p, NULL), g_bytes_get_size(p));
  g_autoptr(GBytes) file = NULL;
  g_autoptr(GError) error = NULL;

  /* damage the middle of the permanent state, keep its size */
  for (gsize i = 40; i < 200; i++)
    broken[i] ^= 0x5a;
  g_assert_true(msvm_state_file_encode(broken, g_bytes_get_size(p), a.passphrase,
                                       a.passphrase_len, a.kdf, a.cipher, &file, &error));
  g_assert_true(g_file_set_contents(permall, g_bytes_get_data(file, NULL),
                                    (gssize)g_bytes_get_size(file), &error));
  g_assert_no_error(error);
  expect_failure(f, &a, &b, MSVM_RC_INVALID_STATE, "libtpms");
}

static void
test_tpm12(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *p = g_build_filename(f->dir, "tpm-00.permall", NULL);

  copy_file("/dev/null", p, 0600);
  expect_failure(f, NULL, &b, MSVM_RC_INVALID_STATE, "TPM 1.2");
}

static void
test_no_permall(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *p = g_build_filename(f->dir, "tpm2-00.permall", NULL);

  g_assert_cmpint(g_unlink(p), ==, 0);
  expect_failure(f, NULL, &b, MSVM_RC_INVALID_STATE, "tpm2-00.permall is missing");
}

static void
test_empty_dir(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename(f->tmp, "nothing", NULL);

  /* an empty directory (swtpm would start a blank TPM): refused; a .lock
   * is created as swtpm would, nothing else */
  g_assert_false(msvm_rekey_state_dir(f->dir, NULL, &b, &error));
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
  g_clear_error(&error);
  assert_no_side_dir(f);
  g_assert_false(msvm_rekey_state_dir(missing, NULL, &b, &error));
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
}

static void
test_symlinks(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *vol = g_build_filename(f->dir, "tpm2-00.volatilestate", NULL);
  g_autofree char *moved = g_build_filename(f->tmp, "elsewhere", NULL);
  g_autofree char *linkdir = g_build_filename(f->tmp, "tpm2-link", NULL);
  g_autoptr(GError) error = NULL;

  /* a state file that is a symlink */
  g_assert_cmpint(g_rename(vol, moved), ==, 0);
  g_assert_cmpint(symlink(moved, vol), ==, 0);
  {
    g_autofree char *before = snapshot(f->dir);
    g_autofree char *after = NULL;
    g_assert_false(msvm_rekey_state_dir(f->dir, &a, &a, &error));
    g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
    g_assert_nonnull(strstr(error->message, "symbolic link"));
    g_clear_error(&error);
    after = snapshot(f->dir);
    g_assert_cmpstr(before, ==, after);
  }
  g_assert_cmpint(g_unlink(vol), ==, 0);
  g_assert_cmpint(g_rename(moved, vol), ==, 0);
  /* the state directory given through a symlink */
  g_assert_cmpint(symlink(f->dir, linkdir), ==, 0);
  g_assert_false(msvm_rekey_state_dir(linkdir, &a, &a, &error));
  g_assert_cmpuint(msvm_error_to_return_code(error), ==, MSVM_RC_INVALID_STATE);
  g_assert_nonnull(strstr(error->message, "symbolic links are refused"));
}

static void
test_unexpected_entry(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *p = g_build_filename(f->dir, "notes.txt", NULL);
  g_autofree char *sub = g_build_filename(f->dir, "tpm2-00.dir", NULL);

  copy_file("/dev/null", p, 0600);
  expect_failure(f, &a, &a, MSVM_RC_INVALID_STATE, "unexpected entry notes.txt");
  g_assert_cmpint(g_unlink(p), ==, 0);
  g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
  expect_failure(f, &a, &a, MSVM_RC_INVALID_STATE, "unexpected entry tpm2-00.dir");
}

/* swtpm's temporary file left by a crash is dropped; a missing .lock is
 * created. */
static void
test_swtpm_leftovers(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *tmp = g_build_filename(f->dir, "TMP2-00.permall", NULL);
  g_autofree char *lock = g_build_filename(f->dir, ".lock", NULL);
  g_autoptr(GError) error = NULL;

  copy_file("/dev/null", tmp, 0600);
  g_assert_cmpint(g_unlink(lock), ==, 0);
  g_assert_true(msvm_rekey_state_dir(f->dir, &a, &b, &error));
  g_assert_no_error(error);
  g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
  g_assert_true(g_file_test(lock, G_FILE_TEST_IS_REGULAR));
}

/* Without write access to the parent: 32769 and nothing changes (only
 * meaningful when not root: root ignores permissions). */
static void
test_read_only_parent(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_a = golden_passphrase("tpm2state-aes256-pbkdf2");
  MsvmStateKey a = key_of(pass_a, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);

  if (geteuid() == 0) {
    g_test_skip("root ignores directory permissions");
    return;
  }
  g_assert_cmpint(chmod(f->tmp, 0500), ==, 0);
  expect_failure(f, &a, &a, MSVM_RC_ACCESS_DENIED, NULL);
  g_assert_cmpint(chmod(f->tmp, 0700), ==, 0);
}

/* A file system that cannot exchange the directories: 32770, never a
 * fallback.  The real case here is overlayfs (redirect_dir=off) with the
 * state directory in the lower layer: renameat2 fails with EXDEV.  Needs
 * root (mount); skipped otherwise. */
static void
test_no_exchange(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *lower = g_build_filename(f->tmp, "lower", NULL);
  g_autofree char *upper = g_build_filename(f->tmp, "upper", NULL);
  g_autofree char *work = g_build_filename(f->tmp, "work", NULL);
  g_autofree char *merged = g_build_filename(f->tmp, "merged", NULL);
  g_autofree char *lower_tpm2 = g_build_filename(lower, "tpm2", NULL);
  g_autofree char *state = g_build_filename(merged, "tpm2", NULL);
  g_autofree char *opts = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) d = NULL;
  const char *e;

  if (geteuid() != 0) {
    g_test_skip("mounting an overlayfs needs root");
    return;
  }
  g_assert_cmpint(g_mkdir(lower, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(upper, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(work, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(merged, 0755), ==, 0);
  g_assert_cmpint(g_rename(f->dir, lower_tpm2), ==, 0);
  opts = g_strdup_printf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off", lower, upper,
                         work);
  if (mount("overlay", merged, "overlay", 0, opts) != 0) {
    g_test_skip_printf("cannot mount an overlayfs here: %s", g_strerror(errno));
    g_rename(lower_tpm2, f->dir);
    return;
  }
  before = snapshot(state);
  g_assert_false(msvm_rekey_state_dir(state, NULL, &b, &error));
  after = snapshot(state);
  umount2(merged, MNT_DETACH);
  g_assert_error(error, MSVM_ERROR, MSVM_RC_NOT_SUPPORTED);
  g_assert_nonnull(strstr(error->message, "RENAME_EXCHANGE"));
  g_assert_cmpstr(before, ==, after);
  /* no side directory left in the upper layer */
  d = g_dir_open(upper, 0, NULL);
  while (d != NULL && (e = g_dir_read_name(d)) != NULL)
    g_assert_cmpstr(e, ==, "tpm2");
}

/* Mount a tmpfs with @opts on tmp/mnt and copy a golden state into
 * tmp/mnt/tpm2; returns the state path, or NULL (test skipped). */
static char *
state_on_tmpfs(Fixture *f, const char *golden, const char *opts)
{
  g_autofree char *mnt = g_build_filename(f->tmp, "mnt", NULL);
  g_autofree char *src = g_build_filename(g_getenv("MSVM_TEST_DATADIR"), golden, "tpm2", NULL);
  char *state = g_build_filename(mnt, "tpm2", NULL);
  const char *files[] = { "tpm2-00.permall", "tpm2-00.volatilestate", ".lock" };

  if (geteuid() != 0) {
    g_test_skip("mounting a tmpfs needs root");
    g_free(state);
    return NULL;
  }
  g_assert_cmpint(g_mkdir(mnt, 0755), ==, 0);
  if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0) {
    g_test_skip_printf("cannot mount a tmpfs here: %s", g_strerror(errno));
    g_free(state);
    return NULL;
  }
  g_assert_cmpint(g_mkdir(state, 0750), ==, 0);
  for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
    g_autofree char *from = i < 2 ? g_build_filename(src, files[i], NULL) : g_strdup("/dev/null");
    g_autofree char *to = g_build_filename(state, files[i], NULL);
    copy_file(from, to, 0640);
  }
  return state;
}

/* A read-only file system: 32769, nothing changed. */
static void
test_read_only_fs(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  g_autofree char *state = state_on_tmpfs(f, "tpm2state-plaintext", "size=1m");
  g_autofree char *mnt = g_build_filename(f->tmp, "mnt", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(GError) error = NULL;

  if (state == NULL)
    return;
  g_assert_cmpint(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, "size=1m"), ==, 0);
  before = snapshot(state);
  g_assert_false(msvm_rekey_state_dir(state, NULL, &b, &error));
  after = snapshot(state);
  umount2(mnt, MNT_DETACH);
  g_assert_error(error, MSVM_ERROR, MSVM_RC_ACCESS_DENIED);
  g_assert_nonnull(strstr(error->message, "Read-only"));
  g_assert_cmpstr(before, ==, after);
}

/* A full disk while the new directory is written: 32768, the original as
 * it was, the side directory removed. */
static void
test_disk_full(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) pass_b = g_bytes_new_static(PASS_B, strlen(PASS_B));
  MsvmStateKey b = key_of(pass_b, MSVM_KDF_PBKDF2, MSVM_CIPHER_AES_256_CBC);
  /* room for the original (4 pages of data) and little more */
  g_autofree char *state = state_on_tmpfs(f, "tpm2state-plaintext", "size=24k");
  g_autofree char *mnt = g_build_filename(f->tmp, "mnt", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) d = NULL;
  const char *e;

  if (state == NULL)
    return;
  before = snapshot(state);
  g_assert_false(msvm_rekey_state_dir(state, NULL, &b, &error));
  after = snapshot(state);
  d = g_dir_open(mnt, 0, NULL);
  while (d != NULL && (e = g_dir_read_name(d)) != NULL)
    g_assert_cmpstr(e, ==, "tpm2");
  umount2(mnt, MNT_DETACH);
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_nonnull(strstr(error->message, "No space left"));
  g_assert_cmpstr(before, ==, after);
}

static void
test_bad_arguments(void)
{
  MsvmStateKey none = { 0 };
  MsvmStateKey b = { .passphrase = (const guint8 *)"x", .passphrase_len = 1, .cipher = 7 };
  g_autoptr(GError) error = NULL;

  g_assert_false(msvm_rekey_state_dir("/nonexistent/tpm2", NULL, &none, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  g_clear_error(&error);
  g_assert_false(msvm_rekey_state_dir("/nonexistent/tpm2", NULL, &b, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
  g_clear_error(&error);
  g_assert_false(msvm_rekey_state_dir("", NULL, &b, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER);
}

static void
add(const char *path, const char *golden, void (*fn)(Fixture *, gconstpointer))
{
  g_test_add(path, Fixture, golden, fixture_set_up, fn, fixture_tear_down);
}

int
main(int argc, char **argv)
{
  g_autofree char *helper_dir = NULL;

  g_test_init(&argc, &argv, NULL);
  /* use the freshly built validation helper */
  helper_dir = g_build_filename(g_getenv("MSVM_BUILDDIR"), "tpm", NULL);
  g_setenv("MSVM_SECURITY_LIBEXECDIR", helper_dir, TRUE);
  g_unsetenv("MSVM_SECURITY_FAULT_INJECT");

  add("/rekey/there-and-back", "tpm2state-aes256-pbkdf2", test_there_and_back);
  add("/rekey/plaintext-to-encrypted", "tpm2state-plaintext", test_plaintext_to_encrypted);
  add("/rekey/aes128-to-aes256", "tpm2state-aes128-pbkdf2", test_aes128_to_aes256);
  add("/rekey/sha512-to-pbkdf2", "tpm2state-aes256-sha512", test_sha512_to_pbkdf2);
  add("/rekey/wrong-passphrase", "tpm2state-aes256-pbkdf2", test_wrong_passphrase);
  add("/rekey/plaintext-with-passphrase", "tpm2state-plaintext",
      test_plaintext_with_passphrase);
  add("/rekey/lock-held", "tpm2state-aes256-pbkdf2", test_lock_held);
  add("/rekey/named-by-process", "tpm2state-aes256-pbkdf2", test_named_by_process);
  add("/rekey/owner-and-mode", "tpm2state-aes256-pbkdf2", test_owner_and_mode);
  add("/rekey/leftover-side-dir", "tpm2state-aes256-pbkdf2", test_leftover_side_dir);
  add("/rekey/invalid-tpm-state", "tpm2state-aes256-pbkdf2", test_invalid_tpm_state);
  add("/rekey/tpm12", NULL, test_tpm12);
  add("/rekey/no-permall", "tpm2state-plaintext", test_no_permall);
  add("/rekey/empty-dir", NULL, test_empty_dir);
  add("/rekey/symlinks", "tpm2state-aes256-pbkdf2", test_symlinks);
  add("/rekey/unexpected-entry", "tpm2state-aes256-pbkdf2", test_unexpected_entry);
  add("/rekey/swtpm-leftovers", "tpm2state-aes256-pbkdf2", test_swtpm_leftovers);
  add("/rekey/read-only-parent", "tpm2state-aes256-pbkdf2", test_read_only_parent);
  add("/rekey/no-exchange", "tpm2state-plaintext", test_no_exchange);
  add("/rekey/read-only-fs", NULL, test_read_only_fs);
  add("/rekey/disk-full", NULL, test_disk_full);
  add("/rekey/remove-leftover", "tpm2state-aes256-pbkdf2", test_remove_leftover);
  g_test_add_func("/rekey/bad-arguments", test_bad_arguments);
  return g_test_run();
}
