#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 9: "installed and loaded" (the hook file older than the
# running daemon) is decided at tick precision, not with a one-second
# margin.  The hook is installed with an mtime less than one second (about
# 0.3 s) before the daemon starts, as a provisioning script does (install,
# restart, call).  A running protected VM: `set-security-policy --defer`
# answers 4096 (not 32770), and the hook finishes the job at the next start.
# The opposite: the hook touched to now, after the daemon started: --defer
# answers 32770.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

install_hook_just_before_daemon() {
  e2e_hook_install || return 1
  touch -d "@$(date +%s.%N)" "$HOOK_DST" || return 1
  # the daemon starts right after this function: keep it clearly more than
  # a clock tick, and clearly less than a second, after the hook's mtime
  sleep 0.3
}
E2E_BEFORE_DAEMON=install_hook_just_before_daemon
e2e_init
e2e_need_cmds set-security-policy job

dpid=$(cat "$E2E_RT/libvirt/libvirtd.pid" 2>/dev/null)
e2e_note "hook mtime $(stat -c %y "$HOOK_DST"); daemon (pid $dpid) started $(ps -o lstart= -p "$dpid" 2>/dev/null)"

vm=e2e-rg-defer
rg_protected "$vm"
u=$RG_UUID
e2e_ok "the VM is started" e2e_virsh start "$vm"
e2e_random "$E2E_WORK/p1" 70
e2e_call R set-security-policy --settings "s-$vm.xml" --policy p1 --defer
e2e_ok "set-security-policy --defer, hook installed < 1 s before the daemon started: 4096" \
  e2e_rv_is R 4096
job=$(e2e_job_id "$R_JOB")
e2e_virsh destroy "$vm" >/dev/null 2>&1
if [ -n "$job" ]; then
  e2e_ok "  ... the next start through the hook" e2e_virsh start "$vm"
  e2e_is "$(rg_job_state "$job")" "7 0" "  ... finishes the job (the hook was loaded)"
else
  e2e_skip "  ... the next start finishes the job" "no job"
fi
e2e_ok "the VM runs" eval '[ "$(e2e_domstate "$vm")" = running ] || e2e_virsh start "$vm"'

touch "$HOOK_DST"
e2e_random "$E2E_WORK/p2" 71
e2e_call R set-security-policy --settings "s-$vm.xml" --policy p2 --defer
e2e_ok "the hook touched to now, after the daemon started: --defer answers 32770" \
  e2e_rv_is R 32770

e2e_done
