/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which process has a swtpm state directory as its --tpmstate
 * (tpm/msvm-state-inuse.c): the command-line matching on hand-made
 * /proc/PID/cmdline images (every spelling swtpm and swtpm_setup accept, a
 * trailing slash, a symlink, a relative path, a similar prefix, truncated
 * and garbage input), TPM_PATH in an environment image, and the /proc scan
 * finding real child processes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "msvm-error.h"
#include "msvm-state-inuse.h"

typedef struct {
  char *tmp;        /* the parent */
  char *dir;        /* tmp/tpm2: the directory looked for */
  MsvmStateDirId id;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *near = NULL;
  g_autofree char *parent_link = NULL;
  g_autofree char *dir_link = NULL;
  struct stat st;

  (void)data;
  f->tmp = g_dir_make_tmp("msvm-inuse-XXXXXX", &error);
  g_assert_no_error(error);
  f->dir = g_build_filename(f->tmp, "tpm2", NULL);
  near = g_build_filename(f->tmp, "tpm22", NULL);
  g_assert_cmpint(g_mkdir(f->dir, 0750), ==, 0);
  g_assert_cmpint(g_mkdir(near, 0750), ==, 0);
  /* tmp/link -> tmp (a symlink above the directory), tmp/dirlink -> tpm2 */
  parent_link = g_build_filename(f->tmp, "link", NULL);
  dir_link = g_build_filename(f->tmp, "dirlink", NULL);
  g_assert_cmpint(symlink(f->tmp, parent_link), ==, 0);
  g_assert_cmpint(symlink("tpm2", dir_link), ==, 0);
  g_assert_cmpint(stat(f->dir, &st), ==, 0);
  msvm_state_dir_id_init(&f->id, f->dir, &st);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_autofree char *near = g_build_filename(f->tmp, "tpm22", NULL);
  g_autofree char *l1 = g_build_filename(f->tmp, "link", NULL);
  g_autofree char *l2 = g_build_filename(f->tmp, "dirlink", NULL);

  (void)data;
  g_unlink(l1);
  g_unlink(l2);
  g_rmdir(near);
  g_rmdir(f->dir);
  g_rmdir(f->tmp);
  msvm_state_dir_id_clear(&f->id);
  g_free(f->dir);
  g_free(f->tmp);
}

/* A /proc/PID/cmdline image: the arguments, each followed by a NUL;
 * "@T" in an argument stands for the fixture's parent directory. */
static GByteArray *
cmdline_image(const Fixture *f, const char *const *args, gboolean final_nul)
{
  GByteArray *b = g_byte_array_new();

  for (guint i = 0; args[i] != NULL; i++) {
    g_autofree char *a = NULL;
    g_auto(GStrv) parts = g_strsplit(args[i], "@T", -1);

    a = g_strjoinv(f->tmp, parts);
    g_byte_array_append(b, (const guint8 *)a, (guint)strlen(a));
    if (args[i + 1] != NULL || final_nul)
      g_byte_array_append(b, (const guint8 *)"", 1);
  }
  return b;
}

static MsvmCmdlineMatch
match_args_fds(const Fixture *f, const char *const *args, int root_fd, int cwd_fd)
{
  g_autoptr(GByteArray) b = cmdline_image(f, args, TRUE);
  return msvm_cmdline_names_state_dir((const char *)b->data, b->len, FALSE, root_fd, cwd_fd,
                                      &f->id);
}

