#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 6: a state check racing a re-key must not read the
# directory the re-key just replaced and report a spurious 32775.  A VM
# whose TPM is encrypted under a secret S the project did not create
# (passphrase P), started once so that its state exists.
# `set-key-protector --old-passphrase-file P` runs in the background with
# MSVM_SECURITY_FAULT_STALL=state-check-opened:4000 (it waits 4 s each time
# the state check has opened the directory); about 1 s later, as the daemon
# user, `msvm-security rekey` with P as old and new passphrase replaces the
# directory by a re-encrypted copy that still opens under P.  The
# set-key-protector answers 0 (not 32775), and the VM boots under the
# project's passphrase with its NV data.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_init
e2e_need_cmds set-key-protector rekey
E2E_BOOT_PAUSED=1

vm=e2e-rg-race
rg_foreign_vm "$vm" "$E2E_WORK/fpass"
u=$RG_UUID
sdir=$(e2e_state_dir "$u")
head -c 16 /dev/urandom | e2e_hex >"$E2E_TMP/data"
e2e_ok "setup: NV data in its vTPM" e2e_tpm_nv_write "$sdir" "$E2E_WORK/fpass" "$E2E_TMP/data"
e2e_sample "$E2E_WORK/s.xml" wmi-cimdtd20.xml "$u"
e2e_random "$E2E_WORK/kp" 40
ino0=$(stat -c %i "$sdir")

MSVM_SECURITY_FAULT_TRACE=1 MSVM_SECURITY_FAULT_STALL=state-check-opened:4000 \
  e2e_cli --json set-key-protector --settings s.xml --key-protector kp \
    --old-passphrase-file fpass >"$E2E_TMP/bg.out" 2>"$E2E_TMP/bg.err" &
bg=$!
sleep 1
e2e_ok "meanwhile the directory is re-keyed under the same passphrase (msvm-security rekey)" \
  e2e_cli rekey --state-dir "$sdir" --old-passphrase-file "$E2E_WORK/fpass" \
    --new-passphrase-file "$E2E_WORK/fpass"
e2e_ok "  ... the directory was replaced (a new inode)" test "$(stat -c %i "$sdir")" != "$ino0"
wait "$bg"
bgrc=$?
e2e_diag "set-key-protector (exit $bgrc): $(cat "$E2E_TMP/bg.out")"
e2e_ok "the set-key-protector stalled in its state check (the race was set up)" \
  grep -q 'msvm-fault-point [0-9]* state-check-opened' "$E2E_TMP/bg.err"
e2e_is "$(jq -r .ReturnValue <"$E2E_TMP/bg.out" 2>/dev/null)" 0 \
  "set-key-protector racing the re-key answers 0 (not 32775)"
e2e_is "$bgrc" 0 "  ... exit status 0"
e2e_ok "the VM boots" e2e_boot "$vm"
e2e_vm_passphrase "$E2E_TMP/Pnew" "$u" "$E2E_WORK/kp" ""
e2e_ok "the NV data reads back under the project's passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/Pnew" "$(stat -c %s "$E2E_TMP/data")" "$E2E_TMP/data.back"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.back"

e2e_done
