#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 10 end to end with two hosts on this machine (tests/e2e/lib-twohost.sh:
# two users' session daemons, each with its own host_uuid, the project's hook
# loaded by both; root drives `virsh migrate --live --persistent
# --undefinesource` from one daemon's socket to the other's):
#
#  - without the import, host B refuses the incoming migration (the hook's
#    message names import-protector) and the VM keeps running at A;
#  - after the guardian exchange, export at A and import at B, the live
#    migration succeeds and the VM runs at B; the NV data written into the
#    vTPM at A reads back with swtpm at B under B's passphrase;
#  - a protector change at B keeps the data; the VM migrates back (export at
#    B, import at A, which replaces A's entry of the same lineage);
#    `forget` at B leaves no secret and no store entry there;
#  - a cold move with --with-state brings the stopped VM to B, where it
#    starts with its data;
#  - a backup exported for B's own guardian restores after the VM, its
#    secrets, store entry and state were deleted, and the VM starts with its data.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-twohost.sh"

twohost_init
e2e_need_cmds guardian export-protector import-protector forget set-security-policy
on_b e2e_need_cmds guardian import-protector

vm=e2e-move
e2e_define_vm "$vm" bios notpm
u=$E2E_UUID
e2e_protected_vm "$vm" "$u" "$E2E_TMP/P1" 64 128
data_size=$(stat -c %s "$E2E_TMP/data")

# nv_on_b PASS OUT: the VM's NV data read with swtpm on B's copy of the state
nv_on_b() { on_b e2e_tpm_nv_read "$(on_b e2e_state_dir "$u")" "$1" "$data_size" "$2"; }
nv_on_a() { e2e_tpm_nv_read "$(e2e_state_dir "$u")" "$1" "$data_size" "$2"; }
secrets_of() { e2e_vm_secrets "$u" | sort | tr '\n' ' '; }

# --- refused without the import ------------------------------------------------
e2e_ok "the protected VM runs at A" e2e_virsh start "$vm"
e2e_not "a live migration to B without the import is refused" twohost_migrate A B "$vm"
refusal=$E2E_LOG
e2e_ok "  ... by B's hook, naming import-protector" grep -q 'hook.*import-protector' "$refusal"
e2e_is "$(e2e_domstate "$vm")" running "  ... and the VM keeps running at A"
e2e_not "  ... B has no such domain" on_b e2e_virsh dominfo "$vm"

# --- guardian exchange -----------------------------------------------------------
e2e_ok "A's guardian (guardian show)" e2e_cli guardian show --output guardian-a.pem
e2e_ok "B's guardian (guardian show)" on_b e2e_cli guardian show --output guardian-b.pem
cp "$B_E2E_WORK/guardian-b.pem" "$E2E_TMP/guardian-b.pem" && twohost_give_a "$E2E_TMP/guardian-b.pem"
cp "$A_E2E_WORK/guardian-a.pem" "$E2E_TMP/guardian-a.pem" && twohost_give_b "$E2E_TMP/guardian-a.pem"
e2e_ok "A trusts B's guardian as host-b" e2e_cli guardian trust --name host-b --certificate guardian-b.pem
e2e_ok "B trusts A's guardian as host-a" on_b e2e_cli guardian trust --name host-a --certificate guardian-a.pem

# --- export, import, live migration --------------------------------------------
e2e_ok "export-protector at A for host-b" \
  e2e_cli export-protector --domain "$vm" --guardian host-b --output vm.bundle
# (the passphrase goes to grep as a pattern file, never in its argv)
e2e_not "  ... the bundle does not hold the passphrase in the clear" \
  grep -qF -f "$E2E_TMP/P1" "$A_E2E_WORK/vm.bundle"
cp "$A_E2E_WORK/vm.bundle" "$E2E_TMP/vm.bundle" && twohost_give_b "$E2E_TMP/vm.bundle"
on_b e2e_call R import-protector --input vm.bundle
e2e_ok "import-protector at B: 0" e2e_rv_is R 0
cur_secret=$(e2e_tpm_secret "$vm")
e2e_ok "  ... B defines the current generation's secret with the same UUID" \
  on_b e2e_virsh secret-dumpxml "$cur_secret"
t0=$(date +%s.%N)
e2e_ok "live migration A -> B (--persistent --undefinesource)" twohost_migrate A B "$vm"
e2e_note "migration: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
e2e_is "$(on_b e2e_domstate "$vm")" running "the VM runs at B"
e2e_not "  ... and is gone from A" e2e_virsh dominfo "$vm"
e2e_is "$(on_b e2e_store_get "$u" store last-known-good-from-start)" true \
  "B's hook recorded last known good at started begin"
