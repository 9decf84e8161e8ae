#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The model-based randomized campaign of issue 8 (item 3 of "Build this"):
# a real session daemon WITH the project's hook installed, QEMU (TCG) and
# swtpm, a model of what should be true per VM, and random steps drawn from
# a seed; after every step the invariants are checked against the real thing.
#
#   CHAOS_SEED=N        replay a run exactly (default: CHAOS_DEFAULT_SEED, which
#                       meson sets for CI, else a random seed; printed first); bash's RANDOM is seeded with it and every
#                       random choice, protector bytes and NV data included,
#                       derives from RANDOM (never /dev/urandom)
#   CHAOS_STEPS=N       number of steps (default 400)
#   CHAOS_TIME_LIMIT=S  no new step is drawn after S seconds (default 420)
#   CHAOS_FAULT_PERCENT=P  P% of the steps kill a call at a random fault point
#                       (long runs that count crash points; default: the mix below)
#
# Determinism: every step draws the same number of random values (CHAOS_R)
# before it looks at anything, so the stream of draws stays aligned whatever
# the outcomes; with the same code the outcomes, hence the run, replay.
#
# The VMs: two BIOS domains and one UEFI q35 domain (the only one that may be
# shielded), each protected with the os-win sequence (SetKeyProtector,
# SetSecurityPolicy, ModifySecuritySettings) and 16 bytes of NV data written
# into its vTPM; one BIOS domain with a plaintext vTPM that the project never
# protects (the hook must let it through); clones made with dumpxml/define
# that keep the original's <encryption secret=...>.
#
# The model, per VM: its name, memory, the candidates for each half of the
# protector (one file once known; several after a kill, a concurrent pair or
# a restore, resolved from the store once no journal is open), the halves of
# the last start (last known good), whether its <tpm> was removed by hand
# (and the element, to put back exactly), whether it is shielded and gained a
# <graphics> by hand, running or not, a managed-save image, a snapshot, an
# open deferred job, its clone.
#
# Steps: the five methods with random protectors and settings, --defer on a
# running VM, start (mostly --paused: swtpm still opens the state) and
# destroy, a kill -9 at a random fault point of a call
# (MSVM_SECURITY_FAULT_INJECT) or of the hook (armed by the store root's
# .fault-inject file), recover, outside edits through virsh (memory,
# domrename, <tpm> removed and put back, <graphics> on a shielded VM), a clone
# sharing the TPM secret, managed save, snapshots (metadata-only: the domains
# have no disk; probed at setup, left out if libvirt refuses), several VMs
# started at once, two calls at once on one VM.
#
# Invariants after every step (each one counted): every call answers within
# 120 s with a code the model allows; a stopped VM's state opens under the
# passphrase of the secret its definition names (computed from the store:
# seed, halves of the generation holding that secret) and its NV data reads
# back, or, while the store records an unfinished change, under a generation
# the store holds whose secret is defined (the next start finishes it; that
# start is checked); every secret any definition, live definition, snapshot
# or managed-save image names is defined; outside edits persist (name,
# memory, a removed <tpm> stays removed, a shielded VM loses an added
# <graphics> at the next change); the VM's run state is what the model says;
# a start succeeds unless the hook was killed, and a refusal carries the
# hook's one-line message; the store's current halves are ones the model
# allows; get-key-protector returns the model's key protector.
#
# Long run (README): CHAOS_STEPS=5000 CHAOS_TIME_LIMIT=7200 with several seeds.
set -uo pipefail

CHAOS_SEED=${CHAOS_SEED:-${CHAOS_DEFAULT_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 2147483647 + 1 ))}}
CHAOS_STEPS=${CHAOS_STEPS:-${CHAOS_DEFAULT_STEPS:-400}}
CHAOS_TIME_LIMIT=${CHAOS_TIME_LIMIT:-420}
echo "# chaos seed $CHAOS_SEED (replay: CHAOS_SEED=$CHAOS_SEED CHAOS_STEPS=$CHAOS_STEPS)"

. "$(dirname "$0")/lib-e2e.sh"

e2e_use_hook
e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings get-key-protector \
  restore-last-known-good-key-protector recover job

RANDOM=$CHAOS_SEED
SEED=$CHAOS_SEED
STEP=0
FAILS=0 CHECKS=0 CRASH_CLI=0 CRASH_HOOK=0 HOOK_RUNS=0 EDITS=0 CALLS=0
STEP_FAILED=0
MSVM_SECURITY_FAULT_TRACE=1      # every call traces its fault points (stderr)
C=$E2E_TMP/chaos
mkdir -p "$C"
W=$E2E_WORK                      # files the daemon user reads
: >"$C/failures"
: >"$C/points-cli"
: >"$C/points-hook"

# ---------------------------------------------------------------- randomness

# CHAOS_R[0..7]: this step's draws (never call RANDOM in a subshell: bash
# reseeds it there).
CHAOS_R=()
draw() {
  local k
  CHAOS_R=()
  for k in 0 1 2 3 4 5 6 7 8 9; do CHAOS_R+=("$RANDOM"); done
}
# bytes OUT LEN NONCE: LEN bytes derived from the seed and NONCE (a draw)
bytes() {
  local out=$1 len=$2 nonce=$3 hex="" i=0
  while [ "${#hex}" -lt $((len * 2)) ]; do
    hex+=$(printf '%s' "chaos:$SEED:$STEP:$nonce:$i" | sha256sum | cut -c1-64)
    i=$((i + 1))
  done
  hex=${hex:0:$((len * 2))}
  printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")" >"$out"
  e2e_give "$out"
}

# ---------------------------------------------------------------- reporting

# A failure is reported once: a condition that stays broken (a secret that
# stays undefined, ...) is counted again only as a repeat.
declare -A FAIL_SEEN=()
REPEATS=0
fail() {
  local key="$*"
  if [ -n "${FAIL_SEEN[$key]:-}" ]; then REPEATS=$((REPEATS + 1)); return 0; fi
  FAIL_SEEN[$key]=$STEP
  FAILS=$((FAILS + 1))
  STEP_FAILED=1
  echo "seed $SEED step $STEP: $*" >>"$C/failures"
  e2e_tap 1 "seed $SEED step $STEP: $*"
}
# chk DESC CMD...: an invariant check (CMD's output in the log, shown on failure)
chk() {
  local desc=$1 rc; shift
  CHECKS=$((CHECKS + 1))
  "$@" >"$C/chk.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    [ -n "${FAIL_SEEN[$desc]:-}" ] || e2e_diag "$(tail -n 15 "$C/chk.log")"
    fail "$desc"
  fi
  return $rc
}
note() { echo "step $STEP: $*" >>"$C/steps.log"; }

# ---------------------------------------------------------------- libvirt, CLI

vsh() { e2e_as_user timeout 120 virsh -q -c "$E2E_URI" "$@"; }

# the most fault points seen in a completed call of each kind (traced calls)
declare -A MAXP=([set-key-protector]=0 [set-security-policy]=0 [modify-security-settings]=0
                 [get-key-protector]=0 [restore-last-known-good-key-protector]=0 [recover]=0
                 [hook]=0)
