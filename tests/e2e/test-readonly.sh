#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The read-only libvirt connection (issue 4's precondition "read-only
# connection: 32769"), against the real session daemon: with --readonly
# (virConnectOpenAuth with VIR_CONNECT_RO, as `virsh -r`), every method that
# changes something answers 32769 Access Denied and changes nothing
# (definition, secrets, store, vTPM state compared before and after), while
# GetKeyProtector and get-security-settings still answer.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings \
  get-key-protector restore-last-known-good-key-protector get-security-settings recover

# refused DESC CLI-ARGS...: 32769 over a read-only connection, nothing changes
refused() {
  local desc=$1; shift
  e2e_snapshot "$vm" "$u" "$E2E_TMP/before"
  e2e_call R --readonly "$@"
  e2e_ok "$desc over a read-only connection: ReturnValue 32769" e2e_rv_is R 32769
  e2e_ok "  ... naming the read-only connection" grep -q "read-only" <<<"$R_MSG"
  e2e_snapshot "$vm" "$u" "$E2E_TMP/after"
  e2e_ok "  ... and nothing changed" e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"
}

vm=e2e-ro
e2e_define_vm "$vm" uefi notpm
u=$E2E_UUID
e2e_sample "$E2E_WORK/s.xml" wmi-cimdtd20.xml "$u"
e2e_random "$E2E_WORK/kp" 64
e2e_random "$E2E_WORK/pol" 128
e2e_random "$E2E_WORK/pol2" 128

# a protected VM whose state exists (booted once)
e2e_call R set-key-protector --settings s.xml --key-protector kp
e2e_ok "SetKeyProtector (read-write)" e2e_method_ok R
e2e_call R set-security-policy --settings s.xml --policy pol
e2e_ok "SetSecurityPolicy (read-write)" e2e_method_ok R
e2e_call R modify-security-settings --settings s.xml
e2e_ok "ModifySecuritySettings (read-write)" e2e_method_ok R
e2e_ok "the VM boots" e2e_boot "$vm"
e2e_virsh destroy "$vm" >/dev/null 2>&1

refused "SetSecurityPolicy" set-security-policy --settings s.xml --policy pol2
refused "SetKeyProtector" set-key-protector --settings s.xml --key-protector pol2
refused "ModifySecuritySettings" modify-security-settings --settings s.xml
refused "RestoreLastKnownGoodKeyProtector" restore-last-known-good-key-protector --settings s.xml
refused "recover" recover --domain "$vm"

get_kp_ro() {
  e2e_cli --readonly get-key-protector --settings s.xml >"$E2E_TMP/kp.ro" 2>"$E2E_TMP/kp.ro.err" ||
    { cat "$E2E_TMP/kp.ro.err"; return 1; }
  cmp "$E2E_WORK/kp" "$E2E_TMP/kp.ro"
}
e2e_ok "GetKeyProtector over a read-only connection: 0 and the bytes set" get_kp_ro
e2e_call R --readonly get-security-settings --domain "$vm" --format mof
e2e_ok "get-security-settings over a read-only connection: 0" e2e_rv_is R 0
e2e_ok "  ... with the applied settings" grep -q "TpmEnabled = TRUE" <<<"$(jq -r .Payload <<<"$R_JSON")"
e2e_ok "the VM still boots" e2e_boot "$vm"
e2e_done
