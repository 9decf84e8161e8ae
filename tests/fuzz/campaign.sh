#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# campaign.sh: run every libFuzzer target of a fuzzing build for a while and
# report, per target, libFuzzer's own figures (tests/fuzz/README.md).
#
#   tests/fuzz/campaign.sh [options] SECONDS [BUILDDIR]
#
#   SECONDS        -max_total_time of each target
#   BUILDDIR       a build configured with -Dfuzzing=true (clang); default
#                  $MSVM_FUZZ_BUILDDIR, else <source>/build-fuzz
#   -t TARGET      only this target (fuzz-store, store, ...); repeatable
#   -j N           run N targets at once (default 1; libFuzzer uses one core each)
#   -o DIR         keep logs, new inputs and crash artifacts in DIR (default
#                  BUILDDIR/fuzz-campaign/<date>)
#   -m             merge: the new inputs that add coverage to the seed corpus
#                  tests/fuzz/<target>-corpus are copied into it, minimized
#                  (libFuzzer -merge=1 -use_counters=0: the smallest inputs
#                  that reach edges the corpus does not; hit counts alone do
#                  not count, which keeps the corpus small); then commit them
#   -x ARGS        more libFuzzer arguments for every target (e.g. "-max_len=8192")
#
# Each target runs over its seed corpus (only read) and a fresh work corpus
# (new inputs go there), with UBSan halting on its first report.  Output: a
# table of executions (stat::number_of_executed_units), coverage (cov: edges
# and ft: features of the last "#N" status line), new inputs and crashes; the
# same rows appended to BUILDDIR/fuzz-campaign/history.tsv, whose executions
# are added up per target in the last column (the 10^8 of issue 9 is
# reached by several runs).  Exit status 1 when a target crashed (its
# reproducer is in DIR/<target>/artifacts, the log in DIR/<target>.log), 2 on
# a usage or setup error, 0 otherwise.
set -u -o pipefail

usage() {
  awk 'NR > 3 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0" >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
targets=()
jobs=1
outdir=
merge=0
extra=()

while getopts "t:j:o:mx:h" opt; do
  case $opt in
  t) targets+=("${OPTARG#fuzz-}") ;;
  j) jobs=$OPTARG ;;
  o) outdir=$OPTARG ;;
  m) merge=1 ;;
  x) read -r -a more <<<"$OPTARG"; extra+=("${more[@]}") ;;
  *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] && [ $# -le 2 ] || usage
seconds=$1
builddir=${2:-${MSVM_FUZZ_BUILDDIR:-$srcdir/build-fuzz}}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "campaign.sh: SECONDS must be a positive integer" >&2; exit 2; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "campaign.sh: -j needs a positive integer" >&2; exit 2; }
builddir=$(cd "$builddir" 2>/dev/null && pwd) ||
  { echo "campaign.sh: no build directory ${2:-${MSVM_FUZZ_BUILDDIR:-$srcdir/build-fuzz}}" >&2; exit 2; }