declare -A SEENK=()
# fault_point KIND DRAW -> FP: a point among those seen (and two beyond: the
# call may have more to do this time), 1..30 while none was seen
fault_point() {
  local mx=${MAXP[$1]:-0}
  if [ "$mx" -gt 0 ]; then FP=$((1 + $2 % (mx + 2))); else FP=$((1 + $2 % 30)); fi
}
# ccall VAR METHOD ARGS...: the CLI with --json under `timeout 120`; VAR_RV,
# VAR_EXIT, VAR_JOB, VAR_JSON, VAR_ERR (the stderr file), VAR_KILLED (the
# fault point name when MSVM_SECURITY_FAULT_INJECT killed it).
ccall() {
  local var=$1 m=$2 out rc err last; shift 2
  err=$C/err-$var
  out=$(e2e_as_user timeout 120 "$E2E_CLI" --json "$@" 2>"$err")
  rc=$?
  CALLS=$((CALLS + 1))
  printf -v "${var}_EXIT" %s "$rc"
  printf -v "${var}_JSON" %s "$out"
  printf -v "${var}_ERR" %s "$err"
  printf -v "${var}_RV" %s "$(jq -r '.ReturnValue // empty' <<<"$out" 2>/dev/null)"
  printf -v "${var}_JOB" %s "$(jq -r '.Job // empty' <<<"$out" 2>/dev/null)"
  printf -v "${var}_KILLED" %s ""
  last=$(sed -n 's/^msvm-fault-point \([0-9]*\) .*/\1/p' "$err" | tail -n1)
  [ -n "$last" ] && [ "$last" -gt "${MAXP[$m]:-0}" ] && [ "$rc" != 137 ] && MAXP[$m]=$last
  [ "$rc" != 137 ] && [ "$rc" != 124 ] && SEENK[$m]=1
  if [ "$rc" = 137 ] && [ -n "${MSVM_SECURITY_FAULT_INJECT:-}" ]; then
    local name
    name=$(sed -n "s/^msvm-fault-point $MSVM_SECURITY_FAULT_INJECT //p" "$err" | tail -n1)
    printf -v "${var}_KILLED" %s "${name:-?}"
    CRASH_CLI=$((CRASH_CLI + 1))
    echo "$m $MSVM_SECURITY_FAULT_INJECT ${name:-?}" >>"$C/points-cli"
    echo "  points passed: $(sed -n 's/^msvm-fault-point [0-9]* //p' "$err" | tr '\n' ' ')" >>"$C/calls.log"
  fi
  {
    echo "step $STEP: msvm-security --json $* ${MSVM_SECURITY_FAULT_INJECT:+(fault $MSVM_SECURITY_FAULT_INJECT)}"
    echo "  exit $rc: $out"
    grep -v '^msvm-fault-point' "$err" | sed 's/^/  stderr: /'
  } >>"$C/calls.log"
  return 0
}

# ---------------------------------------------------------------- the model

NVM=3
M_NAME=() M_UUID=() M_FW=() M_MEM=() M_KPC=() M_POLC=() M_LKG_KP=() M_LKG_POL=()
M_SET=() M_SHIELD=() M_TPMEDIT=() M_GFX=() M_RUN=() M_MS=() M_SNAP=() M_JOB=()
M_PENDING=() M_CLONE=() M_DATA=() M_HIST=()
CL_NAME=() CL_SRC=() CL_RUN=() CL_STARTED=()
PLAIN=e2e-chaos-plain PLAIN_UUID= PLAIN_RUN=0 PLAIN_DATA=$W/plain.data

store_file() { e2e_store_file "${M_UUID[$1]}"; }
journal_open() { grep -q '^\[journal\]' "$(store_file "$1")" 2>/dev/null; }
gen_half() {          # gen_half UUID GEN key-protector|policy OUT -> 0 if set
  local v
  v=$(e2e_store_get "$1" "generation $2" "$3")
  [ -n "$v" ] || { rm -f "$4"; return 1; }
  base64 -d <<<"$v" >"$4"
}
# in_cands FILE-or-- CANDS: the bytes (or "-" for unset) are one of the candidates
cand_match() {        # cand_match FILE|- CANDS -> prints the matching candidate
  local got=$1 c
  for c in $2; do
    if [ "$c" = - ]; then [ "$got" = - ] && { echo -; return 0; }
    elif [ "$got" != - ] && cmp -s "$got" "$c"; then echo "$c"; return 0
    fi
  done
  return 1
}
# Resolve the model's candidates from the store's current generation, once no
# journal is open; a current half the model does not allow is a failure.
resolve() {
  local i=$1 u=${M_UUID[$1]} cur kp=- pol=- m
  journal_open "$i" && return 0
  cur=$(e2e_store_get "$u" store current)
  [ -n "$cur" ] && [ "$cur" != 0 ] || return 0
  gen_half "$u" "$cur" key-protector "$C/cur.kp" && kp=$C/cur.kp
  gen_half "$u" "$cur" policy "$C/cur.pol" && pol=$C/cur.pol
  CHECKS=$((CHECKS + 1))
  if m=$(cand_match "$kp" "${M_KPC[$i]}"); then M_KPC[$i]=$m
  else fail "${M_NAME[$i]}: the store's current key protector (gen $cur) is none the model allows (${M_KPC[$i]})"
       M_KPC[$i]="${M_HIST[$i]}"
  fi
  CHECKS=$((CHECKS + 1))
  if m=$(cand_match "$pol" "${M_POLC[$i]}"); then M_POLC[$i]=$m
  else fail "${M_NAME[$i]}: the store's current policy (gen $cur) is none the model allows (${M_POLC[$i]})"
       M_POLC[$i]="${M_HIST[$i]}"
  fi
}
# After a start: the hook's started begin recorded the generation the VM
# started with as last known good (when its definition has a TPM: a VM
# started without one records nothing); the model takes last known good from
# the store.
record_lkg() {
  local i=$1 u=${M_UUID[$1]} cur lkg
  cur=$(e2e_store_get "$u" store current)
  lkg=$(e2e_store_get "$u" store last-known-good)
  if vsh dumpxml "${M_NAME[$i]}" 2>/dev/null | e2e_grep_q '<encryption ' && ! journal_open "$i"; then
    CHECKS=$((CHECKS + 1))
    [ "$lkg" = "$cur" ] ||
      fail "${M_NAME[$i]}: started with generation $cur, the store's last known good is $lkg"
  fi
  cur=$lkg
  M_LKG_KP[$i]=- M_LKG_POL[$i]=-
  gen_half "$u" "$cur" key-protector "$W/lkg-kp-$i-$STEP" && M_LKG_KP[$i]=$W/lkg-kp-$i-$STEP
  gen_half "$u" "$cur" policy "$W/lkg-pol-$i-$STEP" && M_LKG_POL[$i]=$W/lkg-pol-$i-$STEP
}

