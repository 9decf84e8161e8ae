#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 9: one atomic writer, and directories that survive a crash, seen
# from the system calls (strace):
#  - a file nothing locks (translate's --stash; get-key-protector --output
#    and the hook's incoming marker use the same call) is written to a
#    unique temporary file beside it (O_EXCL, O_NOFOLLOW, mode 0600),
#    fsync'ed, renamed onto the target, and the directory is fsync'ed after
#    the rename (the --output writer used to skip that last step);
#  - every directory a new store creates (the store root and the VM's
#    directory) is fsync'ed into its parent after the mkdir.
# TAP on stdout.

. "$(dirname "$0")/lib-swtpm.sh"

CLI=$MSVM_BUILDDIR/hooks/msvm-security
TOOL=$MSVM_BUILDDIR/tests/hook-store-tool
[ -x "$CLI" ] && [ -x "$TOOL" ] || bail "not built (MSVM_BUILDDIR=${MSVM_BUILDDIR:-unset})"
if ! command -v strace >/dev/null || ! strace -qq -o /dev/null true 2>/dev/null; then
  echo "1..0 # SKIP strace cannot trace here"
  exit 0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msvm-durable.XXXXXX") || bail "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
SAMPLES=${MSVM_SHARED_SAMPLES:-$MSVM_SOURCEDIR/../shared/samples}
trace() { strace -f -qq -o "$WORK/trace" -e trace=openat,fsync,rename,renameat,renameat2,mkdir,mkdirat "$@"; }

# ordered_after TRACE: "ok" when, after the rename onto TARGET, the directory
# DIR was opened (O_DIRECTORY) and that descriptor fsync'ed; else what is missing
dir_synced_after_rename() {   # TRACE TARGET DIR
  awk -v target="\"$2\"" -v dir="\"$3\"" '
    /rename/ && index($0, target ")") { renamed = 1; next }
    renamed && /openat\(/ && /O_DIRECTORY/ && index($0, dir ",") {
      n = split($0, a, "= "); fd = a[n] + 0; opened = 1; next }
    opened && $0 ~ ("fsync\\(" fd "\\)") && / = 0$/ { print "ok"; exit }
    END { if (!renamed) print "no rename onto " target; else if (!opened) print "the directory was not opened after the rename" }
  ' "$1"
}

# --- 1. the stash of translate (nothing locks it)
stash=$WORK/stash
trace "$CLI" --json translate -s "$SAMPLES/shielded.mof" -x "$SAMPLES/domain-q35-uefi.xml" \
  --secret 5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b --stash "$stash" >"$WORK/out.xml" 2>"$WORK/err"
tap_ok $? "translate --stash of a shielded VM succeeds"
tap_ok "$([ -s "$stash" ] && echo 0 || echo 1)" "  ... the stash is written"
tap_is "$(stat -c %a "$stash" 2>/dev/null)" 600 "  ... mode 0600"
tmpline=$(grep -E "openat\(AT_FDCWD, \"$stash\.tmp-[A-Za-z0-9]{6}\"" "$WORK/trace" | head -n1)
tap_ok "$([ -n "$tmpline" ] && echo 0 || echo 1)" "  ... through a unique temporary file beside it"
case "$tmpline" in *O_EXCL*O_NOFOLLOW*0600*|*O_NOFOLLOW*O_EXCL*0600*) r=0 ;; *) r=1 ;; esac
tap_ok $r "  ... created O_EXCL, O_NOFOLLOW, mode 0600 ($tmpline)"
tmp=$(sed -n 's/.*"\([^"]*\.tmp-[A-Za-z0-9]\{6\}\)".*/\1/p' <<<"$tmpline")
tap_is "$(grep -c "rename(\"$tmp\", \"$stash\")" "$WORK/trace")" 1 "  ... renamed onto the stash"
tap_is "$(dir_synced_after_rename "$WORK/trace" "$stash" "$WORK")" ok \
  "  ... and the directory fsync'ed after the rename"
tap_is "$(ls "$WORK" | grep -c '\.tmp')" 0 "  ... no temporary file left"

# --- 2. a new store: its directories are fsync'ed into their parents
root=$WORK/a/b/store-root
uuid=5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b
trace "$TOOL" hold-lock "$root" "$uuid" 0 >/dev/null 2>"$WORK/err"
tap_ok $? "a store is created (its lock taken) under a root that does not exist yet"
for d in "$WORK/a" "$WORK/a/b" "$root" "$root/$uuid"; do
  parent=$(dirname "$d")
  r=$(awk -v made="\"$d\"" -v parent="\"$parent\"" '
    /mkdir/ && index($0, made ",") && / = 0$/ { made_it = 1; next }
    made_it && /openat\(/ && /O_DIRECTORY/ && index($0, parent ",") {
      n = split($0, a, "= "); fd = a[n] + 0; opened = 1; next }
    opened && $0 ~ ("fsync\\(" fd "\\)") && / = 0$/ { print "ok"; exit }
    END { if (!made_it) print "not created" }' "$WORK/trace")
  tap_is "$r" ok "  ... ${d#"$WORK"/} is fsync'ed into its parent after its mkdir"
done

tap_done
