#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 12 end to end: the provider from Python through the built typelib
# (python3-gi; GI_TYPELIB_PATH and LD_LIBRARY_PATH point into the build, as
# tests/meson.build sets them), against the real libvirt session daemon,
# QEMU (TCG) and swtpm, with the project's hook installed (the deferred
# call needs it):
#  - get_key_protector gives b'\x00\x00\x00\x04' (a GLib.Bytes) before any call;
#  - os-win's add_vtpm sequence answers return_value 0 three times, and
#    get_key_protector gives back the bytes set;
#  - a TPM 1.2 VM raises GLib.Error 32775 (domain msvm-security-error-quark),
#    an unknown VM 32777;
#  - the VM boots with its encrypted vTPM (flags 0x09) under the passphrase
#    DESIGN.md section 5 derives;
#  - on the running VM, a call with CallFlags.DEFER gives 4096 and a job that
#    get_job and list_jobs read; the next start (through the hook) finishes
#    it (JobState 7) and the NV data reads back under the new passphrase;
#  - examples/add_vtpm.py --help works, and the example itself gives a second
#    VM its encrypted vTPM, which boots, a third one shielded (secure boot,
#    SMM), and fails with 32777 and exit status 1 on an unknown VM.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_use_hook
e2e_init
GI_DIR=$MSVM_BUILDDIR/plugin
GI_TYPELIB_PATH=${GI_TYPELIB_PATH:-$GI_DIR}
LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-$GI_DIR}
[ -f "$GI_DIR/MsvmSecurity-1.0.typelib" ] ||
  e2e_skip_all "no MsvmSecurity-1.0.typelib in $GI_DIR (introspection disabled)"
e2e_as_user python3 -c 'import gi' 2>/dev/null ||
  e2e_skip_all "the daemon user's python3 has no python3-gi (./run installs it)"
CLIENT=$MSVM_SOURCEDIR/tests/e2e/gi-client.py
EXAMPLE=$MSVM_SOURCEDIR/examples/add_vtpm.py

# py VAR ARGS...: gi-client.py as the daemon user; VAR gets its JSON
py() {
  local var=$1; shift
  printf -v "$var" '%s' "$(e2e_as_user env GI_TYPELIB_PATH="$GI_TYPELIB_PATH" \
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH" python3 "$CLIENT" "$E2E_URI" "$@" 2>"$E2E_TMP/py-stderr")"
  [ -s "$E2E_TMP/py-stderr" ] && e2e_diag "$(cat "$E2E_TMP/py-stderr")"
  e2e_diag "gi-client $*: ${!var}"
}
jqr() { jq -r "$2" <<<"$1" 2>/dev/null; }   # jqr JSON FILTER

vm=e2e-py
e2e_define_vm "$vm" uefi notpm
uuid=$E2E_UUID
e2e_sample "$E2E_WORK/s.xml" wmi-cimdtd20.xml "$uuid"
e2e_random "$E2E_WORK/kp" 1000
e2e_random "$E2E_WORK/pol" 2000
e2e_random "$E2E_WORK/pol2" 300
sdir=$(e2e_state_dir "$uuid")

py R get-kp s.xml
e2e_is "$(jqr "$R" .hex)" 00000004 "get_key_protector before any call: the bytes 00 00 00 04"
e2e_is "$(jqr "$R" '"\(.type) \(.is_bytes)"')" "GLib.Bytes true" \
  "  ... a GLib.Bytes whose get_data() is bytes"

py R add-vtpm s.xml kp pol
e2e_is "$(jqr "$R" '[.SetKeyProtector, .SetSecurityPolicy, .ModifySecuritySettings] |
                    map(.return_value) | join(" ")')" "0 0 0" \
  "add_vtpm: SetKeyProtector, SetSecurityPolicy, ModifySecuritySettings answer return_value 0"
e2e_is "$(jqr "$R" '.SetKeyProtector.job')" null "  ... with no job"
py R get-kp s.xml
e2e_is "$(jqr "$R" .hex)" "$(e2e_hex <"$E2E_WORK/kp")" "get_key_protector gives back the bytes set"

