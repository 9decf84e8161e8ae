#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A replay of what os-win (OpenStack's Hyper-V library) expects, through the
# CLI's --json output. os-win's add_vtpm(vm, pdk, shielded) reads the VM's
# Msvm_SecuritySettingData, sets EncryptStateAndVmMigrationTraffic, TpmEnabled
# and ShieldingRequested, serializes it with GetText_(1) (the WMI CIM-XML
# shape with system properties: samples/wmi-cimdtd20.xml) and calls
# SetKeyProtector, SetSecurityPolicy, ModifySecuritySettings, each checked by
# jobutils.check_ret_val: 0 is done, 4096 means poll the job until JobState is
# 7 or later (7 with ErrorCode 0 is success), anything else raises.
# is_secure_vm() reads EncryptStateAndVmMigrationTraffic back.
#
# Asserted: every answer is one JSON object with ReturnValue (number),
# ReturnName (string), Job, Message; every ReturnValue is 0, 4096 with a
# pollable job that reaches JobState 7, or one of the documented failure
# codes (32768-32778); an unshielded and a shielded UEFI VM succeed and boot,
# the shielded one with secure boot and SMM; a BIOS VM asking for shielding
# gets a documented failure (os-win would raise) and boots unchanged.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings \
  get-security-settings job

# shape VAR: the JSON object of DESIGN.md section 8
shape() {
  local json
  json=$(eval echo "\${${1}_JSON}")
  jq -e 'type == "object" and (.ReturnValue | type == "number")
         and (.ReturnName | type == "string") and has("Job") and has("Message")' \
    <<<"$json" >/dev/null || { echo "not the documented JSON object: $json"; return 1; }
}

# check_ret_val VAR: os-win's jobutils.check_ret_val, strict about codes.
check_ret_val() {
  local rv job id st i
  rv=$(eval echo "\${${1}_RV}")
  job=$(eval echo "\${${1}_JOB}")
  case "$rv" in
    0) return 0 ;;
    4096)
      [[ "$job" == Msvm_ConcreteJob.InstanceID=\"*\" ]] || { echo "job reference '$job'"; return 1; }
      id=$(e2e_job_id "$job")
      for i in $(seq 240); do
        st=$(e2e_cli --json job show "$id" | jq -r '(.ConcreteJob // .).JobState // empty')
        [ -n "$st" ] || { echo "job $id: no JobState"; return 1; }
        [ "$st" -ge 7 ] && break
        sleep 0.5
      done
      [ "$st" = 7 ] || { echo "job $id ended in JobState $st"; return 1; }
      [ "$(e2e_cli --json job show "$id" | jq -r '(.ConcreteJob // .).ErrorCode')" = 0 ] ;;
    *) echo "ReturnValue $rv: os-win raises"; return 1 ;;
  esac
}

documented() {        # documented VAR: 0, 4096, or 32768..32778
  local rv
  rv=$(eval echo "\${${1}_RV}")
  case "$rv" in
    0|4096) return 0 ;;
    *) [ "$rv" -ge 32768 ] 2>/dev/null && [ "$rv" -le 32778 ] ||
         { echo "undocumented ReturnValue '$rv'"; return 1; } ;;
  esac
}

# add_vtpm VM UUID SHIELDED: the three calls; sets ADD_RESULT to the first
# failing ReturnValue or 0.
add_vtpm() {
  local vm=$1 u=$2 sh=$3 m
  e2e_sample "$E2E_WORK/$vm.xml" wmi-cimdtd20.xml "$u" \
    EncryptStateAndVmMigrationTraffic=TRUE TpmEnabled=TRUE ShieldingRequested="$sh"
  e2e_random "$E2E_WORK/$vm.kp" 512
  e2e_random "$E2E_WORK/$vm.pol" 1024
  ADD_RESULT=0
  for m in set-key-protector set-security-policy modify-security-settings; do
    case "$m" in
      set-key-protector) e2e_call R "$m" --settings "$vm.xml" --key-protector "$vm.kp" ;;
      set-security-policy) e2e_call R "$m" --settings "$vm.xml" --policy "$vm.pol" ;;
      *) e2e_call R "$m" --settings "$vm.xml" ;;
    esac
    e2e_ok "$vm: $m answers one JSON object of the documented shape" shape R
    e2e_ok "$vm: $m ReturnValue ${R_RV:-?} is documented" documented R
    if [ "$ADD_RESULT" = 0 ] && [ "$R_RV" != 0 ] && [ "$R_RV" != 4096 ]; then
      ADD_RESULT=$R_RV
    fi
    [ "$ADD_RESULT" = 0 ] || { e2e_note "$vm: $m answered $R_RV: $R_MSG"; break; }
    e2e_ok "$vm: $m passes check_ret_val (0, or 4096 and the job reaches 7)" check_ret_val R
  done
}

