#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 11, item 1: the production path, against the PRIVILEGED libvirt
# daemon (qemu:///system) in a private mount and network namespace
# (tests/e2e/lib-system.sh): libvirtd and virtlogd as root, QEMU as
# libvirt-qemu, swtpm as tss, the project's hook as root from the copy of
# /etc/libvirt/hooks/qemu.d, the store in /var/lib/msvm-security.
#
#  - the os-win sequence with shielding on a UEFI q35 VM; it boots
#    (start --reset-nvram, as the shielding message says) with secure boot
#    and an encrypted vTPM;
#  - NV data written with tpm2-tools survives a policy change and a
#    key-protector change; the old passphrases are refused; the state and its
#    directories keep their owner tss:tss and their modes;
#  - the store is /var/lib/msvm-security/<uuid>, 0700 directories and 0600
#    files, root's;
#  - --defer on a running VM: 4096 and a job, finished by the hook at the
#    next start; the data reads back under the new passphrase;
#  - RestoreLastKnownGoodKeyProtector after an unwanted change brings back the
#    generation of the last start, and the VM boots with its data;
#  - an unprivileged user on the read-only socket (and on the read-write one,
#    which the daemon refuses it) gets 32769 and nothing changes.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-system.sh"

e2e_system_init "$@"
e2e_need_cmds set-key-protector set-security-policy modify-security-settings \
  get-key-protector restore-last-known-good-key-protector job

e2e_is "$(e2e_virsh uri)" qemu:///system "the CLI and virsh talk to the privileged daemon"
e2e_ok "  ... a private one: it has no domain and no secret of the host's" \
  eval '[ -z "$(e2e_virsh list --all --name)" ] && [ -z "$(e2e_virsh secret-list)" ]'
e2e_ok "the hook is a regular file in the daemon's hooks/qemu.d" test -f "$HOOK_DST" -a -x "$HOOK_DST"