# --- refusals: GLib.Error with the Hyper-V return value as its code
vm12=e2e-py-tpm12
e2e_define_vm "$vm12" bios notpm "<tpm model='tpm-tis'><backend type='emulator' version='1.2'/></tpm>"
e2e_sample "$E2E_WORK/s12.xml" wmi-cimdtd20.xml "$E2E_UUID"
py R set-key-protector s12.xml kp
e2e_is "$(jqr "$R" '"\(.error) \(.domain)"')" "32775 msvm-security-error-quark" \
  "a TPM 1.2 VM raises GLib.Error, code 32775, domain msvm-security-error-quark"
e2e_sample "$E2E_WORK/snone.xml" wmi-cimdtd20.xml "$(e2e_uuidgen)"
py R set-key-protector snone.xml kp
e2e_is "$(jqr "$R" .error)" 32777 "an unknown VM raises GLib.Error, code 32777"
py R get-kp snone.xml
e2e_is "$(jqr "$R" .error)" 32777 "  ... get_key_protector too"

# --- the VM boots with its encrypted vTPM
e2e_ok "the VM boots (QEMU/TCG + swtpm)" e2e_boot "$vm"
e2e_is "$(e2e_state_flags "$sdir/tpm2-00.permall")" 0x09 "  ... its vTPM state is AES-256 encrypted"
e2e_ok "  ... under the passphrase derived from the bytes set (DESIGN.md 5)" \
  e2e_vm_passphrase "$E2E_TMP/P1" "$uuid" "$E2E_WORK/kp" "$E2E_WORK/pol"
head -c 20 /dev/urandom | e2e_hex >"$E2E_TMP/data"
e2e_ok "  ... which opens it: NV data written into the stopped VM's vTPM" \
  e2e_tpm_nv_write "$sdir" "$E2E_TMP/P1" "$E2E_TMP/data"

# --- a deferred call on the running VM
e2e_ok "the VM is started" e2e_virsh start "$vm"
py R set-security-policy s.xml pol2 --defer
e2e_is "$(jqr "$R" .return_value)" 4096 "set_security_policy with CallFlags.DEFER on the running VM: 4096"
ref=$(jqr "$R" .job)
e2e_ok "  ... and a job reference" e2e_grep_q -E '^Msvm_ConcreteJob\.InstanceID="[0-9a-f-]{36}"$' <<<"$ref"
py J get-job "$ref"
e2e_is "$(jqr "$J" '"\(.reference) \(.method) \(.vm_uuid)"')" "$ref SetSecurityPolicy $uuid" \
  "get_job reads it: its reference, method and VM"
e2e_ok "  ... still open (JobState below 7)" test "$(jqr "$J" .job_state)" -lt 7
py J2 get-job "$(jqr "$J" .instance_id)"
e2e_is "$(jqr "$J2" .reference)" "$ref" "  ... by its InstanceID too"
py L list-jobs
e2e_is "$(jqr "$L" "[.jobs[] | select(.reference == $(jq -R . <<<"$ref"))] | length")" 1 \
  "list_jobs has it"
e2e_virsh destroy "$vm" >/dev/null 2>&1
e2e_ok "the next start (through the hook)" e2e_virsh start "$vm"
e2e_virsh destroy "$vm" >/dev/null 2>&1
py J get-job "$ref"
e2e_is "$(jqr "$J" '"\(.job_state) \(.error_code)"')" "7 0" "  ... finished the job: JobState 7, ErrorCode 0"
e2e_vm_passphrase "$E2E_TMP/P2" "$uuid" "$E2E_WORK/kp" "$E2E_WORK/pol2"
e2e_ok "the NV data reads back under the new passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P2" 40 "$E2E_TMP/data.2"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.2"
e2e_ok "  ... and the old one no longer opens it" e2e_tpm_refuses "$sdir" "$E2E_TMP/P1"

# --- the guardian calls (issue 10): a backup of the VM's protector for this
# guardian, imported back, and the refusals, through the typelib
py G guardians "$vm" "$uuid"
e2e_is "$(jqr "$G" '"\(.pem_type) \(.pem_certificates)"')" "str 2" \
  "guardian_show: one str with the two certificates"
e2e_is "$(jqr "$G" '.list[0] | "\(.name) \(.local)"')" "local true" \
  "guardian_list: a list of GuardianInfo, this guardian first ('local')"
