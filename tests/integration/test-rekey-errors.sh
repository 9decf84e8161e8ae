#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `msvm-security rekey` refusals (issue 3): wrong old passphrase, damaged
# state files, a state in use by a running swtpm, a read-only file system, a
# directory the caller may not write, a full file system.  Each must give its
# documented return code (DESIGN.md sections 6-8, tpm/msvm-rekey.h), exit 1,
# and leave every byte, name, mode and owner below the state's parent as it
# was (no side directory left).  The damage itself is checked against the
# real swtpm, which must refuse the damaged state too.  TAP on stdout.
set -u
. "$(dirname "$0")/lib-swtpm.sh"
it_setup

RC_FAILED=32768
RC_ACCESS_DENIED=32769
RC_IN_USE=32774
RC_INVALID_STATE=32775

make_base libvirt libvirt || bail "cannot make the libvirt-style state"
KEY_A=$BASE_KEY
KEY_B=B:aes-256-cbc:pbkdf2
PERMALL=tpm2-00.permall
VOLATILE=tpm2-00.volatilestate

# refused NAME PARENT RC [OLDKEY]: re-key PARENT/tpm2 from OLDKEY (default A)
# to B, expecting exit 1 with RC and an untouched PARENT.
refused() {
  local name=$1 parent=$2 rc=$3 old=${4:-$KEY_A} before
  before=$(tree_snapshot "$parent")
  rekey_key "$parent/tpm2" "$old" "$KEY_B"
  expect_rekey 1 "$rc" "$name: refused with ReturnValue $rc"
  if [ "$(tree_snapshot "$parent")" = "$before" ]; then
    tap_ok 0 "$name: every byte, mode and owner as it was, nothing left beside"
  else
    tap_ok 1 "$name: every byte, mode and owner as it was, nothing left beside"
    diag "$(diff <(echo "$before") <(tree_snapshot "$parent"))"
  fi
}

# swtpm_refuses NAME DIR FILE: the real swtpm does not open the damaged
# state (permall), or cannot resume from it (volatilestate: swtpm then starts
# without it, and the TPM is not started up, so nothing reads back).
swtpm_refuses() {
  local try=$WORK/try
  rm -rf "$try"
  cp -a "$2" "$try"
  if [ "$3" = "$VOLATILE" ]; then
    ! tpm_verify "$try" "$KEY_A" "$WORK/expect/libvirt" >/dev/null
    tap_ok $? "$1: swtpm itself cannot resume from the damaged volatile state"
  else
    ! swtpm_opens "$try" "$KEY_A"
    tap_ok $? "$1: swtpm itself refuses the damaged state"
  fi
}

# damaged NAME FILE ACTION...: clone, damage FILE with ACTION, check swtpm
# refuses it, and that rekey refuses it with 32775 touching nothing.
damaged() {
  local name=$1 file=$2 p=$WORK/e/$1
  shift 2
  clone_base libvirt "$p"
  "$@" "$p/tpm2/$file" || { tap_ok 1 "$name: could not damage $file"; return; }
  swtpm_refuses "$name" "$p/tpm2" "$file"
  refused "$name" "$p" "$RC_INVALID_STATE"
}

truncate_half() { truncate -s $(($(stat -c %s "$1") / 2)) "$1"; }
truncate_tail() { truncate -s $(($(stat -c %s "$1") - 1)) "$1"; }
flip_ciphertext() {
  local off len
  read -r off len <<<"$(record 2 "$1")"
  [ -n "$off" ] && flip_bit "$1" $((off + len / 2))
}
flip_last_block() {
  local off len
  read -r off len <<<"$(record 2 "$1")"
  [ -n "$off" ] && flip_bit "$1" $((off + len - 1))
}
flip_hmac() {
  local off len
  read -r off len <<<"$(record 3 "$1")"
  [ -n "$off" ] && [ "$len" = 32 ] && flip_bit "$1" $((off + 7))
}
flip_iv() {
  local off len
  read -r off len <<<"$(record 6 "$1")"
  [ -n "$off" ] && flip_bit "$1" "$off"
}
iv_16() { shorten_iv "$1" 16; }
header_len_plus_1() { put_be32 "$1" 6 $(($(stat -c %s "$1") + 1)); }
flags_aes128() { put_bytes "$1" 4 0 1; }

