#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-hook.sh: what the libvirt hook costs per call, against /bin/true
# run the same way (a copy in the same directory, the same arguments, the
# same domain XML on standard input, the environment libvirt gives hooks):
#   1. an unmanaged guest ("prepare begin": the first stage reads the XML,
#      finds no namespace, exits) -- libvirt pays this for every guest;
#   2. a managed guest with nothing pending ("prepare begin": second stage,
#      store, and the check that the state opens under the definition's key,
#      libtpms in a forked child);
#   3. a managed guest with a pending re-key ("prepare begin" re-keys the
#      state and closes the job; the store and state are reset before each
#      run, outside the timing).
# Not a test: it prints figures and ratios (the README quotes them).
#
# Usage: tests/bench/bench-hook.sh [BUILDDIR] [RUNS]
#   BUILDDIR  meson build directory (default build), with the hook, its
#             module, hooks/msvm-security and tests/hook-store-tool built
#   RUNS      runs per case (default 200; 30 for the pending re-key)
# As root it runs in a private mount namespace with a tmpfs over /var/lib
# (tests/integration/lib-hook.sh).  Uses hyperfine when installed (it
# subtracts the shell's own start-up), a plain loop otherwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export MSVM_BUILDDIR=${1:-$here/../../build}
RUNS=${2:-200}
MSVM_BUILDDIR=$(cd "$MSVM_BUILDDIR" && pwd) || exit 1
. "$here/../integration/lib-hook.sh"
set -- "$MSVM_BUILDDIR" "$RUNS"
hook_ns_enter "$@"
hook_paths