# The passphrase of libvirt secret S, from whichever store holds a generation
# with that secret: pass_for_secret S OUT -> 0 when found.
pass_for_secret() {
  local s=$1 out=$2 f u g seed kp pol
  for f in "$E2E_STORE"/*/store; do
    [ -f "$f" ] || continue
    u=$(basename "$(dirname "$f")")
    for g in $(e2e_store_generations "$u"); do
      [ "$(e2e_store_get "$u" "generation $g" secret)" = "$s" ] || continue
      seed=$(e2e_store_seed "$u") || return 1
      kp= pol=
      gen_half "$u" "$g" key-protector "$C/pk" && kp=$C/pk
      gen_half "$u" "$g" policy "$C/pp" && pol=$C/pp
      e2e_passphrase "$out" "$seed" "$u" "$kp" "$pol"
      return $?
    done
  done
  return 1
}
secret_defined() { vsh secret-list | awk '{print $1}' | e2e_grep_q -x "$1"; }

# ---------------------------------------------------------------- invariants

# state_ok DIR SECRET DATA|"" UUID: the state opens under SECRET's passphrase
# and the NV data reads back, or (an unfinished change in the store of UUID)
# under a generation the store holds whose secret is defined.
state_ok() {
  local dir=$1 s=$2 data=$3 u=$4 g gs
  if [ -n "$s" ] && pass_for_secret "$s" "$C/P"; then
    if [ -z "$data" ]; then
      e2e_tpm_opens "$dir" "$C/P" && return 0
    elif e2e_tpm_nv_read "$dir" "$C/P" 16 "$C/nv"; then
      cmp "$data" "$C/nv" && return 0
      echo "NV data differs under the definition's secret $s"; return 1
    fi
  else
    echo "no store generation holds the definition's secret '$s'"
  fi
  [ -n "$u" ] && [ -f "$(e2e_store_file "$u")" ] || return 1
  if ! grep -q '^\[journal\]' "$(e2e_store_file "$u")" &&
     [ "$(e2e_store_get "$u" store state)" = "$(e2e_store_get "$u" store current)" ]; then
    echo "and the store records no unfinished change (state = current, no journal)"
    state_diag "$dir" "$s" "$u"
    return 1
  fi
  for g in $(e2e_store_generations "$u"); do
    gs=$(e2e_store_get "$u" "generation $g" secret)
    pass_for_secret "$gs" "$C/P" || continue
    if [ -n "$data" ]; then
      e2e_tpm_nv_read "$dir" "$C/P" 16 "$C/nv" >/dev/null 2>&1 || continue
      cmp -s "$data" "$C/nv" || { echo "NV data differs under generation $g"; return 1; }
    else
      e2e_tpm_opens "$dir" "$C/P" >/dev/null 2>&1 || continue
    fi
    secret_defined "$gs" || { echo "the state opens under generation $g only, whose secret $gs is not defined"; return 1; }
    echo "unfinished change: the state opens under generation $g"
    return 0
  done
  echo "the state opens under no generation of the store"
  state_diag "$dir" "$s" "$u"
  return 1
}
# what the store says and which generation the state really opens under
state_diag() {        # state_diag DIR SECRET UUID
  local dir=$1 s=$2 u=$3 g gs opens=none
  echo "store: current $(e2e_store_get "$u" store current) state $(e2e_store_get "$u" store state)" \
    "last-known-good $(e2e_store_get "$u" store last-known-good)" \
    "journal $(grep -q '^\[journal\]' "$(e2e_store_file "$u")" && echo open || echo none)"
  for g in $(e2e_store_generations "$u"); do
    gs=$(e2e_store_get "$u" "generation $g" secret)
    pass_for_secret "$gs" "$C/P" && e2e_tpm_opens "$dir" "$C/P" >/dev/null 2>&1 && opens=$g
    echo "generation $g: secret $gs$([ "$gs" = "$s" ] && echo ' (the definition names it)')$(secret_defined "$gs" || echo ' (undefined)')"
  done
  echo "the state opens under generation: $opens"
}

vm_state_check() {    # vm_state_check I
  local i=$1 n=${M_NAME[$1]} s
  [ "${M_RUN[$i]}" = 0 ] || return 0
  vsh dumpxml --inactive "$n" 2>/dev/null | e2e_grep_q '<tpm ' || return 0
  s=$(e2e_tpm_secret "$n" 2>/dev/null)
  chk "$n: the stopped VM's state opens under the secret its definition names ($s) and its NV data reads back" \
    state_ok "$(e2e_state_dir "${M_UUID[$i]}")" "$s" "${M_DATA[$i]}" "${M_UUID[$i]}"
}

clone_state_check() { # clone_state_check K
  local k=$1 n=${CL_NAME[$1]} u s
  [ "${CL_RUN[$k]}" = 0 ] && [ "${CL_STARTED[$k]}" = 1 ] || return 0
  u=$(vsh domuuid "$n" 2>/dev/null) || return 0
  s=$(e2e_tpm_secret "$n" 2>/dev/null)
  [ -n "$s" ] && [ -f "$(e2e_state_dir "$u")/tpm2-00.permall" ] || return 0
  chk "clone $n: its state opens under the secret it shares ($s)" \
    state_ok "$(e2e_state_dir "$u")" "$s" "" ""
}

plain_check() {
  [ "$PLAIN_RUN" = 0 ] || return 0
  chk "$PLAIN (never protected): its plaintext state opens, NV data intact" \
    eval 'e2e_tpm_nv_read "$(e2e_state_dir "$PLAIN_UUID")" "" 16 "$C/nv.plain" && cmp "$PLAIN_DATA" "$C/nv.plain"'
}

# every secret named by any domain (persistent and live definitions,
# snapshots, managed-save images) is defined
secrets_named() {
  local d sn ms
  ms=$(vsh list --all --with-managed-save --name)
  for d in $(vsh list --all --name); do
    vsh dumpxml --inactive "$d"
    vsh domstate "$d" | e2e_grep_q 'running\|paused' && vsh dumpxml "$d"
    for sn in $(vsh snapshot-list --name "$d" 2>/dev/null); do vsh snapshot-dumpxml "$d" "$sn"; done
    grep -qx "$d" <<<"$ms" && vsh managedsave-dumpxml "$d"
  done 2>/dev/null | sed -n "s/.*<encryption secret=['\"]\([^'\"]*\)['\"].*/\1/p" | sort -u
}
secrets_check() {
  local s defined
  defined=$(vsh secret-list | awk '{print $1}')
  for s in $(secrets_named); do
    CHECKS=$((CHECKS + 1))
    grep -qx "$s" <<<"$defined" || fail "secret $s is named by a domain but not defined"
  done
}

mem_kib() { vsh dumpxml --inactive "$1" | sed -n "s/.*<memory unit='KiB'>\([0-9]*\)<.*/\1/p"; }

vm_checks() {         # the cheap per-VM checks
  local i=$1 n=${M_NAME[$1]} u=${M_UUID[$1]} st
  CHECKS=$((CHECKS + 1))
  [ "$(vsh domname "$u" 2>/dev/null)" = "$n" ] || {
    fail "VM $u is no longer named $n (now '$(vsh domname "$u" 2>&1)'): a rename was undone"
    n=$(vsh domname "$u" 2>/dev/null) && [ -n "$n" ] && M_NAME[$i]=$n; }
  CHECKS=$((CHECKS + 1))
  local kib
  kib=$(mem_kib "$n")
  if [ "$kib" != $((M_MEM[$i] * 1024)) ]; then
    fail "${n%%-r*}: memory is $kib KiB, the administrator set $((M_MEM[$i] * 1024)): the edit was undone"
    # reported once; the model follows so that the next edit is checked anew
    [ -n "$kib" ] && M_MEM[$i]=$((kib / 1024))
  fi
  if [ "${M_TPMEDIT[$i]}" = 1 ]; then
    CHECKS=$((CHECKS + 1))
    vsh dumpxml --inactive "$n" | e2e_grep_q '<tpm ' &&
      fail "$n: the <tpm> the administrator removed is back"
  fi
  st=$(e2e_domstate "$n")
  CHECKS=$((CHECKS + 1))
  case "${M_RUN[$i]}:$st" in
    1:running|1:paused|0:"shut off") ;;
    *) fail "$n is '$st', the model says $([ "${M_RUN[$i]}" = 1 ] && echo running || echo stopped)"
       case "$st" in running|paused) M_RUN[$i]=1 ;; *) M_RUN[$i]=0 ;; esac ;;
  esac
  CHECKS=$((CHECKS + 1))
  local ms=0
  # (per domain: virDomainHasManagedSaveImage, as the provider asks it)
  vsh dominfo "$n" 2>/dev/null | e2e_grep_q -i '^managed save: *yes' && ms=1
  # (whether libvirt keeps a managed-save image after a failed restore is
  # libvirt's business, not the protocol's: the model follows what it sees)
  [ "$ms" = "${M_MS[$i]}" ] || { note "$n: managed-save image $ms (the model had ${M_MS[$i]})"; M_MS[$i]=$ms; }
}

ms_refresh() {        # ms_refresh I: the model's managed-save flag from libvirt
  local n=${M_NAME[$1]}
  M_MS[$1]=0
  vsh dominfo "$n" 2>/dev/null | e2e_grep_q -i '^managed save: *yes' && M_MS[$1]=1
  return 0
}

invariants() {        # after every step; NV reads for one VM, all every 4 steps
  local i k
  for i in $(seq 0 $((NVM - 1))); do vm_checks "$i"; done
  secrets_check
  if [ $((STEP % 4)) = 0 ]; then
    for i in $(seq 0 $((NVM - 1))); do vm_state_check "$i"; done
    for k in "${!CL_NAME[@]}"; do clone_state_check "$k"; done
    plain_check
  else
    vm_state_check $((CHAOS_R[9] % NVM))
  fi
}

# ---------------------------------------------------------------- codes

# is_in CODE LIST
is_in() { [[ " $2 " == *" $1 "* ]]; }

