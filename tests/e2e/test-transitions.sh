#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Transitions of a VM's security settings end to end (DESIGN.md sections 4-6):
#  - a VM with a plaintext vTPM (and data in it) gets a protector and
#    encryption: the state is converted to AES-256 in place, the data kept,
#    the VM boots;
#  - SetKeyProtector with 00 00 00 04 clears the key-protector half while the
#    policy half is set: GetKeyProtector says 00 00 00 04, the state is re-keyed
#    to the policy-only passphrase, the data kept; with no policy half it is
#    refused with a documented code and nothing changes;
#  - TpmEnabled FALSE removes the <tpm> device but keeps the state, the VM
#    boots without it; TRUE brings the same TPM back, data intact;
#  - shielding removes the VNC display (with its password) and the pty
#    console, adds secure boot and SMM; the password is nowhere in the
#    definition read with --security-info; unshielding restores the devices
#    exactly and the VM boots.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings get-key-protector

ok_call() { e2e_call R "$@"; e2e_method_ok R; }
get_kp() {
  e2e_cli get-key-protector --settings "$1" >"$2" 2>"$E2E_TMP/kp-report" &&
    grep -q '^ReturnValue: 0 ' "$E2E_TMP/kp-report"
}
printf '\0\0\0\4' >"$E2E_WORK/none"
e2e_give "$E2E_WORK/none"

# --- plaintext -> encrypted
vm=e2e-tr-plain
e2e_define_vm "$vm" uefi tpm
u=$E2E_UUID
sdir=$(e2e_state_dir "$u")
e2e_ok "a VM with a plaintext vTPM boots (libvirt creates the state)" e2e_boot "$vm"
e2e_is "$(e2e_state_flags "$sdir/tpm2-00.permall")" 0x00 "  ... the state is plaintext"
head -c 16 /dev/urandom | e2e_hex >"$E2E_TMP/data"
e2e_ok "  ... NV data written into it" e2e_tpm_nv_write "$sdir" "" "$E2E_TMP/data"
e2e_sample "$E2E_WORK/p.xml" wmi-cimdtd20.xml "$u"
e2e_random "$E2E_WORK/kp" 40
e2e_random "$E2E_WORK/pol" 80
e2e_ok "the os-win sequence on it (0 or 4096 -> 7 each)" eval \
  'ok_call set-key-protector --settings p.xml --key-protector kp &&
   ok_call set-security-policy --settings p.xml --policy pol &&
   ok_call modify-security-settings --settings p.xml'
e2e_is "$(e2e_state_flags "$sdir/tpm2-00.permall")" 0x09 "  ... the state is now AES-256 encrypted"
e2e_vm_passphrase "$E2E_TMP/P" "$u" "$E2E_WORK/kp" "$E2E_WORK/pol"
e2e_ok "  ... the NV data reads back under the derived passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P" 32 "$E2E_TMP/data.1"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.1"
e2e_ok "  ... the VM boots encrypted" e2e_boot "$vm"

# --- 00 00 00 04 clears the key-protector half
e2e_ok "SetKeyProtector 00 00 00 04 with the policy half set: 0 or 4096 -> 7" \
  ok_call set-key-protector --settings p.xml --key-protector none
e2e_ok "  ... GetKeyProtector says 00 00 00 04" get_kp p.xml "$E2E_TMP/kp.now"
e2e_ok "  ... byte for byte" cmp "$E2E_WORK/none" "$E2E_TMP/kp.now"
e2e_vm_passphrase "$E2E_TMP/Ppol" "$u" "" "$E2E_WORK/pol"
e2e_ok "  ... the state opens under the policy-only passphrase, data intact" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/Ppol" 32 "$E2E_TMP/data.2"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.2"
e2e_ok "  ... the previous passphrase is refused" e2e_tpm_refuses "$sdir" "$E2E_TMP/P"
e2e_ok "  ... the VM boots" e2e_boot "$vm"

vm2=e2e-tr-kponly
e2e_define_vm "$vm2" uefi notpm
u2=$E2E_UUID
e2e_sample "$E2E_WORK/k.xml" wmi-cimdtd20.xml "$u2"
e2e_ok "setup: a VM protected by a key protector only" eval \
  'ok_call set-key-protector --settings k.xml --key-protector kp &&
   ok_call modify-security-settings --settings k.xml'
e2e_snapshot "$vm2" "$u2" "$E2E_TMP/before"
e2e_call R set-key-protector --settings k.xml --key-protector none
e2e_ok "clearing its only half (00 00 00 04, no policy) is refused with a documented code (${R_RV:-?})" \
  eval '[ "$R_EXIT" = 1 ] && [ "$R_RV" -ge 32768 ] && [ "$R_RV" -le 32778 ]'