vm=e2e-system
e2e_define_vm "$vm" uefi notpm
uuid=$E2E_UUID
sdir=$(e2e_state_dir "$uuid")
S=$E2E_WORK/settings.xml
e2e_sample "$S" wmi-cimdtd20.xml "$uuid" ShieldingRequested=TRUE
kp1=$E2E_WORK/kp1 pol1=$E2E_WORK/pol1 kp2=$E2E_WORK/kp2 pol2=$E2E_WORK/pol2
pol3=$E2E_WORK/pol3 kpbad=$E2E_WORK/kpbad
e2e_random "$kp1" 512
e2e_random "$pol1" 1024
e2e_random "$kp2" 96
e2e_random "$pol2" 333
e2e_random "$pol3" 444
e2e_random "$kpbad" 50
store_key() { e2e_store_get "$uuid" store "$1"; }
job_state() {          # job_state ID -> JobState ErrorCode
  e2e_cli --json job show "$1" 2>/dev/null |
    jq -r '.ConcreteJob | "\(.JobState) \(.ErrorCode)"' 2>/dev/null
}
state_modes() {        # owner and modes of the state's directories and files
  e2e_system_modes "$E2E_SWTPM_DIR/$uuid" "$sdir" "$sdir"/*
}

# --- the os-win sequence with shielding ------------------------------------
e2e_call R set-key-protector --settings settings.xml --key-protector kp1
e2e_ok "SetKeyProtector: 0, or 4096 -> 7" e2e_method_ok R
e2e_call R set-security-policy --settings settings.xml --policy pol1
e2e_ok "SetSecurityPolicy: 0, or 4096 -> 7" e2e_method_ok R
e2e_call R modify-security-settings --settings settings.xml
e2e_ok "ModifySecuritySettings (TPM, encryption, ShieldingRequested TRUE): 0, or 4096 -> 7" \
  e2e_method_ok R
e2e_note "ModifySecuritySettings said: ${R_MSG:-(nothing)}"
secret1=$(e2e_tpm_secret "$vm")
e2e_ok "the definition names a private vtpm secret of the system daemon" e2e_secret_is_vtpm "$secret1"
e2e_ok "  ... and has secure boot with enrolled keys (shielding)" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q \"enrolled-keys\\|secure='yes'\""

swtpm_log() { tail -n 20 "/var/log/swtpm/libvirt/qemu/$vm-swtpm.log" 2>/dev/null; }
boot_reset() {         # the boot the shielding message asks for
  e2e_virsh start "$vm" --reset-nvram || { swtpm_log; return 1; }
  [ "$(e2e_domstate "$vm")" = running ] || { echo "not running"; return 1; }
  e2e_swtpm_running "$vm" || { echo "no swtpm for $vm"; return 1; }
  ps -o user=,args= -C swtpm | e2e_grep_q "^tss .*$uuid" || {
    echo "swtpm does not run as tss:"; ps -o user=,args= -C swtpm; return 1; }
  e2e_virsh destroy "$vm" >/dev/null
}
e2e_ok "the VM boots (start --reset-nvram; QEMU as libvirt-qemu, swtpm as tss)" boot_reset
e2e_is "$(e2e_state_flags "$sdir/tpm2-00.permall")" 0x09 "its vTPM state is AES-256 encrypted"
e2e_is "$(stat -c '%U:%G' "$sdir" "$sdir/tpm2-00.permall" | sort -u)" tss:tss \
  "the state and its directory belong to tss:tss"
state_modes >"$E2E_TMP/modes.0"
e2e_note "state: $(tr '\n' ';' <"$E2E_TMP/modes.0")"

# --- the store ----------------------------------------------------------------
store_modes() {
  local f rc=0
  [ "$(stat -c '%a %U' "$E2E_STORE")" = "700 root" ] || { stat -c '%n %a %U' "$E2E_STORE"; rc=1; }
  [ "$(stat -c '%a %U' "$E2E_STORE/$uuid")" = "700 root" ] || { stat -c '%n %a %U' "$E2E_STORE/$uuid"; rc=1; }
  [ -f "$E2E_STORE/$uuid/store" ] || { echo "no $E2E_STORE/$uuid/store"; rc=1; }
  while read -r f; do
    [ "$(stat -c '%a %U' "$f")" = "600 root" ] || { stat -c '%n %a %U' "$f"; rc=1; }
  done < <(find "$E2E_STORE/$uuid" -type f)
  return $rc
}
e2e_ok "the store is /var/lib/msvm-security/<uuid>: root's, 0700 directories, 0600 files" store_modes

# --- NV data across a policy change and a key-protector change -----------------
e2e_ok "the passphrase from the store's seed and the bytes set (DESIGN.md 5)" \
  e2e_vm_passphrase "$E2E_TMP/P1" "$uuid" "$kp1" "$pol1"
head -c 24 /dev/urandom | e2e_hex >"$E2E_TMP/data"
e2e_ok "NV data written into the stopped VM's vTPM (swtpm as tss, tpm2-tools)" \
  e2e_tpm_nv_write "$sdir" "$E2E_TMP/P1" "$E2E_TMP/data"
e2e_call R set-security-policy --settings settings.xml --policy pol2
e2e_ok "SetSecurityPolicy with a new policy: 0, or 4096 -> 7" e2e_method_ok R
e2e_call R set-key-protector --settings settings.xml --key-protector kp2
e2e_ok "SetKeyProtector with a new key protector: 0, or 4096 -> 7" e2e_method_ok R
secret3=$(e2e_tpm_secret "$vm")
e2e_ok "  ... the definition names a new secret" test -n "$secret3" -a "$secret3" != "$secret1"
e2e_vm_passphrase "$E2E_TMP/P2" "$uuid" "$kp2" "$pol2"
e2e_vm_passphrase "$E2E_TMP/P12" "$uuid" "$kp1" "$pol2"
e2e_ok "the NV data reads back under the new passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P2" 48 "$E2E_TMP/data.2"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.2"
e2e_ok "the first passphrase is refused" e2e_tpm_refuses "$sdir" "$E2E_TMP/P1"
e2e_ok "the intermediate one (new policy, old key protector) too" \
  e2e_tpm_refuses "$sdir" "$E2E_TMP/P12"
state_modes >"$E2E_TMP/modes.1"
e2e_ok "the re-keyed state keeps tss:tss and its modes" e2e_unchanged "$E2E_TMP/modes.0" "$E2E_TMP/modes.1"
e2e_ok "the VM boots after the changes" boot_reset

# --- --defer on the running VM, finished by the hook ---------------------------
e2e_ok "the VM runs" e2e_virsh start "$vm"
e2e_call R set-security-policy --settings settings.xml --policy pol3 --defer
e2e_ok "SetSecurityPolicy --defer on the running VM: 4096" e2e_rv_is R 4096
job=$(e2e_job_id "$R_JOB")
e2e_ok "  ... with a job reference" test -n "$job"
e2e_ok "  ... not finished while the VM runs" \
  eval '[ "$(job_state "$job" | cut -d" " -f1)" != 7 ]'
e2e_ok "the VM stops" e2e_virsh destroy "$vm"
e2e_ok "it starts again: the hook re-keys at prepare begin" e2e_virsh start "$vm"
e2e_is "$(job_state "$job")" "7 0" "  ... and the job is Completed"
e2e_is "$(store_key last-known-good-from-start)" true \
  "started begin recorded the generation as last known good"
lkg_secret=$(e2e_tpm_secret "$vm")
e2e_ok "the VM stops" e2e_virsh destroy "$vm"
e2e_vm_passphrase "$E2E_TMP/P3" "$uuid" "$kp2" "$pol3"
e2e_ok "the NV data reads back under the deferred policy's passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P3" 48 "$E2E_TMP/data.3"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.3"
e2e_ok "the previous passphrase is refused" e2e_tpm_refuses "$sdir" "$E2E_TMP/P2"
state_modes >"$E2E_TMP/modes.2"
e2e_ok "the hook's re-key (as root) kept tss:tss and the modes" \
  e2e_unchanged "$E2E_TMP/modes.0" "$E2E_TMP/modes.2"

# --- an unwanted change, then last known good ----------------------------------
e2e_call R set-key-protector --settings settings.xml --key-protector kpbad
e2e_ok "an unwanted SetKeyProtector: 0, or 4096 -> 7" e2e_method_ok R
e2e_call R restore-last-known-good-key-protector --settings settings.xml
e2e_ok "RestoreLastKnownGoodKeyProtector: 0, or 4096 -> 7" e2e_method_ok R
e2e_is "$(e2e_tpm_secret "$vm")" "$lkg_secret" "the definition names the last started generation's secret"
e2e_ok "the NV data reads back under its passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P3" 48 "$E2E_TMP/data.4"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.4"
e2e_ok "the VM boots under it" boot_reset
state_modes >"$E2E_TMP/modes.3"
e2e_ok "the state still has tss:tss and its modes" e2e_unchanged "$E2E_TMP/modes.0" "$E2E_TMP/modes.3"
e2e_ok "the store still has its modes" store_modes

# --- an unprivileged user -------------------------------------------------------
# (files it can read, in a directory it can enter)
ud=$E2E_TMP/nobody
mkdir -m 0755 "$ud" && cp "$S" "$pol1" "$ud/" && chmod 0644 "$ud"/*
as_nobody() {
  (cd "$ud" && exec setpriv --reuid=nobody --regid=nogroup --clear-groups \
     env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$ud" LC_ALL=C.UTF-8 "$@")
}
nobody_refused() {    # nobody_refused DESC CLI-ARGS...
  local desc=$1 out rc rv; shift
  e2e_snapshot "$vm" "$uuid" "$E2E_TMP/before"
  out=$(as_nobody "$E2E_CLI" --json -c qemu:///system "$@" 2>"$E2E_TMP/nobody.err")
  rc=$?
  rv=$(jq -r '.ReturnValue // empty' <<<"$out" 2>/dev/null)
  e2e_is "$rv" 32769 "$desc: ReturnValue 32769"
  e2e_is "$rc" 1 "  ... exit status 1"
  e2e_note "  ... said: $(jq -r '.Message // empty' <<<"$out" 2>/dev/null)"
  e2e_snapshot "$vm" "$uuid" "$E2E_TMP/after"
  e2e_ok "  ... and nothing changed" e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"
}
nobody_refused "an unprivileged user on the read-only socket (--readonly), SetSecurityPolicy" \
  --readonly set-security-policy --settings settings.xml --policy pol1
nobody_refused "an unprivileged user on the read-write socket, SetSecurityPolicy" \
  set-security-policy --settings settings.xml --policy pol1
e2e_ok "the VM still boots" boot_reset

e2e_done
