#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 5 end to end: the hook through a REAL libvirt daemon (the harness's
# private session daemon, QEMU/TCG and swtpm).  The built hook is placed in
# libvirt's hook directory (<hookdir>/50-msvm-security, as `meson install`
# does) BEFORE the daemon starts, since daemons read that directory only
# when they start, and removed at the end.  Skipped only when that directory
# is not writable (CI runs as root and runs it).
#
#  - a running VM gets set-security-policy --defer: ReturnValue 4096 and a
#    job reference; `job show` says it is not finished; the VM is destroyed
#    and started: the hook re-keyed the state at "prepare begin", `job show`
#    says Completed, the VM runs, and the NV data written into its vTPM reads
#    back under the new passphrase only;
#  - "started begin" recorded the generation as last known good;
#  - a VM whose state was made undecryptable on purpose fails to start, with
#    the hook's one-line message in libvirt's error;
#  - after an unwanted protector change, RestoreLastKnownGoodKeyProtector
#    brings back the generation recorded at the last start and the VM boots;
#  - a change killed right after each durable step (store saves, journal,
#    secret, define, state swap, re-key, close): the VM starts every time,
#    and after the next call it runs under the latest policy with its data.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_use_hook
e2e_init

e2e_need_cmds set-security-policy job restore-last-known-good-key-protector
e2e_ok "the daemon user can run the hook's second stage" \
  e2e_as_user test -r "$MSVM_BUILDDIR/hooks/msvm-security-hook-module.so"
e2e_note "hook: $HOOK_DST (copied from $HOOK_SRC, older than the daemon)"

vm=e2e-hook
e2e_define_vm "$vm" bios notpm
uuid=$E2E_UUID
sdir=$(e2e_state_dir "$uuid")
e2e_settings "$E2E_WORK/settings.xml" "$uuid" TpmEnabled=TRUE EncryptStateAndVmMigrationTraffic=TRUE
pol1=$E2E_WORK/pol1 pol2=$E2E_WORK/pol2 pol3=$E2E_WORK/pol3
e2e_random "$pol1" 100
e2e_random "$pol2" 200
e2e_random "$pol3" 300

store_key() { e2e_store_get "$uuid" store "$1"; }
job_state() {          # job_state ID -> JobState ErrorCode
  e2e_cli --json job show "$1" 2>/dev/null |
    jq -r '.ConcreteJob | "\(.JobState) \(.ErrorCode)"' 2>/dev/null
}

# --- a protector on the stopped VM, first start, data into its vTPM -----------
e2e_call R set-security-policy --settings settings.xml --policy pol1
e2e_ok "SetSecurityPolicy on the stopped VM: 0 or 4096 -> 7" e2e_method_ok R
secret1=$(e2e_tpm_secret "$vm")
e2e_ok "the definition names a vTPM secret" test -n "$secret1"
e2e_ok "the VM starts through the hook (a new TPM is created)" e2e_virsh start "$vm"
e2e_ok "  ... and runs with its swtpm" e2e_swtpm_running "$vm"
e2e_is "$(store_key last-known-good-from-start)" true \
  "started begin recorded the start's generation as last known good"
lkg1=$(store_key last-known-good)
e2e_is "$lkg1" "$(store_key current)" "  ... the current one"
e2e_virsh destroy "$vm" >/dev/null
e2e_ok "the passphrase of generation 1" e2e_vm_passphrase "$E2E_TMP/P1" "$uuid" "" "$pol1"
head -c 24 /dev/urandom | e2e_hex >"$E2E_TMP/data"
e2e_give "$E2E_TMP/data"
e2e_ok "known NV data written into the stopped VM's vTPM" \
  e2e_tpm_nv_write "$sdir" "$E2E_TMP/P1" "$E2E_TMP/data"

# --- a deferred change on the running VM, finished by the hook ------------------
e2e_ok "the VM is started again" e2e_virsh start "$vm"
e2e_call R set-security-policy --settings settings.xml --policy pol2 --defer
e2e_rv_is_4096() { e2e_rv_is R 4096; }
e2e_ok "set-security-policy --defer on the running VM: ReturnValue 4096" e2e_rv_is_4096
e2e_ok "  ... with a job reference" test -n "$R_JOB"
job=$(e2e_job_id "$R_JOB")
e2e_note "job $job"
js=$(job_state "$job")
e2e_ok "job show: not finished while the VM runs (JobState ${js%% *})" \
  test -n "$js" -a "${js%% *}" -lt 7
secret2=$(e2e_tpm_secret "$vm")
e2e_ok "the persistent definition already names the new secret" \
  test -n "$secret2" -a "$secret2" != "$secret1"
e2e_virsh destroy "$vm" >/dev/null
e2e_ok "destroyed, the state is still under the old passphrase (swtpm kept its key)" \
  e2e_tpm_opens "$sdir" "$E2E_TMP/P1"
e2e_ok "  ... and the store still says so (state generation behind current)" \
  test "$(store_key state)" != "$(store_key current)"
e2e_ok "the VM starts: the hook finishes the job at prepare begin" e2e_virsh start "$vm"
e2e_is "$(store_key state)" "$(store_key current)" "the hook moved the state generation to current"
e2e_ok "  ... it runs with its swtpm" e2e_swtpm_running "$vm"
e2e_is "$(job_state "$job")" "7 0" "job show: Completed (JobState 7, ErrorCode 0)"
e2e_ok "job wait exits 0" e2e_cli job wait "$job" --timeout 10
lkg2=$(store_key last-known-good)
e2e_ok "started begin recorded the new generation as last known good" \
  test "$lkg2" = "$(store_key current)" -a "$lkg2" != "$lkg1"