# expect_call VAR I ALLOWED [DEFER]: the answer is a code the model allows,
# the exit status follows it, a job of a stopped VM reaches 7; returns 0 on
# success (0 or 4096), 1 otherwise.
expect_call() {
  local var=$1 i=$2 allowed=$3 rv ex job killed what
  rv=$(eval echo "\${${var}_RV}") ex=$(eval echo "\${${var}_EXIT}")
  job=$(eval echo "\${${var}_JOB}") killed=$(eval echo "\${${var}_KILLED}")
  what="${M_NAME[$i]}: $CALL_DESC"
  [ -n "$killed" ] && return 2
  CHECKS=$((CHECKS + 1))
  if [ "$ex" = 124 ] || [ "$ex" = 137 ]; then
    fail "$what: no answer within 120 s (exit $ex): the call wedged"; return 1
  fi
  # a managed-save image refuses a change (32775, its documented
  # precondition); the model read libvirt's flag just before the call
  if [ "$rv" = 32775 ] && [ "$ex" = 1 ] &&
     jq -r '.Message // empty' <<<"$(eval echo "\${${var}_JSON}")" | e2e_grep_q 'has a managed-save image'; then
    [ "${M_MS[$i]}" = 1 ] || fail "$what: refused for a managed-save image that libvirt did not report before the call"
    M_MS[$i]=1
    return 1
  fi
  if [ -z "$rv" ] || ! is_in "$rv" "$allowed"; then
    fail "$what: ReturnValue '${rv:-none}' (exit $ex), the model allows $allowed: $(jq -r '.Message // empty' <<<"$(eval echo "\${${var}_JSON}")" | head -c 300)"
    return 1
  fi
  CHECKS=$((CHECKS + 1))
  case "$rv" in
    0|4096) [ "$ex" = 0 ] || { fail "$what: exit $ex with ReturnValue $rv"; return 1; } ;;
    *) [ "$ex" = 1 ] || fail "$what: exit $ex with ReturnValue $rv"; return 1 ;;
  esac
  if [ "$rv" = 4096 ]; then
    local id
    id=$(e2e_job_id "$job")
    CHECKS=$((CHECKS + 1))
    [ -n "$id" ] || { fail "$what: 4096 without a job reference"; return 1; }
    # a running VM, or a stopped one whose managed-save image holds its vTPM
    # state (seed 313 step 247): the re-key waits for its next plain start
    if [ "${M_RUN[$i]}" = 1 ] || [ "${M_MS[$i]}" = 1 ]; then
      M_JOB[$i]=$id M_JOBGONE[$i]=0
    elif ! e2e_as_user timeout 130 "$E2E_CLI" job wait "$id" --timeout 120 >"$C/jobwait" 2>&1; then
      fail "$what: job $id of a stopped VM did not reach Completed: $(tail -n 2 "$C/jobwait")"
      return 1
    fi
  fi
  return 0
}

# ---------------------------------------------------------------- settings

# settings I OUT [Prop=VAL...]: the VM's instance (CIM-XML as os-win sends it)
settings() {
  local i=$1 out=$2; shift 2
  e2e_sample "$out" wmi-cimdtd20.xml "${M_UUID[$i]}" "$@"
}
# The VM's settings as last set: M_SET[i] = "TPM SHIELD VBS"
set_props() {
  local t s v
  resolve_settings "$1"
  read -r t s v <<<"${M_SET[$1]}"
  SET_PROPS=("TpmEnabled=$t" "EncryptStateAndVmMigrationTraffic=$t" "ShieldingRequested=$s"
             "VirtualizationBasedSecurityOptOut=$v")
}

# ---------------------------------------------------------------- setup

vm_setup() {          # vm_setup I NAME FW
  local i=$1 n=$2 fw=$3 u
  e2e_define_vm "$n" "$fw" notpm
  u=$E2E_UUID
  M_NAME[$i]=$n M_UUID[$i]=$u M_FW[$i]=$fw M_MEM[$i]=128 M_SHIELD[$i]=0 M_TPMEDIT[$i]=0
  M_GFX[$i]=0 M_RUN[$i]=0 M_MS[$i]=0 M_SNAP[$i]= M_JOB[$i]= M_PENDING[$i]=0 M_CLONE[$i]=
  M_SET[$i]="TRUE FALSE FALSE"
  draw
  bytes "$W/kp-0-$i" $((16 + CHAOS_R[0] % 100)) "${CHAOS_R[1]}"
  bytes "$W/pol-0-$i" $((16 + CHAOS_R[2] % 200)) "${CHAOS_R[3]}"
  bytes "$W/data-$i" 16 "${CHAOS_R[4]}"
  M_DATA[$i]=$W/data-$i
  settings "$i" "$W/s-$i.xml"
  ccall R set-key-protector set-key-protector --settings "$W/s-$i.xml" --key-protector "$W/kp-0-$i"
  e2e_method_ok R >/dev/null 2>&1 || e2e_bail "setup of $n: set-key-protector: $R_JSON"
  ccall R set-security-policy set-security-policy --settings "$W/s-$i.xml" --policy "$W/pol-0-$i"
  e2e_method_ok R >/dev/null 2>&1 || e2e_bail "setup of $n: set-security-policy: $R_JSON"
  ccall R modify-security-settings modify-security-settings --settings "$W/s-$i.xml"
  e2e_method_ok R >/dev/null 2>&1 || e2e_bail "setup of $n: modify-security-settings: $R_JSON"
  M_KPC[$i]=$W/kp-0-$i M_POLC[$i]=$W/pol-0-$i
  M_HIST[$i]="- $W/kp-0-$i $W/pol-0-$i"
  M_LKG_KP[$i]= M_LKG_POL[$i]=
  E2E_BOOT_PAUSED=1 e2e_ok "setup: $n ($fw) protected, boots through the hook" e2e_boot "$n"
  record_lkg "$i"
  e2e_ok "setup: $n: NV data written into its vTPM" eval \
    'pass_for_secret "$(e2e_tpm_secret "$n")" "$C/P" && e2e_tpm_nv_write "$(e2e_state_dir "$u")" "$C/P" "${M_DATA[$i]}"'
}

vm_setup 0 e2e-chaos-a bios
vm_setup 1 e2e-chaos-b bios
vm_setup 2 e2e-chaos-u uefi
# the fault points of each kind of call, from a traced setup call
for m in set-key-protector set-security-policy modify-security-settings; do
  e2e_note "fault points seen in a $m: ${MAXP[$m]}"
done

e2e_define_vm "$PLAIN" bios tpm
PLAIN_UUID=$E2E_UUID
E2E_BOOT_PAUSED=1 e2e_ok "setup: $PLAIN (plaintext vTPM, never protected) boots" e2e_boot "$PLAIN"
draw
bytes "$PLAIN_DATA" 16 "${CHAOS_R[0]}"
e2e_ok "setup: $PLAIN: NV data in its plaintext vTPM" \
  e2e_tpm_nv_write "$(e2e_state_dir "$PLAIN_UUID")" "" "$PLAIN_DATA"

# Snapshots of a diskless domain: libvirt may refuse them.
SNAP_OK=0
if vsh snapshot-create-as "$PLAIN" chaos-probe >"$C/snap.log" 2>&1; then
  SNAP_OK=1
  vsh snapshot-delete "$PLAIN" chaos-probe >/dev/null 2>&1
  e2e_note "snapshots of a stopped diskless domain work: snapshot steps are in"
else
  e2e_note "libvirt refuses snapshots of a diskless domain ($(head -n1 "$C/snap.log")): no snapshot steps"
fi

# the hook's fault points: a traced start
arm_hook() {          # arm_hook N TRACE: the next managed hook run dies at point N
  rm -f "$2"
  e2e_as_user sh -c 'printf "%s %s\n" "$1" "$2" >"$3"' _ "$1" "$2" "$E2E_STORE/.fault-inject"
}
arm_hook 0 "$W/hook-trace"
E2E_BOOT_PAUSED=1 e2e_boot "${M_NAME[0]}" >/dev/null 2>&1
n=$(sed -n 's/^msvm-fault-point \([0-9]*\) .*/\1/p' "$W/hook-trace" 2>/dev/null | tail -n1)
[ -n "$n" ] && MAXP[hook]=$n
e2e_note "fault points seen in a hook run at prepare begin: ${n:-none}"
rm -f "$E2E_STORE/.fault-inject"

# ---------------------------------------------------------------- steps

pick_vm() { PICK=$(( $1 % NVM )); }
stopped() { [ "${M_RUN[$1]}" = 0 ]; }

