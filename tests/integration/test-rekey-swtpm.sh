#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `msvm-security rekey` against the REAL swtpm (issue 3): states made by
# swtpm_setup / swtpm under a passphrase A (libvirt's AES-256-CBC, swtpm's
# AES-128 default, the kdf=sha512 variant) or plaintext, holding an NV index,
# a persistent object and a stored volatile state, are re-keyed to B; swtpm
# under B must read everything back and swtpm under the old key must no
# longer open the state.  TAP on stdout.
set -u
. "$(dirname "$0")/lib-swtpm.sh"
it_setup

STATE_FILES='tpm2-00.permall tpm2-00.volatilestate'

# meta DIR: names, types, modes and owners below DIR (not contents).
meta() { (cd "$1" && find . -printf '%p %y %m %U:%G\n' | LC_ALL=C sort); }

# rekey_case NAME BASE OLDKEY NEWKEY [FLAGS]: clone BASE, re-key it from
# OLDKEY to NEWKEY and check everything an operator would.  FLAGS is the
# header flags both state files must carry afterwards.
rekey_case() {
  local name=$1 base=$2 old=$3 new=$4 flags=${5:-0x0009}
  local parent=$WORK/t/$name dir f before
  dir=$parent/tpm2
  clone_base "$base" "$parent"
  before=$(meta "$parent")
  cp -a "$dir" "$WORK/t/$name.orig"

  rekey_key "$dir" "$old" "$new"
  expect_rekey 0 0 "$name: rekey $old -> $new reports ReturnValue 0"
  grep -q '^ReturnValue: 0 (Completed with No Error)$' "$RK_OUT"
  tap_ok $? "$name: report line names the return value"

  tap_is "$(meta "$parent")" "$before" \
    "$name: same files, modes and owners; no side directory left beside tpm2"
  for f in $STATE_FILES; do
    tap_is "$(header_flags "$dir/$f")" "$flags" "$name: $f header flags $flags"
    ! cmp -s "$dir/$f" "$WORK/t/$name.orig/$f"
    tap_ok $? "$name: $f was rewritten"
  done

  # The old key (on a copy: swtpm may write a state it opens).
  rm -rf "$WORK/t/$name.try"
  cp -a "$dir" "$WORK/t/$name.try"
  ! swtpm_opens "$WORK/t/$name.try" "$old"
  tap_ok $? "$name: swtpm no longer opens the state under the old key ($old)"
  if [ "$new" != none ] && [ "$old" != none ]; then
    ! swtpm_opens "$WORK/t/$name.try" none
    tap_ok $? "$name: swtpm does not open it as plaintext"
  fi

  tpm_verify "$dir" "$new" "$WORK/expect/$base"
  tap_ok $? "$name: swtpm under $new reads back NV index, persistent object, owner seed, volatile PCR 16"
}

# --- The bases, made by the real tools, and the oracle's own sanity. -------
make_base libvirt libvirt || bail "cannot make the libvirt-style state"
KEY_LIBVIRT=$BASE_KEY
make_base plain plaintext || bail "cannot make the plaintext state"
make_base aes128 aes128 || bail "cannot make the AES-128 state"
KEY_AES128=$BASE_KEY
make_base sha512 sha512 || bail "cannot make the kdf=sha512 state"
KEY_SHA512=$BASE_KEY

for b in libvirt plain aes128 sha512; do
  clone_base "$b" "$WORK/o/$b"
done
tap_is "$(header_flags "$WORK/o/libvirt/tpm2/tpm2-00.permall") $(header_flags "$WORK/o/aes128/tpm2/tpm2-00.permall") $(header_flags "$WORK/o/sha512/tpm2/tpm2-00.permall") $(header_flags "$WORK/o/plain/tpm2/tpm2-00.permall")" \
  "0x0009 0x0001 0x0009 0x0000" "oracle: swtpm wrote AES-256, AES-128, AES-256 and plaintext states"
tpm_verify "$WORK/o/libvirt/tpm2" "$KEY_LIBVIRT" "$WORK/expect/aes128" >/dev/null
tap_ok $((!$?)) "oracle: verifying one TPM against another's data fails"
! swtpm_opens "$WORK/o/sha512/tpm2" A:aes-256-cbc:pbkdf2
tap_ok $? "oracle: the kdf matters (a kdf=sha512 state does not open with PBKDF2)"
! swtpm_opens "$WORK/o/aes128/tpm2" A:aes-256-cbc:pbkdf2
tap_ok $? "oracle: the cipher matters (an AES-128 state does not open with AES-256)"
rm -f "$WORK/o/plain/tpm2/tpm2-00.volatilestate"
tpm_verify "$WORK/o/plain/tpm2" none "$WORK/expect/plain" >/dev/null
tap_ok $((!$?)) "oracle: without the stored volatile state PCR 16 does not read back"