static MsvmCmdlineMatch
match_args(const Fixture *f, const char *const *args)
{
  return match_args_fds(f, args, -1, -1);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void
test_swtpm_forms(Fixture *f, gconstpointer data)
{
  (void)data;
  /* libvirt 9.0's own command line */
  g_assert_cmpint(match_args(f, ARGS("/usr/bin/swtpm", "socket", "--ctrl",
                                     "type=unixio,path=/run/libvirt/qemu/swtpm/1-vm-swtpm.sock,"
                                     "mode=0600",
                                     "--tpmstate", "dir=@T/tpm2,mode=0600", "--log",
                                     "file=/var/log/swtpm/libvirt/qemu/vm-swtpm.log",
                                     "--terminate", "--tpm2")),
                  ==, MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "socket", "--tpmstate", "dir=@T/tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "socket", "--tpmstate=dir=@T/tpm2,mode=0600")),
                  ==, MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "socket", "--tpmstate", "mode=0600,dir=@T/tpm2")),
                  ==, MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "socket", "--tpmstate",
                                     "backend-uri=dir://@T/tpm2,lock")),
                  ==, MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate=backend-uri=dir://@T/tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  /* the linear file backend with its file inside the directory */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate",
                                     "backend-uri=file://@T/tpm2/tpm2-00.permall")),
                  ==, MSVM_CMDLINE_MATCH);
  /* getopt_long's unambiguous abbreviation */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "chardev", "--tpms", "dir=@T/tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  /* swtpm_setup: a plain path, dir://, --tpm-state */
  g_assert_cmpint(match_args(f, ARGS("swtpm_setup", "--tpm2", "--tpmstate", "@T/tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm_setup", "--tpm-state", "dir://@T/tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm_setup", "--tpm-state=@T/tpm2/")), ==,
                  MSVM_CMDLINE_MATCH);
  /* the last of several --tpmstate wins in swtpm; any of them counts here */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm22", "--tpmstate",
                                     "dir=@T/tpm2")),
                  ==, MSVM_CMDLINE_MATCH);
}

static void
test_path_spellings(Fixture *f, gconstpointer data)
{
  int cwd_fd;

  (void)data;
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm2/")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T//tpm2//")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/./tpm22/../tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  /* through a symlink above it, and a symlink to it (with a trailing slash) */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/link/tpm2")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/dirlink/")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate=dir=@T/link/dirlink,mode=0600")),
                  ==, MSVM_CMDLINE_MATCH);

  /* a relative path, from the process's working directory ... */
  cwd_fd = open(f->tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint(cwd_fd, >=, 0);
  g_assert_cmpint(match_args_fds(f, ARGS("swtpm", "--tpmstate", "dir=tpm2"), -1, cwd_fd), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args_fds(f, ARGS("swtpm", "--tpmstate", "dir=./dirlink"), -1, cwd_fd),
                  ==, MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args_fds(f, ARGS("swtpm", "--tpmstate", "dir=tpm22"), -1, cwd_fd), ==,
                  MSVM_CMDLINE_NO_MATCH);
  close(cwd_fd);
  /* ... or, when it is not known, as the tail of the directory's path */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=tpm2/")), ==,
                  MSVM_CMDLINE_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=pm2")), ==,
                  MSVM_CMDLINE_NO_MATCH);

  /* a process in another root (chroot, container): /tpm2 there is ours */
  {
    int root_fd = open(f->tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
    g_assert_cmpint(root_fd, >=, 0);
    g_assert_cmpint(match_args_fds(f, ARGS("swtpm", "--tpmstate", "dir=/tpm2"), root_fd, -1),
                    ==, MSVM_CMDLINE_MATCH);
    g_assert_cmpint(match_args_fds(f, ARGS("swtpm", "--tpmstate", "dir=/tpm22"), root_fd, -1),
                    ==, MSVM_CMDLINE_NO_MATCH);
    close(root_fd);
  }

  /* A directory that is gone from our view still matches by its text. */
  {
    MsvmStateDirId ghost = { .dev = 1, .ino = 1, .canonical = NULL,
                             .absolute = (char *)"/no/such/swtpm/uuid/tpm2" };
    const char cmd[] = "swtpm\0--tpmstate\0dir=/no//such/swtpm/uuid/tpm2/,mode=0600";
    const char setup[] = "swtpm_setup\0--tpmstate\0/no/such/swtpm/uuid/tpm2/\0";
    g_assert_cmpint(msvm_cmdline_names_state_dir(cmd, sizeof(cmd) - 1, FALSE, -1, -1, &ghost),
                    ==, MSVM_CMDLINE_MATCH);
    g_assert_cmpint(msvm_cmdline_names_state_dir(setup, sizeof(setup) - 1, FALSE, -1, -1,
                                                 &ghost),
                    ==, MSVM_CMDLINE_MATCH);
  }
  /* swtpm_setup's plain path may hold '=' */
  {
    MsvmStateDirId odd = { .dev = 1, .ino = 1, .canonical = NULL,
                           .absolute = (char *)"/srv/a=b/tpm2" };
    const char setup[] = "swtpm_setup\0--tpm-state\0/srv/a=b/tpm2";
    g_assert_cmpint(msvm_cmdline_names_state_dir(setup, sizeof(setup) - 1, FALSE, -1, -1, &odd),
                    ==, MSVM_CMDLINE_MATCH);
  }
}

