#!/bin/bash
# Regenerate the golden swtpm TPM 2.0 states tests/data/tpm2state-*/ with the
# REAL swtpm_setup / swtpm (0.7.1 on Debian 12).  Each folder holds:
#   tpm2/       the state directory as swtpm left it (without .lock)
#   passphrase  the passphrase file given to swtpm (absent for plaintext)
#   params      kdf= and cipher= (or cipher=none) for the data-driven tests
#   README.md   how the folder was made
# Usage: tests/data/make-tpm2state.sh   (from anywhere; needs swtpm, swtpm-tools, tpm2-tools)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $(cat "$work"/pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# Run swtpm on $1 with extra args, start up the TPM, create a primary key so
# that the volatile state holds something, store the volatile state, stop.
run_swtpm() {
  local dir=$1; shift
  swtpm socket --tpm2 --tpmstate dir="$dir" \
    --ctrl type=unixio,path="$work/srv.ctrl" --server type=unixio,path="$work/srv" \
    --flags startup-clear --pid file="$work/pid" "$@" &
  for _ in $(seq 50); do [ -S "$work/srv" ] && break; sleep 0.1; done
  tpm2_createprimary -T "swtpm:path=$work/srv" -C o -c "$work/primary.ctx" >/dev/null
  swtpm_ioctl --unix "$work/srv.ctrl" -v
  swtpm_ioctl --unix "$work/srv.ctrl" -s
  wait
  rm -f "$work/srv" "$work/srv.ctrl" "$work/primary.ctx" "$work/pid"
}

new_case() {
  rm -rf "$here/tpm2state-$1"
  mkdir -p "$here/tpm2state-$1/tpm2"
}

finish_case() {
  rm -f "$here/tpm2state-$1/tpm2/.lock"
  chmod 0644 "$here/tpm2state-$1"/tpm2/*
}

# 1. libvirt style: AES-256-CBC, PBKDF2, passphrase = 64 hex characters without
#    newline handed over a pipe (what libvirt 9.0 does with the secret's value).
c=aes256-pbkdf2; new_case $c; d=$here/tpm2state-$c
printf '%s' 8e88a3b30728b41185deac01e8f503460d1bae710d666968789a7e4487a10c79 > "$d/passphrase"
swtpm_setup --tpm2 --tpmstate "$d/tpm2" --createek --cipher aes-256-cbc \
  --pwdfile-fd 3 3< "$d/passphrase" >/dev/null
run_swtpm "$d/tpm2" --key pwdfd=3,mode=aes-256-cbc 3< "$d/passphrase"
printf 'kdf=pbkdf2\ncipher=aes-256-cbc\n' > "$d/params"
finish_case $c

# 2. swtpm's default mode: AES-128-CBC, PBKDF2, a passphrase file WITH a
#    trailing newline (swtpm uses the whole file content, newline included).
c=aes128-pbkdf2; new_case $c; d=$here/tpm2state-$c
printf 'test passphrase\n' > "$d/passphrase"
swtpm_setup --tpm2 --tpmstate "$d/tpm2" --createek --pwdfile "$d/passphrase" >/dev/null
run_swtpm "$d/tpm2" --key pwdfile="$d/passphrase"
printf 'kdf=pbkdf2\ncipher=aes-128-cbc\n' > "$d/params"
finish_case $c

# 3. kdf=sha512 (swtpm_setup has no kdf option: swtpm itself manufactures the TPM).
c=aes256-sha512; new_case $c; d=$here/tpm2state-$c
printf 'sha512 passphrase' > "$d/passphrase"
run_swtpm "$d/tpm2" --key pwdfile="$d/passphrase",mode=aes-256-cbc,kdf=sha512
printf 'kdf=sha512\ncipher=aes-256-cbc\n' > "$d/params"
finish_case $c

# 4. plaintext state.
c=plaintext; new_case $c; d=$here/tpm2state-$c
swtpm_setup --tpm2 --tpmstate "$d/tpm2" --createek >/dev/null
run_swtpm "$d/tpm2"
printf 'kdf=none\ncipher=none\n' > "$d/params"
finish_case $c
