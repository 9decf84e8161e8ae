#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crash test of `msvm-security rekey` (issue 3): the re-key A -> B is killed
# (SIGKILL, MSVM_SECURITY_FAULT_INJECT=N) at each of its crash-safety points
# in turn, N = 1, 2, ... until a run completes.  After each kill:
#   - the tpm2 directory exists and holds exactly its original files;
#   - the real swtpm opens it under exactly one of A and B and reads back the
#     NV index, the persistent object, the owner seed and the volatile PCR;
#   - a leftover side directory may exist beside it, and the next rekey run
#     (from whichever key is in force, to C) removes it and succeeds.
# TAP on stdout.
set -u
. "$(dirname "$0")/lib-swtpm.sh"
it_setup

make_base libvirt libvirt || bail "cannot make the libvirt-style state"
KEY_A=$BASE_KEY
KEY_B=B:aes-256-cbc:pbkdf2
KEY_C=C:aes-256-cbc:pbkdf2
EX=$WORK/expect/libvirt

listing() { (cd "$1" && ls -A | LC_ALL=C sort | tr '\n' ' '); }
BASE_PARENT=$(listing "$WORK/base/libvirt")
BASE_FILES=$(listing "$WORK/base/libvirt/tpm2")

# The points, as the traced run names them.
clone_base libvirt "$WORK/trace"
MSVM_SECURITY_FAULT_TRACE=1 rekey_key "$WORK/trace/tpm2" "$KEY_A" "$KEY_B"
expect_rekey 0 0 "traced run completes"
POINTS=$(grep -c '^msvm-fault-point ' "$RK_ERR")
diag "$(grep '^msvm-fault-point ' "$RK_ERR")"
[ "$POINTS" -ge 3 ]
tap_ok $? "rekey passes crash-safety points ($POINTS)"

# opens_under DIR KEY: swtpm opens a copy of DIR under KEY (the copy keeps the
# crashed state as it is for the next rekey).
opens_under() {
  rm -rf "$WORK/try"
  cp -a "$1" "$WORK/try"
  swtpm_opens "$WORK/try" "$2"
}

under_a=0
under_b=0
completed=0
n=1
while [ "$n" -le $((POINTS + 1)) ]; do
  p=$WORK/crash/$n
  clone_base libvirt "$p"
  MSVM_SECURITY_FAULT_INJECT=$n rekey_key "$p/tpm2" "$KEY_A" "$KEY_B"
  if [ "$RK_EXIT" -ne 137 ]; then
    expect_rekey 0 0 "point $n: past the last point the run completes"
    tpm_verify "$p/tpm2" "$KEY_B" "$EX"
    tap_ok $? "point $n: swtpm under B reads everything back"
    tap_is "$(listing "$p")" "$BASE_PARENT" "point $n: nothing left beside tpm2"
    completed=$n
    break
  fi

  # Killed.  What is on disk now?
  tap_is "$(listing "$p/tpm2" 2>&1)" "$BASE_FILES" "point $n: killed; tpm2 holds its files ($BASE_FILES)"
  a=1
  b=1
  opens_under "$p/tpm2" "$KEY_A" && a=0
  opens_under "$p/tpm2" "$KEY_B" && b=0
  if [ $a -eq 0 ] && [ $b -ne 0 ]; then
    key=$KEY_A
    under_a=$((under_a + 1))
  elif [ $b -eq 0 ] && [ $a -ne 0 ]; then
    key=$KEY_B
    under_b=$((under_b + 1))
  else
    key=
  fi
  if [ -n "$key" ]; then
    tap_ok 0 "point $n: swtpm opens the state under exactly one key (${key%%:*})"
    cp -a "$p/tpm2" "$WORK/check"
    tpm_verify "$WORK/check" "$key" "$EX"
    tap_ok $? "point $n: all data intact under ${key%%:*}"
    rm -rf "$WORK/check"
  else
    tap_ok 1 "point $n: swtpm opens the state under exactly one key (A: $a, B: $b)"
    n=$((n + 1))
    continue
  fi
  [ "$(listing "$p")" = "$BASE_PARENT" ] || diag "point $n: left beside tpm2: $(listing "$p")"

  # The next run finishes the job from the key in force and cleans up.
  rekey_key "$p/tpm2" "$key" "$KEY_C"
  expect_rekey 0 0 "point $n: the next rekey (${key%%:*} -> C) succeeds"
  tap_is "$(listing "$p")" "$BASE_PARENT" "point $n: and leaves nothing beside tpm2"
  tpm_verify "$p/tpm2" "$KEY_C" "$EX"
  tap_ok $? "point $n: swtpm under C reads everything back"
  n=$((n + 1))
done

tap_is "$completed" $((POINTS + 1)) "the run with N = points + 1 is the first to complete"
[ "$under_a" -ge 1 ] && [ "$under_b" -ge 1 ]
tap_ok $? "kills left the state under A ($under_a times) and under B ($under_b times)"

tap_done
