#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 7: the hook's `incoming` marker (left by "restore begin"
# so that the following "prepare begin" of the restore does not touch the
# state) must be bound to its operation: a restore that failed before
# "prepare" must not exempt the next normal start.  With the hook
# installed, a protected VM; a save image of it made beforehand (start,
# virsh save, start again).
#  a. Running: `set-security-policy --defer` answers 4096 with a job;
#     `virsh restore IMAGE` fails ("already active") after the restore hook
#     ran; destroy and start normally right away: the hook finishes the
#     deferred job at prepare (job show: JobState 7, ErrorCode 0; the
#     store's state equals current) and the VM runs.
#  b. Running: another `--defer` (4096); destroyed; `virsh restore IMAGE
#     --xml X` with X the image's definition with another memory size fails
#     (the ABI check) after the restore hook ran, the VM stopped; a normal
#     start right away: the hook finishes the job (7 0, state == current),
#     the VM runs.
#  c. A real `virsh save` / `virsh restore` round trip of the protected VM
#     still works with the hook: the restore is not blocked, the store's
#     generations are not moved, and afterwards the state opens under the
#     current generation's passphrase.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_use_hook
e2e_init
e2e_need_cmds set-security-policy job

vm=e2e-rg-incoming
rg_protected "$vm"
u=$RG_UUID
sdir=$(e2e_state_dir "$u")
marker=$E2E_STORE/$u/incoming
img=$E2E_WORK/vm.save
store_key() { e2e_store_get "$u" store "$1"; }
rv4096() { e2e_rv_is R 4096; }
running() { [ "$(e2e_domstate "$vm")" = running ]; }
marker_note() { e2e_note "$1: incoming marker $( [ -e "$marker" ] && echo "present ($(cat "$marker"))" || echo absent)"; }

e2e_ok "setup: started" e2e_virsh start "$vm"
e2e_ok "setup: virsh save to an image" e2e_virsh save "$vm" "$img"
e2e_ok "setup: started again" e2e_virsh start "$vm"

# --- a. a restore refused because the VM is running ------------------------
e2e_random "$E2E_WORK/pa" 90
e2e_call R set-security-policy --settings "s-$vm.xml" --policy pa --defer
e2e_ok "a: set-security-policy --defer on the running VM: 4096" rv4096
joba=$(e2e_job_id "$R_JOB")
e2e_ok "  ... with a job ($joba)" test -n "$joba"
e2e_not "a: virsh restore IMAGE of the running VM fails" e2e_virsh restore "$img"
e2e_diag "$(cat "$E2E_LOG")"
marker_note "a: after the failed restore"
e2e_ok "a: destroyed" e2e_virsh destroy "$vm"
marker_note "a: after the destroy"
e2e_ok "a: a normal start right away succeeds" e2e_virsh start "$vm"
e2e_is "$(rg_job_state "$joba")" "7 0" "a: the hook finished the deferred job at prepare (JobState 7, ErrorCode 0)"
e2e_is "$(store_key state)" "$(store_key current)" "  ... the store's state equals current"
e2e_ok "  ... the VM runs" running

# --- b. a restore that fails after the restore hook, the VM stopped --------
e2e_random "$E2E_WORK/pb" 91
e2e_call R set-security-policy --settings "s-$vm.xml" --policy pb --defer
e2e_ok "b: set-security-policy --defer on the running VM: 4096" rv4096
jobb=$(e2e_job_id "$R_JOB")
e2e_ok "b: destroyed" e2e_virsh destroy "$vm"
e2e_virsh save-image-dumpxml --security-info "$img" |
  sed -e "s|<memory unit='KiB'>[0-9]*</memory>|<memory unit='KiB'>262144</memory>|" \
      -e "s|<currentMemory unit='KiB'>[0-9]*</currentMemory>|<currentMemory unit='KiB'>262144</currentMemory>|" \
  >"$E2E_WORK/bad.xml"
e2e_give "$E2E_WORK/bad.xml"
e2e_ok "b: the image's definition with another memory size" grep -q 262144 "$E2E_WORK/bad.xml"
e2e_not "b: virsh restore IMAGE --xml (ABI mismatch) fails" e2e_virsh restore "$img" --xml bad.xml
e2e_diag "$(cat "$E2E_LOG")"
marker_note "b: after the failed restore"
e2e_is "$(e2e_domstate "$vm")" "shut off" "  ... the VM is still shut off"
e2e_ok "b: a normal start right away succeeds" e2e_virsh start "$vm"
e2e_is "$(rg_job_state "$jobb")" "7 0" "b: the hook finished the deferred job at prepare (JobState 7, ErrorCode 0)"
e2e_is "$(store_key state)" "$(store_key current)" "  ... the store's state equals current"
e2e_ok "  ... the VM runs" running

# --- c. a real save / restore round trip ------------------------------------
running || e2e_virsh start "$vm" >/dev/null 2>&1
cur=$(store_key current) st=$(store_key state)
e2e_ok "c: virsh save of the running VM" e2e_virsh save "$vm" "$E2E_WORK/vm2.save"
e2e_ok "c: virsh restore of that image succeeds through the hook" \
  e2e_virsh restore "$E2E_WORK/vm2.save"
e2e_ok "  ... the VM runs" running
e2e_is "$(store_key current) $(store_key state)" "$cur $st" "  ... the store's generations were not moved"
e2e_ok "  ... no incoming marker left" test ! -e "$marker"
e2e_virsh destroy "$vm" >/dev/null 2>&1
e2e_ok "c: the passphrase of the current generation" rg_gen_passphrase "$E2E_TMP/Pcur" "$u" "$cur"
e2e_ok "  ... opens the state" e2e_tpm_opens "$sdir" "$E2E_TMP/Pcur"

e2e_done
