#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/demo.sh BUILD_DIR: the demonstration that `./run demo` runs.
#
# 1. Offline: translate the shared sample Msvm_SecuritySettingData instances
#    onto the sample domains, to show the mapping (and two refusals).
# 2. Live, in a private libvirt session daemon (the end-to-end harness,
#    tests/e2e/lib-e2e.sh: as root it runs as the unprivileged user msvm-e2e):
#    define a throwaway VM, run the call sequence of OpenStack's os-win
#    (SetKeyProtector, SetSecurityPolicy, ModifySecuritySettings with TPM and
#    encryption on), boot it under QEMU (TCG), show the vTPM state encrypted,
#    write NV data into the vTPM, change the policy (a re-key), boot again,
#    read the same data back; then clean everything up.
# Exits non-zero if any step fails.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: tests/demo.sh BUILD_DIR" >&2; exit 2; }
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "demo: no build directory $1" >&2; exit 2; }
CLI=$BUILD/hooks/msvm-security
[ -x "$CLI" ] || { echo "demo: $CLI is not built" >&2; exit 1; }
export MSVM_BUILDDIR=$BUILD MSVM_SOURCEDIR=$ROOT

if [ -d "$ROOT/../shared/samples" ]; then
  SAMPLES=$(cd "$ROOT/../shared/samples" && pwd)
else
  SAMPLES=$ROOT/tests/e2e/samples   # copies of the shared samples
fi

N=0
step() { N=$((N + 1)); printf '\n=== %d. %s\n' "$N" "$*"; }
say()  { printf '    %s\n' "$@"; }
fail() { printf '\ndemo: FAILED at step %d: %s\n' "$N" "$*" >&2; exit 1; }
show() { printf '$ %s\n' "$*"; }           # the command a user would type
indent() { sed 's/^/    /'; }