# --- Keys. ------------------------------------------------------------------
p=$WORK/e/wrong-passphrase
clone_base libvirt "$p"
refused "wrong old passphrase" "$p" "$RC_INVALID_STATE" C:aes-256-cbc:pbkdf2
refused "right passphrase, wrong old kdf (sha512)" "$p" "$RC_INVALID_STATE" A:aes-256-cbc:sha512
refused "no old passphrase for an encrypted state" "$p" "$RC_INVALID_STATE" none

# --- Damaged state files. -------------------------------------------------
damaged "permall truncated to half" "$PERMALL" truncate_half
damaged "permall missing its last byte" "$PERMALL" truncate_tail
damaged "flipped bit in permall ciphertext" "$PERMALL" flip_ciphertext
damaged "flipped bit in permall's last cipher block (padding)" "$PERMALL" flip_last_block
damaged "flipped bit in permall HMAC" "$PERMALL" flip_hmac
damaged "flipped bit in permall IV" "$PERMALL" flip_iv
damaged "permall IV record of 16 bytes under AES-256" "$PERMALL" iv_16
damaged "header's total length one more than the file" "$PERMALL" header_len_plus_1
damaged "header flags claim AES-128 (flags 0x0001) on an AES-256 file" "$PERMALL" flags_aes128
damaged "flipped bit in volatilestate ciphertext" "$VOLATILE" flip_ciphertext
damaged "volatilestate truncated to half" "$VOLATILE" truncate_half

p=$WORK/e/no-permall
clone_base libvirt "$p"
rm -f "$p/tpm2/$PERMALL"
refused "no permall" "$p" "$RC_INVALID_STATE"

p=$WORK/e/tpm12
clone_base libvirt "$p"
mv "$p/tpm2" "$p/tpm1.2"
mv "$p/tpm1.2/$PERMALL" "$p/tpm1.2/tpm-00.permall"
mv "$p/tpm1.2/$VOLATILE" "$p/tpm1.2/tpm-00.volatilestate"
before=$(tree_snapshot "$p")
rekey_key "$p/tpm1.2" "$KEY_A" "$KEY_B"
expect_rekey 1 "$RC_INVALID_STATE" "TPM 1.2 state directory: refused with ReturnValue $RC_INVALID_STATE"
tap_is "$(tree_snapshot "$p")" "$before" "TPM 1.2 state directory: untouched"

p=$WORK/e/missing
mkdir -p "$p"
rekey_key "$p/tpm2" "$KEY_A" "$KEY_B"
expect_rekey 1 "$RC_INVALID_STATE" "missing state directory: refused with ReturnValue $RC_INVALID_STATE"
tap_is "$(ls -A "$p")" "" "missing state directory: not created (libvirt would take it for a new TPM)"

p=$WORK/e/symlink
clone_base libvirt "$p"
mv "$p/tpm2" "$p/real"
ln -s real "$p/tpm2"
refused "state directory is a symbolic link" "$p" "$RC_INVALID_STATE"

p=$WORK/e/unknown-entry
clone_base libvirt "$p"
echo notes >"$p/tpm2/notes.txt"
refused "unknown file in the state directory" "$p" "$RC_INVALID_STATE"

# swtpm refuses a plaintext state when given a key; so does rekey when given
# an old passphrase for one (the caller's idea of the state is wrong).
make_base plain plaintext || bail "cannot make the plaintext state"
p=$WORK/e/plain-with-passphrase
clone_base plain "$p"
refused "old passphrase given for a plaintext state" "$p" "$RC_INVALID_STATE"