# A method call on VM I (R draws: kind, bytes, settings); FAULT=N arms a kill.
CALL_DESC=
step_method() {       # step_method I KIND-DRAW [FAULT]
  local i=$1 kd=$(( $2 % 11 )) fault=${3:-} n=${M_NAME[$1]} m defer=() allowed args=() f
  local running=${M_RUN[$1]} newkp= newpol= newset=
  ms_refresh "$i"
  case $kd in
    0|1|2) m=set-key-protector ;;
    3|4|5) m=set-security-policy ;;
    6|7) m=modify-security-settings ;;
    8|9) m=get-key-protector ;;
    10) m=restore-last-known-good-key-protector ;;
  esac
  # a VM whose <tpm> was removed by hand: only reads and recover
  if [ "${M_TPMEDIT[$i]}" = 1 ] && [ $m != get-key-protector ]; then m=get-key-protector; fi
  [ "$running" = 1 ] && [ $m != get-key-protector ] && [ $((CHAOS_R[5] % 4)) != 0 ] && defer=(--defer)
  set_props "$i"
  settings "$i" "$W/s-$i.xml" "${SET_PROPS[@]}"
  f=$W/s-$i.xml
  case $m in
    set-key-protector)
      newkp=$W/kp-$STEP-$i
      if [ $((CHAOS_R[6] % 8)) = 0 ] && [ "${M_POLC[$i]}" != - ] && ! [[ " ${M_POLC[$i]} " == *" - "* ]]; then
        printf '\0\0\0\4' >"$newkp"; e2e_give "$newkp"; newkp=-
        args=(--key-protector "$W/kp-$STEP-$i")
      else
        bytes "$newkp" $((8 + CHAOS_R[6] % 300)) "${CHAOS_R[7]}"
        args=(--key-protector "$newkp")
      fi ;;
    set-security-policy)
      newpol=$W/pol-$STEP-$i
      bytes "$newpol" $((8 + CHAOS_R[6] % 600)) "${CHAOS_R[7]}"
      args=(--policy "$newpol") ;;
    modify-security-settings)
      local t=TRUE s=FALSE v=FALSE
      [ $((CHAOS_R[6] % 7)) = 0 ] && t=FALSE
      [ "${M_FW[$i]}" = uefi ] && [ $t = TRUE ] && [ $((CHAOS_R[6] % 2)) = 0 ] && s=TRUE
      [ $((CHAOS_R[7] % 2)) = 0 ] && v=TRUE
      newset="$t $s $v"
      settings "$i" "$W/s-$i-new.xml" TpmEnabled=$t EncryptStateAndVmMigrationTraffic=$t \
        ShieldingRequested=$s VirtualizationBasedSecurityOptOut=$v
      f=$W/s-$i-new.xml ;;
  esac
  CALL_DESC="$m${defer:+ --defer}${newset:+ ($newset)}${fault:+ (fault point $fault)}"
  [ "$m" = get-key-protector ] && args=(--output "$W/got-kp")
  rm -f "$W/got-kp"
  if [ -n "$fault" ]; then
    MSVM_SECURITY_FAULT_INJECT=$fault ccall R $m $m --settings "$f" "${args[@]}" "${defer[@]}"
  else
    ccall R $m $m --settings "$f" "${args[@]}" "${defer[@]}"
  fi
  # what the model allows
  if [ $m = get-key-protector ]; then allowed="0"
  elif [ "${M_MS[$i]}" = 1 ]; then allowed="32775"
  elif [ "$running" = 1 ] && [ ${#defer[@]} = 0 ]; then
    case $m in set-*) allowed="32775" ;; *) allowed="0 32775" ;; esac
  elif [ "$running" = 1 ]; then allowed="0 4096"
  elif [ $m = restore-last-known-good-key-protector ] && [ -z "${M_LKG_KP[$i]}" ]; then allowed="0 4096 32775"
  else allowed="0 4096"
  fi
  [ $m = modify-security-settings ] && [ "${newset%% *}" = FALSE ] && [ "${M_SET[$i]%% *}" = TRUE ] &&
    [ "$running" = 1 ] && allowed+=" 32775"
  if [ -n "$R_KILLED" ]; then
    note "$n: $CALL_DESC killed at '$R_KILLED'"
    # the change may or may not take: both are allowed until resolved
    [ -n "$newkp" ] && M_KPC[$i]+=" $newkp" && M_HIST[$i]+=" $newkp"
    [ -n "$newpol" ] && M_POLC[$i]+=" $newpol" && M_HIST[$i]+=" $newpol"
    [ $m = restore-last-known-good-key-protector ] && M_KPC[$i]="${M_HIST[$i]}" M_POLC[$i]="${M_HIST[$i]}"
    [ -n "$newset" ] && M_SET[$i]="?"
    [ "${newset%% *}" = FALSE ] && M_JOBGONE[$i]=1
    M_PENDING[$i]=1
    return 0
  fi
  expect_call R "$i" "$allowed"
  local ok=$?
  note "$n: $CALL_DESC -> ${R_RV:-?} (exit $R_EXIT)"
  [ $ok = 0 ] || { [ "$R_RV" != 32775 ] || true; return 0; }
  case $m in
    get-key-protector)
      CHECKS=$((CHECKS + 1))
      local got=$W/got-kp
      [ -f "$got" ] && [ "$(od -An -tx1 "$got" | tr -d ' \n')" = 00000004 ] && got=-
      if [ "$got" != - ] && [ ! -f "$got" ]; then fail "$n: get-key-protector wrote no bytes"
      elif ! cand_match "$got" "${M_KPC[$i]}" >/dev/null; then
        fail "$n: get-key-protector returned bytes the model does not allow (${M_KPC[$i]})"
      fi
      # a read must not re-define or change anything the administrator did
      return 0 ;;
    set-key-protector) M_KPC[$i]=$newkp; M_HIST[$i]+=" $newkp" ;;
    set-security-policy) M_POLC[$i]=$newpol; M_HIST[$i]+=" $newpol" ;;
    modify-security-settings) [ "$R_RV" = 32775 ] || M_SET[$i]=$newset
      [ "${newset%% *}" = FALSE ] && M_JOBGONE[$i]=1 ;;
    restore-last-known-good-key-protector)
      if [ "$R_RV" != 32775 ]; then
        if [ -n "${M_LKG_KP[$i]}" ]; then M_KPC[$i]=${M_LKG_KP[$i]} M_POLC[$i]=${M_LKG_POL[$i]}
        else M_KPC[$i]="${M_HIST[$i]}" M_POLC[$i]="${M_HIST[$i]}"; fi
      fi ;;
  esac
  [ "$R_RV" = 32775 ] && return 0
  [ "$running" = 0 ] && M_PENDING[$i]=0
  resolve_settings "$i"
  [ "$running" = 0 ] && resolve "$i"
  # a shielded VM that gained a <graphics> loses it at the next change
  if [ "${M_GFX[$i]}" = 1 ] && [ "${M_SET[$i]}" != "?" ] && [ "$(cut -d' ' -f2 <<<"${M_SET[$i]}")" = TRUE ] &&
     [ $m != get-key-protector ] && [ "$running" = 0 ]; then
    CHECKS=$((CHECKS + 1))
    vsh dumpxml --inactive "$n" | e2e_grep_q '<graphics ' &&
      fail "$n: shielded, the <graphics> added by hand survived a change ($m)"
    M_GFX[$i]=0
  fi
  return 0
}
# after a settled change, what the definition says about TPM and shielding
resolve_settings() {
  local i=$1 n=${M_NAME[$1]} x t=TRUE s=FALSE
  [ "${M_SET[$i]}" = "?" ] || return 0
  x=$(vsh dumpxml --inactive "$n")
  grep -q '<tpm ' <<<"$x" || t=FALSE
  grep -q "name='secure-boot'" <<<"$x" && s=TRUE
  M_SET[$i]="$t $s FALSE"
}

step_recover() {      # step_recover I [FAULT]
  local i=$1 fault=${2:-} allowed="0 4096"
  CALL_DESC="recover${fault:+ (fault point $fault)}"
  if [ -n "$fault" ]; then
    MSVM_SECURITY_FAULT_INJECT=$fault ccall R recover recover --domain "${M_NAME[$i]}"
  else
    ccall R recover recover --domain "${M_NAME[$i]}"
  fi
  if [ -n "$R_KILLED" ]; then note "${M_NAME[$i]}: recover killed at '$R_KILLED'"; return 0; fi
  expect_call R "$i" "$allowed" || return 0
  note "${M_NAME[$i]}: recover -> $R_RV"
  if stopped "$i" && [ "$R_RV" != 32775 ]; then
    CHECKS=$((CHECKS + 1))
    journal_open "$i" && fail "${M_NAME[$i]}: recover answered $R_RV and left the journal open"
    M_PENDING[$i]=0
    resolve_settings "$i"
    resolve "$i"
  fi
}