e2e_virsh destroy "$vm" >/dev/null
e2e_ok "the passphrase of generation 2" e2e_vm_passphrase "$E2E_TMP/P2" "$uuid" "" "$pol2"
e2e_ok "the NV data reads back under the new passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P2" 48 "$E2E_TMP/data.2"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.2"
e2e_ok "the old passphrase no longer opens the state" e2e_tpm_refuses "$sdir" "$E2E_TMP/P1"

# --- an undecryptable state: the start fails with the hook's message ------------
head -c 32 /dev/urandom | e2e_hex >"$E2E_TMP/PX"
e2e_give "$E2E_TMP/PX"
e2e_ok "the state re-encrypted on purpose under an unrelated passphrase" \
  e2e_cli rekey --state-dir "$sdir" --old-passphrase-file "$E2E_TMP/P2" \
    --new-passphrase-file "$E2E_TMP/PX"
e2e_virsh start "$vm" >"$E2E_TMP/start.out" 2>&1
rc=$?
e2e_ok "the start fails" test "$rc" -ne 0
e2e_diag "$(cat "$E2E_TMP/start.out")"
e2e_ok "libvirt's error carries the hook's message" \
  grep -q "msvm-security-hook: the vTPM state of domain $vm .*does not open" "$E2E_TMP/start.out"
e2e_ok "  ... naming the msvm-security command" grep -q "msvm-security recover" "$E2E_TMP/start.out"
e2e_is "$(e2e_domstate "$vm")" "shut off" "the VM is not running"
e2e_ok "the state is left as it was (still under the unrelated passphrase)" \
  e2e_tpm_opens "$sdir" "$E2E_TMP/PX"
e2e_ok "the state put back under generation 2" \
  e2e_cli rekey --state-dir "$sdir" --old-passphrase-file "$E2E_TMP/PX" \
    --new-passphrase-file "$E2E_TMP/P2"

# --- an unwanted change, undone by RestoreLastKnownGoodKeyProtector -------------
e2e_call R set-security-policy --settings settings.xml --policy pol3
e2e_ok "SetSecurityPolicy with an unwanted policy on the stopped VM: 0 or 4096 -> 7" \
  e2e_method_ok R
secret3=$(e2e_tpm_secret "$vm")
e2e_ok "  ... the definition names a third secret" \
  test -n "$secret3" -a "$secret3" != "$secret2"
e2e_is "$(store_key last-known-good)" "$lkg2" "last known good is still the generation of the last start"
e2e_call R restore-last-known-good-key-protector --settings settings.xml
e2e_ok "RestoreLastKnownGoodKeyProtector: 0 or 4096 -> 7" e2e_method_ok R
e2e_is "$(e2e_tpm_secret "$vm")" "$secret2" \
  "the definition names the secret of the generation recorded at the last start"
e2e_ok "the VM boots through the hook" e2e_boot "$vm"
e2e_ok "the NV data reads back under generation 2's passphrase" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/P2" 48 "$E2E_TMP/data.3"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.3"

# --- a change killed at each of its crash points: the VM still starts ----------
# (DESIGN.md 6: with the hook installed, a crash at any step leaves a VM that
# starts.)  A traced call lists the fault points; the change is then killed
# right after each point where something durable changed (a store save
# committed, the journal, the secret, the define, the state swapped, the
# re-key recorded, the journal closed), each round with a new policy.  The
# hook finishes what it can at the start, the next call the rest.
current_policy() {     # the current generation's policy bytes -> FILE
  local cur
  cur=$(store_key current)
  e2e_store_get "$uuid" "generation $cur" policy | base64 -d >"$1"
  e2e_give "$1"
}
e2e_random "$E2E_WORK/polk" 64
MSVM_SECURITY_FAULT_TRACE=1 e2e_call K set-security-policy --settings settings.xml --policy polk
points=$(sed -n 's/^msvm-fault-point \([0-9]*\) \(store-fsync-dir\|after-journal\|after-secret\|after-define\|rekey-fsync-parent\|after-rekey\|after-record\|after-abandon\)$/\1/p' \
  "$E2E_TMP/last-stderr" | tr '\n' ' ')
e2e_ok "a traced change lists its fault points ($points)" test -n "$points"
killed=0
bad=0
for n in $points; do
  e2e_random "$E2E_WORK/polk" 64
  MSVM_SECURITY_FAULT_INJECT=$n e2e_call K set-security-policy --settings settings.xml --policy polk
  [ "$K_EXIT" = 137 ] || { e2e_diag "fault point $n: not killed (exit $K_EXIT)"; continue; }
  killed=$((killed + 1))
  if ! e2e_virsh start "$vm" >"$E2E_TMP/kstart.out" 2>&1; then
    e2e_diag "killed at fault point $n: the VM does not start: $(cat "$E2E_TMP/kstart.out")"
    bad=$((bad + 1))
  fi
  e2e_virsh destroy "$vm" >/dev/null 2>&1
done
e2e_random "$E2E_WORK/polk" 64
e2e_call K set-security-policy --settings settings.xml --policy polk
e2e_note "set-security-policy killed at $killed fault points"
e2e_ok "the change was killed after each of them ($killed)" test "$killed" -gt 3
e2e_is "$bad" 0 "after every kill the VM started (the hook finished or held back the change)"
e2e_method_ok_k() { e2e_method_ok K; }
e2e_ok "the last, uninterrupted call succeeds" e2e_method_ok_k
e2e_ok "the VM boots" e2e_boot "$vm"
current_policy "$E2E_TMP/polcur"
e2e_ok "the passphrase of the current generation" \
  e2e_vm_passphrase "$E2E_TMP/PK" "$uuid" "" "$E2E_TMP/polcur"
e2e_ok "the NV data reads back under it" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/PK" 48 "$E2E_TMP/data.4"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.4"

e2e_done