TMP=$(mktemp -d /tmp/msvm-demo.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
SECRET=11111111-2222-3333-4444-555555555555

# ------------------------------------------------------------------ offline

step "Offline translation: a client's minimal instance (TpmEnabled, EncryptStateAndVmMigrationTraffic) onto a Windows 11 style UEFI domain"
show "msvm-security translate --settings minimal.xml --domain-xml domain-q35-uefi.xml --secret $SECRET"
"$CLI" translate --settings "$SAMPLES/minimal.xml" --domain-xml "$SAMPLES/domain-q35-uefi.xml" \
  --secret "$SECRET" >"$TMP/minimal.out.xml" 2>"$TMP/report" || fail "$(cat "$TMP/report")"
indent <"$TMP/report"
say "what changed in the domain XML (diff -u before after):"
diff -u "$SAMPLES/domain-q35-uefi.xml" "$TMP/minimal.out.xml" | tail -n +3 | indent
grep -q "<encryption secret='$SECRET'/>" "$TMP/minimal.out.xml" || fail "no <encryption> in the result"

step "Offline translation: the shielded instance (MOF) onto the same domain"
show "msvm-security translate --settings shielded.mof --domain-xml domain-q35-uefi.xml --secret $SECRET --stash stash.xml"
"$CLI" translate --settings "$SAMPLES/shielded.mof" --domain-xml "$SAMPLES/domain-q35-uefi.xml" \
  --secret "$SECRET" --stash "$TMP/stash.xml" >"$TMP/shielded.out.xml" 2>"$TMP/report" ||
  fail "$(cat "$TMP/report")"
indent <"$TMP/report"
say "compared with the unshielded result: secure boot with enrolled keys, SMM, and the"
say "host-side console and VNC display (with its password) moved out of the XML:"
diff -u "$TMP/minimal.out.xml" "$TMP/shielded.out.xml" | tail -n +3 | indent
say "the stash (kept root-only in the store on a live host, here a file) has them back:"
indent <"$TMP/stash.xml"
if grep -q do-not-leak "$TMP/shielded.out.xml"; then fail "the VNC password is still in the XML"; fi

step "Offline translation: refusals answer with Hyper-V's return codes and print no XML"
show "msvm-security translate --settings shielded.mof --domain-xml domain-bios.xml --secret $SECRET"
"$CLI" translate --settings "$SAMPLES/shielded.mof" --domain-xml "$SAMPLES/domain-bios.xml" \
  --secret "$SECRET" >"$TMP/bios.out" 2>"$TMP/report"
rc=$?
indent <"$TMP/report"
[ $rc = 1 ] && grep -q '^ReturnValue: 32775 ' "$TMP/report" && [ ! -s "$TMP/bios.out" ] ||
  fail "expected ReturnValue 32775 for shielding a BIOS VM"
show "msvm-security translate --settings invalid-type.xml --domain-xml domain-q35-uefi.xml --secret $SECRET"
"$CLI" translate --settings "$SAMPLES/invalid-type.xml" --domain-xml "$SAMPLES/domain-q35-uefi.xml" \
  --secret "$SECRET" >"$TMP/bad.out" 2>"$TMP/report"
rc=$?
indent <"$TMP/report"
[ $rc = 1 ] && grep -q '^ReturnValue: 32776 ' "$TMP/report" ||
  fail "expected ReturnValue 32776 for TpmEnabled declared as a string"

# ------------------------------------------------------------------ live

# The harness prints TAP when used by tests; here a skip or bail is a failure.
. "$ROOT/tests/e2e/lib-e2e.sh"
e2e_skip_all() { fail "the live part cannot run: $*"; }
e2e_bail() { fail "$*"; }

step "A private libvirt session daemon (QEMU with TCG, swtpm)"
e2e_init
trap 'rc=$?; rm -rf "$TMP"; (exit $rc); e2e_cleanup' EXIT
say "daemon user: $E2E_USER$([ "$E2E_ROOT_MODE" = 1 ] && echo ' (created for this; root would reach the system daemon)')"
say "URI: $E2E_URI, runtime directory: $E2E_RT"
say "every command below runs as $E2E_USER in that session"
for c in set-key-protector set-security-policy modify-security-settings get-security-settings; do
  e2e_cli "$c" --help >/dev/null 2>&1 || fail "msvm-security has no command $c"
done

step "Define a throwaway VM: UEFI on q35, 128 MiB, no disk, no network, no TPM yet"
vm=msvm-demo
e2e_define_vm "$vm" uefi notpm || fail "virsh define"
uuid=$E2E_UUID
show "virsh define $vm.xml   # uuid $uuid"
e2e_virsh dumpxml --inactive "$vm" | sed -n '/<os/,/<\/os>/p' | indent

step "The os-win call sequence, each with the instance os-win serializes (WMI CIM-XML)"
e2e_sample "$E2E_WORK/settings.xml" wmi-cimdtd20.xml "$uuid" || fail "settings"
say "settings.xml: InstanceID Microsoft:${uuid^^}, TpmEnabled TRUE, EncryptStateAndVmMigrationTraffic TRUE"
printf 'demo key protector %s' "$uuid" >"$E2E_WORK/kp.bin"
printf 'demo security policy, version 1' >"$E2E_WORK/policy1.bin"
printf 'demo security policy, version 2' >"$E2E_WORK/policy2.bin"
e2e_give "$E2E_WORK/kp.bin" "$E2E_WORK/policy1.bin" "$E2E_WORK/policy2.bin"
call() {              # call ARGS...: show, run, show the report; 0 or 4096 -> 7
  show "msvm-security $*"
  e2e_cli "$@" >"$TMP/out" 2>&1
  local rc=$?
  indent <"$TMP/out"
  [ $rc = 0 ] || fail "msvm-security $1 exited $rc"
  local job
  job=$(sed -n 's/^Job: //p' "$TMP/out")
  if [ -n "$job" ]; then
    show "msvm-security job wait $(e2e_job_id "$job")"
    e2e_cli job wait "$(e2e_job_id "$job")" --timeout 120 2>&1 | indent
    [ "${PIPESTATUS[0]}" = 0 ] || fail "the job did not complete"
  fi
}
call get-key-protector --settings settings.xml --output kp.before
say "GetKeyProtector before any protector: $(od -An -t x1 "$E2E_WORK/kp.before")"
call set-key-protector --settings settings.xml --key-protector kp.bin
call set-security-policy --settings settings.xml --policy policy1.bin
call modify-security-settings --settings settings.xml
say "the definition now has a vTPM whose state is encrypted under a libvirt secret:"
e2e_virsh dumpxml --inactive "$vm" | sed -n '/<tpm/,/<\/tpm>/p' | indent
secret1=$(e2e_tpm_secret "$vm")
[ -n "$secret1" ] || fail "no <encryption secret=...> in the definition"
show "virsh secret-list"
e2e_virsh secret-list | indent
show "virsh secret-get-value $secret1"
if e2e_virsh secret-get-value "$secret1" >/dev/null 2>"$TMP/err"; then
  fail "the secret's value can be read back"
fi
indent <"$TMP/err"
say "(private: libvirt hands it only to swtpm; the project derives it, DESIGN.md section 5)"

step "Boot it under QEMU (TCG): libvirt starts swtpm with the passphrase, swtpm creates the vTPM"
show "virsh start $vm"
e2e_virsh start "$vm" | indent
[ "$(e2e_domstate "$vm")" = running ] || fail "the VM is not running"
e2e_swtpm_running "$vm" || fail "no swtpm for the VM"
accel=$(ps -u "$E2E_UID" -o args= | grep -F "guest=$vm," | grep -o -- '-accel [a-z]*' | head -n1)
say "state: $(e2e_domstate "$vm"); QEMU runs with ${accel:-(no -accel option)}; the vTPM's swtpm with:"
for f in "$E2E_RT"/libvirt/qemu/run/swtpm/*-"$vm"-swtpm.pid; do
  ps -o args= -p "$(cat "$f")" | tr ' ' '\n' |
    awk 'p { print "    swtpm " o " " $0; p = 0 } /^--(key|migration-key|tpmstate)$/ { o = $0; p = 1 }'
done
show "virsh destroy $vm"
e2e_virsh destroy "$vm" | indent

step "The vTPM state on disk is encrypted"
sdir=$(e2e_state_dir "$uuid")
show "ls -l ${sdir/#$E2E_HOME/\~}"
ls -l "$sdir" | tail -n +2 | indent
show "od -A d -t x1 -N 10 tpm2-00.permall   # header: version, min version, header size, flags, length"
od -A d -t x1 -N 10 "$sdir/tpm2-00.permall" | indent
flags=$(e2e_state_flags "$sdir/tpm2-00.permall")
say "flags $flags: 0x01 encrypted + 0x08 with a 256-bit key (AES-256-CBC, HMAC-SHA256)"
tags() {              # the records after the header: tag (2 bytes), length (4 bytes)
  local f=$1 off=10 size tag len
  size=$(stat -c %s "$f")
  while [ "$off" -lt "$size" ]; do
    tag=$(od -An -t u2 --endian=big -j "$off" -N 2 "$f" | tr -d ' ')
    len=$(od -An -t u4 --endian=big -j $((off + 2)) -N 4 "$f" | tr -d ' ')
    case "$tag" in 1) n="plain data" ;; 2) n="encrypted data" ;; 3) n="HMAC" ;;
                   6) n="IV" ;; *) n="tag $tag" ;; esac
    say "  record: tag $tag ($n), $len bytes"
    off=$((off + 6 + len))
  done
}
tags "$sdir/tpm2-00.permall"
[ "$flags" = 0x09 ] || fail "the state is not AES-256 encrypted (flags $flags)"

step "Write data into the stopped VM's vTPM (swtpm + tpm2-tools on its state, with the derived passphrase)"
e2e_vm_passphrase "$E2E_WORK/pass1" "$uuid" "$E2E_WORK/kp.bin" "$E2E_WORK/policy1.bin" ||
  fail "cannot derive the passphrase from the store"
printf 'hello from the msvm-security demo' >"$TMP/data"
e2e_give "$TMP/data"
say "HKDF-SHA256(seed from the store, key protector, policy; salt the VM's UUID)"
show "tpm2_nvdefine -C o -s $(stat -c %s "$TMP/data") -a 'ownerread|ownerwrite' $E2E_NV_INDEX; tpm2_nvwrite -C o -i data $E2E_NV_INDEX"
e2e_tpm_nv_write "$sdir" "$E2E_WORK/pass1" "$TMP/data" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "NV write"; }
say "NV index $E2E_NV_INDEX: \"$(cat "$TMP/data")\""

step "Change the security policy: a new key protector generation, the state re-keyed"
call set-security-policy --settings settings.xml --policy policy2.bin
secret2=$(e2e_tpm_secret "$vm")
say "the definition now names secret $secret2 (was $secret1)"
[ -n "$secret2" ] && [ "$secret2" != "$secret1" ] || fail "no new generation"
od -A d -t x1 -N 10 "$sdir/tpm2-00.permall" | indent

step "Boot again"
show "virsh start $vm"
e2e_virsh start "$vm" | indent
[ "$(e2e_domstate "$vm")" = running ] && e2e_swtpm_running "$vm" || fail "the VM did not start"
say "state: $(e2e_domstate "$vm"), swtpm running: libvirt's new secret opens the re-keyed state"
show "virsh destroy $vm"
e2e_virsh destroy "$vm" | indent

step "The TPM contents survived: the same NV data, under the new passphrase only"
e2e_vm_passphrase "$E2E_WORK/pass2" "$uuid" "$E2E_WORK/kp.bin" "$E2E_WORK/policy2.bin" || fail "passphrase"
show "tpm2_nvread -C o -s $(stat -c %s "$TMP/data") $E2E_NV_INDEX"
e2e_tpm_nv_read "$sdir" "$E2E_WORK/pass2" "$(stat -c %s "$TMP/data")" "$TMP/data.back" >"$TMP/out" 2>&1 ||
  { cat "$TMP/out"; fail "NV read under the new passphrase"; }
say "NV index $E2E_NV_INDEX: \"$(cat "$TMP/data.back")\""
cmp -s "$TMP/data" "$TMP/data.back" || fail "the data differs"
if e2e_tpm_refuses "$sdir" "$E2E_WORK/pass1" >"$TMP/out" 2>&1; then
  say "the old passphrase no longer opens the state: $(grep -m1 -i hmac "$E2E_WORK/swtpm.log")"
else
  cat "$TMP/out"; fail "the old passphrase still opens the state"
fi

step "What the VM's security settings are now (get-security-settings, MOF)"
show "msvm-security get-security-settings --domain $vm --format mof"
e2e_cli get-security-settings --domain "$vm" --format mof 2>"$TMP/report" | indent
[ "${PIPESTATUS[0]}" = 0 ] || fail "$(cat "$TMP/report")"

step "Clean up: the daemon, the VM, its secrets and store go away"
printf '\ndemo: all steps passed\n'
exit 0