# --- Issue 3's four sources. -----------------------------------------------
rekey_case libvirt-a-to-b libvirt "$KEY_LIBVIRT" B:aes-256-cbc:pbkdf2
rekey_case plaintext-to-b plain none B:aes-256-cbc:pbkdf2
rekey_case sha512-to-b sha512 "$KEY_SHA512" B:aes-256-cbc:pbkdf2
rekey_case aes128-to-b aes128 "$KEY_AES128" B:aes-256-cbc:pbkdf2

# --- The new side's options. -----------------------------------------------
rekey_case to-aes128 libvirt "$KEY_LIBVIRT" B:aes-128-cbc:pbkdf2 0x0001
rekey_case to-sha512 libvirt "$KEY_LIBVIRT" B:aes-256-cbc:sha512
! swtpm_opens "$WORK/t/to-sha512/tpm2" B:aes-256-cbc:pbkdf2
tap_ok $? "to-sha512: the state does not open with B under PBKDF2"
rekey_case sha512-to-sha512 sha512 "$KEY_SHA512" B:aes-256-cbc:sha512
rekey_case aes128-to-aes128-sha512 aes128 "$KEY_AES128" B:aes-128-cbc:sha512 0x0001

# Defaults: no --new-kdf / --new-cipher means libvirt's AES-256-CBC + PBKDF2.
clone_base libvirt "$WORK/t/defaults"
rekey --state-dir "$WORK/t/defaults/tpm2" --old-passphrase-file "$(pass_file A)" \
  --new-passphrase-file "$(pass_file B)"
expect_rekey 0 0 "defaults: rekey with only the passphrase files"
tpm_verify "$WORK/t/defaults/tpm2" B:aes-256-cbc:pbkdf2 "$WORK/expect/libvirt"
tap_ok $? "defaults: swtpm opens the result with --key pwdfile=B,mode=aes-256-cbc"

# Passphrases through file descriptors (as libvirt hands them to swtpm) and
# standard input; a relative state directory with a trailing slash.
clone_base libvirt "$WORK/t/fds"
rekey --state-dir "$WORK/t/fds/tpm2" --old-passphrase-fd 3 --new-passphrase-fd 4 \
  3<"$(pass_file A)" 4< <(cat "$(pass_file B)")
expect_rekey 0 0 "fds: rekey with --old-passphrase-fd (file) and --new-passphrase-fd (pipe)"
cp -a "$WORK/t/fds/tpm2" "$WORK/t/fds.try"
swtpm_opens "$WORK/t/fds.try" B:aes-256-cbc:pbkdf2
tap_ok $? "fds: swtpm opens the result under B"
clone_base libvirt "$WORK/t/stdin"
(cd "$WORK/t/stdin" && rekey --state-dir tpm2/ --old-passphrase-file "$(pass_file A)" \
  --new-passphrase-file - <"$(pass_file B)")
expect_rekey 0 0 "stdin: rekey of 'tpm2/' (relative) with the new passphrase on standard input"
tap_is "$(ls -A "$WORK/t/stdin")" tpm2 "stdin: nothing left beside tpm2"
cp -a "$WORK/t/stdin/tpm2" "$WORK/t/stdin.try"
swtpm_opens "$WORK/t/stdin.try" B:aes-256-cbc:pbkdf2
tap_ok $? "stdin: swtpm opens the result under B"

# --json: one object with the return value.
clone_base libvirt "$WORK/t/json"
rekey_json() { "$MSVM" --json rekey "$@"; }
rekey_json --state-dir "$WORK/t/json/tpm2" --old-passphrase-file "$(pass_file A)" \
  --new-passphrase-file "$(pass_file B)" >"$WORK/json.out" 2>"$WORK/json.err"
tap_ok $? "json: exit 0"
tr -d ' \n' <"$WORK/json.out" | grep -q '"ReturnValue":0,"ReturnName":"CompletedwithNoError"'
tap_ok $? "json: ReturnValue 0 in a JSON object"