static void
test_not_ours(Fixture *f, gconstpointer data)
{
  (void)data;
  /* a similar prefix and its relatives */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm22")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm2x,mode=0600")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm2/sub")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "backend-uri=file://@T/tpm22/x")),
                  ==, MSVM_CMDLINE_NO_MATCH);
  /* swtpm splits at commas without escaping: "dir=@T/tpm2x,tpm2" names @T/tpm2x */
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm22,@T/tpm2")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  /* the directory in an argument that is no state option */
  g_assert_cmpint(match_args(f, ARGS("vi", "@T/tpm2/notes")), ==, MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("msvm-security", "rekey", "--state-dir", "@T/tpm2")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("msvm-security", "rekey", "--state-dir=@T/tpm2")), ==,
                  MSVM_CMDLINE_NO_MATCH);
  /* "--tpm" is ambiguous for getopt (--tpm2): not a state option */
  g_assert_cmpint(match_args(f, ARGS("swtpm_setup", "--tpm", "@T/tpm2")), !=,
                  MSVM_CMDLINE_MATCH);
  /* no state option: a swtpm is judged by its environment, others not at all */
  g_assert_cmpint(match_args(f, ARGS("/usr/bin/swtpm", "socket", "--ctrl",
                                     "type=unixio,path=/x")),
                  ==, MSVM_CMDLINE_NEEDS_ENVIRON);
  g_assert_cmpint(match_args(f, ARGS("bash", "-c", "sleep 1")), ==, MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm22")), ==,
                  MSVM_CMDLINE_NO_MATCH);
}

