#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `meson install` (into a DESTDIR) puts the hook in libvirt's hook directory
# as the regular file 50-msvm-security, whatever the prefix, replacing a
# symlink that was there rather than writing through it, and the second
# stage under <libdir>/msvm-security; the installed hook loads the installed
# module.  TAP on stdout.

. "$(dirname "$0")/lib-swtpm.sh"

[ -n "${MSVM_BUILDDIR:-}" ] || bail "MSVM_BUILDDIR is not set"
command -v meson >/dev/null || { echo "1..0 # SKIP meson is not in PATH"; exit 0; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msvm-hook-install.XXXXXX") || bail "mktemp failed"
trap 'rm -rf "$WORK"' EXIT

hookdir=$(sed -n 's/^#define MSVM_HOOKDIR "\(.*\)"$/\1/p' "$MSVM_BUILDDIR/config.h")
prefix=$(meson introspect --buildoptions "$MSVM_BUILDDIR" |
  python3 -c 'import json,sys; print({o["name"]: o["value"] for o in json.load(sys.stdin)}["prefix"])')
dest=$WORK/dest
hook=$dest$hookdir/50-msvm-security

# A symlink where the hook goes: install must replace it, not write through it.
mkdir -p "$dest$hookdir"
echo "do not overwrite" >"$WORK/target"
ln -s "$WORK/target" "$hook"

meson install -C "$MSVM_BUILDDIR" --destdir "$dest" --no-rebuild --quiet >"$WORK/install.log" 2>&1
tap_ok $? "meson install --destdir succeeds"
[ -f "$hook" ] && [ ! -L "$hook" ]
tap_ok $? "the hook is the regular file $hookdir/50-msvm-security"
tap_is "$(stat -c %a "$hook" 2>/dev/null)" 755 "  ... mode 0755"
cmp -s "$hook" "$MSVM_BUILDDIR/hooks/msvm-security-hook"
tap_ok $? "  ... the built hook"
tap_is "$(cat "$WORK/target")" "do not overwrite" "the symlink's target was not written through"
case "$hookdir" in
  "$prefix"/*) tap_ok 1 "the hook directory does not follow the prefix ($hookdir under $prefix)" ;;
  *) tap_ok 0 "the hook directory ($hookdir) does not follow the prefix ($prefix)" ;;
esac
module=$(find "$dest$prefix" -name msvm-security-hook-module.so | head -n 1)
tap_ok $([ -n "$module" ]; echo $?) "the second stage is installed (${module#"$dest"})"
case "$module" in
  */msvm-security/msvm-security-hook-module.so) tap_ok 0 "  ... in <libdir>/msvm-security" ;;
  *) tap_ok 1 "  ... in <libdir>/msvm-security" ;;
esac
strings "$hook" | grep -qF "${module#"$dest"}"
tap_ok $? "the installed hook loads the module from its installed path"
tap_is "$(find "$dest" -name '*.tmp*' | wc -l)" 0 "no temporary file is left in the hook directory"

tap_done
