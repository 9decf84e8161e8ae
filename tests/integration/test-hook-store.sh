#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The built hook, run exactly as libvirt runs it, for managed guests with a
# store entry (built with the store module's API by hook-store-tool) and a
# real swtpm state (swtpm_setup + tpm2-tools data, lib-swtpm.sh; the real
# swtpm is the oracle for "opens under" and "data intact"):
#   - nothing pending: prepare is silent and changes nothing; started records
#     the generation as last known good;
#   - a pending re-key (deferred job) finished at prepare: the state moves
#     from `state` to `current`, the job is Completed, the TPM data reads
#     back under the new passphrase only; a TPM <source path> in the XML is
#     ignored;
#   - a definition naming another generation than `current`: the job ends in
#     Exception and the start is refused;
#   - the per-VM lock held: "System is in use" (started still exits 0);
#   - an undecryptable state: refused with one line naming the fix;
#   - migrate/restore filters: no output; an incoming guest's state is left
#     alone at the following prepare; unknown secrets refused on migration;
#   - killed at every fault point of prepare: the state always opens under
#     one of the two generations and the next prepare finishes the job.
# TAP on stdout.

. "$(dirname "$0")/lib-swtpm.sh"
. "$(dirname "$0")/lib-hook.sh"
hook_ns_enter "$@"