e2e_ok "  ... with SHA-256 fingerprints" eval \
  'jqr "$G" ".list[0].signing, .list[0].encryption" | grep -Ecx "([0-9A-F]{2}:){31}[0-9A-F]{2}" | e2e_grep_q -x 2'
e2e_is "$(jqr "$G" '"\(.bundle_type) \(.export.return_value)"')" "GLib.Bytes 0" \
  "export_protector for SECURITY_GUARDIAN_LOCAL: (GLib.Bytes, CallResult 0)"
e2e_ok "  ... a bundle of some size" test "$(jqr "$G" .bundle_len)" -gt 300
e2e_is "$(jqr "$G" .import.return_value)" 0 "import_protector of it: CallResult 0 (the same entry)"
e2e_is "$(jqr "$G" .import_altered)" 32773 "  ... one bit changed: GLib.Error 32773"
e2e_is "$(jqr "$G" .trust_garbage)" 32773 "guardian_trust of bytes that are no certificate: 32773"
e2e_is "$(jqr "$G" .forget_unknown_guardian)" 32777 "guardian_forget of an unknown name: 32777"
e2e_is "$(jqr "$G" .export_unknown_guardian)" 32777 "export_protector for an unknown guardian: 32777"
e2e_is "$(jqr "$G" .forget_defined)" 32775 "forget of a VM still defined here: 32775"
py R get-kp s.xml
e2e_is "$(jqr "$R" .hex)" "$(e2e_hex <"$E2E_WORK/kp")" "  ... and the VM's key protector is as it was"

# --- the example, as docs/python.rst runs it
example() {
  e2e_as_user env GI_TYPELIB_PATH="$GI_TYPELIB_PATH" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" \
    python3 "$EXAMPLE" "$@"
}
e2e_ok "examples/add_vtpm.py --help" eval 'example --help | e2e_grep_q -- --key-protector'
vmx=e2e-py-example
e2e_define_vm "$vmx" uefi notpm
ux=$E2E_UUID
e2e_ok "examples/add_vtpm.py --connect URI --domain VM --key-protector F --policy F" \
  example --connect "$E2E_URI" --domain "$vmx" --key-protector kp --policy pol
e2e_ok "  ... the VM boots" e2e_boot "$vmx"
e2e_is "$(e2e_state_flags "$(e2e_state_dir "$ux")/tpm2-00.permall")" 0x09 \
  "  ... with an AES-256 encrypted vTPM"
e2e_ok "  ... under the passphrase of the bytes given" eval \
  'e2e_vm_passphrase "$E2E_TMP/PX" "$ux" "$E2E_WORK/kp" "$E2E_WORK/pol" &&
   e2e_tpm_opens "$(e2e_state_dir "$ux")" "$E2E_TMP/PX"'
vms=e2e-py-shielded
e2e_define_vm "$vms" uefi notpm
e2e_ok "examples/add_vtpm.py --shielded on a UEFI VM" \
  example --connect "$E2E_URI" --domain "$vms" --key-protector kp --policy pol --shielded
e2e_virsh dumpxml --inactive "$vms" >"$E2E_TMP/shielded.xml"
e2e_ok "  ... secure boot and SMM in the definition" eval \
  'grep -Eq -e "secure='"'"'yes'"'"'" -e "name='"'"'secure-boot'"'"'" "$E2E_TMP/shielded.xml" &&
   grep -q "<smm state='"'"'on'"'"'" "$E2E_TMP/shielded.xml"'
e2e_ok "  ... ShieldingRequested TRUE in the applied settings" eval \
  'e2e_cli get-security-settings --domain "$vms" --format mof | grep -iq "ShieldingRequested *= *TRUE"'
e2e_ok "  ... it boots shielded" e2e_boot "$vms"
example --connect "$E2E_URI" --domain e2e-py-nosuchvm --key-protector kp --policy pol \
  >"$E2E_TMP/ex.out" 2>&1
e2e_is "$?" 1 "examples/add_vtpm.py on an unknown VM: exit status 1"
e2e_ok "  ... printing ReturnValue: 32777" grep -q 'ReturnValue: 32777' "$E2E_TMP/ex.out"

e2e_done
