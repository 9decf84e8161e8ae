#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-migrate.sh: what the project's steps add to a live migration of a
# protected VM (issue 10's measure), between the two hosts of
# tests/e2e/lib-twohost.sh (two session daemons, the hook loaded by both):
#
#   project   export-protector at the source for the destination's guardian,
#             the bundle copied, import-protector at the destination, then
#             `virsh migrate --live --persistent --undefinesource`;
#   baseline  the same `virsh migrate` of a VM of the same size whose vTPM
#             secret an operator defined by hand on both hosts (same UUID
#             and value: what nova does over RPC), and nothing else.
#
# The two run interleaved, A to B then B to A, ROUNDS times each way, in one
# run; it prints the mean and median of each and the ratio.  Not a test.
#
# Usage (root): tests/bench/bench-migrate.sh [BUILDDIR] [ROUNDS]
#   BUILDDIR  a test build (-Dfault_injection=true), default build
#   ROUNDS    migrations each way per case (default 5)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MSVM_BUILDDIR=$(cd "${1:-$here/../../build}" && pwd) || exit 1
export MSVM_SOURCEDIR=$(cd "$here/../.." && pwd)
ROUNDS=${2:-5}
E2E_USER=${E2E_USER:-msvm-e2e-bench-a}
E2E_B_USER=${E2E_B_USER:-msvm-e2e-bench-b}
. "$here/../e2e/lib-e2e.sh"
. "$here/../e2e/lib-twohost.sh"
E2E_QUIET=1
e2e_skip_all() { echo "bench-migrate: skipped: $*" >&2; exit 77; }
e2e_bail() { echo "bench-migrate: $*" >&2; exit 1; }
fail() { echo "bench-migrate: $*" >&2; exit 1; }
twohost_init
now() { date +%s.%N; }

# --- the protected VM, running at A; the guardians exchanged -----------------
e2e_define_vm bench-project bios notpm
PU=$E2E_UUID
e2e_sample "$E2E_WORK/s.xml" wmi-cimdtd20.xml "$PU"
e2e_random "$E2E_WORK/kp" 64
e2e_random "$E2E_WORK/pol" 256
for step in "set-key-protector --settings s.xml --key-protector kp" \
            "set-security-policy --settings s.xml --policy pol" \
            "modify-security-settings --settings s.xml"; do
  # shellcheck disable=SC2086
  e2e_call R $step
  e2e_method_ok R >/dev/null || fail "setup: $step: $R_JSON"
done
e2e_cli guardian show --output ga.pem >/dev/null && on_b e2e_cli guardian show --output gb.pem >/dev/null ||
  fail "setup: guardian show"
cp "$A_E2E_WORK/ga.pem" "$E2E_TMP/" && cp "$B_E2E_WORK/gb.pem" "$E2E_TMP/" &&
  twohost_give_a "$E2E_TMP/gb.pem" && twohost_give_b "$E2E_TMP/ga.pem" || fail "setup: copies"
e2e_cli guardian trust --name host-b --certificate gb.pem >/dev/null &&
  on_b e2e_cli guardian trust --name host-a --certificate ga.pem >/dev/null || fail "setup: trust"

# --- the baseline VM: a vTPM secret defined by hand on both hosts --------------
e2e_define_vm bench-baseline bios notpm
BU=$E2E_UUID
BS=$(e2e_uuidgen)
printf "<secret ephemeral='no' private='yes'><uuid>%s</uuid><usage type='vtpm'><name>%s</name></usage></secret>\n" \
  "$BS" "$BU" >"$E2E_TMP/bs.xml"
head -c 32 /dev/urandom | base64 >"$E2E_TMP/bs.value"
twohost_give_a "$E2E_TMP/bs.xml" "$E2E_TMP/bs.value" && twohost_give_b "$E2E_TMP/bs.xml" "$E2E_TMP/bs.value"
for h in A B; do
  run=(); [ $h = B ] && run=(on_b)
  "${run[@]}" e2e_virsh secret-define bs.xml >/dev/null &&
    "${run[@]}" e2e_virsh secret-set-value "$BS" --file bs.value >/dev/null || fail "setup: secret on $h"