static void
test_odd_input(Fixture *f, gconstpointer data)
{
  g_autoptr(GByteArray) b = NULL;
  g_autofree char *dir_arg = g_strdup_printf("dir=%s", f->dir);

  (void)data;
  /* no final NUL (a process that rewrote its argv) */
  b = cmdline_image(f, ARGS("swtpm", "--tpmstate", "dir=@T/tpm2"), FALSE);
  g_assert_cmpint(msvm_cmdline_names_state_dir((const char *)b->data, b->len, FALSE, -1, -1,
                                               &f->id),
                  ==, MSVM_CMDLINE_MATCH);
  /* cut inside the path by the read bound: counts as in use */
  g_assert_cmpint(msvm_cmdline_names_state_dir((const char *)b->data, b->len - 2, TRUE, -1, -1,
                                               &f->id),
                  ==, MSVM_CMDLINE_MATCH);
  /* cut short without the bound (what the kernel gave): judged as it is */
  g_assert_cmpint(msvm_cmdline_names_state_dir((const char *)b->data, b->len - 2, FALSE, -1,
                                               -1, &f->id),
                  ==, MSVM_CMDLINE_NO_MATCH);
  /* empty, NULs only, empty values */
  g_assert_cmpint(msvm_cmdline_names_state_dir("", 0, FALSE, -1, -1, &f->id), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(msvm_cmdline_names_state_dir("\0\0\0\0", 4, FALSE, -1, -1, &f->id), ==,
                  MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate", "dir=,,dir=,backend-uri=dir://")),
                  ==, MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate")), ==, MSVM_CMDLINE_NO_MATCH);
  g_assert_cmpint(match_args(f, ARGS("swtpm", "--tpmstate=")), ==, MSVM_CMDLINE_NO_MATCH);
  /* a path longer than PATH_MAX */
  {
    GString *s = g_string_new("dir=/");
    for (guint i = 0; i < 3 * 4096; i++)
      g_string_append_c(s, i % 100 == 99 ? '/' : 'a');
    g_assert_cmpint(match_args(f, (const char *const[]){ "swtpm", "--tpmstate", s->str, NULL }),
                    ==, MSVM_CMDLINE_NO_MATCH);
    g_string_free(s, TRUE);
  }
  /* binary garbage around a real argument, and high bytes in paths */
  {
    GByteArray *g = g_byte_array_new();
    const guint8 junk[] = { 0xff, 0xfe, 0x01, ',', '=', 0x80, 0x00, 0x1b, '[', '2', 'J' };
    g_byte_array_append(g, junk, sizeof(junk));
    g_byte_array_append(g, (const guint8 *)"", 1);
    g_byte_array_append(g, (const guint8 *)dir_arg, (guint)strlen(dir_arg));
    g_byte_array_append(g, (const guint8 *)",\xff\xfe", 3);
    g_assert_cmpint(msvm_cmdline_names_state_dir((const char *)g->data, g->len, FALSE, -1, -1,
                                                 &f->id),
                    ==, MSVM_CMDLINE_MATCH);
    g_byte_array_unref(g);
  }
  /* random bytes never crash and are judged in bounded time */
  {
    GRand *r = g_rand_new_with_seed(9);
    const char alphabet[] = { '\0', ',', '=', '/', '.', 'd', 'i', 'r', ':', '-', 't', 'p',
                              'm', 's', 'a', 'e', '\xff' };
    for (guint round = 0; round < 2000; round++) {
      guint len = (guint)g_rand_int_range(r, 0, 200);
      g_autofree char *buf = g_malloc(len + 1);
      for (guint i = 0; i < len; i++)
        buf[i] = g_rand_boolean(r) ? alphabet[g_rand_int_range(r, 0, sizeof(alphabet))]
                                   : (char)g_rand_int_range(r, 0, 256);
      (void)msvm_cmdline_names_state_dir(buf, len, FALSE, -1, -1, &f->id);
      (void)msvm_environ_names_state_dir(buf, len, FALSE, -1, -1, &f->id);
    }
    g_rand_free(r);
  }
  /* too many candidate paths to judge: counts as in use */
  {
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < 5000; i++)
      g_string_append(s, "dir=/nonexistent,");
    g_assert_cmpint(match_args(f, (const char *const[]){ "x", s->str, NULL }), ==,
                    MSVM_CMDLINE_MATCH);
    g_string_free(s, TRUE);
  }
}

static void
test_environ(Fixture *f, gconstpointer data)
{
  g_autofree char *env = g_strdup_printf("HOME=/root%cTPM_PATH=%s/%cX=1", 0, f->dir, 0);
  gsize len = strlen("HOME=/root") + 1 + strlen("TPM_PATH=") + strlen(f->dir) + 1 + 1 + 3;
  g_autofree char *other = g_strdup_printf("TPM_PATH=%s/tpm22", f->tmp);

  (void)data;
  g_assert_true(msvm_environ_names_state_dir(env, len, FALSE, -1, -1, &f->id));
  g_assert_true(msvm_environ_names_state_dir(env, 4, TRUE, -1, -1, &f->id));
  g_assert_false(msvm_environ_names_state_dir(other, strlen(other), FALSE, -1, -1, &f->id));
  g_assert_false(msvm_environ_names_state_dir("TPM_PATH=", 9, FALSE, -1, -1, &f->id));
  g_assert_false(msvm_environ_names_state_dir("", 0, FALSE, -1, -1, &f->id));
}

/* Start a real process (/bin/sh waiting on a pipe: no child of its own)
 * that shows @shown_name as argv[0], then @args, with environment @envp. */
typedef struct {
  GPid pid;
  int stdin_fd;
} Child;

static Child
spawn_sh(const char *shown_name, const char *const *args, const char *const *envp)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) a = g_ptr_array_new();
  Child c = { 0, -1 };

  /* G_SPAWN_FILE_AND_ARGV_ZERO: the file, then the argv[0] it shows */
  g_ptr_array_add(a, (gpointer) "/bin/sh");
  g_ptr_array_add(a, (gpointer)shown_name);
  g_ptr_array_add(a, (gpointer) "-c");
  g_ptr_array_add(a, (gpointer) "read x");
  g_ptr_array_add(a, (gpointer)shown_name); /* $0 */
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(a, (gpointer)args[i]);
  g_ptr_array_add(a, NULL);
  g_assert_true(g_spawn_async_with_pipes(NULL, (char **)a->pdata, (char **)envp,
                                         G_SPAWN_FILE_AND_ARGV_ZERO | G_SPAWN_DO_NOT_REAP_CHILD |
                                             G_SPAWN_STDOUT_TO_DEV_NULL |
                                             G_SPAWN_STDERR_TO_DEV_NULL,
                                         NULL, NULL, &c.pid, &c.stdin_fd, NULL, NULL, &error));
  g_assert_no_error(error);
  return c;
}