# The targets: tests/fuzz/fuzz-NAME.c built as BUILDDIR/tests/fuzz-fuzz-NAME
# with its seed corpus tests/fuzz/NAME-corpus.
if [ ${#targets[@]} -eq 0 ]; then
  for src in "$here"/fuzz-*.c; do
    name=$(basename "$src" .c)
    name=${name#fuzz-}
    [ "$name" = driver ] && continue
    targets+=("$name")
  done
fi
for t in "${targets[@]}"; do
  bin=$builddir/tests/fuzz-fuzz-$t
  if [ ! -x "$bin" ]; then
    echo "campaign.sh: $bin is missing: is $builddir a fuzzing build (meson setup -Dfuzzing=true) and built?" >&2
    exit 2
  fi
  [ -d "$here/$t-corpus" ] || { echo "campaign.sh: no seed corpus $here/$t-corpus" >&2; exit 2; }
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
outdir=${outdir:-$builddir/fuzz-campaign/$stamp}
mkdir -p "$outdir" || exit 2
history=$builddir/fuzz-campaign/history.tsv
mkdir -p "$(dirname "$history")"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export G_DEBUG=${G_DEBUG:-gc-friendly}

# Runs one target; leaves DIR/<t>.log, DIR/<t>.rc, DIR/<t>/new, DIR/<t>/artifacts.
run_one() {
  local t=$1 work=$outdir/$1
  mkdir -p "$work/new" "$work/artifacts"
  "$builddir/tests/fuzz-fuzz-$t" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=25 -rss_limit_mb=2560 -artifact_prefix="$work/artifacts/" "${extra[@]}" \
    "$work/new" "$here/$t-corpus" >"$outdir/$t.log" 2>&1
  echo $? >"$outdir/$t.rc"
}

running=0
for t in "${targets[@]}"; do
  echo "campaign.sh: fuzz-$t for ${seconds}s" >&2
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

crashed=0
printf '%-14s %8s %14s %10s %8s %8s %6s %8s %16s\n' target seconds executions exec/s edges \
  features new crashes 'executions(all)' | tee "$outdir/summary.txt"
for t in "${targets[@]}"; do
  log=$outdir/$t.log
  rc=$(cat "$outdir/$t.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+[[:space:]].*cov: [0-9]+' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  new=$(find "$outdir/$t/new" -type f | wc -l)
  crashes=$(find "$outdir/$t/artifacts" -type f | wc -l)
  if [ "$rc" != 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # died without an artifact (see the log)
  fi
  [ "$crashes" -gt 0 ] && crashed=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$stamp" "$t" "$seconds" "${execs:-0}" "${cov:-0}" \
    "${ft:-0}" "$new" "$crashes" >>"$history"
  total=$(awk -F'\t' -v t="$t" '$2 == t { s += $4 } END { printf "%.0f", s }' "$history")
  printf '%-14s %8s %14s %10s %8s %8s %6s %8s %16s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "$new" "$crashes" "$total" | tee -a "$outdir/summary.txt"
done

if [ "$crashed" -ne 0 ]; then
  for t in "${targets[@]}"; do
    for a in "$outdir/$t"/artifacts/*; do
      [ -e "$a" ] && echo "campaign.sh: fuzz-$t crashed: $a (log $outdir/$t.log)" >&2
    done
    rc=$(cat "$outdir/$t.rc" 2>/dev/null || echo 1)
    [ "$rc" != 0 ] && [ -z "$(ls -A "$outdir/$t/artifacts")" ] &&
      echo "campaign.sh: fuzz-$t exited with status $rc (log $outdir/$t.log)" >&2
  done
fi

if [ "$merge" -eq 1 ]; then
  for t in "${targets[@]}"; do
    corpus=$here/$t-corpus
    before=$(find "$corpus" -type f | wc -l)
    if [ -z "$(ls -A "$outdir/$t/new")" ]; then
      continue
    fi
    "$builddir/tests/fuzz-fuzz-$t" -merge=1 -use_counters=0 -timeout=25 -rss_limit_mb=2560 \
      -merge_control_file="$outdir/$t.merge" "${extra[@]}" "$corpus" "$outdir/$t/new" \
      >"$outdir/$t.merge.log" 2>&1 ||
      { echo "campaign.sh: merging into $corpus failed (log $outdir/$t.merge.log)" >&2; crashed=1; continue; }
    after=$(find "$corpus" -type f | wc -l)
    size=$(du -sk "$corpus" | cut -f1)
    echo "campaign.sh: $t-corpus: $before -> $after files (${size} KiB)" >&2
    if [ "$after" -gt 200 ] || [ "$size" -gt 4096 ]; then
      echo "campaign.sh: $t-corpus is larger than 200 files or 4 MiB: review before committing" >&2
    fi
  done
fi

echo "campaign.sh: logs, new inputs and artifacts in $outdir" >&2
exit "$crashed"
