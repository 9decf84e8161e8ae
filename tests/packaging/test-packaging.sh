#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Debian packages (debian/, DESIGN.md section 13, docs/packaging.rst),
# built and installed as an administrator would, TAP on stdout:
#
#  1. a clean export of the tree (git archive HEAD: what a clean clone
#     holds; MSVM_PACKAGING_FROM=worktree exports the work tree's tracked
#     and new files instead, uncommitted changes included);
#  2. dpkg-source -b (for lintian's source checks), then
#     dpkg-buildpackage -us -uc -b on this host, whose build dependencies
#     ./run installs (dpkg-buildpackage checks debian/control's
#     Build-Depends itself); with MSVM_PACKAGING_CHROOT_BUILD=1 instead
#     `apt-get build-dep ./` and the build inside a fresh Debian chroot,
#     which proves Build-Depends complete (a few minutes more);
#  3. the build ran the unit suite only, in the production configuration
#     (no fault point in any shipped program);
#  4. lintian on the .changes and the .dsc: no error;
#  5. `apt-get install ./*.deb` in a fresh Debian chroot (debootstrap
#     --variant=minbase of this host's release, no recommends): every
#     expected file where it belongs and nothing else, the hook a regular
#     root-owned conffile stamped at install time, the restart message, no
#     unresolved library, the CLI runs, pkg-config finds the library;
#  6. the installed hook run as libvirt runs it (chroot, env -i, the domain
#     XML on standard input): exit 0 and silence for an unmanaged guest at
#     every operation, its module loaded for a managed guest;
#  7. remove: the hook stays (a conffile) and refuses managed guests;
#     purge: the hook and its dpkg leftovers are gone, and every file.
#
# Root only (chroot, mounts); everything happens in a private mount
# namespace under a temporary directory that is removed at the end; logs,
# packages and lintian's report are kept in $MSVM_BUILDDIR/packaging/
# (MSVM_TEST_KEEP=1 keeps the temporary directory too).  Needs the network
# to the Debian archive (MSVM_DEBIAN_MIRROR, default deb.debian.org).

. "$(dirname "$0")/../integration/lib-swtpm.sh"   # TAP
. "$(dirname "$0")/../integration/lib-hook.sh"    # domain XML, hook_run

if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP root only (debootstrap, chroot, dpkg in the chroot)"
  exit 0
fi
SRC=${MSVM_SOURCEDIR:?MSVM_SOURCEDIR is not set}
OUT=${MSVM_BUILDDIR:?MSVM_BUILDDIR is not set}/packaging

# A private mount namespace: /proc of the chroots vanishes with it.  Where
# none can be made (inside some chroots, such as the fresh Debian check's)
# the test runs without one: its cleanup unmounts what it mounted anyway.
if [ -z "${MSVM_PACKAGING_NS:-}" ]; then
  if unshare --mount --propagation private -- true 2>/dev/null; then
    MSVM_PACKAGING_NS=1 exec unshare --mount --propagation private -- bash "$0" "$@"
  fi
  echo "# no private mount namespace here (unshare --mount): mounts are undone by the cleanup" >&2
fi

missing=()
for p in dpkg-buildpackage dpkg-source dh lintian debootstrap git chroot; do
  command -v "$p" >/dev/null || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] ||
  bail "missing: ${missing[*]} (./run installs debhelper, dpkg-dev, lintian, debootstrap)"
git -C "$SRC" rev-parse --verify -q HEAD >/dev/null ||
  bail "$SRC is not a git checkout: the test exports a clean tree from git"