# start_vm NAME I|-1 PAUSED HOOKFAULT: a start through the hook, checked
START_OK=0
start_vm() {
  local n=$1 i=$2 paused=$3 hf=${4:-} killed= rc out=$C/start.out
  local trace=$W/hook-trace-$STEP-$n args=()
  [ "$paused" = 1 ] && args=(--paused)
  HOOK_RUNS=$((HOOK_RUNS + 1))
  if [ -n "$hf" ]; then arm_hook "$hf" "$trace"; else arm_hook 0 "$trace"; fi
  vsh start "$n" "${args[@]}" >"$out" 2>&1
  rc=$?
  rm -f "$E2E_STORE/.fault-inject"
  local last
  last=$(sed -n 's/^msvm-fault-point \([0-9]*\) .*/\1/p' "$trace" 2>/dev/null | tail -n1)
  [ -n "$last" ] && [ -z "$hf" ] && [ "$last" -gt "${MAXP[hook]}" ] && MAXP[hook]=$last
  [ -n "$last" ] && [ -n "$hf" ] && [ "$last" -lt "$hf" ] && [ "$last" -gt "${MAXP[hook]}" ] && MAXP[hook]=$last
  if [ -n "$hf" ] && grep -q "^msvm-fault-point $hf " "$trace" 2>/dev/null; then
    killed=$(sed -n "s/^msvm-fault-point $hf //p" "$trace" | tail -n1)
    CRASH_HOOK=$((CRASH_HOOK + 1))
    echo "$hf $killed" >>"$C/points-hook"
  fi
  START_OK=0
  CHECKS=$((CHECKS + 1))
  if [ -n "$killed" ]; then
    note "start $n: hook killed at point $hf ($killed): start rc $rc"
    if [ $rc = 0 ]; then
      # started nonetheless (the kill was in a run after prepare?)
      START_OK=1
    fi
    return 0
  fi
  if [ $rc = 124 ]; then fail "start $n: virsh start did not return within 120 s"; return 0; fi
  if [ $rc != 0 ] && [ "$i" -ge 0 ] && [ "${M_FW[$i]}" = uefi ] && ! grep -q 'msvm-security-hook:' "$out"; then
    # a varstore made from another template (shielding toggled): reset it
    note "start $n: $(head -n1 "$out"); retrying with --reset-nvram"
    vsh start "$n" "${args[@]}" --reset-nvram >"$out" 2>&1
    rc=$?
  fi
  if [ $rc != 0 ]; then
    if grep -q 'msvm-security-hook:' "$out"; then
      fail "start $n refused by the hook where the model expects a start: $(grep -o 'msvm-security-hook:.*' "$out" | head -n1 | head -c 400)"
    else
      fail "start $n failed (not by the hook's message): $(tr '\n' ' ' <"$out" | head -c 400)"
    fi
    return 0
  fi
  START_OK=1
  note "start $n${hf:+ (hook fault $hf not reached)}: ok"
}

after_start() {       # after_start I: model updates and checks of a started VM
  local i=$1 js
  M_RUN[$i]=1
  if [ "${M_MS[$i]}" = 1 ]; then
    # restored from its managed-save image: the state came with it, nothing
    # was re-keyed, an open job stays open; last known good is not ours to know
    M_MS[$i]=0 M_LKG_KP[$i]= M_LKG_POL[$i]=
    return 0
  fi
  if [ -z "$(e2e_tpm_secret "${M_NAME[$i]}")" ]; then
    # no encrypted TPM in the definition it started with (removed by hand, or
    # TpmEnabled FALSE): no swtpm, nothing re-keyed or recorded; an open job
    # stays open until a start with the TPM back
    return 0
  fi
  M_PENDING[$i]=0
  resolve "$i"
  record_lkg "$i"
  if [ -n "${M_JOB[$i]}" ]; then
    js=$(e2e_as_user "$E2E_CLI" --json job show "${M_JOB[$i]}" 2>/dev/null |
         jq -r '.ConcreteJob | "\(.JobState) \(.ErrorCode)"' 2>/dev/null)
    CHECKS=$((CHECKS + 1))
    if [ "${M_JOBGONE[$i]:-0}" = 1 ]; then
      # the TPM went away while the job was open: a call on the stopped VM
      # meanwhile ended it in Exception (32775); without one the start did it
      [ "$js" = "7 0" ] || [ "$js" = "10 32775" ] ||
        fail "${M_NAME[$i]}: deferred job ${M_JOB[$i]} is '$js' after the start (want 7 0, or 10 32775: its TPM went away meanwhile)"
    else
      [ "$js" = "7 0" ] || fail "${M_NAME[$i]}: deferred job ${M_JOB[$i]} is '$js' after the start (want 7 0)"
    fi
    M_JOB[$i]=
  fi
}

pending_change() {    # the store records an unfinished change of VM I
  local u=${M_UUID[$1]}
  journal_open "$1" || [ "$(e2e_store_get "$u" store state)" != "$(e2e_store_get "$u" store current)" ]
}
step_start() {        # step_start I
  local i=$1 paused=1 hf=
  ms_refresh "$i"
  [ $((CHAOS_R[5] % 8)) = 0 ] && paused=0
  # the hook has one point when nothing is pending, many when it re-keys
  if [ $((CHAOS_R[6] % 3)) = 0 ] || { pending_change "$i" && [ $((CHAOS_R[6] % 3)) = 1 ]; }; then
    if pending_change "$i"; then fault_point hook "${CHAOS_R[7]}"; hf=$FP
    else hf=$((1 + CHAOS_R[7] % 2)); fi
  fi
  # a non-paused TCG guest takes a core: at most one at a time
  [ $paused = 0 ] && [ -n "$(vsh list --state-running --name)" ] && paused=1
  start_vm "${M_NAME[$i]}" "$i" $paused "$hf"
  [ "$START_OK" = 1 ] && after_start "$i"
  return 0
}

step_destroy() {      # step_destroy I
  local i=$1
  CHECKS=$((CHECKS + 1))
  vsh destroy "${M_NAME[$i]}" >"$C/destroy.out" 2>&1 ||
    fail "destroy ${M_NAME[$i]}: $(head -n1 "$C/destroy.out")"
  M_RUN[$i]=0
  note "destroy ${M_NAME[$i]}"
}

edit_def() {          # edit_def NAME SED-SCRIPT: dumpxml --inactive --security-info, edit, define
  vsh dumpxml --inactive --security-info "$1" >"$W/edit.xml" || return 1
  sed -i "$2" "$W/edit.xml"
  e2e_give "$W/edit.xml"
  vsh define "$W/edit.xml" >/dev/null
}