/* The same as a user who cannot enter the fixture's directory (0750 root's). */
static void
become_nobody(gpointer data)
{
  const struct passwd *pw = data;
  if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
    _exit(127);
}

/* As a set-user-ID root program started by nobody runs: real uid nobody,
 * effective and saved uid 0 (sudo at its password prompt). */
static void
become_setuid_root_of_nobody(gpointer data)
{
  const struct passwd *pw = data;
  if (setgroups(0, NULL) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
      setresuid(pw->pw_uid, 0, 0) != 0)
    _exit(127);
}

static GSpawnChildSetupFunc spawn_setup = become_nobody;

static Child
spawn_sh_as(const struct passwd *pw, const char *shown_name, const char *const *args,
            const char *const *envp)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) a = g_ptr_array_new();
  Child c = { 0, -1 };

  g_ptr_array_add(a, (gpointer) "/bin/sh");
  g_ptr_array_add(a, (gpointer)shown_name);
  g_ptr_array_add(a, (gpointer) "-p"); /* (keeps an effective uid 0: dash drops it otherwise) */
  g_ptr_array_add(a, (gpointer) "-c");
  g_ptr_array_add(a, (gpointer) "read x");
  g_ptr_array_add(a, (gpointer)shown_name);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(a, (gpointer)args[i]);
  g_ptr_array_add(a, NULL);
  g_assert_true(g_spawn_async_with_pipes(NULL, (char **)a->pdata, (char **)envp,
                                         G_SPAWN_FILE_AND_ARGV_ZERO | G_SPAWN_DO_NOT_REAP_CHILD |
                                             G_SPAWN_STDOUT_TO_DEV_NULL |
                                             G_SPAWN_STDERR_TO_DEV_NULL,
                                         spawn_setup, (gpointer)pw, &c.pid, &c.stdin_fd, NULL,
                                         NULL, &error));
  g_assert_no_error(error);
  return c;
}

static void
stop_child(Child c)
{
  int status;
  kill(c.pid, SIGKILL);
  g_assert_cmpint(waitpid(c.pid, &status, 0), ==, c.pid);
  close(c.stdin_fd);
}

/* The process has exec'ed and shows its command line. */
static void
wait_exec(GPid pid, const char *needle)
{
  g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)pid);

  for (guint i = 0; i < 500; i++) {
    g_autofree char *data = NULL;
    gsize len = 0;
    if (g_file_get_contents(path, &data, &len, NULL) &&
        memmem(data, len, needle, strlen(needle)) != NULL)
      return;
    g_usleep(10000);
  }
  g_assert_not_reached();
}