[ -x "$HOOK" ] || bail "the hook is not built (MSVM_BUILDDIR=${MSVM_BUILDDIR:-unset})"
TOOL=$MSVM_BUILDDIR/tests/hook-store-tool
[ -x "$TOOL" ] || bail "hook-store-tool is not built"
it_setup
hook_paths
CREATED=()
hook_cleanup() {
  local d
  [ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null
  for d in "${CREATED[@]}"; do rm -rf "$d"; done
  it_cleanup
}
trap hook_cleanup EXIT



show() { "$TOOL" show "$STORE_ROOT" "$UUID" | head -n 1; }
job_line() { "$TOOL" show "$STORE_ROOT" "$UUID" | awk -v j="$1" '$2 == j { print $3, $4 }'; }
gen_pass() { "$TOOL" passphrase "$STORE_ROOT" "$UUID" "$1" "$(pass_file "G$1")"; }
key() { echo "G$1:aes-256-cbc:pbkdf2"; }

# opens_copy N: swtpm opens (a copy of) the VM's state under generation N and
# the data written at the start reads back.
opens_copy() {
  rm -rf "$WORK/copy"
  mkdir -p "$WORK/copy"
  cp -a "$STATE" "$WORK/copy/tpm2"
  tpm_verify "$WORK/copy/tpm2" "$(key "$1")" "$WORK/expect/plain"
}
opens_only() {
  rm -rf "$WORK/copy"
  mkdir -p "$WORK/copy"
  cp -a "$STATE" "$WORK/copy/tpm2"
  swtpm_opens "$WORK/copy/tpm2" "$(key "$1")"
}

# new_vm: a store entry with generation 1 and the populated state encrypted
# under it, where libvirt keeps it.
new_vm() {
  UUID=$(hook_uuid)
  CREATED+=("$STORE_ROOT/$UUID" "$SWTPM_ROOT/$UUID")
  SEC1=$("$TOOL" init "$STORE_ROOT" "$UUID") || bail "hook-store-tool init failed"
  gen_pass 1 || bail "no passphrase"
  STATE=$SWTPM_ROOT/$UUID/tpm2
  clone_base plain "$SWTPM_ROOT/$UUID"
  rekey_key "$STATE" none "$(key 1)"
  [ "$RK_EXIT" -eq 0 ] || { rekey_diag; bail "cannot encrypt the state under generation 1"; }
}

make_base plain plaintext || bail "cannot make a populated swtpm state"

# --- nothing pending ----------------------------------------------------------
new_vm
hook_domain_xml "$WORK/vm.xml" vm "$UUID" "$SEC1"
before=$(tree_snapshot "$SWTPM_ROOT/$UUID")
hook_run -- vm prepare begin "$WORK/vm.xml"
hook_quiet "nothing pending: prepare exits 0 silently"
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$before" "nothing pending: the state is untouched"
tap_is "$(show)" "current=1 state=1 lkg=0 lkg-from-start=0 journal=0" "nothing pending: the store is unchanged"
hook_run -- vm started begin "$WORK/vm.xml"
hook_quiet "started exits 0 silently"
tap_is "$(show)" "current=1 state=1 lkg=1 lkg-from-start=1 journal=0" "started recorded generation 1 as last known good"
for op in "start begin" "stopped end" "release end" "reconnect begin" "attach begin"; do
  set -- $op
  hook_run -- vm "$1" "$2" "$WORK/vm.xml"
  hook_quiet "managed guest, $1 $2: exit 0, no output"
done
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$before" "the other operations leave the state alone"

# --- a pending re-key (a deferred job) ---------------------------------------
read -r SEC2 JOB2 < <("$TOOL" pending "$STORE_ROOT" "$UUID")
gen_pass 2
tap_is "$(job_line "$JOB2")" "4 0" "the deferred job is Running before the start"
mkdir -p "$WORK/elsewhere/tpm2"
cp -a "$STATE/." "$WORK/elsewhere/tpm2/"
elsewhere=$(tree_snapshot "$WORK/elsewhere")
hook_domain_xml "$WORK/vm2.xml" vm "$UUID" "$SEC2"
sed -i "s|<encryption|<source type='dir' path='$WORK/elsewhere'/><encryption|" "$WORK/vm2.xml"
hook_run -- vm prepare begin "$WORK/vm2.xml"
hook_quiet "pending re-key: prepare exits 0 silently"
tap_is "$(show)" "current=2 state=2 lkg=1 lkg-from-start=1 journal=0" "pending re-key: the state generation is now current"
tap_is "$(job_line "$JOB2")" "7 0" "pending re-key: the job is Completed with ErrorCode 0"
opens_copy 2
tap_ok $? "pending re-key: swtpm opens the state under generation 2 and the TPM data reads back"
opens_only 1
tap_ok $((! $?)) "pending re-key: generation 1 no longer opens the state"
tap_is "$(tree_snapshot "$WORK/elsewhere")" "$elsewhere" "the TPM source path in the XML was not touched"
hook_run -- vm prepare begin "$WORK/vm2.xml"
hook_quiet "a second prepare finds nothing to do"
hook_run -- vm started begin "$WORK/vm2.xml"
tap_is "$(show)" "current=2 state=2 lkg=2 lkg-from-start=1 journal=0" "started recorded generation 2 as last known good"

# --- the definition names another generation than current -------------------
read -r SEC3 JOB3 < <("$TOOL" pending "$STORE_ROOT" "$UUID")
gen_pass 3
hook_run -- vm prepare begin "$WORK/vm2.xml"
hook_quiet "definition naming generation 2 (ours, the state's) while 3 is current: starts, nothing re-keyed"
tap_is "$(job_line "$JOB3")" "4 0" "  ... the job stays open (the definition does not name current)"
tap_is "$(show)" "current=3 state=2 lkg=2 lkg-from-start=1 journal=0" \
  "  ... the state stays under 2: the hook re-keys only to current, and only for a definition naming it"
opens_only 2
tap_ok $? "  ... swtpm opens the state under generation 2"
hook_domain_xml "$WORK/vm3.xml" vm "$UUID" "$SEC3"
hook_run -- vm prepare begin "$WORK/vm3.xml"
hook_quiet "the definition naming current starts"
tap_is "$(show)" "current=3 state=3 lkg=2 lkg-from-start=1 journal=0" "  ... re-keyed to current (3)"
tap_is "$(job_line "$JOB3")" "7 0" "  ... and the job is Completed"
opens_only 3
tap_ok $? "swtpm opens the state under generation 3"

# --- the per-VM lock held -------------------------------------------------------
coproc HOLD { exec "$TOOL" hold-lock "$STORE_ROOT" "$UUID" 30; }
HOLDER=$HOLD_PID
read -r -t 10 line <&"${HOLD[0]}"
tap_is "$line" locked "another process holds the per-VM lock"
hook_run -- vm prepare begin "$WORK/vm3.xml"
hook_refused "lock held: prepare refused" "System is in use"
start=$(date +%s%N)
hook_run -- vm started begin "$WORK/vm3.xml"
took=$(( ($(date +%s%N) - start) / 1000000 ))
tap_is "$HOOK_RC" 0 "lock held: started still exits 0"
[ "$took" -lt 2000 ]
tap_ok $? "lock held: started did not wait on the lock (${took} ms)"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null
HOLDER=

# --- an undecryptable state --------------------------------------------------------
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$(pass_file X)"
cp -a "$STATE" "$WORK/good-state"
rekey_key "$STATE" "$(key 3)" X:aes-256-cbc:pbkdf2
before=$(tree_snapshot "$SWTPM_ROOT/$UUID")
hook_run -- vm prepare begin "$WORK/vm3.xml"
hook_refused "state under an unknown passphrase: start refused with one line" \
  "does not open under the key protector.*msvm-security"
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$before" "the undecryptable state is left as it was"
rekey_key "$STATE" X:aes-256-cbc:pbkdf2 "$(key 1)"
hook_run -- vm prepare begin "$WORK/vm3.xml"
hook_quiet "state put back under an older generation (1): prepare finishes it like a change"
tap_is "$(show)" "current=3 state=3 lkg=2 lkg-from-start=1 journal=0" "  ... the store records it under current (3)"
opens_only 3
tap_ok $? "  ... swtpm opens it under generation 3"
rm -rf "$STATE"
cp -a "$WORK/good-state" "$STATE"
rekey_key "$STATE" "$(key 3)" "$(key 1)"
hook_run -- vm prepare begin "$WORK/vm2.xml"
hook_refused "state under generation 1 and the definition names 2 (not current): refused, naming 1" \
  "but under generation 1.*msvm-security recover"
rm -rf "$STATE"
cp -a "$WORK/good-state" "$STATE"
rm -f "$STATE/tpm2-00.permall"
hook_run -- vm prepare begin "$WORK/vm3.xml"
hook_quiet "state directory without permall: no TPM yet (libvirt 9.6+ leaves it empty), starts"
rm -rf "$STATE"
cp -a "$WORK/good-state" "$STATE"
hook_run -- vm prepare begin "$WORK/vm3.xml"
hook_quiet "state put back: prepare passes again"

# --- incoming migration and restore -------------------------------------------------
# The filters give the definition back with a one-time nonce; only the
# "prepare begin" that is given it (as libvirt does for that operation) is
# exempted.
hook_filtered() {      # hook_filtered DESC: exit 0, the XML back with incoming=, no stderr
  if [ "$HOOK_RC" -eq 0 ] && [ ! -s "$HOOK_ERR" ] &&
     grep -q '<msvm:security [^>]*incoming="[0-9a-f-]\{36\}"' "$HOOK_OUT" &&
     grep -q "<uuid>$UUID</uuid>" "$HOOK_OUT"; then
    tap_ok 0 "$1"
  else
    tap_ok 1 "$1"
    diag "exit $HOOK_RC, stdout: $(head -c 400 "$HOOK_OUT"), stderr: $(cat "$HOOK_ERR")"
  fi
}
hook_run -- vm migrate begin "$WORK/vm3.xml"
hook_filtered "migrate begin with a store entry: exit 0, the XML given back with a nonce"
cp "$HOOK_OUT" "$WORK/vm3-incoming.xml"
read -r SEC4 JOB4 < <("$TOOL" pending "$STORE_ROOT" "$UUID")
before=$(tree_snapshot "$SWTPM_ROOT/$UUID")
hook_run -- vm prepare begin "$WORK/vm3-incoming.xml"
hook_quiet "prepare of that incoming migration: exit 0"
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$before" "prepare of an incoming migration: the state is not touched"
tap_is "$(job_line "$JOB4")" "4 0" "prepare of an incoming migration: the job stays open"
[ ! -e "$STORE_ROOT/$UUID/incoming" ]
tap_ok $? "prepare consumed the incoming marker"
hook_run -- vm started begin "$WORK/vm3-incoming.xml"
hook_run -- vm restore begin "$WORK/vm3.xml"
hook_filtered "restore begin: exit 0, the XML given back with a nonce"
cp "$HOOK_OUT" "$WORK/vm3-restore.xml"
hook_run -- vm prepare begin "$WORK/vm3-restore.xml"
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$before" "prepare of a restore: the state is not touched"
hook_run -- vm release end "$WORK/vm3.xml"
hook_run -- vm restore begin "$WORK/vm3.xml"
hook_filtered "a restore that will fail before its prepare: the marker is left"
hook_run -- vm prepare begin "$WORK/vm3-restore.xml"
tap_is "$(job_line "$JOB4")" "4 0" "  ... a stale nonce (an earlier operation's) is not exempted either: the job is still open"
hook_domain_xml "$WORK/vm-unknown.xml" vm "$UUID" "$(hook_uuid)"
hook_run -- vm migrate begin "$WORK/vm-unknown.xml"
hook_refused "incoming migration naming a secret the store does not hold: refused" \
  "no key protector"
hook_domain_xml "$WORK/vm4.xml" vm "$UUID" "$SEC4"
gen_pass 4
hook_run -- vm prepare begin "$WORK/vm4.xml"
hook_quiet "a normal start after that finishes the pending job"
tap_is "$(job_line "$JOB4")" "7 0" "the job is Completed"

# --- a change killed between its define and recording current ---------------
new_vm
read -r SECJ CIDJ < <("$TOOL" journal "$STORE_ROOT" "$UUID")
hook_domain_xml "$WORK/jold.xml" jvm "$UUID" "$SEC1"
hook_run -- jvm prepare begin "$WORK/jold.xml"
hook_quiet "journal open, the definition does not carry its change id (not defined): starts"
tap_is "$(show)" "current=1 state=1 lkg=0 lkg-from-start=0 journal=0" \
  "  ... abandoned as the provider would: nothing moved, no journal left"
read -r SECJ CIDJ < <("$TOOL" journal "$STORE_ROOT" "$UUID")
gen_pass 3
hook_domain_xml "$WORK/jnew.xml" jvm "$UUID" "$SECJ"
sed -i "s|version=\"1\">|version=\"1\" change=\"$CIDJ\">|" "$WORK/jnew.xml"
hook_run -- jvm prepare begin "$WORK/jnew.xml"
hook_quiet "journal open, the definition carries its change id (defined): starts"
tap_is "$(show)" "current=3 state=3 lkg=1 lkg-from-start=0 journal=0" \
  "  ... recorded (current = the target), the state re-keyed to it, the journal closed"
opens_copy 3
tap_ok $? "  ... swtpm opens it under generation 3 with the data"

# --- the environment is not where the store is found ----------------------------
new_vm
read -r SEC2 JOB2 < <("$TOOL" pending "$STORE_ROOT" "$UUID")
mkdir -p "$WORK/evil-home"
hook_domain_xml "$WORK/env.xml" envvm "$UUID" "$SEC2"
hook_run HOME="$WORK/evil-home" XDG_DATA_HOME="$WORK/evil-home" USER=nobody LOGNAME=nobody \
  -- envvm prepare begin "$WORK/env.xml"
hook_quiet "HOME, USER and XDG_DATA_HOME pointing elsewhere: prepare still finds the store"
tap_is "$(job_line "$JOB2")" "7 0" "  ... and finishes the job there"
tap_is "$(find "$WORK/evil-home" -mindepth 1 | wc -l)" 0 "  ... nothing is created under the fake HOME"

# --- the libtpms check runs in a forked child, no helper is executed ----------
if hook_have_strace; then
  new_vm
  read -r SEC2 JOB2 < <("$TOOL" pending "$STORE_ROOT" "$UUID")
  hook_domain_xml "$WORK/exec.xml" exec "$UUID" "$SEC2"
  HOOK_WRAP=(strace -f -qq -e trace=execve,clone,fork,vfork,clone3 -o "$WORK/strace.log")
  hook_run -- exec prepare begin "$WORK/exec.xml"
  HOOK_WRAP=()
  tap_is "$(job_line "$JOB2")" "7 0" "(traced) the pending re-key is finished"
  execs=$(grep -c 'execve(' "$WORK/strace.log")
  tap_is "$execs" 1 "the hook executes no other program (AppArmor, DESIGN.md 9)"
  grep -q 'clone\|fork' "$WORK/strace.log"
  tap_ok $? "  ... it validates the state with libtpms in forked children"
else
  tap_skip "strace is not installed or cannot trace here: cannot check that the hook executes nothing"
fi

# --- killed at every fault point -------------------------------------------------------
new_vm
read -r SEC2 JOB2 < <("$TOOL" pending "$STORE_ROOT" "$UUID")
gen_pass 2
hook_domain_xml "$WORK/crash.xml" crash "$UUID" "$SEC2"
n=1
consistent=0
killed=0
while [ "$n" -lt 60 ]; do
  hook_run MSVM_SECURITY_FAULT_INJECT=$n -- crash prepare begin "$WORK/crash.xml"
  [ "$HOOK_RC" -eq 137 ] || break
  killed=$((killed + 1))
  if ! opens_only 1 && ! opens_only 2; then
    diag "after a kill at fault point $n the state opens under neither generation"
    consistent=1
  fi
  if ! "$TOOL" show "$STORE_ROOT" "$UUID" >/dev/null; then
    diag "after a kill at fault point $n the store does not load"
    consistent=1
  fi
  n=$((n + 1))
done
diag "prepare was killed at $killed fault points"
[ "$killed" -gt 0 ]
tap_ok $? "prepare passes fault points (killed $killed times)"
tap_is "$consistent" 0 "after every kill the state opens under generation 1 or 2 and the store loads"
hook_run -- crash prepare begin "$WORK/crash.xml"
hook_quiet "the next prepare finishes"
tap_is "$(job_line "$JOB2")" "7 0" "after the crashes the job is Completed"
tap_is "$(show)" "current=2 state=2 lkg=0 lkg-from-start=0 journal=0" "after the crashes the state generation is current"
opens_copy 2
tap_ok $? "after the crashes the TPM data reads back under generation 2"

tap_done