step_edit() {         # step_edit I KIND-DRAW
  local i=$1 k=$(( $2 % 6 )) n=${M_NAME[$1]} mem new
  case $k in
    0|1) mem=$(( (96 + 32 * (CHAOS_R[6] % 4)) ))
       [ "$mem" = "${M_MEM[$i]}" ] && mem=$((mem + 32))
       if edit_def "$n" "s|<memory unit='KiB'>[0-9]*</memory>|<memory unit='KiB'>$((mem * 1024))</memory>|;s|<currentMemory unit='KiB'>[0-9]*</currentMemory>|<currentMemory unit='KiB'>$((mem * 1024))</currentMemory>|"; then
         M_MEM[$i]=$mem; EDITS=$((EDITS + 1)); note "edit $n: memory ${mem} MiB"
       else fail "outside edit of $n (memory) failed"; fi ;;
    2) ms_refresh "$i"   # (libvirt refuses to rename a VM with a managed-save image)
       if stopped "$i" && [ "${M_MS[$i]}" = 0 ] && [ -z "${M_SNAP[$i]}" ]; then
         new=${n%%-r*}-r$STEP
         if vsh domrename "$n" "$new" >"$C/rename.out" 2>&1; then
           M_NAME[$i]=$new; E2E_DOMAINS+=("$new"); EDITS=$((EDITS + 1)); note "edit: domrename $n $new"
         else fail "virsh domrename $n $new: $(head -n1 "$C/rename.out")"; fi
       fi ;;
    3) # the <tpm> removed (kept to put back exactly), or put back
       if [ "${M_TPMEDIT[$i]}" = 1 ]; then
         vsh dumpxml --inactive --security-info "$n" >"$W/edit.xml"
         awk -v f="$W/tpm-$i.xml" '/<\/devices>/ { while ((getline l < f) > 0) print l } { print }' \
           "$W/edit.xml" >"$W/edit2.xml" && mv "$W/edit2.xml" "$W/edit.xml" && e2e_give "$W/edit.xml"
         if vsh define "$W/edit.xml" >"$C/define.out" 2>&1; then
           M_TPMEDIT[$i]=0; EDITS=$((EDITS + 1)); note "edit $n: <tpm> put back"
         else fail "putting the <tpm> of $n back: $(head -n1 "$C/define.out")"; fi
       elif [ "${M_PENDING[$i]}" = 0 ] && [ "${M_SET[$i]%% *}" = TRUE ] && [ "${M_SHIELD[$i]}" = 0 ] &&
            [ "$(cut -d' ' -f2 <<<"${M_SET[$i]}")" = FALSE ] &&
            vsh dumpxml --inactive "$n" | e2e_grep_q '<tpm '; then
         vsh dumpxml --inactive --security-info "$n" | sed -n '/<tpm /,/<\/tpm>/p' >"$W/tpm-$i.xml"
         if edit_def "$n" '/<tpm /,/<\/tpm>/d'; then
           M_TPMEDIT[$i]=1 M_JOBGONE[$i]=1; EDITS=$((EDITS + 1)); note "edit $n: <tpm> removed"
         else fail "removing the <tpm> of $n failed"; fi
       fi ;;
    4) # a <graphics> on a shielded VM
       if [ "${M_SET[$i]}" != "?" ] && [ "$(cut -d' ' -f2 <<<"${M_SET[$i]}")" = TRUE ] &&
          ! vsh dumpxml --inactive "$n" | e2e_grep_q '<graphics '; then
         if edit_def "$n" "s|</devices>|<graphics type='vnc'/></devices>|"; then
           M_GFX[$i]=1; EDITS=$((EDITS + 1)); note "edit $n: <graphics type='vnc'/> added (shielded)"
         else fail "adding a <graphics> to $n failed"; fi
       fi ;;
    5) # a clone sharing the TPM secret
       if [ -z "${M_CLONE[$i]}" ] && [ ${#CL_NAME[@]} -lt 2 ] && [ "${M_TPMEDIT[$i]}" = 0 ] &&
          vsh dumpxml --inactive "$n" | e2e_grep_q '<encryption '; then
         local cn=e2e-chaos-clone$i-$STEP cu
         vsh dumpxml --inactive --security-info "$n" |
           sed -e "s|<name>[^<]*</name>|<name>$cn</name>|" -e '/<uuid>/d' -e '/<nvram/d' >"$W/clone.xml"
         e2e_give "$W/clone.xml"
         if vsh define "$W/clone.xml" >"$C/define.out" 2>&1; then
           cu=$(vsh domuuid "$cn")
           E2E_DOMAINS+=("$cn"); E2E_UUIDS+=("$cu")
           CL_NAME+=("$cn"); CL_SRC+=("$i"); CL_RUN+=(0); CL_STARTED+=(0)
           M_CLONE[$i]=$cn; EDITS=$((EDITS + 1)); note "clone of $n: $cn ($cu) shares secret $(e2e_tpm_secret "$cn")"
         else fail "defining a clone of $n: $(head -n1 "$C/define.out")"; fi
       fi ;;
  esac
}

step_clone() {        # start or destroy a clone
  local k=$(( $1 % ${#CL_NAME[@]} )) n
  n=${CL_NAME[$k]}
  if [ "${CL_RUN[$k]}" = 1 ]; then
    vsh destroy "$n" >/dev/null 2>&1; CL_RUN[$k]=0; note "destroy clone $n"
  else
    start_vm "$n" -1 1 ""
    [ "$START_OK" = 1 ] && CL_RUN[$k]=1 CL_STARTED[$k]=1
  fi
}

step_plain() {
  if [ "$PLAIN_RUN" = 1 ]; then vsh destroy "$PLAIN" >/dev/null 2>&1; PLAIN_RUN=0
  else
    HOOK_RUNS=$((HOOK_RUNS + 1))
    CHECKS=$((CHECKS + 1))
    if vsh start "$PLAIN" --paused >"$C/start.out" 2>&1; then PLAIN_RUN=1
    else fail "start $PLAIN (never protected): $(tr '\n' ' ' <"$C/start.out" | head -c 300)"; fi
  fi
}

step_managedsave() {  # step_managedsave I: of a running VM
  local i=$1 n=${M_NAME[$1]}
  CHECKS=$((CHECKS + 1))
  if vsh managedsave "$n" >"$C/ms.out" 2>&1; then
    M_RUN[$i]=0 M_MS[$i]=1; note "managedsave $n"
  else fail "virsh managedsave $n: $(head -n1 "$C/ms.out")"; fi
}

step_snapshot() {     # step_snapshot I: create on a stopped VM, or delete
  local i=$1 n=${M_NAME[$1]}
  if [ -n "${M_SNAP[$i]}" ]; then
    vsh snapshot-delete "$n" "${M_SNAP[$i]}" >/dev/null 2>&1 && { note "snapshot-delete $n"; M_SNAP[$i]=; }
  elif stopped "$i" && [ "${M_MS[$i]}" = 0 ]; then
    CHECKS=$((CHECKS + 1))
    if vsh snapshot-create-as "$n" "chaos-$STEP" >"$C/snap.out" 2>&1; then
      M_SNAP[$i]=chaos-$STEP; note "snapshot-create-as $n chaos-$STEP"
    else fail "virsh snapshot-create-as $n: $(head -n1 "$C/snap.out")"; fi
  fi
}

# two calls at once on a stopped VM: documented codes only, the winner's
# halves current
step_concurrent() {   # step_concurrent I
  local i=$1 n=${M_NAME[$1]} w m fa fb oa ob rv ex out
  set_props "$i"
  settings "$i" "$W/s-$i.xml" "${SET_PROPS[@]}"
  bytes "$W/ca-$STEP" $((8 + CHAOS_R[6] % 200)) "${CHAOS_R[7]}"
  bytes "$W/cb-$STEP" $((8 + CHAOS_R[8] % 200)) "$((CHAOS_R[7] + 1))"
  local ma=set-security-policy mb=set-security-policy
  [ $((CHAOS_R[5] % 2)) = 0 ] && ma=set-key-protector
  local pids=()
  for w in a b; do
    if [ $w = a ]; then m=$ma; else m=$mb; fi
    local opt=--policy
    [ $m = set-key-protector ] && opt=--key-protector
    ( e2e_as_user timeout 120 "$E2E_CLI" --json $m --settings "$W/s-$i.xml" $opt "$W/c$w-$STEP" \
        >"$C/conc-$w.out" 2>"$C/conc-$w.err"; echo $? >"$C/conc-$w.exit" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  CALLS=$((CALLS + 2))
  local ok=0
  for w in a b; do
    out=$(cat "$C/conc-$w.out") ex=$(cat "$C/conc-$w.exit")
    rv=$(jq -r '.ReturnValue // empty' <<<"$out" 2>/dev/null)
    echo "step $STEP: concurrent $w on $n: exit $ex: $out" >>"$C/calls.log"
    CHECKS=$((CHECKS + 1))
    case "$rv" in
      0) ok=$((ok + 1)); if [ $w = a ]; then oa=ok; else ob=ok; fi ;;
      4096) if e2e_as_user timeout 130 "$E2E_CLI" job wait "$(e2e_job_id "$(jq -r .Job <<<"$out")")" \
                 --timeout 120 >/dev/null 2>&1; then ok=$((ok + 1))
            else fail "$n: concurrent call $w: its job did not complete"; fi ;;
      32774) ;;
      *) fail "$n: concurrent call $w answered '${rv:-none}' (exit $ex; want 0, 4096 or 32774): $(jq -r '.Message // empty' <<<"$out" | head -c 300)" ;;
    esac
  done
  note "concurrent $ma/$mb on $n: $ok succeeded"
  # either may have won (and a loser may have been applied before the winner)
  if [ $ma = set-key-protector ]; then M_KPC[$i]+=" $W/ca-$STEP"; M_HIST[$i]+=" $W/ca-$STEP"
  else M_POLC[$i]+=" $W/ca-$STEP"; M_HIST[$i]+=" $W/ca-$STEP"; fi
  M_POLC[$i]+=" $W/cb-$STEP"; M_HIST[$i]+=" $W/cb-$STEP"
  resolve "$i"
}

# several VMs started at once
step_multistart() {
  local i pids=() names=() idx=()
  for i in $(seq 0 $((NVM - 1))); do
    stopped "$i" && [ "${M_TPMEDIT[$i]}" = 0 ] && { names+=("${M_NAME[$i]}"); idx+=("$i"); }
  done
  [ ${#names[@]} -ge 2 ] || return 0
  for i in "${!names[@]}"; do
    ( vsh start "${names[$i]}" --paused >"$C/ms-start-$i.out" 2>&1; echo $? >"$C/ms-start-$i.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for i in "${!names[@]}"; do
    HOOK_RUNS=$((HOOK_RUNS + 1))
    CHECKS=$((CHECKS + 1))
    if [ "$(cat "$C/ms-start-$i.rc")" = 0 ]; then
      after_start "${idx[$i]}"
    else
      fail "start ${names[$i]} (several at once): $(tr '\n' ' ' <"$C/ms-start-$i.out" | head -c 400)"
    fi
  done
  note "started at once: ${names[*]}"
}

# ---------------------------------------------------------------- the campaign

T0=$SECONDS
e2e_note "chaos: seed $SEED, up to $CHAOS_STEPS steps or ${CHAOS_TIME_LIMIT}s"
while [ "$STEP" -lt "$CHAOS_STEPS" ] && [ $((SECONDS - T0)) -lt "$CHAOS_TIME_LIMIT" ]; do
  STEP=$((STEP + 1))
  STEP_FAILED=0
  draw
  pick_vm "${CHAOS_R[1]}"
  i=$PICK
  kind=$(( CHAOS_R[0] % 100 ))
  # CHAOS_FAULT_PERCENT (long runs): that share of the steps kills a call
  if [ -n "${CHAOS_FAULT_PERCENT:-}" ] && [ $((CHAOS_R[9] % 100)) -lt "$CHAOS_FAULT_PERCENT" ]; then
    kind=$((20 + CHAOS_R[0] % 28))
  fi
  desc=
  # a running VM is mostly destroyed soon (most of the protocol runs on stopped VMs)
  if [ "${M_RUN[$i]}" = 1 ] && [ $((CHAOS_R[8] % 4)) = 0 ] && [ $kind -lt 83 ]; then kind=50; fi
  # a VM whose <tpm> was removed by hand gets it back soon
  if [ "${M_TPMEDIT[$i]}" = 1 ] && [ $((CHAOS_R[8] % 3)) = 0 ]; then kind=70; CHAOS_R[2]=3; fi
  if [ $kind -lt 20 ]; then
    desc="method on ${M_NAME[$i]}"; step_method "$i" "${CHAOS_R[2]}"
  elif [ $kind -lt 48 ]; then
    # a kill at a random fault point of a call
    kd=$(( CHAOS_R[2] % 11 ))
    if [ $((CHAOS_R[3] % 6)) = 0 ]; then
      fault_point recover "${CHAOS_R[4]}"; fp=$FP
      desc="recover on ${M_NAME[$i]} killed at $fp"; step_recover "$i" "$fp"
    else
      case $kd in 0|1|2) mm=set-key-protector ;; 3|4|5) mm=set-security-policy ;;
        6|7) mm=modify-security-settings ;; 8|9) mm=get-key-protector ;; *) mm=restore-last-known-good-key-protector ;; esac
      # a read that was seen to pass no fault point: fault a change instead
      if [ $mm = get-key-protector ] && [ -n "${SEENK[$mm]:-}" ] && [ "${MAXP[$mm]}" = 0 ]; then
        kd=$(( kd == 8 ? 0 : 3 )); mm=$([ $kd = 0 ] && echo set-key-protector || echo set-security-policy)
      fi
      fault_point "$mm" "${CHAOS_R[4]}"; fp=$FP
      desc="fault $fp in a call on ${M_NAME[$i]}"; step_method "$i" "$kd" "$fp"
    fi
  elif [ $kind -lt 62 ]; then
    if stopped "$i"; then desc="start ${M_NAME[$i]}"; step_start "$i"
    else desc="destroy ${M_NAME[$i]}"; step_destroy "$i"; fi
  elif [ $kind -lt 68 ]; then
    desc="recover ${M_NAME[$i]}"; step_recover "$i"
  elif [ $kind -lt 78 ]; then
    desc="outside edit of ${M_NAME[$i]}"; step_edit "$i" "${CHAOS_R[2]}"
  elif [ $kind -lt 81 ]; then
    if [ ${#CL_NAME[@]} -gt 0 ]; then desc="clone start/destroy"; step_clone "${CHAOS_R[2]}"
    else desc="plain VM start/destroy"; step_plain; fi
  elif [ $kind -lt 83 ]; then
    desc="plain VM start/destroy"; step_plain
  elif [ $kind -lt 86 ]; then
    if [ "${M_RUN[$i]}" = 1 ]; then desc="managedsave ${M_NAME[$i]}"; step_managedsave "$i"
    else desc="start ${M_NAME[$i]}"; step_start "$i"; fi
  elif [ $kind -lt 89 ]; then
    if [ "$SNAP_OK" = 1 ]; then desc="snapshot ${M_NAME[$i]}"; step_snapshot "$i"
    else desc="recover ${M_NAME[$i]}"; step_recover "$i"; fi
  elif [ $kind -lt 95 ]; then
    if stopped "$i" && [ "${M_MS[$i]}" = 0 ] && [ "${M_TPMEDIT[$i]}" = 0 ] && [ -z "${M_SNAP[$i]}" ]; then
      desc="two calls at once on ${M_NAME[$i]}"; step_concurrent "$i"
    else desc="method on ${M_NAME[$i]}"; step_method "$i" "${CHAOS_R[2]}"; fi
  else
    desc="several VMs started at once"; step_multistart
  fi
  invariants
  # what the stores say after the step (steps.log, for reading a failure)
  for j in $(seq 0 $((NVM - 1))); do
    printf '  %s: current %s state %s lkg %s%s; def %s\n' "${M_NAME[$j]}" \
      "$(e2e_store_get "${M_UUID[$j]}" store current)" "$(e2e_store_get "${M_UUID[$j]}" store state)" \
      "$(e2e_store_get "${M_UUID[$j]}" store last-known-good)" "$(journal_open "$j" && echo ', journal open')" \
      "$(vsh dumpxml --inactive "${M_NAME[$j]}" 2>/dev/null | sed -n "s/.*<encryption secret=['\"]\([^'\"]*\)['\"].*/\1/p" | cut -c1-8)"
  done >>"$C/steps.log"
  [ "$STEP_FAILED" = 0 ] && e2e_tap 0 "seed $SEED step $STEP: $desc"
done
ELAPSED=$((SECONDS - T0))

# ---------------------------------------------------------------- figures

e2e_note "chaos figures (seed $SEED): $STEP steps in ${ELAPSED}s, $CALLS calls"
e2e_note "  fault points hit: CLI $CRASH_CLI, hook $CRASH_HOOK"
e2e_note "  hook runs (starts): $HOOK_RUNS; outside edits: $EDITS"
e2e_note "  invariant checks: $CHECKS; failures: $FAILS (and $REPEATS repeats of a failure already reported)"
if [ -s "$C/points-cli" ]; then
  e2e_note "  CLI fault points by name: $(awk '{print $1 ":" $3}' "$C/points-cli" | sort | uniq -c | sort -rn | awk '{printf "%s %s, ", $1, $2}' | head -c 1500)"
fi
if [ -s "$C/points-hook" ]; then
  e2e_note "  hook fault points by name: $(awk '{print $2}' "$C/points-hook" | sort | uniq -c | sort -rn | awk '{printf "%s %s, ", $1, $2}')"
fi
if [ -s "$C/failures" ]; then
  e2e_note "failures (replay with CHAOS_SEED=$SEED):"
  while IFS= read -r l; do e2e_note "  $l"; done <"$C/failures"
fi
[ -n "${CHAOS_LOG_DIR:-}" ] && mkdir -p "$CHAOS_LOG_DIR" &&
  cp "$C/calls.log" "$C/steps.log" "$C/failures" "$CHAOS_LOG_DIR/" 2>/dev/null
echo "chaos: seed $SEED steps $STEP crash-points $((CRASH_CLI + CRASH_HOOK)) hook-runs $HOOK_RUNS outside-edits $EDITS invariant-checks $CHECKS failures $FAILS"
e2e_done