done
e2e_virsh dumpxml --inactive bench-baseline |
  sed "s|</devices>|<tpm model='tpm-tis'><backend type='emulator' version='2.0'><encryption secret='$BS'/></backend></tpm></devices>|" \
  >"$E2E_WORK/b.xml" && e2e_give "$E2E_WORK/b.xml" && e2e_virsh define b.xml >/dev/null ||
  fail "setup: the baseline VM's TPM"

e2e_virsh start bench-project >/dev/null && e2e_virsh start bench-baseline >/dev/null ||
  fail "setup: the VMs do not start at A"

# project FROM TO: export at FROM for TO's guardian, copy, import at TO, migrate
project() {
  local from=$1 to=$2 g run_from=() run_to=() src dst
  if [ "$from" = A ]; then g=host-b run_to=(on_b) src=$A_E2E_WORK dst=$B_E2E_WORK
  else g=host-a run_from=(on_b) src=$B_E2E_WORK dst=$A_E2E_WORK; fi
  local t0 t1 t2
  t0=$(now)
  "${run_from[@]}" e2e_cli export-protector --domain bench-project --guardian "$g" \
    --output move.bundle >/dev/null || return 1
  install -m 0600 -o "$(stat -c %u "$dst")" "$src/move.bundle" "$dst/move.bundle" || return 1
  rm -f "$src/move.bundle"
  t1=$(now)
  "${run_to[@]}" e2e_cli import-protector --input move.bundle >/dev/null || return 1
  t2=$(now)
  EXPORT_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  IMPORT_S=$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')
  twohost_migrate "$from" "$to" bench-project || return 1
  MIGRATE_S=$(awk -v a="$t2" -v b="$(now)" 'BEGIN { print b - a }')
}
baseline() { twohost_migrate "$1" "$2" bench-baseline; }

P=() Bl=() EX=() IM=() MI=()
from=A to=B
for ((i = 0; i < 2 * ROUNDS; i++)); do
  t0=$(now); project "$from" "$to" || fail "project $from -> $to failed"; t1=$(now)
  baseline "$from" "$to" || fail "baseline $from -> $to failed"; t2=$(now)
  P+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  EX+=("$EXPORT_S") IM+=("$IMPORT_S") MI+=("$MIGRATE_S")
  Bl+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')")
  printf '%s -> %s: project %.2f s (export %.3f, import %.3f, migrate %.2f), baseline %.2f s\n' \
    "$from" "$to" "${P[-1]}" "$EXPORT_S" "$IMPORT_S" "$MIGRATE_S" "${Bl[-1]}"
  tmp=$from from=$to to=$tmp
done
stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1; s += $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f", s / NR, m }'; }
read -r pm pmed < <(stats "${P[@]}")
read -r bm bmed < <(stats "${Bl[@]}")
echo "# $((2 * ROUNDS)) live migrations each (TCG, 128 MiB, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
printf 'project  (export + import + migrate): mean %.2f s, median %.2f s\n' "$pm" "$pmed"
printf 'baseline (migrate, secret by hand):   mean %.2f s, median %.2f s\n' "$bm" "$bmed"
read -r em emed < <(stats "${EX[@]}")
read -r im imed < <(stats "${IM[@]}")
read -r mm mmed < <(stats "${MI[@]}")
printf '  of which export-protector (with the copy): mean %.3f s, median %.3f s; import-protector: mean %.3f s, median %.3f s\n' \
  "$em" "$emed" "$im" "$imed"
printf '  and the migration of the protected VM (its hooks at both ends): mean %.2f s, median %.2f s\n' "$mm" "$mmed"
printf 'project / baseline: %.3fx (means), %.3fx (medians)\n' \
  "$(awk -v a="$pm" -v b="$bm" 'BEGIN { print a / b }')" "$(awk -v a="$pmed" -v b="$bmed" 'BEGIN { print a / b }')"
