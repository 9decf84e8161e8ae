#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 9, item 2 (DESIGN.md section 11): the CLI, the hook's second
# stage and the libtpms check's helper make themselves non-dumpable and set RLIMIT_CORE to 0 before they
# read a secret.  Each is run as an unprivileged user (nobody) and held at
# the fault point "process-protected" (MSVM_SECURITY_FAULT_STALL, test
# builds); meanwhile, from outside:
#  - the process runs as uid 65534, yet its /proc/PID files belong to root
#    (the kernel's sign of a non-dumpable process: no core, no ptrace or
#    /proc/PID/mem for its own uid), and
#  - its core-file limit is 0 (soft and hard).
# A control process (sleep, as nobody) shows the first check can fail.
# TAP on stdout; as root only (the user switch).

. "$(dirname "$0")/lib-swtpm.sh"
. "$(dirname "$0")/lib-hook.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP runs the programs as another user: root only"
  exit 0
fi
CLI=$MSVM_BUILDDIR/hooks/msvm-security
[ -x "$CLI" ] && [ -x "$HOOK" ] || bail "the CLI or the hook is not built (MSVM_BUILDDIR=${MSVM_BUILDDIR:-unset})"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msvm-protect.XXXXXX") || bail "mktemp failed"
chmod 755 "$WORK"
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT
AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

# wait_for PID COMM: until the process exists and runs COMM (after execs)
wait_for() {
  local i
  for i in $(seq 1 100); do
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

# protected WHAT PID: the checks on a process held at "process-protected"
protected() {
  local what=$1 pid=$2 uid owner core
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  owner=$(stat -c %u "/proc/$pid/status" 2>/dev/null)
  tap_is "$uid" 65534 "$what: runs as nobody"
  tap_is "$owner" 0 "$what: its /proc entries belong to root: not dumpable"
  core=$(awk '/^Max core file size/ {print $5, $6}' "/proc/$pid/limits" 2>/dev/null)
  tap_is "$core" "0 0" "$what: core file size limit 0 (soft and hard)"
}

# --- control: an ordinary process as nobody owns its /proc entries
"${AS_NOBODY[@]}" sleep 5 & PIDS+=($!)
wait_for $! sleep || bail "the control process did not start"
tap_is "$(stat -c %u "/proc/$!/status")" 65534 "control: a dumpable process as nobody owns its /proc entries"

# --- the CLI (it protects itself before parsing its arguments)
"${AS_NOBODY[@]}" env MSVM_SECURITY_FAULT_STALL=process-protected:3000 "$CLI" --help >/dev/null &
PIDS+=($!)
wait_for $! msvm-security || bail "the CLI did not start"
sleep 0.3
protected "msvm-security (CLI)" "$!"

# --- the hook's second stage, for a managed guest
hook_domain_xml "$WORK/vm.xml" vm "$(hook_uuid)" - yes
chmod 644 "$WORK/vm.xml"
"${AS_NOBODY[@]}" env -i PATH="$HOOK_PATH" LC_ALL=C MSVM_SECURITY_FAULT_STALL=process-protected:3000 \
  "$HOOK" vm prepare begin - <"$WORK/vm.xml" >/dev/null 2>&1 &
PIDS+=($!)
wait_for $! msvm-security-h || bail "the hook did not start"
sleep 0.3
protected "the hook's second stage (prepare begin)" "$!"

# --- the libtpms check's helper (it reads a plaintext state on stdin)
HELPER=$MSVM_BUILDDIR/tpm/msvm-security-tpm-validate
mkfifo "$WORK/request"
chmod 666 "$WORK/request"
"${AS_NOBODY[@]}" env MSVM_SECURITY_FAULT_STALL=process-protected:3000 "$HELPER" \
  <"$WORK/request" >/dev/null 2>&1 &
PIDS+=($!)
exec 7>"$WORK/request"   # (the helper's open of its stdin waits for a writer)
wait_for $! msvm-security-t || bail "the helper did not start"
sleep 0.3
protected "msvm-security-tpm-validate (the helper)" "$!"
exec 7>&-

tap_done