e2e_ok "the VM stops at B" on_b e2e_virsh destroy "$vm"
on_b e2e_vm_passphrase "$E2E_TMP/PB1" "$u" "$E2E_WORK/kp" "$E2E_WORK/pol0"
e2e_ok "B's passphrase (from B's store) is A's" cmp "$E2E_TMP/P1" "$E2E_TMP/PB1"
e2e_ok "the NV data written at A reads back at B" nv_on_b "$E2E_TMP/PB1" "$E2E_TMP/data.b1"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.b1"

# --- a protector change at B, then back to A -------------------------------------
on_b e2e_sample "$B_E2E_WORK/s.xml" wmi-cimdtd20.xml "$u"
on_b e2e_random "$B_E2E_WORK/pol-b" 200
on_b e2e_call R set-security-policy --settings s.xml --policy pol-b
e2e_ok "SetSecurityPolicy at B (stopped): 0, or 4096 -> 7" on_b e2e_method_ok R
cp "$A_E2E_WORK/kp" "$E2E_TMP/kp-a"
e2e_passphrase "$E2E_TMP/PB2" "$(on_b e2e_store_seed "$u")" "$u" "$E2E_TMP/kp-a" "$B_E2E_WORK/pol-b"
e2e_ok "the NV data reads back at B under the new passphrase" nv_on_b "$E2E_TMP/PB2" "$E2E_TMP/data.b2"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.b2"
e2e_ok "the VM runs at B" on_b e2e_virsh start "$vm"
e2e_ok "export-protector at B for host-a" \
  on_b e2e_cli export-protector --domain "$vm" --guardian host-a --output back.bundle
cp "$B_E2E_WORK/back.bundle" "$E2E_TMP/back.bundle" && twohost_give_a "$E2E_TMP/back.bundle"
e2e_call R import-protector --input back.bundle
e2e_ok "import-protector at A (replaces A's entry of the same lineage): 0" e2e_rv_is R 0
e2e_ok "live migration B -> A" twohost_migrate B A "$vm"
e2e_is "$(e2e_domstate "$vm")" running "the VM runs at A again"
b_secrets=$(on_b secrets_of)
e2e_ok "B still has the VM's secrets before forget" test -n "$b_secrets"
on_b e2e_call R forget --domain "$u"
e2e_ok "forget at B: 0" e2e_rv_is R 0
e2e_is "$(on_b secrets_of)" "" "  ... no secret of the VM is left at B"
e2e_not "  ... no store entry" test -e "$B_E2E_STORE/$u"
e2e_ok "the VM stops at A" e2e_virsh destroy "$vm"
e2e_ok "the NV data reads back at A under the passphrase of B's change" \
  nv_on_a "$E2E_TMP/PB2" "$E2E_TMP/data.a2"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.a2"

# --- cold move with the state ------------------------------------------------------
e2e_ok "export-protector --with-state at A (stopped VM) for host-b" \
  e2e_cli export-protector --domain "$vm" --guardian host-b --with-state --output cold.bundle
cp "$A_E2E_WORK/cold.bundle" "$E2E_TMP/cold.bundle" && twohost_give_b "$E2E_TMP/cold.bundle"
e2e_ok "the VM undefined at A (the move's other half)" e2e_virsh undefine "$vm"
on_b e2e_call R import-protector --input cold.bundle
e2e_ok "import-protector at B with the state: 0" e2e_rv_is R 0
e2e_ok "  ... B defines the domain" on_b e2e_virsh dominfo "$vm"
e2e_is "$(stat -c %U "$(on_b e2e_state_dir "$u")")" "$B_E2E_USER" "  ... the state directory is B's user's"
e2e_ok "the VM starts at B" on_b e2e_boot "$vm"
e2e_ok "the NV data reads back at B" nv_on_b "$E2E_TMP/PB2" "$E2E_TMP/data.b3"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.b3"
e2e_call R forget --domain "$u"
e2e_ok "forget at A: 0" e2e_rv_is R 0
e2e_is "$(secrets_of)" "" "  ... no secret of the VM is left at A"

# --- backup and restore at B --------------------------------------------------------
e2e_ok "a backup at B: export-protector --with-state for its own guardian" \
  on_b e2e_cli export-protector --domain "$vm" --guardian local --with-state --output backup.bundle
e2e_ok "the VM undefined at B" on_b e2e_virsh undefine "$vm"
on_b e2e_call R forget --domain "$u"
e2e_ok "  ... forget: 0" e2e_rv_is R 0
on_b rm -rf "$B_E2E_SWTPM_DIR/$u"
e2e_is "$(on_b secrets_of)" "" "  ... nothing of the VM left at B (secrets)"
e2e_not "  ... (state)" test -e "$B_E2E_SWTPM_DIR/$u"
on_b e2e_call R import-protector --input backup.bundle
e2e_ok "the backup restores: import-protector 0" e2e_rv_is R 0
e2e_ok "the restored VM starts" on_b e2e_boot "$vm"
e2e_ok "its NV data reads back" nv_on_b "$E2E_TMP/PB2" "$E2E_TMP/data.b4"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.b4"
e2e_done