e2e_snapshot "$vm2" "$u2" "$E2E_TMP/after"
e2e_ok "  ... and nothing changed" e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"

# --- TpmEnabled FALSE, then TRUE
e2e_sample "$E2E_WORK/off.xml" wmi-cimdtd20.xml "$u" TpmEnabled=FALSE EncryptStateAndVmMigrationTraffic=FALSE
e2e_ok "TpmEnabled FALSE: 0 or 4096 -> 7" ok_call modify-security-settings --settings off.xml
e2e_not "  ... the definition has no <tpm>" eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q '<tpm '"
e2e_ok "  ... the state is kept on disk" test -f "$sdir/tpm2-00.permall"
e2e_ok "  ... the VM boots without a TPM" e2e_boot "$vm"
e2e_ok "TpmEnabled TRUE again: 0 or 4096 -> 7" ok_call modify-security-settings --settings p.xml
e2e_ok "  ... the <tpm> is back with <encryption>" test -n "$(e2e_tpm_secret "$vm")"
e2e_ok "  ... the VM boots with it" e2e_boot "$vm"
e2e_ok "  ... the same TPM: the NV data reads back" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/Ppol" 32 "$E2E_TMP/data.3"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.3"

# --- shielding on and off
vm3=e2e-tr-shield
secret_vnc=$(printf "v%07d" $((RANDOM * 32 + RANDOM % 32)))   # VNC allows 8 characters
e2e_define_vm "$vm3" uefi notpm \
  "<serial type='pty'/><console type='pty'/><graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='$secret_vnc'/>"
u3=$E2E_UUID
devs() {              # the host-side interactive devices, as libvirt keeps them
  e2e_virsh dumpxml --inactive --security-info "$vm3" |
    sed -n -e '/<serial /,/<\/serial>/p' -e '/<console /,/<\/console>/p' -e '/<graphics /,/<\/graphics>/p' \
      -e '/<graphics .*\/>/p'
}
devs >"$E2E_TMP/devs.before"
e2e_ok "setup: the VM has a VNC display with a password and a pty console" \
  grep -q "passwd='$secret_vnc'" "$E2E_TMP/devs.before"
e2e_sample "$E2E_WORK/sh.xml" wmi-cimdtd20.xml "$u3" ShieldingRequested=TRUE
e2e_ok "shielding (the os-win sequence with ShieldingRequested TRUE)" eval \
  'ok_call set-key-protector --settings sh.xml --key-protector kp &&
   ok_call set-security-policy --settings sh.xml --policy pol &&
   ok_call modify-security-settings --settings sh.xml'
e2e_virsh dumpxml --inactive --security-info "$vm3" >"$E2E_TMP/shielded.xml"
e2e_not "  ... no <graphics> left" grep -q '<graphics ' "$E2E_TMP/shielded.xml"
e2e_not "  ... no pty serial or console left" grep -q "type='pty'" "$E2E_TMP/shielded.xml"
e2e_not "  ... the VNC password is nowhere in the definition (--security-info)" \
  grep -q "$secret_vnc" "$E2E_TMP/shielded.xml"
e2e_ok "  ... secure boot and SMM" eval "grep -q \"<feature enabled='yes' name='secure-boot'/>\" $E2E_TMP/shielded.xml && grep -q \"<smm state='on'\" $E2E_TMP/shielded.xml"
e2e_ok "  ... the shielded VM boots" e2e_boot "$vm3"
e2e_sample "$E2E_WORK/unsh.xml" wmi-cimdtd20.xml "$u3" ShieldingRequested=FALSE
e2e_ok "unshielding: 0 or 4096 -> 7" ok_call modify-security-settings --settings unsh.xml
devs >"$E2E_TMP/devs.after"
e2e_ok "  ... the display, its password and the consoles are back as they were" \
  diff -u "$E2E_TMP/devs.before" "$E2E_TMP/devs.after"
e2e_virsh dumpxml --inactive "$vm3" >"$E2E_TMP/unshielded.xml"
e2e_not "  ... the secure boot shielding added is gone" \
  grep -q "<feature enabled='yes' name='secure-boot'/>" "$E2E_TMP/unshielded.xml"
if e2e_boot "$vm3" >"$E2E_TMP/boot.log" 2>&1; then
  e2e_tap 0 "  ... the unshielded VM boots"
else
  # the varstore was made from the secure-boot template: the message says so
  e2e_ok "  ... the unshielded VM boots (start --reset-nvram)" \
    eval "e2e_virsh start $vm3 --reset-nvram && e2e_virsh destroy $vm3"
fi

e2e_done
