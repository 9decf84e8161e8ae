# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lib-swtpm.sh: shared code of the integration tests that use the REAL swtpm
# (0.7.1 on Debian 12) and tpm2-tools as the oracle for `msvm-security rekey`.
# Sourced by tests/integration/test-*.sh (TAP on stdout) and by
# tests/bench/bench-rekey.sh.
#
# Layout of a state, as libvirt keeps it: <parent>/tpm2/ with tpm2-00.permall,
# tpm2-00.volatilestate and .lock; <parent> stands for <swtpm>/<uuid>/ and is
# where the re-key builds its side directory, so the tests compare it whole.
#
# swtpm listens on a unix socket inside the test's own work directory
# (tpm2-tss's swtpm TCTI: swtpm:path=P talks to P and P.ctrl), so the test
# scripts need no fixed ports and may run in parallel.
#
# Keys are written "NAME:CIPHER:KDF" (e.g. A:aes-256-cbc:pbkdf2, the libvirt
# way) or "none" (plaintext); NAME's passphrase lives in $WORK/pass/NAME.

# ---------------------------------------------------------------- TAP ------

IT_N=0
IT_FAILED=0

diag() { printf '%s\n' "$*" | sed 's/^/# /'; }

# tap_ok STATUS DESCRIPTION: ok when STATUS is 0.
tap_ok() {
  IT_N=$((IT_N + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $IT_N - $2"
  else
    echo "not ok $IT_N - $2"
    IT_FAILED=$((IT_FAILED + 1))
  fi
}

# tap_is GOT EXPECTED DESCRIPTION
tap_is() {
  if [ "$1" = "$2" ]; then
    tap_ok 0 "$3"
  else
    tap_ok 1 "$3"
    diag "got:      $1" "expected: $2"
  fi
}

# tap_run DESCRIPTION COMMAND...: ok when COMMAND exits 0.
tap_run() {
  local desc=$1
  shift
  "$@"
  tap_ok $? "$desc"
}

tap_skip() {
  IT_N=$((IT_N + 1))
  echo "ok $IT_N # SKIP $*"
}

# Print the plan (at the end, which TAP allows) and exit accordingly.
tap_done() {
  echo "1..$IT_N"
  [ "$IT_FAILED" -eq 0 ]
  exit $?
}

bail() {
  echo "Bail out! $*"
  exit 1
}

# ---------------------------------------------------------- workspace ------

MSVM=
WORK=
SWTPM_PID=
IT_MOUNTS=()

it_is_root() { [ "$(id -u)" -eq 0 ]; }

# it_setup: skip the whole script when swtpm or tpm2-tools are missing, find
# the built msvm-security, create the work directory and the passphrases.
it_setup() {
  local p
  for p in swtpm swtpm_setup swtpm_ioctl tpm2_nvdefine tpm2_createprimary; do
    if ! command -v "$p" >/dev/null 2>&1; then
      echo "1..0 # SKIP $p not installed (Debian: swtpm swtpm-tools tpm2-tools)"
      exit 0
    fi
  done
  if ! ls /usr/lib/*/libtss2-tcti-swtpm.so.0 >/dev/null 2>&1 &&
     ! ls /usr/lib/libtss2-tcti-swtpm.so.0 >/dev/null 2>&1; then
    echo "1..0 # SKIP the tpm2-tss swtpm TCTI (libtss2-tcti-swtpm0) is not installed"
    exit 0
  fi
  MSVM=${MSVM_SECURITY:-${MSVM_BUILDDIR:-}/hooks/msvm-security}
  [ -x "$MSVM" ] || bail "msvm-security not built (MSVM_BUILDDIR=${MSVM_BUILDDIR:-unset})"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/msvm-it.XXXXXX") || bail "mktemp failed"
  # An unprivileged test user must reach the states below it.
  chmod 0755 "$WORK"
  trap it_cleanup EXIT
  mkdir -p "$WORK/pass" "$WORK/base" "$WORK/expect"
  # 64 lowercase hex characters without newline: what libvirt hands swtpm
  # for a secret this project defines (DESIGN.md section 5).
  local n
  for n in A B C D; do
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/pass/$n"
  done
  chmod 0644 "$WORK"/pass/*
  export TPM2TOOLS_TCTI="swtpm:path=$WORK/tpm.sock"
  export TSS2_LOG=all+NONE
}

it_cleanup() {
  local m
  swtpm_kill
  for m in "${IT_MOUNTS[@]}"; do
    umount -l "$m" 2>/dev/null
  done
  [ -n "$WORK" ] && [ -z "${MSVM_TEST_KEEP:-}" ] && rm -rf "$WORK"
}

# ------------------------------------------------------------- swtpm -------

pass_file() { echo "$WORK/pass/$1"; }

# key_args KEY: swtpm's --key option for KEY (nothing for "none").
key_args() {
  local name cipher kdf mode
  [ "$1" = none ] && return 0
  IFS=: read -r name cipher kdf <<<"$1"
  case "$cipher" in
    aes-256-cbc) mode=aes-256-cbc ;;
    aes-128-cbc) mode=aes-cbc ;;
    *) echo "lib-swtpm: bad key '$1'" >&2; return 1 ;;
  esac
  printf '%s\n' --key "pwdfile=$(pass_file "$name"),mode=$mode,kdf=${kdf:-pbkdf2}"
}

# swtpm_start DIR KEY [FLAGS]: start swtpm on the state directory DIR; FLAGS
# defaults to resuming the stored volatile state when there is one and to
# TPM2_Startup(CLEAR) otherwise.  Returns swtpm's status (non-zero when it
# cannot open the state).
swtpm_start() {
  local dir=$1 key=$2 flags=${3:-} rc
  local -a args
  if [ -z "$flags" ]; then
    if [ -e "$dir/tpm2-00.volatilestate" ]; then
      flags=not-need-init
    else
      flags=not-need-init,startup-clear
    fi
  fi
  key_args "$key" >/dev/null || return 2
  mapfile -t args < <(key_args "$key")
  rm -f "$WORK/tpm.sock" "$WORK/tpm.sock.ctrl" "$WORK/swtpm.pid"
  swtpm socket --tpm2 --tpmstate dir="$dir" \
    --server type=unixio,path="$WORK/tpm.sock" \
    --ctrl type=unixio,path="$WORK/tpm.sock.ctrl" \
    --flags "$flags" --pid file="$WORK/swtpm.pid" \
    --log file="$WORK/swtpm.log",level=1 -d "${args[@]}" >>"$WORK/swtpm.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    # The daemon writes its pid file; do not race it.
    for _ in $(seq 100); do
      SWTPM_PID=$(cat "$WORK/swtpm.pid" 2>/dev/null)
      [ -n "$SWTPM_PID" ] && [ -S "$WORK/tpm.sock" ] && break
      sleep 0.02
    done
    [ -n "$SWTPM_PID" ] || return 1
  fi
  return $rc
}

# Is our swtpm still alive (and really a swtpm, not a reused pid)?
swtpm_alive() {
  [ -n "$SWTPM_PID" ] && kill -0 "$SWTPM_PID" 2>/dev/null &&
    grep -q swtpm "/proc/$SWTPM_PID/cmdline" 2>/dev/null
}

swtpm_wait_gone() {
  for _ in $(seq 100); do
    swtpm_alive || return 0
    sleep 0.05
  done
  return 1
}

# swtpm_stop: orderly shutdown through the control channel.
swtpm_stop() {
  [ -n "$SWTPM_PID" ] || return 0
  swtpm_ioctl --unix "$WORK/tpm.sock.ctrl" -s >>"$WORK/swtpm.log" 2>&1
  swtpm_wait_gone || swtpm_kill
  SWTPM_PID=
}

swtpm_kill() {
  if swtpm_alive; then
    kill -KILL "$SWTPM_PID" 2>/dev/null
    swtpm_wait_gone
  fi
  SWTPM_PID=
}

# swtpm_opens DIR KEY: does swtpm start on DIR under KEY?  Leaves it stopped.
swtpm_opens() {
  if swtpm_start "$1" "$2"; then
    swtpm_stop
    return 0
  fi
  return 1
}

# ------------------------------------------------------------ states -------

# The data a test writes and reads back, in $WORK/expect/<name>/:
#   nv        32 random bytes in NV index 0x01500016 (owner read/write)
#   name      the name of the persistent ECC primary key 0x81000005
#   seedpub   the public key of an ECC primary created again from the owner
#             seed (the same seed gives the same key)
#   pcr       PCR 16 (sha256) after extending it with a random digest,
#             which only the stored volatile state keeps
#   nvlist    the NV indices (incl. swtpm_setup's EK certificates)
#   perslist  the persistent handles
# tpm_verify checks the files present in EXPECTDIR.
NV_INDEX=0x01500016
PERSISTENT=0x81000005

tpm_record_lists() {
  tpm2_getcap handles-nv-index >"$1/nvlist" &&
    tpm2_getcap handles-persistent >"$1/perslist"
}

# tpm_populate DIR KEY EXPECTDIR: write the data above into the state under
# KEY and store the volatile state (swtpm_ioctl -v), then stop swtpm.
tpm_populate() {
  local dir=$1 key=$2 ex=$3
  mkdir -p "$ex"
  head -c 32 /dev/urandom >"$ex/nv"
  swtpm_start "$dir" "$key" not-need-init,startup-clear || { diag "swtpm did not start on $dir"; return 1; }
  {
    tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite" &&
      tpm2_nvwrite "$NV_INDEX" -C o -i "$ex/nv" &&
      tpm2_createprimary -C o -G ecc -c "$WORK/prim.ctx" &&
      tpm2_evictcontrol -C o -c "$WORK/prim.ctx" "$PERSISTENT" &&
      tpm2_flushcontext -t &&
      tpm2_readpublic -c "$PERSISTENT" -n "$ex/name" &&
      tpm2_createprimary -C o -G ecc -f pem -o "$ex/seedpub" &&
      tpm2_flushcontext -t &&
      tpm2_pcrextend "16:sha256=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" &&
      tpm2_pcrread sha256:16 -o "$ex/pcr" &&
      tpm_record_lists "$ex" &&
      swtpm_ioctl --unix "$WORK/tpm.sock.ctrl" -v
  } >>"$WORK/tools.log" 2>&1
  local rc=$?
  swtpm_stop
  [ $rc -eq 0 ] || { diag "populating $dir failed:"; diag "$(tail -5 "$WORK/tools.log")"; }
  return $rc
}

# tpm_verify DIR KEY EXPECTDIR: swtpm opens DIR under KEY and everything in
# EXPECTDIR reads back.  Diagnoses what differs.  swtpm may write the state
# (under KEY) while it runs, so call it last or on a copy.
tpm_verify() {
  local dir=$1 key=$2 ex=$3 got=$WORK/got rc=0 f
  rm -rf "$got"
  mkdir -p "$got"
  if ! swtpm_start "$dir" "$key"; then
    diag "swtpm does not open $dir under $key:"
    diag "$(tail -3 "$WORK/swtpm.log")"
    return 1
  fi
  {
    tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$got/nv"
    tpm2_readpublic -c "$PERSISTENT" -n "$got/name"
    tpm2_pcrread sha256:16 -o "$got/pcr"
    tpm_record_lists "$got"
    # Last: the transient key stays loaded until swtpm stops (not saved).
    tpm2_createprimary -C o -G ecc -f pem -o "$got/seedpub"
  } >>"$WORK/tools.log" 2>&1
  swtpm_stop
  for f in nv name seedpub pcr nvlist perslist; do
    [ -e "$ex/$f" ] || continue
    if ! cmp -s "$ex/$f" "$got/$f"; then
      diag "$dir under $key: '$f' does not read back"
      rc=1
    fi
  done
  return $rc
}

# make_base NAME FLAVOR: a populated state in $WORK/base/NAME/tpm2 with its
# expectations in $WORK/expect/NAME.  FLAVOR:
#   libvirt    swtpm_setup as libvirt 9.0 runs it (EK, certificates, locked
#              NVRAM, --cipher aes-256-cbc), key A:aes-256-cbc:pbkdf2
#   plaintext  swtpm_setup without a key
#   aes128     swtpm_setup's default cipher (outside libvirt), A:aes-128-cbc:pbkdf2
#   sha512     swtpm's kdf=sha512 (swtpm_setup has no kdf option: swtpm
#              manufactures the TPM itself), A:aes-256-cbc:sha512
# Sets BASE_KEY to the key the state is under.
BASE_KEY=
make_base() {
  local name=$1 flavor=$2 dir=$WORK/base/$1/tpm2 key
  mkdir -p "$dir"
  case "$flavor" in
    libvirt)
      key=A:aes-256-cbc:pbkdf2
      # Not root: per-user swtpm_setup / swtpm-localca configuration, as a
      # libvirt session daemon has (the system CA directory is root's).
      if ! it_is_root; then
        export XDG_CONFIG_HOME=$WORK/config
        swtpm_setup --create-config-files skip-if-exist >>"$WORK/setup.log" 2>&1
      fi
      swtpm_setup --tpm2 --tpmstate "$dir" --vmid "it:5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b" \
        --createek --create-ek-cert --create-platform-cert --lock-nvram \
        --pwdfile "$(pass_file A)" --cipher aes-256-cbc >>"$WORK/setup.log" 2>&1 ;;
    plaintext)
      key=none
      swtpm_setup --tpm2 --tpmstate "$dir" --createek >>"$WORK/setup.log" 2>&1 ;;
    aes128)
      key=A:aes-128-cbc:pbkdf2
      swtpm_setup --tpm2 --tpmstate "$dir" --createek \
        --pwdfile "$(pass_file A)" >>"$WORK/setup.log" 2>&1 ;;
    sha512)
      key=A:aes-256-cbc:sha512 ;;
    *) bail "unknown flavor $flavor" ;;
  esac || { diag "swtpm_setup failed:"; diag "$(tail -5 "$WORK/setup.log")"; return 1; }
  tpm_populate "$dir" "$key" "$WORK/expect/$name" || return 1
  BASE_KEY=$key
}

# clone_base NAME DEST: copy the state with owner, modes (cp -a).
clone_base() {
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  cp -a "$WORK/base/$1" "$2"
}

# tree_snapshot DIR: every name, type, mode, owner, size and content below
# DIR (not times), for "every byte as it was" comparisons.
tree_snapshot() {
  (
    cd "$1" || exit 1
    find . -printf '%p %y %m %U:%G %s %l\n' | LC_ALL=C sort
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  )
}

# header_flags FILE: the 16-bit flags of a swtpm state file, in hex (0x0009).
header_flags() { printf '0x%04x' "$(be_uint "$1" 4 2)"; }

# --------------------------------------------- state-file surgery ------

# be_uint FILE OFFSET SIZE: a big-endian unsigned number read from FILE.
be_uint() {
  local v=0 b
  for b in $(od -An -tu1 -j "$2" -N "$3" "$1"); do
    v=$((v * 256 + b))
  done
  echo "$v"
}

# put_bytes FILE OFFSET BYTE...: overwrite bytes (decimal values) in place.
put_bytes() {
  local f=$1 off=$2 b s=
  shift 2
  for b in "$@"; do
    s="$s$(printf '\\%03o' "$b")"
  done
  # shellcheck disable=SC2059
  printf "$s" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# put_be32 FILE OFFSET VALUE
put_be32() {
  put_bytes "$1" "$2" $(($3 >> 24 & 255)) $(($3 >> 16 & 255)) $(($3 >> 8 & 255)) $(($3 & 255))
}

# records FILE: "TAG DATA_OFFSET LENGTH" per record (after the 10-byte header).
records() {
  local f=$1 size off=10 tag len
  size=$(stat -c %s "$f")
  while [ $((off + 6)) -le "$size" ]; do
    tag=$(be_uint "$f" "$off" 2)
    len=$(be_uint "$f" $((off + 2)) 4)
    echo "$tag $((off + 6)) $len"
    off=$((off + 6 + len))
  done
}

# record TAG FILE: "DATA_OFFSET LENGTH" of the first record with TAG.
record() {
  records "$2" | awk -v t="$1" '$1 == t { print $2, $3; exit }'
}

# flip_bit FILE OFFSET: invert the lowest bit of one byte.
flip_bit() {
  local b
  b=$(be_uint "$1" "$2" 1)
  put_bytes "$1" "$2" $((b ^ 1))
}

# shorten_iv FILE NEWLEN: cut the IV record (tag 6) down to NEWLEN bytes,
# fixing its length field and the header's total length: a well-formed file
# whose IV record has the wrong length.
shorten_iv() {
  local f=$1 n=$2 off len tmp=$1.surgery
  read -r off len <<<"$(record 6 "$f")"
  [ -n "$off" ] && [ "$len" -gt "$n" ] || return 1
  {
    head -c $((off + n)) "$f"
    tail -c +$((off + len + 1)) "$f"
  } >"$tmp"
  put_be32 "$tmp" $((off - 4)) "$n"
  put_be32 "$tmp" 6 "$(stat -c %s "$tmp")"
  cat "$tmp" >"$f" && rm -f "$tmp"
}

# --------------------------------------------------------- rekey -------

# rekey ARGS...: run `msvm-security rekey ARGS`, prefixed by "${RK_AS[@]}"
# when set (another user).  Sets RK_EXIT (exit status), RK_RV (the
# ReturnValue on stdout, empty when none), RK_OUT and RK_ERR (file names).
RK_AS=()
rekey() {
  RK_OUT=$WORK/rekey.out
  RK_ERR=$WORK/rekey.err
  # (The group's redirection takes the shell's "Killed" notice of a
  # fault-injected run.)
  {
    "${RK_AS[@]}" "$MSVM" rekey "$@" >"$RK_OUT" 2>"$RK_ERR"
    RK_EXIT=$?
  } 2>>"$WORK/shell.log"
  RK_RV=$(sed -n 's/^ReturnValue: \([0-9][0-9]*\) (.*)$/\1/p' "$RK_OUT" | head -n 1)
}

# rekey_args DIR OLDKEY NEWKEY: the options for a re-key from OLDKEY to NEWKEY.
rekey_args() {
  local dir=$1 name cipher kdf
  printf '%s\n' --state-dir "$dir"
  if [ "$2" != none ]; then
    IFS=: read -r name cipher kdf <<<"$2"
    printf '%s\n' --old-passphrase-file "$(pass_file "$name")" --old-kdf "$kdf"
  fi
  IFS=: read -r name cipher kdf <<<"$3"
  printf '%s\n' --new-passphrase-file "$(pass_file "$name")" --new-kdf "$kdf" --new-cipher "$cipher"
}

# rekey_key DIR OLDKEY NEWKEY
rekey_key() {
  local -a a
  mapfile -t a < <(rekey_args "$@")
  rekey "${a[@]}"
}

# rekey_diag: the outputs of the last rekey, as TAP comments.
rekey_diag() {
  diag "rekey exit $RK_EXIT, stdout:" "$(cat "$RK_OUT")" "stderr:" "$(head -c 2000 "$RK_ERR")"
}

# expect_rekey EXIT RV DESCRIPTION: one TAP line for the last rekey.
expect_rekey() {
  if [ "$RK_EXIT" = "$1" ] && [ "$RK_RV" = "$2" ]; then
    tap_ok 0 "$3"
  else
    tap_ok 1 "$3 (expected exit $1 and ReturnValue $2)"
    rekey_diag
  fi
}
