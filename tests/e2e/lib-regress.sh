# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# lib-regress.sh: small helpers shared by the issue 8 regression tests
# (tests/e2e/test-regress-*.sh), on top of lib-e2e.sh (source that first).

# rg_protected VM: a BIOS VM through e2e_protected_vm (the os-win sequence,
# one boot, NV data), with its inputs kept under per-VM names: settings
# $E2E_WORK/s-VM.xml, key protector kp-VM, policy pol-VM, passphrase
# $E2E_TMP/P-VM, NV data $E2E_TMP/data-VM.  Sets RG_UUID.
rg_protected() {
  local vm=$1
  e2e_define_vm "$vm" bios notpm
  RG_UUID=$E2E_UUID
  e2e_protected_vm "$vm" "$RG_UUID" "$E2E_TMP/P-$vm" 48 120
  cp "$E2E_WORK/s.xml" "$E2E_WORK/s-$vm.xml"
  cp "$E2E_WORK/kp" "$E2E_WORK/kp-$vm"
  cp "$E2E_WORK/pol0" "$E2E_WORK/pol-$vm"
  cp "$E2E_TMP/data" "$E2E_TMP/data-$vm"
  e2e_give "$E2E_WORK/s-$vm.xml" "$E2E_WORK/kp-$vm" "$E2E_WORK/pol-$vm"
}

# rg_fault_point NAME CLI-ARGS...: run the call traced (it completes) and
# print the number of the first fault point called NAME.
rg_fault_point() {
  local name=$1; shift
  MSVM_SECURITY_FAULT_TRACE=1 e2e_call RGT "$@"
  sed -n "s/^msvm-fault-point \([0-9]*\) $name\$/\1/p" "$E2E_TMP/last-stderr" | head -n1
}

# rg_gen_passphrase OUT UUID GEN: the passphrase of store generation GEN,
# from the seed and the halves the store keeps for it.
rg_gen_passphrase() {
  local out=$1 u=$2 g=$3 kp=$E2E_TMP/rg-kp.$3 pol=$E2E_TMP/rg-pol.$3 b
  rm -f "$kp" "$pol"
  grep -q "^\[generation $g\]\$" "$(e2e_store_file "$u")" ||
    { echo "no generation $g in the store of $u"; return 1; }
  b=$(e2e_store_get "$u" "generation $g" key-protector)
  [ -n "$b" ] && base64 -d <<<"$b" >"$kp"
  b=$(e2e_store_get "$u" "generation $g" policy)
  [ -n "$b" ] && base64 -d <<<"$b" >"$pol"
  # an empty half is an unset one
  [ -s "$kp" ] || rm -f "$kp"
  [ -s "$pol" ] || rm -f "$pol"
  e2e_vm_passphrase "$out" "$u" "$kp" "$pol"
}

# rg_redefine VM SED-SCRIPT: an administrator's edit: dumpxml --inactive
# --security-info, sed, virsh define.
rg_redefine() {
  local vm=$1 script=$2 f=$E2E_WORK/rg-edit-$1.xml
  e2e_virsh dumpxml --inactive --security-info "$vm" >"$f" || return 1
  sed -i -e "$script" "$f" || return 1
  e2e_give "$f"
  e2e_virsh define "$f"
}

# rg_get_kp SETTINGS OUT: GetKeyProtector's bytes into OUT; true when it
# answered 0.
rg_get_kp() {
  e2e_cli get-key-protector --settings "$1" >"$2" 2>"$E2E_TMP/rg-kp-report"
  local rc=$?
  cat "$E2E_TMP/rg-kp-report"
  [ $rc = 0 ] && grep -q '^ReturnValue: 0 ' "$E2E_TMP/rg-kp-report"
}

# rg_secret_listed UUID: libvirt has the secret.
rg_secret_listed() {
  e2e_virsh secret-list | awk '{print $1}' | e2e_grep_q -x "$1"
}

rg_no_journal() {     # rg_no_journal UUID: the store has no [journal] group
  ! grep -q '^\[journal\]' "$(e2e_store_file "$1")"
}

rg_job_state() {      # rg_job_state ID -> "JobState ErrorCode"
  e2e_cli --json job show "$1" 2>/dev/null |
    jq -r '.ConcreteJob | "\(.JobState) \(.ErrorCode)"' 2>/dev/null
}

# rg_foreign_vm VM PASSOUT: a VM whose TPM is encrypted under a vtpm secret
# the test defined itself (passphrase in PASSOUT), started once so that
# libvirt creates its state, destroyed.  Sets RG_UUID and RG_FSECRET.
rg_foreign_vm() {
  local vm=$1 pass=$2
  RG_UUID=$(e2e_uuidgen)
  RG_FSECRET=$(e2e_uuidgen)
  head -c 24 /dev/urandom | e2e_hex >"$pass"
  e2e_give "$pass"
  cat >"$E2E_WORK/fsec-$vm.xml" <<EOF
<secret ephemeral='no' private='yes'>
  <uuid>$RG_FSECRET</uuid>
  <usage type='vtpm'><name>e2e-foreign-$RG_UUID</name></usage>
</secret>
EOF
  e2e_give "$E2E_WORK/fsec-$vm.xml"
  e2e_ok "setup: a vtpm secret the project did not create" eval \
    'e2e_virsh secret-define "fsec-$vm.xml" >/dev/null &&
     e2e_virsh secret-set-value "$RG_FSECRET" --file "$pass" --plain >/dev/null'
  e2e_define_vm "$vm" bios notpm \
    "<tpm model='tpm-crb'><backend type='emulator' version='2.0'><encryption secret='$RG_FSECRET'/></backend></tpm>" \
    "$RG_UUID"
  e2e_ok "setup: the VM with that secret starts once (libvirt creates its state)" e2e_boot "$vm"
}

# rg_tpm_secret VM: the secret the persistent definition's TPM names (as
# e2e_tpm_secret, but blind to anything under <metadata>).
rg_tpm_secret() {
  e2e_virsh dumpxml --inactive "$1" | sed '/<metadata>/,/<\/metadata>/d' |
    sed -n "s/.*<encryption secret=['\"]\([^'\"]*\)['\"].*/\1/p" | head -n1
}