# is_secure_vm: EncryptStateAndVmMigrationTraffic read back
is_secure_vm() {
  e2e_call G get-security-settings --domain "$1"
  [ "$G_RV" = 0 ] || { echo "ReturnValue $G_RV"; return 1; }
  jq -r '.Settings // .Payload // empty' <<<"$G_JSON" >"$E2E_TMP/gss.xml"
  [ "$(xmllint --xpath "string(//PROPERTY[@NAME='EncryptStateAndVmMigrationTraffic']/VALUE)" \
       "$E2E_TMP/gss.xml" 2>/dev/null | tr a-z A-Z)" = TRUE ] || { cat "$E2E_TMP/gss.xml"; return 1; }
}

# --- unshielded UEFI VM
e2e_define_vm e2e-ow1 uefi notpm
add_vtpm e2e-ow1 "$E2E_UUID" FALSE
e2e_is "$ADD_RESULT" 0 "e2e-ow1: add_vtpm(shielded=False) succeeds"
e2e_ok "e2e-ow1: is_secure_vm() is true" is_secure_vm e2e-ow1
e2e_ok "e2e-ow1: boots" e2e_boot e2e-ow1

# --- the other shapes clients send, re-applying the same settings: each
# answers 0 and leaves the definition as it was (idempotent)
e2e_virsh dumpxml --inactive --security-info e2e-ow1 >"$E2E_TMP/ow1.before"
u1=$(e2e_virsh domuuid e2e-ow1)
iconv -f UTF-16 -t UTF-8 "$E2E_LIB_DIR/samples/minimal-utf16le.xml" |
  sed "s/5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B/${u1^^}/I" | iconv -f UTF-8 -t UTF-16LE |
  { printf '\xff\xfe'; cat; } >"$E2E_WORK/ow1-utf16.xml"
e2e_give "$E2E_WORK/ow1-utf16.xml"
e2e_sample "$E2E_WORK/ow1.mof" shielded.mof "$u1" ShieldingRequested=FALSE
e2e_sample "$E2E_WORK/ow1-lower.xml" minimal.xml "$u1"
sed -i "s/Microsoft:${u1^^}/Microsoft:${u1,,}/" "$E2E_WORK/ow1-lower.xml"
for f in ow1-utf16.xml ow1.mof ow1-lower.xml; do
  e2e_call R modify-security-settings --settings "$f"
  e2e_ok "e2e-ow1: ModifySecuritySettings with $f answers 0" e2e_rv_is R 0
done
e2e_ok "e2e-ow1: ... and the definition is as it was" eval \
  "e2e_virsh dumpxml --inactive --security-info e2e-ow1 | diff -u $E2E_TMP/ow1.before -"
e2e_ok "e2e-ow1: get-security-settings --domain with the upper-case UUID" \
  eval "e2e_cli get-security-settings --domain ${u1^^} >/dev/null"

# --- shielded UEFI VM
e2e_define_vm e2e-ow2 uefi notpm
add_vtpm e2e-ow2 "$E2E_UUID" TRUE
e2e_is "$ADD_RESULT" 0 "e2e-ow2: add_vtpm(shielded=True) succeeds on UEFI q35"
e2e_virsh dumpxml --inactive e2e-ow2 >"$E2E_TMP/ow2.xml"
e2e_ok "e2e-ow2: secure boot in the definition" grep -Eq \
  -e "secure='yes'" -e "<feature enabled='yes' name='secure-boot'/>" "$E2E_TMP/ow2.xml"
e2e_ok "e2e-ow2: SMM on" grep -q "<smm state='on'" "$E2E_TMP/ow2.xml"
e2e_ok "e2e-ow2: is_secure_vm() is true" is_secure_vm e2e-ow2
e2e_ok "e2e-ow2: boots shielded (first start: no NVRAM to reset)" e2e_boot e2e-ow2

# --- BIOS VM asking for shielding: a documented failure, nothing broken
e2e_define_vm e2e-ow3 bios notpm
add_vtpm e2e-ow3 "$E2E_UUID" TRUE
e2e_ok "e2e-ow3: add_vtpm(shielded=True) on BIOS fails with a documented code ($ADD_RESULT)" \
  test "$ADD_RESULT" -ge 32768 -a "$ADD_RESULT" -le 32778
e2e_ok "e2e-ow3: still boots" e2e_boot e2e-ow3

# --- the job list parses too
e2e_call J job list
e2e_ok "job list answers one JSON object of the documented shape" shape J

e2e_done
