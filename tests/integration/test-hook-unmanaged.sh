#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The built hook, run exactly as libvirt runs it, for guests it must leave
# alone and for input it must survive: every operation for an unmanaged guest
# (exit 0, no output, no file touched), malformed and oversized standard
# input, the namespace outside the metadata, managed guests without a store
# entry, and XML pointing at paths outside the store (a crafted UUID, a TPM
# source path): nothing outside the VM's own store entry is ever touched.
# TAP on stdout.

. "$(dirname "$0")/lib-swtpm.sh"
. "$(dirname "$0")/lib-hook.sh"
hook_ns_enter "$@"

[ -x "$HOOK" ] || bail "the hook is not built (MSVM_BUILDDIR=${MSVM_BUILDDIR:-unset})"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msvm-hook-it.XXXXXX") || bail "mktemp failed"
CREATED=()
cleanup() {
  local d
  for d in "${CREATED[@]}"; do rm -rf "$d"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
hook_paths



# --- the first stage is linked against libc alone ---------------------------
# (Sanitizer runtimes aside, in -Db_sanitize builds.)
needed=$(readelf -d "$HOOK" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
  grep -v '^lib\(a\|ub\|l\|t\)san\.so' | tr '\n' ' ')
tap_is "$needed" "libc.so.6 " "the hook executable needs libc alone (got: $needed)"

module_needed=$(readelf -d "$MSVM_BUILDDIR/hooks/msvm-security-hook-module.so" |
  sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
case "$module_needed" in
  *libvirt*) tap_ok 1 "the second stage does not link libvirt (needs: $module_needed)" ;;
  *) tap_ok 0 "the second stage does not link libvirt (needs: $module_needed)" ;;
esac

# --- an unmanaged guest, with a store entry and a state of its own ---------
UUID=$(hook_uuid)
mkdir -p "$STORE_ROOT/$UUID" "$SWTPM_ROOT/$UUID/tpm2"
CREATED+=("$STORE_ROOT/$UUID" "$SWTPM_ROOT/$UUID")
echo "not a store" >"$STORE_ROOT/$UUID/store"
echo "not a state" >"$SWTPM_ROOT/$UUID/tpm2/tpm2-00.permall"
hook_domain_xml "$WORK/plain.xml" plain "$UUID" "$(hook_uuid)" no
before=$(hook_listing)
for op in "${HOOK_OPERATIONS[@]}"; do
  set -- $op
  hook_run -- plain "$1" "$2" "$WORK/plain.xml"
  hook_quiet "unmanaged guest, $1 $2: exit 0, no output"
done
tap_is "$(hook_listing)" "$before" "unmanaged guest: no file touched by any operation"
# Traced: after the dynamic loader's libc, nothing but standard input is read.
if hook_have_strace; then
  HOOK_WRAP=(strace -qq -e trace=%file,%desc -o "$WORK/strace.log")
  hook_run -- plain prepare begin "$WORK/plain.xml"
  HOOK_WRAP=()
  touched=$(grep -E '(open|openat|stat|newfstatat|access|mkdir|unlink|rename|creat)\(' \
      "$WORK/strace.log" | grep -v -e '/etc/ld.so.preload' -e '/etc/ld.so.cache' \
      -e 'libc.so.6' -e 'newfstatat([0-9]*, ""' -e '^execve')
  tap_is "$touched" "" "unmanaged guest (traced): no file opened or looked at, only standard input read"
else
  tap_skip "strace is not installed or cannot trace here: no syscall trace of the unmanaged path"
fi

# --- malformed or odd input of a guest that is not managed ------------------
head -c 65536 /dev/urandom | tr -d '\0' >"$WORK/garbage"
: >"$WORK/empty"
printf '<domain><name>x</name><metadata><other xmlns="urn:x-msvm-security:domain:' >"$WORK/truncated-other"
for f in garbage empty truncated-other; do
  for op in "prepare begin" "started begin" "migrate begin"; do
    set -- $op
    hook_run -- odd "$1" "$2" "$WORK/$f"
    hook_quiet "input '$f', $1 $2: exit 0, no output"
  done
done

# The namespace string in a description is not the metadata element.
hook_domain_xml "$WORK/desc.xml" desc "$UUID" "$(hook_uuid)" no \
  "    <!-- $HOOK_NS --><description>$HOOK_NS</description>"
for op in "prepare begin" "migrate begin" "started begin"; do
  set -- $op
  hook_run -- desc "$1" "$2" "$WORK/desc.xml"
  hook_quiet "namespace outside <metadata>, $1 $2: exit 0, no output"
done