# A passphrase file ending in a newline: swtpm uses every byte of the file.
printf 'a passphrase with a newline\n' >"$WORK/pass/N"
rekey_case newline-passphrase libvirt "$KEY_LIBVIRT" N:aes-256-cbc:pbkdf2

# There and back: A -> B -> A (restoring a last known good key re-keys back).
clone_base libvirt "$WORK/t/back"
rekey_key "$WORK/t/back/tpm2" "$KEY_LIBVIRT" B:aes-256-cbc:pbkdf2
expect_rekey 0 0 "back: A -> B"
rekey_key "$WORK/t/back/tpm2" B:aes-256-cbc:pbkdf2 "$KEY_LIBVIRT"
expect_rekey 0 0 "back: B -> A"
cp -a "$WORK/t/back/tpm2" "$WORK/t/back.try"
! swtpm_opens "$WORK/t/back.try" B:aes-256-cbc:pbkdf2
tap_ok $? "back: B no longer opens the state"
tpm_verify "$WORK/t/back/tpm2" "$KEY_LIBVIRT" "$WORK/expect/libvirt"
tap_ok $? "back: swtpm under A reads everything back"

# A state without a stored volatile state (swtpm stopped without -v).
clone_base libvirt "$WORK/t/novol"
rm -f "$WORK/t/novol/tpm2/tpm2-00.volatilestate"
rekey_key "$WORK/t/novol/tpm2" "$KEY_LIBVIRT" B:aes-256-cbc:pbkdf2
expect_rekey 0 0 "no volatile state: rekey A -> B"
tap_is "$(cd "$WORK/t/novol/tpm2" && ls -A | LC_ALL=C sort | tr '\n' ' ')" ".lock tpm2-00.permall " \
  "no volatile state: none is invented"
mkdir -p "$WORK/expect/novol"
cp "$WORK/expect/libvirt/"{nv,name,seedpub,nvlist,perslist} "$WORK/expect/novol/"
tpm_verify "$WORK/t/novol/tpm2" B:aes-256-cbc:pbkdf2 "$WORK/expect/novol"
tap_ok $? "no volatile state: swtpm under B reads back NV index, object, owner seed"

# --- Root re-keys a state owned by another user (libvirt's swtpm user). ----
if it_is_root; then
  owner=tss
  getent passwd "$owner" >/dev/null || owner=nobody
  p=$WORK/t/owned
  clone_base libvirt "$p"
  chown -R "$owner:$(id -gn "$owner")" "$p/tpm2"
  chmod 0750 "$p/tpm2"
  chmod 0600 "$p/tpm2/tpm2-00.permall"
  chmod 0640 "$p/tpm2/tpm2-00.volatilestate"
  chmod 0604 "$p/tpm2/.lock"
  chmod 0711 "$p"
  before=$(meta "$p")
  rekey_key "$p/tpm2" "$KEY_LIBVIRT" B:aes-256-cbc:pbkdf2
  expect_rekey 0 0 "owned by $owner: root re-keys it"
  tap_is "$(meta "$p")" "$before" "owned by $owner: owner, group and modes of every entry kept"
  tpm_verify "$p/tpm2" B:aes-256-cbc:pbkdf2 "$WORK/expect/libvirt"
  tap_ok $? "owned by $owner: swtpm under B reads everything back"

  # Mixed owners, a setgid directory and unusual modes are kept per entry.
  p=$WORK/t/mixed
  clone_base libvirt "$p"
  chown "$owner:root" "$p/tpm2"
  chmod 2770 "$p/tpm2"
  chown "root:$(id -gn "$owner")" "$p/tpm2/tpm2-00.permall"
  chmod 0460 "$p/tpm2/tpm2-00.permall"
  chown nobody:nogroup "$p/tpm2/.lock" 2>/dev/null || chown 65534:65534 "$p/tpm2/.lock"
  chmod 0666 "$p/tpm2/.lock"
  before=$(meta "$p")
  rekey_key "$p/tpm2" "$KEY_LIBVIRT" B:aes-256-cbc:pbkdf2
  expect_rekey 0 0 "mixed owners: root re-keys it"
  tap_is "$(meta "$p")" "$before" "mixed owners: each entry keeps its owner, group and mode (incl. setgid)"
else
  tap_skip "re-keying a state owned by another user needs root"
fi

tap_done