MSVM=$MSVM_BUILDDIR/hooks/msvm-security
TOOL=$MSVM_BUILDDIR/tests/hook-store-tool
for f in "$HOOK" "$MSVM" "$TOOL"; do
  [ -x "$f" ] || { echo "bench-hook: $f is not built" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/msvm-bench-hook.XXXXXX") || exit 1
chmod 0755 "$WORK"
UUIDS=()
cleanup() {
  local u
  for u in "${UUIDS[@]}"; do rm -rf "${STORE_ROOT:?}/$u" "${SWTPM_ROOT:?}/$u"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The hook and /bin/true side by side (the hook copy finds the build tree's
# module, as an uninstalled copy does).
mkdir -p "$WORK/hooks"
cp "$HOOK" "$WORK/hooks/50-msvm-security"
cp /bin/true "$WORK/hooks/true"
H=$WORK/hooks/50-msvm-security
T=$WORK/hooks/true

# A managed VM: store with generation 1, state encrypted under it.
managed_vm() {          # managed_vm -> UUID, SECRET
  UUID=$(hook_uuid)
  UUIDS+=("$UUID")
  SECRET=$("$TOOL" init "$STORE_ROOT" "$UUID") || exit 1
  "$TOOL" passphrase "$STORE_ROOT" "$UUID" 1 "$WORK/pass1" || exit 1
  mkdir -p "$SWTPM_ROOT/$UUID"
  cp -a "$here/../data/tpm2state-plaintext/tpm2" "$SWTPM_ROOT/$UUID/tpm2"
  "$MSVM" rekey --state-dir "$SWTPM_ROOT/$UUID/tpm2" --new-passphrase-file "$WORK/pass1" \
    >/dev/null || { echo "bench-hook: cannot encrypt the state" >&2; exit 1; }
}

# Case 1: unmanaged (a libvirt-formatted domain of a usual size).
hook_domain_xml "$WORK/unmanaged.xml" plain "$(hook_uuid)" "$(hook_uuid)" no
# Case 2: managed, nothing pending.
managed_vm
hook_domain_xml "$WORK/managed.xml" managed "$UUID" "$SECRET"
# Case 3: managed with a pending re-key; the starting point is saved and put
# back before each run.
managed_vm
read -r SECRET2 _ < <("$TOOL" pending "$STORE_ROOT" "$UUID")
hook_domain_xml "$WORK/pending.xml" pending "$UUID" "$SECRET2"
P_UUID=$UUID
cp -a "$STORE_ROOT/$P_UUID" "$WORK/pending-store"
cp -a "$SWTPM_ROOT/$P_UUID" "$WORK/pending-state"
cat >"$WORK/reset.sh" <<EOF
#!/bin/bash
rm -rf "$STORE_ROOT/$P_UUID" "$SWTPM_ROOT/$P_UUID"
cp -a "$WORK/pending-store" "$STORE_ROOT/$P_UUID"
cp -a "$WORK/pending-state" "$SWTPM_ROOT/$P_UUID"
EOF
chmod +x "$WORK/reset.sh"

# Each case must do what it claims before it is timed.
run_as_libvirt() {      # run_as_libvirt PROG XML
  env -i USER="$HOOK_USER" HOME="$HOOK_HOME" LOGNAME="$HOOK_USER" PATH="$HOOK_PATH" LC_ALL=C \
    "$1" vm prepare begin - <"$2"
}
run_as_libvirt "$H" "$WORK/unmanaged.xml" || { echo "bench-hook: unmanaged case fails" >&2; exit 1; }
run_as_libvirt "$H" "$WORK/managed.xml" || { echo "bench-hook: managed case fails" >&2; exit 1; }
run_as_libvirt "$H" "$WORK/pending.xml" &&
  "$TOOL" show "$STORE_ROOT" "$P_UUID" | grep -q "state=2" ||
  { echo "bench-hook: pending case does not re-key" >&2; exit 1; }
"$WORK/reset.sh"

cmd() {                 # cmd PROG XML: the command line libvirt runs
  printf 'env -i USER=%q HOME=%q LOGNAME=%q PATH=%q LC_ALL=C %q vm prepare begin - <%q' \
    "$HOOK_USER" "$HOOK_HOME" "$HOOK_USER" "$HOOK_PATH" "$1" "$2"
}

# mean_ms LABEL COMMAND [PREPARE] -> prints "LABEL mean" and sets MEAN (ms).
mean_ms() {
  local label=$1 command=$2 prep=${3:-} runs=$RUNS
  [ -n "$prep" ] && runs=$((RUNS < 30 ? RUNS : 30))
  if command -v hyperfine >/dev/null; then
    local args=(--style none --warmup 5 --runs "$runs" --export-json "$WORK/h.json")
    [ -n "$prep" ] && args+=(--prepare "$prep")
    hyperfine "${args[@]}" "$command" >/dev/null 2>&1 || { echo "bench-hook: hyperfine failed on $label" >&2; exit 1; }
    MEAN=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.3f %.3f %.3f %.3f" % (r["mean"]*1000, r["stddev"]*1000, r["median"]*1000, r["min"]*1000))' "$WORK/h.json")
  else
    local t0 t1 i
    t0=$(date +%s%N)
    for ((i = 0; i < runs; i++)); do
      [ -n "$prep" ] && bash -c "$prep"
      bash -c "$command"
    done
    t1=$(date +%s%N)
    MEAN="$(awk -v a="$t0" -v b="$t1" -v n="$runs" 'BEGIN { printf "%.3f", (b - a) / n / 1e6 }') - - -"
  fi
  local m sd med min
  read -r m sd med min <<<"$MEAN"
  printf '%-40s mean %8s ms +- %-7s median %8s  min %8s  (%d runs)\n' \
    "$label" "$m" "$sd" "$med" "$min" "$runs"
  MEAN=$m
  MEDIAN=$med
}

echo "# msvm-security hook, wall time per call ($(uname -m), $(nproc) CPUs, $(id -un), load $(cut -d' ' -f1 /proc/loadavg))"
# /bin/true and the unmanaged guest twice each, interleaved, to see the noise.
mean_ms "/bin/true (same arguments, stdin, env)" "$(cmd "$T" "$WORK/unmanaged.xml")"
TRUE_MS=$MEAN TRUE_MED=$MEDIAN
mean_ms "hook, unmanaged guest" "$(cmd "$H" "$WORK/unmanaged.xml")"
UNMANAGED_MS=$MEAN UNMANAGED_MED=$MEDIAN
mean_ms "/bin/true, again" "$(cmd "$T" "$WORK/unmanaged.xml")"
TRUE2_MS=$MEAN
mean_ms "hook, unmanaged guest, again" "$(cmd "$H" "$WORK/unmanaged.xml")"
UNMANAGED2_MS=$MEAN
mean_ms "hook, managed guest, nothing pending" "$(cmd "$H" "$WORK/managed.xml")"
MANAGED_MS=$MEAN MANAGED_MED=$MEDIAN
mean_ms "/bin/true (with the reset of case 3)" "$(cmd "$T" "$WORK/pending.xml")" "$WORK/reset.sh"
TRUE_RESET_MS=$MEAN TRUE_RESET_MED=$MEDIAN
mean_ms "hook, managed guest, pending re-key" "$(cmd "$H" "$WORK/pending.xml")" "$WORK/reset.sh"
PENDING_MS=$MEAN PENDING_MED=$MEDIAN

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "# ratios to /bin/true (means; medians)"
echo "unmanaged guest:                $(ratio "$UNMANAGED_MS" "$TRUE_MS")x, $(ratio "$UNMANAGED_MED" "$TRUE_MED")x (again: $(ratio "$UNMANAGED2_MS" "$TRUE2_MS")x; /bin/true against itself: $(ratio "$TRUE2_MS" "$TRUE_MS")x)"
echo "managed guest, nothing pending: $(ratio "$MANAGED_MS" "$TRUE_MS")x, $(ratio "$MANAGED_MED" "$TRUE_MED")x"
echo "managed guest, pending re-key:  $(ratio "$PENDING_MS" "$TRUE_RESET_MS")x, $(ratio "$PENDING_MED" "$TRUE_RESET_MED")x"