MIRROR=${MSVM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
HOOKFILE=/etc/libvirt/hooks/qemu.d/50-msvm-security

WORK=$(mktemp -d /tmp/msvm-packaging.XXXXXX) || bail "mktemp failed"
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null; done
  # (--one-file-system: never into anything still mounted)
  [ -z "${MSVM_TEST_KEEP:-}" ] && rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
rm -rf "$OUT"
mkdir -p "$OUT"
diag "work directory $WORK, logs and packages in $OUT"

# in_root ROOT CMD...: run CMD inside the chroot ROOT, non-interactive.
in_root() {
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
    HOME=/root DEBIAN_FRONTEND=noninteractive "$@"
}

# fresh_root DIR LOG: a minimal Debian of this host's release in DIR, with
# /proc, DNS and no service starts.
fresh_root() {
  local root=$1 log=$2
  timeout 900 debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$log" 2>&1 ||
    return 1
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc" && MOUNTS+=("$root/proc")
  # (a new devpts instance, for apt's log; nothing of the host's /dev)
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null &&
    MOUNTS+=("$root/dev/pts")
}

# --- 1. a clean export ------------------------------------------------------
TREE=$WORK/msvm-security-$VERSION
mkdir -p "$TREE"
if [ "${MSVM_PACKAGING_FROM:-head}" = worktree ]; then
  (cd "$SRC" && git ls-files -z -c -o --exclude-standard |
     while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -xf - -C "$TREE"
  tap_ok $? "export of the work tree (tracked and new files) into $TREE"
else
  [ -z "$(git -C "$SRC" status --porcelain 2>/dev/null)" ] ||
    diag "the work tree has uncommitted changes: they are not in the export (HEAD)"
  git -C "$SRC" archive --format=tar HEAD | tar -xf - -C "$TREE"
  tap_ok $? "clean export of HEAD (git archive) into $TREE"
fi
[ -d "$TREE/debian" ] || bail "the export has no debian/"

# --- 2. the source package and the binary packages --------------------------
(cd "$WORK" && dpkg-source -b "$(basename "$TREE")") >"$OUT/source.log" 2>&1
tap_ok $? "dpkg-source -b: the source package (msvm-security_$VERSION.dsc)"
DSC=$WORK/msvm-security_$VERSION.dsc

if [ -n "${MSVM_PACKAGING_CHROOT_BUILD:-}" ]; then
  BROOT=$WORK/build-root
  fresh_root "$BROOT" "$OUT/debootstrap-build.log" ||
    bail "debootstrap of $SUITE for the build failed (see $OUT/debootstrap-build.log)"
  mkdir -p "$BROOT/build" && cp -a "$TREE" "$BROOT/build/"
  in_root "$BROOT" apt-get install -y -q --no-install-recommends build-essential dpkg-dev \
    >"$OUT/build-deps.log" 2>&1 &&
  in_root "$BROOT" sh -c "cd /build/$(basename "$TREE") && apt-get build-dep -y -q ./" \
    >>"$OUT/build-deps.log" 2>&1
  tap_ok $? "fresh $SUITE chroot: apt-get build-dep ./ installs the build dependencies"
  in_root "$BROOT" sh -c "cd /build/$(basename "$TREE") && dpkg-buildpackage -us -uc -b" \
    >"$OUT/build.log" 2>&1
  tap_ok $? "fresh $SUITE chroot: dpkg-buildpackage -us -uc -b (log: $OUT/build.log)"
  cp "$BROOT"/build/*.deb "$BROOT"/build/*.changes "$BROOT"/build/*.buildinfo "$WORK/" 2>/dev/null
  BUILT=$BROOT/build/$(basename "$TREE")
else
  (cd "$TREE" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1
  tap_ok $? "dpkg-buildpackage -us -uc -b from the export (log: $OUT/build.log)"
  BUILT=$TREE
fi
CHANGES=$WORK/msvm-security_${VERSION}_$ARCH.changes
diag "build: ${SECONDS}s since the start"
[ -f "$CHANGES" ] || { tail -n 40 "$OUT/build.log" | diag "$(cat)"; bail "no $CHANGES"; }
cp "$WORK"/*.deb "$CHANGES" "$OUT/" 2>/dev/null

PACKAGES=(msvm-security libmsvm-security0 libmsvm-security-dev)
PACKAGES+=(gir1.2-msvmsecurity-1.0)
DEBS=()
for p in "${PACKAGES[@]}"; do
  f=$WORK/${p}_${VERSION}_$ARCH.deb
  [ -f "$f" ]
  tap_ok $? "built $p ($(basename "$f"))"
  DEBS+=("$f")
done

# --- 3. the unit suite only, the production configuration ------------------
suites=$(sed -n 's|^ *[0-9]*/[0-9]* msvm-security:\([a-z-]*\) / .*|\1|p' "$OUT/build.log" |
  sort -u | tr '\n' ' ')
ran=$(grep -c '^ *[0-9]*/[0-9]* msvm-security:' "$OUT/build.log")
tap_is "$suites" "unit " "dh_auto_test ran the unit suite only ($ran tests)"
grep -q '^Fail: *0 *$' "$OUT/build.log" && [ "$ran" -gt 0 ]
tap_ok $? "dh_auto_test: no test failed"
opts=$(meson introspect --buildoptions "$BUILT"/obj-*/ 2>/dev/null | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print("fault_injection=%s invariant_checks=%s hookdir=%s" %
      (o.get("fault_injection"), o.get("invariant_checks"), o.get("hookdir")))')
tap_is "$opts" "fault_injection=False invariant_checks=False hookdir=/etc/libvirt/hooks/qemu.d" \
  "configured for production (debian/rules)"
mkdir -p "$WORK/x"
for f in "${DEBS[@]}"; do dpkg-deb -x "$f" "$WORK/x"; done
faults=$(find "$WORK/x" -type f -exec sh -c 'head -c 4 "$1" | grep -q ELF && strings -a "$1" |
  grep -lE "MSVM_SECURITY_FAULT|MSVM_SECURITY_TEST_|msvm_fault_" >/dev/null && echo "${1#*/x}"' _ {} \;)
tap_is "$faults" "" "no shipped program or library has a fault point"

# --- 4. lintian ---------------------------------------------------------------
# (without --show-overrides: with it, lintian 2.116 fails on overridden errors)
lintian --fail-on error --pedantic -I "$CHANGES" "$DSC" >"$OUT/lintian.txt" 2>&1
lrc=$?
diag "lintian: ${SECONDS}s since the start"
errors=$(grep -c '^E: ' "$OUT/lintian.txt")
tap_ok $(( lrc != 0 || errors != 0 )) "lintian: no error ($errors; report: $OUT/lintian.txt)"
diag "$(grep -E '^[EWIP]: ' "$OUT/lintian.txt")"
if grep -qE 'unused-override|mismatched-override' "$OUT/lintian.txt"; then
  tap_ok 1 "lintian: every override is used"
else
  tap_ok 0 "lintian: every override is used"
fi

# --- 5. install into a fresh Debian -------------------------------------------
ROOT=$WORK/root
fresh_root "$ROOT" "$OUT/debootstrap.log" ||
  bail "debootstrap of $SUITE from $MIRROR failed (see $OUT/debootstrap.log)"
tap_ok 0 "fresh $SUITE root (debootstrap --variant=minbase) in $ROOT"
diag "debootstrap: ${SECONDS}s since the start"
mkdir -p "$ROOT/tmp/debs"
cp "${DEBS[@]}" "$ROOT/tmp/debs/"
[ ! -e "$ROOT/var/lib/msvm-security" ] && [ ! -e "$ROOT/etc/libvirt" ]
tap_ok $? "the fresh root has no msvm-security store and no /etc/libvirt"
before_install=$(date +%s)
sleep 1
in_root "$ROOT" sh -c 'apt-get install -y -q --no-install-recommends /tmp/debs/*.deb' \
  >"$OUT/install.log" 2>"$OUT/install.err"
tap_ok $? "apt-get install ./*.deb in the fresh root (log: $OUT/install.log)"
diag "install: ${SECONDS}s since the start"
# (apt runs dpkg on a pseudo-terminal when it has one: the maintainer
# scripts' stderr then ends up in its standard output)
grep -h '^msvm-security: ' "$OUT/install.err" "$OUT/install.log" >"$OUT/install.notice"
grep -q 'restart' "$OUT/install.notice" && grep -q "$HOOKFILE" "$OUT/install.notice"
tap_ok $? "the install tells the administrator to restart the libvirt daemon"

expected=(
  "msvm-security $HOOKFILE"
  "msvm-security /usr/bin/msvm-security"
  "msvm-security /usr/lib/$MA/msvm-security/msvm-security-hook-module.so"
  "msvm-security /usr/libexec/msvm-security/msvm-security-tpm-validate"
  "msvm-security /usr/share/man/man1/msvm-security.1.gz"
  "msvm-security /usr/share/man/man8/msvm-security-hook.8.gz"
  "msvm-security /usr/share/doc/msvm-security/README.Debian"
  "msvm-security /usr/share/lintian/overrides/msvm-security"
  "libmsvm-security0 /usr/lib/$MA/libmsvm-security.so.0"
  "libmsvm-security-dev /usr/lib/$MA/libmsvm-security.so"
  "libmsvm-security-dev /usr/include/msvm-security/msvm-security.h"
  "libmsvm-security-dev /usr/include/msvm-security/msvm-error.h"
  "libmsvm-security-dev /usr/lib/$MA/pkgconfig/msvm-security.pc"
)
if [[ " ${PACKAGES[*]} " == *" gir1.2-msvmsecurity-1.0 "* ]]; then
  expected+=("gir1.2-msvmsecurity-1.0 /usr/lib/$MA/girepository-1.0/MsvmSecurity-1.0.typelib"
             "libmsvm-security-dev /usr/share/gir-1.0/MsvmSecurity-1.0.gir")
fi
for e in "${expected[@]}"; do
  set -- $e
  owner=$(in_root "$ROOT" dpkg-query -S "$2" 2>/dev/null | sed 's/:.*//' | head -n 1)
  [ -e "$ROOT$2" ] && [ "$owner" = "$1" ]
  tap_ok $? "$2 installed, from $1"
done
# The real library behind the SONAME link, and nothing else installed.
soname_target=$(readlink "$ROOT/usr/lib/$MA/libmsvm-security.so.0")
[ -f "$ROOT/usr/lib/$MA/$soname_target" ] && [ ! -L "$ROOT/usr/lib/$MA/$soname_target" ]
tap_ok $? "libmsvm-security.so.0 is a link to the library file ($soname_target)"
files=$(for p in "${PACKAGES[@]}"; do in_root "$ROOT" dpkg-query -L "$p"; done |
  while read -r f; do [ -d "$ROOT$f" ] && [ ! -L "$ROOT$f" ] || echo "$f"; done | sort)
want=$( { for e in "${expected[@]}"; do echo "${e#* }"; done
          echo "/usr/lib/$MA/$soname_target"
          for p in "${PACKAGES[@]}"; do
            echo "/usr/share/doc/$p/changelog.gz"; echo "/usr/share/doc/$p/copyright"
          done; } | sort)
tap_is "$files" "$want" "the packages install exactly the expected files"

st=$(stat -c '%F %U:%G %a' "$ROOT$HOOKFILE")
tap_is "$st" "regular file root:root 755" "the hook is a regular root-owned 0755 file, not a link"
conf=$(in_root "$ROOT" dpkg-query -W -f='${Conffiles}' msvm-security | awk '{print $1}' | tr -d '\n')
tap_is "$conf" "$HOOKFILE" "the hook is msvm-security's one conffile"
[ "$(stat -c %Y "$ROOT$HOOKFILE")" -ge "$before_install" ]
tap_ok $? "the hook is stamped with its install time (newer than a daemon started before)"
cmp -s "$ROOT$HOOKFILE" "$WORK/x$HOOKFILE"
tap_ok $? "the installed hook is the packaged one"
unresolved=$(for f in /usr/bin/msvm-security "$HOOKFILE" \
    "/usr/lib/$MA/msvm-security/msvm-security-hook-module.so" \
    /usr/libexec/msvm-security/msvm-security-tpm-validate "/usr/lib/$MA/libmsvm-security.so.0"; do
  in_root "$ROOT" ldd "$f" 2>&1 | grep 'not found' | sed "s|^|$f: |"
done)
tap_is "$unresolved" "" "every shipped program and library resolves its libraries from Depends"
v=$(in_root "$ROOT" msvm-security --version 2>&1)
tap_is "$v" "msvm-security $VERSION" "the installed CLI runs (msvm-security --version)"
pc=$(in_root "$ROOT" pkg-config --cflags --libs msvm-security 2>&1)
case "$pc" in
  *-I/usr/include/msvm-security*-lmsvm-security*) tap_ok 0 "pkg-config finds msvm-security ($pc)" ;;
  *) tap_ok 1 "pkg-config finds msvm-security ($pc)" ;;
esac

# --- 6. the installed hook, as libvirt runs it ------------------------------
HOOK=$HOOKFILE
HOOK_WRAP=(chroot "$ROOT")
HOOK_USER=root HOOK_HOME=/root
UUID=$(hook_uuid)
hook_domain_xml "$WORK/plain.xml" plain "$UUID" "$(hook_uuid)" no
for op in "${HOOK_OPERATIONS[@]}"; do
  set -- $op
  hook_run -- plain "$1" "$2" "$WORK/plain.xml"
  hook_quiet "installed hook, unmanaged guest, $1 $2 -: exit 0, no output"
done
hook_domain_xml "$WORK/managed.xml" managed "$UUID" "$(hook_uuid)" yes
hook_run -- managed prepare begin "$WORK/managed.xml"
hook_quiet "installed hook, managed guest without a store entry, prepare begin: its module loads, exit 0, no output"
hook_run -- managed migrate begin "$WORK/managed.xml"
hook_refused "installed hook, managed guest without a store entry: incoming migration refused by the module" \
  "no entry for it"
[ ! -e "$ROOT/var/lib/msvm-security" ]
tap_ok $? "the hook created no store"

# --- 7. remove, then purge ----------------------------------------------------
in_root "$ROOT" apt-get remove -y -q msvm-security >"$OUT/remove.log" 2>"$OUT/remove.err"
tap_ok $? "apt-get remove msvm-security"
[ -f "$ROOT$HOOKFILE" ] && [ ! -e "$ROOT/usr/lib/$MA/msvm-security/msvm-security-hook-module.so" ]
tap_ok $? "removed (not purged): the hook stays (a conffile), its module is gone"
grep -h '^msvm-security: ' "$OUT/remove.err" "$OUT/remove.log" | grep -q 'purge'
tap_ok $? "the removal says the hook stays until purge"
hook_run -- plain prepare begin "$WORK/plain.xml"
hook_quiet "removed: the hook still lets an unmanaged guest through silently"
hook_run -- managed prepare begin "$WORK/managed.xml"
hook_refused "removed: the hook refuses to prepare a managed guest" "reinstall msvm-security"
# What dpkg leaves beside a conffile changed on both sides goes with it.
cp "$ROOT$HOOKFILE" "$ROOT$HOOKFILE.dpkg-old"
in_root "$ROOT" apt-get purge -y -q "${PACKAGES[@]}" >"$OUT/purge.log" 2>&1
tap_ok $? "apt-get purge ${PACKAGES[*]}"
left=$(ls -d "$ROOT$HOOKFILE"* 2>/dev/null)
tap_is "$left" "" "purged: the hook and its .dpkg-old are gone"
left=$(for f in $want; do [ -e "$ROOT$f" ] || [ -L "$ROOT$f" ] && echo "$f"; done)
tap_is "$left" "" "purged: none of the packages' files is left"
status=$(for p in "${PACKAGES[@]}"; do
  in_root "$ROOT" dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -v '^un' &&
    echo " $p"; done)
tap_is "$status" "" "purged: dpkg knows none of the packages any more"

tap_done