# --- In use: swtpm holds the directory's .lock. ---------------------------
p=$WORK/e/in-use
clone_base libvirt "$p"
if swtpm_start "$p/tpm2" "$KEY_A"; then
  refused "locked by a running swtpm" "$p" "$RC_IN_USE"
  tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$WORK/nv-in-use" >>"$WORK/tools.log" 2>&1
  cmp -s "$WORK/nv-in-use" "$WORK/expect/libvirt/nv"
  tap_ok $? "locked by a running swtpm: the swtpm still serves the NV index"
  swtpm_stop
else
  tap_ok 1 "locked by a running swtpm: swtpm did not start"
fi

# --- A directory the caller may not write. --------------------------------
# Root ignores permissions: as root the attempt runs as an unprivileged user
# (created when missing); otherwise as the calling user.
RUNNER=
if it_is_root; then
  RUNNER=msvm-test
  if ! getent passwd "$RUNNER" >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$RUNNER" >/dev/null 2>&1
  fi
  if getent passwd "$RUNNER" >/dev/null && command -v runuser >/dev/null; then
    RK_AS=(runuser -u "$RUNNER" --)
  else
    RUNNER=
  fi
else
  RUNNER=$(id -un)
fi

# as_runner PARENT: hand the state over to the unprivileged caller.
as_runner() {
  if it_is_root; then
    chown -R "$RUNNER:$(id -gn "$RUNNER")" "$1"
  fi
}

if [ -n "$RUNNER" ]; then
  p=$WORK/e/parent-ro
  clone_base libvirt "$p"
  as_runner "$p"
  chmod 0555 "$p"
  refused "parent directory not writable by $RUNNER" "$p" "$RC_ACCESS_DENIED"
  chmod 0755 "$p"

  p=$WORK/e/state-ro
  clone_base libvirt "$p"
  as_runner "$p"
  chmod 0444 "$p/tpm2/"* "$p/tpm2/.lock"
  chmod 0555 "$p/tpm2"
  refused "state directory and files not writable by $RUNNER" "$p" "$RC_ACCESS_DENIED"
  chmod 0755 "$p/tpm2"

  if it_is_root; then
    p=$WORK/e/root-owned
    clone_base libvirt "$p"
    chmod 0644 "$p/tpm2/"* "$p/tpm2/.lock"
    refused "root's state, readable but not writable by $RUNNER" "$p" "$RC_ACCESS_DENIED"
  fi
  RK_AS=()
else
  tap_skip "no unprivileged user to run as (useradd or runuser missing)"
fi

# --- Read-only and full file systems: small tmpfs mounts, root only. ------
if it_is_root; then
  m=$WORK/mnt-ro
  mkdir -p "$m"
  if mount -t tmpfs -o size=1m,mode=0755 msvm-it-ro "$m"; then
    IT_MOUNTS+=("$m")
    clone_base libvirt "$m/uuid"
    mount -o remount,ro "$m"
    refused "read-only file system" "$m/uuid" "$RC_ACCESS_DENIED"
  else
    tap_ok 1 "read-only file system: cannot mount a tmpfs"
  fi

  m=$WORK/mnt-full
  mkdir -p "$m"
  if mount -t tmpfs -o size=256k,mode=0755 msvm-it-full "$m"; then
    IT_MOUNTS+=("$m")
    clone_base libvirt "$m/uuid"
    dd if=/dev/zero of="$m/filler" bs=4k status=none 2>/dev/null
    tap_is "$(df --output=avail "$m" | tail -n 1 | tr -d ' ')" 0 "full file system: the tmpfs is full"
    refused "full file system" "$m/uuid" "$RC_FAILED"
    # With room again the same state re-keys (the refusal left it whole).
    rm -f "$m/filler"
    rekey_key "$m/uuid/tpm2" "$KEY_A" "$KEY_B"
    expect_rekey 0 0 "full file system: once there is room the state re-keys"
    tpm_verify "$m/uuid/tpm2" "$KEY_B" "$WORK/expect/libvirt"
    tap_ok $? "full file system: and swtpm under B reads everything back"
  else
    tap_ok 1 "full file system: cannot mount a tmpfs"
  fi
else
  tap_skip "read-only file system test needs root (tmpfs mount)"
  tap_skip "full file system test needs root (tmpfs mount)"
fi

tap_done
