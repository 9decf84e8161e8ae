#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `msvm-security rekey` under a started swtpm that holds no .lock yet
# (issue 9): libvirt starts `swtpm socket` without `not-need-init`, and swtpm
# locks .lock only at CMD_INIT, which QEMU sends later.  A re-key in that
# window used to succeed, and the VM start then failed with an HMAC error.
# It must refuse with 32774, naming the swtpm's pid, and leave every byte as
# it was; with swtpm stopped it must succeed.  Also: the other spellings of
# the state directory a real swtpm accepts (--tpmstate=dir=, a symlink with a
# trailing slash, TPM_PATH), a swtpm on a directory of a similar name (not in
# use), and a swtpm started while the re-key runs, just before its commit
# point (the exchange).  TAP on stdout.
set -u
. "$(dirname "$0")/lib-swtpm.sh"
it_setup

RC_IN_USE=32774
make_base libvirt libvirt || bail "cannot make the libvirt-style state"
KEY_A=$BASE_KEY
KEY_B=B:aes-256-cbc:pbkdf2

# libvirt_swtpm DIR-ARGS...: start swtpm the way libvirt 9.0 does
# (qemuTPMEmulatorBuildCommand: a control socket only, no --flags, so it
# waits for CMD_INIT and locks nothing), under key A.  The state directory
# is given by the arguments (default: "--tpmstate dir=DIR,mode=0600").
# Sets LV_PID.
LV_PID=
libvirt_swtpm() {
  rm -f "$WORK/lv.ctrl" "$WORK/lv.pid"
  swtpm socket --ctrl type=unixio,path="$WORK/lv.ctrl",mode=0600 "$@" \
    --log file="$WORK/lv.log" --terminate --tpm2 --pid file="$WORK/lv.pid" \
    --key pwdfile="$(pass_file A)",mode=aes-256-cbc -d >>"$WORK/lv.log" 2>&1 || return 1
  for _ in $(seq 100); do
    LV_PID=$(cat "$WORK/lv.pid" 2>/dev/null)
    [ -n "$LV_PID" ] && [ -S "$WORK/lv.ctrl" ] && return 0
    sleep 0.02
  done
  return 1
}

lv_alive() { [ -n "$LV_PID" ] && grep -q swtpm "/proc/$LV_PID/cmdline" 2>/dev/null; }

# lv_stop: CMD_SHUTDOWN over the control channel, as libvirt stops it.
lv_stop() {
  [ -n "$LV_PID" ] || return 0
  swtpm_ioctl --unix "$WORK/lv.ctrl" -s >>"$WORK/lv.log" 2>&1
  for _ in $(seq 100); do
    lv_alive || break
    sleep 0.05
  done
  lv_alive && kill -KILL "$LV_PID" 2>/dev/null
  LV_PID=
}
lv_cleanup() { lv_alive && kill -KILL "$LV_PID" 2>/dev/null; it_cleanup; }
trap lv_cleanup EXIT

# lock_held FILE: does any process hold a lock on FILE (/proc/locks)?
lock_held() {
  local ino
  ino=$(stat -c %i "$1") || return 1
  awk -v i="$ino" '{ n = split($(NF - 2), a, ":"); if (a[n] == i) f = 1 } END { exit !f }' \
    /proc/locks
}

# refused_by NAME PARENT PID: rekey PARENT/tpm2 A -> B gives 32774, names
# PID and a swtpm, and PARENT is byte for byte as it was.
refused_by() {
  local name=$1 parent=$2 pid=$3 before
  before=$(tree_snapshot "$parent")
  rekey_key "$parent/tpm2" "$KEY_A" "$KEY_B"
  expect_rekey 1 "$RC_IN_USE" "$name: refused with ReturnValue $RC_IN_USE"
  if grep -q "a swtpm holds this TPM state directory (process $pid," "$RK_OUT"; then
    tap_ok 0 "$name: the message names swtpm's pid $pid"
  else
    tap_ok 1 "$name: the message names swtpm's pid $pid"
    rekey_diag
  fi
  if [ "$(tree_snapshot "$parent")" = "$before" ]; then
    tap_ok 0 "$name: sha256 of every file, names, modes, owners as they were"
  else
    tap_ok 1 "$name: sha256 of every file, names, modes, owners as they were"
    diag "$(diff <(echo "$before") <(tree_snapshot "$parent"))"
  fi
}

