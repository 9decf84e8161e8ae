/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-security-hook.c: the libvirt qemu hook's first stage (DESIGN.md 9,
 * docs/hooks.rst).  Installed as <hookdir>/50-msvm-security.
 *
 *   50-msvm-security OBJECT OPERATION SUBOPERATION EXTRA < domain.xml
 *
 * libvirt runs every hook of qemu.d for every guest at every operation, so
 * this stage is linked against libc alone: it reads the domain XML from
 * standard input and looks for the project's metadata namespace with
 * memmem().  A guest without it (the common case) costs one exec of a small
 * program: exit 0, no output, no file opened.  Only for a managed guest does
 * it dlopen() the second stage, msvm-security-hook-module.so (GLib, libxml2,
 * libcrypto, libtpms; installed under <libdir>/msvm-security, which AppArmor
 * lets libvirtd map, unlike an executed helper), and hand it the arguments and
 * the XML.
 *
 * libvirt formats the XML itself (libxml2 writes attribute values without
 * escaping ':' or '/'), so the namespace appears literally in a managed
 * guest's XML; the second stage parses the document and is the one that
 * decides (a string that merely occurs in a <description> is not metadata).
 *
 * No GLib here on purpose; "config.h" only gives build paths.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msvm-hook.h"       /* the second stage's entry point */
#include "msvm-hook-input.h" /* reading and searching standard input */
#include "msvm-trust.h"      /* (libc only, compiled in) */

/* Largest domain XML handed to the second stage (libvirt caps a domain
 * definition at 10 MiB).  Beyond it the input is still read to the end and
 * searched, so an unmanaged guest is never refused for its size. */
#define HOOK_MAX_INPUT (16u * 1024u * 1024u)
#define HOOK_FIRST_BUFFER (64u * 1024u)

/* The installed module, unless this hook is the build tree's own executable;
 * the build tree's module when nothing is installed (a hook copied into the
 * hook directory by the tests).  Never from the environment. */
static const char *
module_path(void)
{
  static const char installed[] = MSVM_HOOK_MODULE_DIR "/" MSVM_HOOK_MODULE_NAME;
  static const char built[] = MSVM_BUILDDIR "/hooks/" MSVM_HOOK_MODULE_NAME;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

  if (n > 0) {
    self[n] = '\0';
    if (strncmp(self, MSVM_BUILDDIR "/", strlen(MSVM_BUILDDIR "/")) == 0)
      return built;
  }
#ifdef MSVM_FAULT_INJECTION
  /* test builds: a hook copied into libvirt's directory uses the build tree's
   * module when none is installed; an installed hook never looks there */
  if (access(installed, F_OK) != 0)
    return built;
#endif
  return installed;
}

/* Without the second stage nothing can be checked: fail the operations that
 * guard something (prepare, migrate, restore), let the others through. */
static int
module_failure(const char *op, const char *what, int reinstall)
{
  int guarding = op != NULL && (strcmp(op, "prepare") == 0 || strcmp(op, "migrate") == 0 ||
                                strcmp(op, "restore") == 0);
  fprintf(stderr, "msvm-security-hook: %s%s\n", what,
          reinstall ? "; reinstall msvm-security" : "");
  return guarding ? 1 : 0;
}

int
main(int argc, char **argv)
{
  char *xml = NULL;
  size_t len = 0;
  const char *op = argc > 2 ? argv[2] : NULL;
  const char *path;
  void *mod;
  MsvmHookRunFunc run;
  char msg[PATH_MAX + 256];

  switch (msvm_hook_read_input(STDIN_FILENO, HOOK_FIRST_BUFFER, HOOK_MAX_INPUT, &xml, &len)) {
  case 0:
    return 0; /* not a managed guest: the fast path */
  case 1:
    break;
  default:
    /* Cannot see the guest: it may be managed, so guard as if it were. */
    snprintf(msg, sizeof(msg), "cannot read the domain XML on standard input: %s",
             strerror(errno));
    return module_failure(op, msg, 0);
  }
  if (xml == NULL) {
    snprintf(msg, sizeof(msg), "the domain XML of a managed guest is larger than %u bytes",
             HOOK_MAX_INPUT);
    return module_failure(op, msg, 0);
  }

  path = module_path();
  if (!msvm_path_is_trusted(path)) {
    snprintf(msg, sizeof(msg),
             "%s is missing, or writable by or owned by another user than root", path);
    return module_failure(op, msg, 1);
  }
  mod = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (mod == NULL) {
    snprintf(msg, sizeof(msg), "cannot load %s: %s", path, dlerror());
    return module_failure(op, msg, 1);
  }
  run = (MsvmHookRunFunc)dlsym(mod, MSVM_HOOK_RUN_SYMBOL);
  if (run == NULL) {
    snprintf(msg, sizeof(msg), "%s has no %s", path, MSVM_HOOK_RUN_SYMBOL);
    return module_failure(op, msg, 1);
  }
  return run(argc, argv, xml, len);
}
