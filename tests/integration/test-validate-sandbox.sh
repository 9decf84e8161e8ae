#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The sandbox of the libtpms check (tpm/msvm-tpm-sandbox.c, DESIGN.md 11),
# as root, with the real libtpms on real swtpm_setup states (plaintext, and
# encrypted by msvm-security), owned by an unprivileged swtpm user (tss, or
# a throwaway user) who plants files in its state directory:
#   - the hook (second stage driven directly, as test-hook-store.sh does):
#     a plaintext file planted over a state the store records as encrypted is
#     refused, never parsed (no libtpms run at all) and never adopted; a
#     store that records the state as plaintext does try it, in the sandbox:
#     one line on stderr, no libtpms text, the child ran as the directory's
#     owner with no_new_privs and seccomp (the test-only trace of the child's
#     /proc/self/status); the genuine plaintext and encrypted states still
#     validate in the sandbox;
#   - the same through the helper executable (msvm-security rekey);
#     a root-owned state is checked as nobody;
#   - a check that never returns: ends in 32772 within the timeout and
#     changes nothing (a FAKE stand-in helper that sleeps; the real helper
#     and the hook with the test-only stall of the sandboxed child).
# Needs a build with -Dfault_injection=true (tests/meson.build defines it
# only there).  TAP on stdout.

. "$(dirname "$0")/lib-swtpm.sh"
. "$(dirname "$0")/lib-hook.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP needs root (the check drops to the state directory's owner)"
  exit 0
fi
hook_ns_enter "$@"

[ -x "$HOOK" ] || bail "the hook is not built (MSVM_BUILDDIR=${MSVM_BUILDDIR:-unset})"
TOOL=$MSVM_BUILDDIR/tests/hook-store-tool
[ -x "$TOOL" ] || bail "hook-store-tool is not built"
command -v setpriv >/dev/null || bail "setpriv (util-linux) is needed"
it_setup
hook_paths

# The swtpm user: tss (Debian's swtpm user), else a throwaway user.
SWTPM_USER=tss
THROWAWAY=
if ! id -u "$SWTPM_USER" >/dev/null 2>&1 || [ "$(id -u "$SWTPM_USER")" -eq 0 ]; then
  SWTPM_USER=msvm-it-swtpm-$$
  useradd --system --no-create-home --shell /usr/sbin/nologin "$SWTPM_USER" ||
    bail "cannot create a throwaway user"
  THROWAWAY=$SWTPM_USER
fi
SU_UID=$(id -u "$SWTPM_USER")
SU_GID=$(id -g "$SWTPM_USER")
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)

cleanup() {
  [ -n "$THROWAWAY" ] && userdel "$THROWAWAY" 2>/dev/null
  it_cleanup
}
trap cleanup EXIT

TRACE=$WORK/sandbox.trace
LIBTPMS_TEXT='libtpms/tpm2\|Unmarshal\|Invalid magic'
as_swtpm_user() { setpriv --reuid="$SU_UID" --regid="$SU_GID" --clear-groups -- "$@"; }
show() { "$TOOL" show "$STORE_ROOT" "$UUID" | head -n 1; }
gen_pass() { "$TOOL" passphrase "$STORE_ROOT" "$UUID" "$1" "$(pass_file "G$1")"; }
key() { echo "G$1:aes-256-cbc:pbkdf2"; }