# --- The issue's case: started as libvirt starts it, not yet initialised. ---
p=$WORK/u/vm
clone_base libvirt "$p"
if libvirt_swtpm --tpmstate dir="$p/tpm2",mode=0600; then
  tap_ok 0 "swtpm started as libvirt starts it (pid $LV_PID)"
  ! lock_held "$p/tpm2/.lock"
  tap_ok $? "precondition: the started swtpm holds no lock on .lock before CMD_INIT"
  refused_by "started, not yet initialised swtpm" "$p" "$LV_PID"

  # QEMU's CMD_INIT: now swtpm locks .lock too (the refusal stays).
  swtpm_ioctl --unix "$WORK/lv.ctrl" -i >>"$WORK/lv.log" 2>&1
  tap_ok $? "CMD_INIT accepted by the swtpm (the state opens under A: nothing was changed)"
  lock_held "$p/tpm2/.lock"
  tap_ok $? "after CMD_INIT swtpm holds .lock"
  before=$(tree_snapshot "$p")
  rekey_key "$p/tpm2" "$KEY_A" "$KEY_B"
  expect_rekey 1 "$RC_IN_USE" "initialised swtpm: refused with ReturnValue $RC_IN_USE"
  tap_is "$(tree_snapshot "$p")" "$before" "initialised swtpm: every byte as it was"

  lv_stop
  ! lv_alive
  tap_ok $? "swtpm stopped"
  rekey_key "$p/tpm2" "$KEY_A" "$KEY_B"
  expect_rekey 0 0 "swtpm stopped: the re-key succeeds"
  # (The initialised swtpm consumed the stored volatile state, so PCR 16 is
  # not compared: that is swtpm's doing, before the re-key.)
  mkdir -p "$WORK/expect/after-init"
  cp "$WORK/expect/libvirt/"{nv,name,seedpub,nvlist,perslist} "$WORK/expect/after-init/"
  tpm_verify "$p/tpm2" "$KEY_B" "$WORK/expect/after-init"
  tap_ok $? "swtpm stopped: swtpm under B reads back NV index, persistent key, owner seed"
else
  tap_ok 1 "swtpm started as libvirt starts it"
  diag "$(tail -5 "$WORK/lv.log")"
fi

# --- Other spellings a real swtpm takes. -----------------------------------
p=$WORK/u/spelled
clone_base libvirt "$p"
ln -s "$p" "$WORK/u/link"
if libvirt_swtpm "--tpmstate=dir=$WORK/u/link/tpm2/,mode=0600"; then
  refused_by "swtpm with --tpmstate=dir= through a symlink and a trailing slash" "$p" "$LV_PID"
  lv_stop
else
  tap_ok 1 "swtpm with --tpmstate=dir=LINK/tpm2/ started"
fi

p=$WORK/u/env
clone_base libvirt "$p"
if TPM_PATH=$p/tpm2 libvirt_swtpm; then
  refused_by "swtpm given the directory in TPM_PATH" "$p" "$LV_PID"
  lv_stop
else
  tap_ok 1 "swtpm with TPM_PATH started"
fi

# A swtpm on a directory whose name starts alike is no user of this one.
p=$WORK/u/near
clone_base libvirt "$p"
clone_base libvirt "$WORK/u/near2"
mv "$WORK/u/near2/tpm2" "$WORK/u/near/tpm22"
if libvirt_swtpm --tpmstate dir="$p/tpm22",mode=0600; then
  rekey_key "$p/tpm2" "$KEY_A" "$KEY_B"
  expect_rekey 0 0 "a swtpm on .../tpm22 does not keep .../tpm2 from being re-keyed"
  lv_stop
else
  tap_ok 1 "swtpm on tpm22 started"
fi

# --- A swtpm started while the re-key runs, before its exchange. ----------
# The re-key stalls at its commit point (MSVM_SECURITY_FAULT_STALL, test
# only); the swtpm starts while the new directory waits beside the old one.
p=$WORK/u/late
clone_base libvirt "$p"
before=$(tree_snapshot "$p")
mapfile -t a < <(rekey_args "$p/tpm2" "$KEY_A" "$KEY_B")
MSVM_SECURITY_FAULT_STALL=rekey-exchange:3000 MSVM_SECURITY_FAULT_TRACE=1 \
  "$MSVM" rekey "${a[@]}" >"$WORK/late.out" 2>"$WORK/late.err" &
rk=$!
for _ in $(seq 200); do
  grep -q 'rekey-fsync-side-dir' "$WORK/late.err" && break
  sleep 0.02
done
if grep -q 'rekey-fsync-side-dir' "$WORK/late.err" && libvirt_swtpm --tpmstate dir="$p/tpm2",mode=0600; then
  wait "$rk"
  late_exit=$?
  late_rv=$(sed -n 's/^ReturnValue: \([0-9][0-9]*\) (.*)$/\1/p' "$WORK/late.out")
  tap_is "$late_exit $late_rv" "1 $RC_IN_USE" \
    "swtpm started during the re-key: refused at the commit point with $RC_IN_USE"
  grep -q "(process $LV_PID, .*started while the re-key ran" "$WORK/late.out"
  tap_ok $? "swtpm started during the re-key: the message names pid $LV_PID"
  tap_is "$(tree_snapshot "$p")" "$before" \
    "swtpm started during the re-key: every byte as it was, the side directory gone"
  lv_stop
else
  wait "$rk"
  tap_ok 1 "swtpm started during the stalled re-key"
  diag "$(cat "$WORK/late.err")"
fi

tap_done
