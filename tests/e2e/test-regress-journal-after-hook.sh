#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 1: a change killed right after its define, then a start
# through the hook (which finishes the re-key), must not leave a journal
# that later re-defines an old copy of the definition.  With the hook
# installed, three protected VMs each get `set-key-protector` with new bytes
# killed at the fault point `after-define`, then `virsh start` (succeeds,
# the hook finishes the re-key) and destroy, then:
#  a. an administrator's edit (memory 196608 KiB by dumpxml/define):
#     `get-key-protector` answers 0 with the NEW bytes, the edited memory is
#     still in the definition, the store has no [journal] group;
#  b. `virsh domrename`: `recover --domain NEWNAME` answers 0, a further
#     `set-key-protector` answers 0 and the VM boots;
#  c. the <tpm> removed by hand: after `get-key-protector` and `recover` the
#     secret of the store's `state` generation is still defined and the
#     state opens under that generation's passphrase, and the definition
#     still has no <tpm>;
#  c2. the <tpm> removed by hand and the VM renamed: `recover` answers 0,
#     the `state` generation's secret is still defined and the state opens
#     under its passphrase.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_use_hook
e2e_init
e2e_need_cmds set-key-protector get-key-protector recover
E2E_BOOT_PAUSED=1

rv0() { e2e_rv_is R 0; }

# kill_after_define VM: set-key-protector with new bytes ($E2E_WORK/kpnew-VM)
# killed at `after-define`, then a start through the hook and destroy.
kill_after_define() {
  local vm=$1 n
  e2e_random "$E2E_WORK/kptrace" 32
  n=$(rg_fault_point after-define set-key-protector --settings "s-$vm.xml" --key-protector kptrace)
  e2e_ok "$vm: a traced set-key-protector has the fault point after-define (${n:-none})" \
    test -n "$n"
  e2e_call R recover --domain "$vm"
  e2e_random "$E2E_WORK/kpnew-$vm" 40
  MSVM_SECURITY_FAULT_INJECT=$n e2e_call R set-key-protector --settings "s-$vm.xml" \
    --key-protector "kpnew-$vm"
  e2e_is "$R_EXIT" 137 "$vm: set-key-protector with new bytes killed at after-define (point $n)"
  e2e_ok "$vm: virsh start succeeds (the hook finishes the re-key)" e2e_virsh start "$vm" --paused
  e2e_virsh destroy "$vm" >/dev/null 2>&1
}

# --- a. an administrator's later edit is not reverted -------------------------
vm=e2e-rg-j-edit
rg_protected "$vm"
ua=$RG_UUID
kill_after_define "$vm"
e2e_ok "a: the administrator edits the memory (196608 KiB) with dumpxml/define" \
  rg_redefine "$vm" "s|<memory unit='KiB'>[0-9]*</memory>|<memory unit='KiB'>196608</memory>|;s|<currentMemory unit='KiB'>[0-9]*</currentMemory>|<currentMemory unit='KiB'>196608</currentMemory>|"
e2e_ok "  ... the definition has the new memory" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q \"<memory unit='KiB'>196608</memory>\""
e2e_ok "a: get-key-protector answers 0" rg_get_kp "s-$vm.xml" "$E2E_TMP/kp.a"
e2e_ok "  ... with the NEW key-protector bytes" cmp "$E2E_WORK/kpnew-$vm" "$E2E_TMP/kp.a"
e2e_ok "  ... the edited memory is still in the definition" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q \"<memory unit='KiB'>196608</memory>\""
e2e_ok "  ... and currentMemory too" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q \"<currentMemory unit='KiB'>196608</currentMemory>\""
e2e_ok "  ... the store has no [journal] group" rg_no_journal "$ua"

# --- b. a rename does not wedge the VM ----------------------------------------
vm=e2e-rg-j-ren
rg_protected "$vm"
kill_after_define "$vm"
new=e2e-rg-j-renamed
E2E_DOMAINS+=("$new")
e2e_ok "b: virsh domrename $vm $new" e2e_virsh domrename "$vm" "$new"
e2e_call R recover --domain "$new"
e2e_ok "b: recover --domain $new answers 0" rv0
e2e_random "$E2E_WORK/kpnext" 24
e2e_call R set-key-protector --settings "s-$vm.xml" --key-protector kpnext
e2e_ok "b: a further set-key-protector answers 0" rv0
e2e_ok "b: the renamed VM boots" e2e_boot "$new"

# --- c. the TPM removed by hand: the state's generation is kept ---------------
vm=e2e-rg-j-notpm
rg_protected "$vm"
uc=$RG_UUID
sdir=$(e2e_state_dir "$uc")
kill_after_define "$vm"
st=$(e2e_store_get "$uc" store state)
st_secret=$(e2e_store_get "$uc" "generation $st" secret)
e2e_ok "c: the store's state generation ($st) has a secret ($st_secret)" test -n "$st_secret"
e2e_ok "c: the passphrase of the state generation" rg_gen_passphrase "$E2E_TMP/Pst" "$uc" "$st"
e2e_ok "  ... opens the state now" e2e_tpm_opens "$sdir" "$E2E_TMP/Pst"
e2e_ok "c: the <tpm> element removed from the definition by hand" \
  rg_redefine "$vm" '/<tpm /,/<\/tpm>/d'
e2e_not "  ... the definition has no <tpm>" eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q '<tpm '"
rg_get_kp "s-$vm.xml" "$E2E_TMP/kp.c" >/dev/null
e2e_call R recover --domain "$vm"
e2e_ok "c: after get-key-protector and recover the state generation's secret is defined" \
  rg_secret_listed "$st_secret"
e2e_ok "  ... the store still holds generation $st" \
  grep -q "^\[generation $st\]\$" "$(e2e_store_file "$uc")"
e2e_ok "  ... the state opens under its passphrase" e2e_tpm_opens "$sdir" "$E2E_TMP/Pst"
e2e_not "  ... the definition still has no <tpm> (the edit is not reverted)" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q '<tpm '"

# --- c2. the TPM removed by hand and the VM renamed (the journal's define of
# the old copy then fails and the change is abandoned): the same ------------
vm=e2e-rg-j-both
rg_protected "$vm"
uc=$RG_UUID
sdir=$(e2e_state_dir "$uc")
kill_after_define "$vm"
st=$(e2e_store_get "$uc" store state)
st_secret=$(e2e_store_get "$uc" "generation $st" secret)
e2e_ok "c2: the passphrase of the state generation ($st)" rg_gen_passphrase "$E2E_TMP/Pst2" "$uc" "$st"
e2e_ok "c2: the <tpm> element removed from the definition by hand" \
  rg_redefine "$vm" '/<tpm /,/<\/tpm>/d'
new=e2e-rg-j-both2
E2E_DOMAINS+=("$new")
e2e_ok "c2: virsh domrename $vm $new" e2e_virsh domrename "$vm" "$new"
rg_get_kp "s-$vm.xml" "$E2E_TMP/kp.c2" >/dev/null
e2e_call R recover --domain "$new"
e2e_ok "c2: recover --domain $new answers 0" rv0
e2e_ok "c2: the state generation's secret is still defined" rg_secret_listed "$st_secret"
e2e_ok "  ... the store still holds generation $st" \
  grep -q "^\[generation $st\]\$" "$(e2e_store_file "$uc")"
e2e_ok "  ... the state opens under its passphrase" e2e_tpm_opens "$sdir" "$E2E_TMP/Pst2"

e2e_done