# trace_says UID GID DESC: the trace holds at least one sandboxed run, and
# every run was under UID/GID (real, effective, saved, fs), without
# supplementary groups, with no_new_privs and a seccomp filter (mode 2).
trace_says() {
  local u=$1 g=$2 runs bad
  runs=$(grep -c '^Seccomp:' "$TRACE" 2>/dev/null)
  bad=$(awk -v u="$u" -v g="$g" '
    /^Uid:/ && !($2 == u && $3 == u && $4 == u && $5 == u) { print "uid: " $0 }
    /^Gid:/ && !($2 == g && $3 == g && $4 == g && $5 == g) { print "gid: " $0 }
    /^Groups:/ && NF > 1 { print "groups: " $0 }
    /^NoNewPrivs:/ && $2 != 1 { print "nnp: " $0 }
    /^Seccomp:/ && $2 != 2 { print "seccomp: " $0 }' "$TRACE" 2>/dev/null)
  if [ "${runs:-0}" -ge 1 ] && [ -z "$bad" ] &&
     [ "$(grep -c '^Uid:' "$TRACE")" -eq "$runs" ] &&
     [ "$(grep -c '^NoNewPrivs:' "$TRACE")" -eq "$runs" ]; then
    tap_ok 0 "$3"
  else
    tap_ok 1 "$3"
    diag "runs: ${runs:-0}" "$bad" "$(cat "$TRACE" 2>/dev/null)"
  fi
}

# no_libtpms_text FILE... DESC
no_libtpms_text() {
  local desc=${*: -1} f found=0
  for f in "${@:1:$#-1}"; do
    grep -q -- "$LIBTPMS_TEXT" "$f" && found=1
  done
  tap_ok $found "$desc"
  [ $found -eq 0 ] || diag "$(cat "${@:1:$#-1}")"
}

# new_vm: a store entry with generation 1 and the populated plaintext state
# encrypted under it, where libvirt keeps it, owned by the swtpm user.
new_vm() {
  UUID=$(hook_uuid)
  "$TOOL" init "$STORE_ROOT" "$UUID" >"$WORK/sec1" || bail "hook-store-tool init failed"
  SEC1=$(cat "$WORK/sec1")
  gen_pass 1 || bail "no passphrase"
  STATE=$SWTPM_ROOT/$UUID/tpm2
  clone_base plain "$SWTPM_ROOT/$UUID"
  rekey_key "$STATE" none "$(key 1)"
  [ "$RK_EXIT" -eq 0 ] || { rekey_diag; bail "cannot encrypt the state under generation 1"; }
  chown -R "$SU_UID:$SU_GID" "$SWTPM_ROOT/$UUID"
  hook_domain_xml "$WORK/vm.xml" vm "$UUID" "$SEC1"
}

# A plaintext swtpm state file whose libtpms blob is garbage: the real
# plaintext permall with the blob's first bytes (libtpms's NV header magic)
# overwritten.  swtpm's framing is intact, so only libtpms can reject it.
make_base plain plaintext || bail "cannot make a populated swtpm state"
cp "$WORK/base/plain/tpm2/tpm2-00.permall" "$WORK/garbage.permall"
put_bytes "$WORK/garbage.permall" 16 65 65 65 65 66 66 66 66
cp "$WORK/base/plain/tpm2/tpm2-00.permall" "$WORK/plain.permall"
cp "$WORK/base/plain/tpm2/tpm2-00.volatilestate" "$WORK/plain.volatilestate" 2>/dev/null
chmod 0644 "$WORK"/*.permall "$WORK"/*.volatilestate 2>/dev/null

# --- the hook: the encrypted state validates in the sandbox -------------------
new_vm
rm -f "$TRACE"
hook_run MSVM_SECURITY_TEST_SANDBOX_TRACE="$TRACE" -- vm prepare begin "$WORK/vm.xml"
hook_quiet "hook, encrypted state (real swtpm_setup TPM): prepare exits 0 silently"
trace_says "$SU_UID" "$SU_GID" \
  "  ... libtpms ran in the sandbox: as $SWTPM_USER ($SU_UID:$SU_GID), no groups, no_new_privs, seccomp"

# --- the hook: a plaintext file planted over an encrypted state -------------
before_store=$(show)
as_swtpm_user cp "$WORK/plain.permall" "$STATE/tpm2-00.permall" ||
  bail "the swtpm user cannot write its state directory"
as_swtpm_user rm -f "$STATE/tpm2-00.volatilestate"
[ -f "$WORK/plain.volatilestate" ] &&
  as_swtpm_user cp "$WORK/plain.volatilestate" "$STATE/tpm2-00.volatilestate"
[ "$(stat -c %u "$STATE/tpm2-00.permall")" -eq "$SU_UID" ] || bail "the planted file is not the swtpm user's"
planted=$(tree_snapshot "$SWTPM_ROOT/$UUID")
rm -f "$TRACE"
hook_run MSVM_SECURITY_TEST_SANDBOX_TRACE="$TRACE" -- vm prepare begin "$WORK/vm.xml"
hook_refused "hook: a valid plaintext TPM planted by the swtpm user over an encrypted state is refused" \
  "does not open under the key protector"
tap_is "$(grep -c '^Seccomp:' "$TRACE" 2>/dev/null || echo 0)" 0 \
  "  ... libtpms never ran on it (the store records the state as encrypted)"
tap_is "$(show)" "$before_store" "  ... the store is unchanged (the planted TPM is not adopted)"
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$planted" "  ... the state directory is unchanged"
no_libtpms_text "$HOOK_ERR" "$HOOK_OUT" "  ... no libtpms text"

as_swtpm_user cp "$WORK/garbage.permall" "$STATE/tpm2-00.permall"
as_swtpm_user rm -f "$STATE/tpm2-00.volatilestate"
rm -f "$TRACE"
hook_run MSVM_SECURITY_TEST_SANDBOX_TRACE="$TRACE" -- vm prepare begin "$WORK/vm.xml"
hook_refused "hook: garbage plaintext planted over an encrypted state is refused with one line" \
  "does not open under the key protector"
tap_is "$(grep -c '^Seccomp:' "$TRACE" 2>/dev/null || echo 0)" 0 "  ... and never parsed by libtpms"
no_libtpms_text "$HOOK_ERR" "$HOOK_OUT" "  ... no libtpms text"

# --- the hook: a store that records the state as plaintext --------------------
# (a pending encryption of a plaintext vTPM): the plaintext is tried, sandboxed.
"$TOOL" plaintext "$STORE_ROOT" "$UUID" || bail "hook-store-tool plaintext failed"
as_swtpm_user rm -f "$STATE/tpm2-00.volatilestate"
before_store=$(show)
planted=$(tree_snapshot "$SWTPM_ROOT/$UUID")
rm -f "$TRACE"
hook_run MSVM_SECURITY_TEST_SANDBOX_TRACE="$TRACE" -- vm prepare begin "$WORK/vm.xml"
hook_refused "hook: garbage where the store records a plaintext state: one line on stderr" \
  "domain vm"
no_libtpms_text "$HOOK_ERR" "$HOOK_OUT" "  ... no libtpms text on stdout or stderr"
grep -q "libtpms rejects the permanent state" "$HOOK_ERR"
tap_ok $? "  ... the line says libtpms rejected it (the message is the parent's)"
trace_says "$SU_UID" "$SU_GID" \
  "  ... libtpms ran as $SWTPM_USER ($SU_UID:$SU_GID), no groups, no_new_privs, seccomp"
tap_is "$(show)" "$before_store" "  ... the store is unchanged"
tap_is "$(tree_snapshot "$SWTPM_ROOT/$UUID")" "$planted" "  ... the state directory is unchanged"

# the genuine plaintext TPM in the same situation: validated in the sandbox
# and encrypted under `current` (the pending change finished)
as_swtpm_user cp "$WORK/plain.permall" "$STATE/tpm2-00.permall"
[ -f "$WORK/plain.volatilestate" ] &&
  as_swtpm_user cp "$WORK/plain.volatilestate" "$STATE/tpm2-00.volatilestate"
rm -f "$TRACE"
hook_run MSVM_SECURITY_TEST_SANDBOX_TRACE="$TRACE" -- vm prepare begin "$WORK/vm.xml"
hook_quiet "hook: the real plaintext state where the store records plaintext: starts"
trace_says "$SU_UID" "$SU_GID" "  ... validated by libtpms in the sandbox"
tap_is "$(show)" "current=1 state=1 lkg=0 lkg-from-start=0 journal=0" "  ... and encrypted under current"
rm -rf "$WORK/copy" && mkdir -p "$WORK/copy" && cp -a "$STATE" "$WORK/copy/tpm2"
swtpm_opens "$WORK/copy/tpm2" "$(key 1)"
tap_ok $? "  ... swtpm opens it under generation 1"

# --- the helper (msvm-security rekey, the library's path) ---------------------
HDIR=$WORK/helper/tpm2
mkdir -p "$HDIR"
cp "$WORK/garbage.permall" "$HDIR/tpm2-00.permall"
: >"$HDIR/.lock"
chown -R "$SU_UID:$SU_GID" "$WORK/helper"
before=$(tree_snapshot "$WORK/helper")
rm -f "$TRACE"
MSVM_SECURITY_TEST_SANDBOX_TRACE=$TRACE rekey_key "$HDIR" none "A:aes-256-cbc:pbkdf2"
expect_rekey 1 32775 "helper: garbage plaintext owned by $SWTPM_USER: 32775 (invalid state)"
no_libtpms_text "$RK_OUT" "$RK_ERR" "  ... no libtpms text in the report"
grep -q "libtpms rejects the permanent state" "$RK_OUT"
tap_ok $? "  ... the report says libtpms rejected it"
trace_says "$SU_UID" "$SU_GID" \
  "  ... libtpms ran as $SWTPM_USER ($SU_UID:$SU_GID), no groups, no_new_privs, seccomp"
tap_is "$(tree_snapshot "$WORK/helper")" "$before" "  ... nothing changed"

cp "$WORK/plain.permall" "$HDIR/tpm2-00.permall"
[ -f "$WORK/plain.volatilestate" ] && cp "$WORK/plain.volatilestate" "$HDIR/tpm2-00.volatilestate"
chown -R root:root "$WORK/helper"
rm -f "$TRACE"
MSVM_SECURITY_TEST_SANDBOX_TRACE=$TRACE rekey_key "$HDIR" none "A:aes-256-cbc:pbkdf2"
expect_rekey 0 0 "helper: the real plaintext state owned by root is encrypted"
trace_says "$NOBODY_UID" "$NOBODY_GID" "  ... libtpms ran as nobody ($NOBODY_UID:$NOBODY_GID) for a root-owned state"
rm -f "$TRACE"
MSVM_SECURITY_TEST_SANDBOX_TRACE=$TRACE rekey_key "$HDIR" "A:aes-256-cbc:pbkdf2" "B:aes-256-cbc:pbkdf2"
expect_rekey 0 0 "helper: the encrypted state re-keyed (validated in the sandbox)"
trace_says "$NOBODY_UID" "$NOBODY_GID" "  ... in the sandbox"
swtpm_opens "$HDIR" "B:aes-256-cbc:pbkdf2"
tap_ok $? "  ... swtpm opens it under the new key"

# --- a check that never returns -------------------------------------------------
# A FAKE: a stand-in helper that never answers (the real libtpms does not hang
# on demand); with the test-only timeout of 1 s the library gives up after
# 1 s + its 2 s margin.
FAKE=$WORK/fake-libexec
mkdir -p "$FAKE"
cat >"$FAKE/msvm-security-tpm-validate" <<'EOF'
#!/bin/sh
# FAKE msvm-security-tpm-validate (test only): a libtpms check that never returns.
exec sleep 600
EOF
chmod 0755 "$FAKE/msvm-security-tpm-validate"
before=$(tree_snapshot "$WORK/helper")
t0=$(date +%s%N)
MSVM_SECURITY_LIBEXECDIR=$FAKE MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS=1000 \
  rekey_key "$HDIR" "B:aes-256-cbc:pbkdf2" "C:aes-256-cbc:pbkdf2"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rekey 1 32772 "a hanging helper (fake): 32772 (timeout)"
tap_ok $((ms > 8000)) "  ... within the timeout and its margin (${ms} ms, at most 3 s + slack)"
tap_is "$(tree_snapshot "$WORK/helper")" "$before" "  ... nothing changed"
grep -q "did not answer within" "$RK_OUT"
tap_ok $? "  ... the report says the check did not answer"

# the real helper, its sandboxed child stalled (test builds only)
t0=$(date +%s%N)
MSVM_SECURITY_TEST_VALIDATE_STALL=1 MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS=1000 \
  rekey_key "$HDIR" "B:aes-256-cbc:pbkdf2" "C:aes-256-cbc:pbkdf2"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rekey 1 32772 "the real helper, its sandboxed child never answering: 32772"
tap_ok $((ms > 6000)) "  ... within the timeout (${ms} ms, 1 s + slack)"
tap_is "$(tree_snapshot "$WORK/helper")" "$before" "  ... nothing changed"
pgrep -u "$NOBODY_UID" -f msvm-security-tpm-validate >/dev/null
tap_ok $((! $?)) "  ... no sandboxed child left running"

# the hook: prepare of the encrypted state, its sandboxed child stalled
new_vm
before=$(hook_listing)
t0=$(date +%s%N)
hook_run MSVM_SECURITY_TEST_VALIDATE_STALL=1 MSVM_SECURITY_TEST_VALIDATE_TIMEOUT_MS=1000 \
  -- vm prepare begin "$WORK/vm.xml"
ms=$((($(date +%s%N) - t0) / 1000000))
hook_refused "hook: a libtpms check that never returns: refused with one line" \
  "cannot be checked: .*the libtpms check of the state did not finish within 1000 ms"
tap_ok $((ms > 6000)) "  ... within the timeout (${ms} ms, 1 s + slack)"
tap_is "$(hook_listing)" "$before" "  ... no file changed"
pgrep -u "$SU_UID" -f msvm-security-hook >/dev/null
tap_ok $((! $?)) "  ... no sandboxed child left running"

tap_done