static void
test_scan(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *arg = g_strdup_printf("dir=%s/link/tpm2/,mode=0600", f->tmp);
  g_autofree char *near_arg = g_strdup_printf("dir=%s/tpm22", f->tmp);
  g_autofree char *env_path = g_strdup_printf("TPM_PATH=%s", f->dir);
  const char *const no_env[] = { "PATH=/usr/bin:/bin", NULL };
  const char *const tpm_env[] = { "PATH=/usr/bin:/bin", env_path, NULL };
  char *name = NULL;
  pid_t found = -1;
  Child child;

  (void)data;
  /* nobody */
  g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
  g_assert_no_error(error);
  g_assert_cmpint(found, ==, 0);
  g_assert_null(name);

  /* a process of a similar directory is not found */
  child = spawn_sh("swtpm", (const char *const[]){ "socket", "--tpmstate", near_arg, NULL },
                   no_env);
  wait_exec(child.pid, near_arg);
  g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
  g_assert_cmpint(found, ==, 0);
  stop_child(child);

  /* a process with the directory as its --tpmstate (through a symlink) */
  child = spawn_sh("swtpm", (const char *const[]){ "socket", "--tpmstate", arg, NULL }, no_env);
  wait_exec(child.pid, arg);
  g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
  g_assert_no_error(error);
  g_assert_cmpint(found, ==, child.pid);
  g_assert_nonnull(name);
  g_assert_cmpuint(strlen(name), >, 0);
  g_assert_cmpuint(strlen(name), <=, 16);
  g_clear_pointer(&name, g_free);
  stop_child(child);

  /* the same arguments in a process of a user who cannot enter the
   * directory: any local user can start one, and it must not refuse every
   * re-key for good */
  {
    const struct passwd *pw = getpwnam("nobody");
    struct stat st;
    g_assert_cmpint(stat(f->dir, &st), ==, 0);
    if (geteuid() == 0 && pw != NULL && pw->pw_uid != st.st_uid && pw->pw_gid != st.st_gid &&
        (st.st_mode & S_IXOTH) == 0) {
      struct passwd copy = *pw;
      child = spawn_sh_as(&copy, "swtpm", (const char *const[]){ "socket", "--tpmstate", arg, NULL },
                          no_env);
      wait_exec(child.pid, arg);
      g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
      g_assert_no_error(error);
      g_assert_cmpint(found, ==, 0);
      stop_child(child);
      /* ... nor a set-user-ID root program of that user's (effective uid 0) */
      spawn_setup = become_setuid_root_of_nobody;
      child = spawn_sh_as(&copy, "sudo", (const char *const[]){ "true", "--tpmstate", arg, NULL },
                          no_env);
      spawn_setup = become_nobody;
      wait_exec(child.pid, arg);
      g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
      g_assert_no_error(error);
      g_assert_cmpint(found, ==, 0);
      stop_child(child);
    } else {
      g_test_message("not root (or nobody can enter %s): the other user's process is not tried",
                     f->dir);
    }
  }

  /* a swtpm without --tpmstate that has TPM_PATH */
  child = spawn_sh("swtpm", (const char *const[]){ "socket", "--tpm2", NULL }, tpm_env);
  wait_exec(child.pid, "--tpm2");
  g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
  g_assert_cmpint(found, ==, child.pid);
  g_clear_pointer(&name, g_free);
  stop_child(child);
  /* ... and the same without it */
  child = spawn_sh("swtpm", (const char *const[]){ "socket", "--tpm2", NULL }, no_env);
  wait_exec(child.pid, "--tpm2");
  g_assert_true(msvm_state_dir_find_user(NULL, &f->id, &found, &name, &error));
  g_assert_cmpint(found, ==, 0);
  stop_child(child);

  /* no /proc to read: the caller cannot tell (an error, never "not in use") */
  found = -1;
  g_assert_false(msvm_state_dir_find_user("/nonexistent-proc", &f->id, &found, &name, &error));
  g_assert_error(error, MSVM_ERROR, MSVM_RC_FAILED);
  g_assert_cmpint(found, ==, -1);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/state-inuse/swtpm-forms", Fixture, NULL, fixture_set_up, test_swtpm_forms,
             fixture_tear_down);
  g_test_add("/state-inuse/path-spellings", Fixture, NULL, fixture_set_up, test_path_spellings,
             fixture_tear_down);
  g_test_add("/state-inuse/not-ours", Fixture, NULL, fixture_set_up, test_not_ours,
             fixture_tear_down);
  g_test_add("/state-inuse/odd-input", Fixture, NULL, fixture_set_up, test_odd_input,
             fixture_tear_down);
  g_test_add("/state-inuse/environ", Fixture, NULL, fixture_set_up, test_environ,
             fixture_tear_down);
  g_test_add("/state-inuse/scan", Fixture, NULL, fixture_set_up, test_scan, fixture_tear_down);
  return g_test_run();
}