# More than the hook keeps in memory (16 MiB): still read and searched.
{
  hook_domain_xml /dev/stdout big "$UUID" - no | head -n 3
  head -c $((20 * 1024 * 1024)) /dev/zero | tr '\0' ' '
  echo "</domain>"
} >"$WORK/big.xml"
hook_run -- big prepare begin "$WORK/big.xml"
hook_quiet "unmanaged 20 MiB XML: exit 0, no output"
{ cat "$WORK/big.xml"; echo "<!-- $HOOK_NS -->"; } >"$WORK/big-managed.xml"
hook_run -- big prepare begin "$WORK/big-managed.xml"
hook_refused "20 MiB XML with the namespace at its end: prepare refused" "larger than"
# The namespace across the point where the hook stops keeping the input.
for off in 1 10 27; do
  { head -c $((16 * 1024 * 1024 - off)) /dev/zero | tr '\0' ' '; printf '%s' "$HOOK_NS"
    head -c 1000000 /dev/zero | tr '\0' ' '; } >"$WORK/straddle.xml"
  hook_run -- big prepare begin "$WORK/straddle.xml"
  hook_refused "namespace straddling the 16 MiB mark (-$off): still found" "larger than"
done
rm -f "$WORK/straddle.xml"
hook_run -- big started begin "$WORK/big-managed.xml"
tap_is "$HOOK_RC" 0 "20 MiB XML with the namespace: started still exits 0"
tap_is "$(hook_listing)" "$before" "odd inputs: no file touched"

# --- managed guests whose XML is malformed or points elsewhere -------------
printf '<domain><name>m</name><uuid>%s</uuid><metadata><msvm:security xmlns:msvm="%s">' \
  "$UUID" "$HOOK_NS" >"$WORK/managed-truncated.xml"
hook_run -- m prepare begin "$WORK/managed-truncated.xml"
hook_refused "managed, not well-formed: prepare refused with one line" "not a domain definition"
hook_run -- m migrate begin "$WORK/managed-truncated.xml"
hook_refused "managed, not well-formed: migrate refused with one line" "not a domain definition"
for op in "started begin" "stopped end" "release end" "reconnect begin"; do
  set -- $op
  hook_run -- m "$1" "$2" "$WORK/managed-truncated.xml"
  hook_quiet "managed, not well-formed, $1 $2: exit 0, no output"
done
printf '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name><uuid>%s</uuid><metadata><msvm:security xmlns:msvm="%s"/></metadata></domain>' \
  "$UUID" "$HOOK_NS" >"$WORK/entity.xml"
hook_run -- e prepare begin "$WORK/entity.xml"
if [ "$HOOK_RC" -ne 0 ] && ! grep -q "root:" "$HOOK_ERR" "$HOOK_OUT"; then
  tap_ok 0 "managed XML with an external entity: refused, the entity is not expanded"
else
  tap_ok 1 "managed XML with an external entity: refused, the entity is not expanded"
  diag "exit $HOOK_RC: $(cat "$HOOK_ERR")"
fi

# A crafted UUID must not become a path.
mkdir -p "$WORK/victim"
echo keep >"$WORK/victim/store"
before=$(hook_listing "$WORK/victim")
for bad in "../../etc" "../$(basename "$WORK")/victim" "$UUID/../x" ""; do
  hook_domain_xml "$WORK/crafted.xml" crafted "$bad" "$(hook_uuid)" yes
  hook_run -- crafted prepare begin "$WORK/crafted.xml"
  hook_refused "crafted UUID '$bad': prepare refused" "UUID"
  hook_run -- crafted started begin "$WORK/crafted.xml"
  tap_is "$HOOK_RC" 0 "crafted UUID '$bad': started exits 0"
done
tap_is "$(hook_listing "$WORK/victim")" "$before" \
  "crafted UUIDs: nothing touched in the store, the swtpm root or elsewhere"

# --- a managed guest without a store entry ----------------------------------
NEW=$(hook_uuid)
mkdir -p "$WORK/elsewhere/tpm2"
echo keep >"$WORK/elsewhere/tpm2/tpm2-00.permall"
hook_domain_xml "$WORK/nostore.xml" nostore "$NEW" "$(hook_uuid)" yes \
  "    <tpm model='tpm-tis'><backend type='emulator' version='2.0'><source type='dir' path='$WORK/elsewhere'/></backend></tpm>"
before=$(hook_listing "$WORK/elsewhere")
for op in "prepare begin" "start begin" "started begin" "stopped end" "release end" \
          "restore begin" "reconnect begin" "attach begin"; do
  set -- $op
  hook_run -- nostore "$1" "$2" "$WORK/nostore.xml"
  hook_quiet "managed guest without a store entry, $1 $2: exit 0, no output"
done
hook_run -- nostore migrate begin "$WORK/nostore.xml"
hook_refused "managed guest without a store entry: incoming migration refused" \
  "no entry for it"
tap_is "$(hook_listing "$WORK/elsewhere")" "$before" \
  "managed guest without a store entry: nothing created or touched (also not the TPM source path)"
[ -e "$STORE_ROOT/$NEW" ] || [ -e "$SWTPM_ROOT/$NEW" ]
tap_ok $((! $?)) "no store entry or state directory was created for it"

# A managed guest with too few arguments: a usage error, exit 2.
env -i PATH="$HOOK_PATH" LC_ALL=C "$HOOK" nostore prepare <"$WORK/nostore.xml" >/dev/null 2>&1
tap_is "$?" 2 "managed guest, missing arguments: exit 2"

tap_done
