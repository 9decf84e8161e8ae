#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-system.sh: what SetSecurityPolicy costs under the PRIVILEGED daemon
# (qemu:///system, in the private namespace of tests/e2e/lib-system.sh),
# against the by-hand way nova changes a vTPM's secret, at 10 and at 1,000
# defined domains (issue 11's measure):
#
#   project   msvm-security set-security-policy on a stopped protected VM
#             whose state exists: a new generation, its secret, the define,
#             the re-key of the swtpm state (with the libtpms check in its
#             sandbox), the old generation's secret undefined;
#   baseline  virsh secret-define, virsh secret-set-value, virsh define (the
#             definition naming the new secret), virsh secret-undefine (the
#             old one) -- four commands, no re-key, nothing recorded.
#
# Each run gets a new policy (project) or a new secret (baseline) in a
# --prepare step that hyperfine does not time.  Not a test: it prints means,
# medians and the ratios (the README quotes them).
#
# Usage (root): tests/bench/bench-system.sh [BUILDDIR] [RUNS] [MANY]
#   BUILDDIR  a test build (-Dfault_injection=true: the hook copied into the
#             namespace uses the build tree's module), default build
#   RUNS      runs per case and size (default 20)
#   MANY      the larger number of defined domains (default 1000)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MSVM_BUILDDIR=$(cd "${1:-$here/../../build}" && pwd) || exit 1
export MSVM_SOURCEDIR=$(cd "$here/../.." && pwd)
RUNS=${2:-20}
MANY=${3:-1000}
. "$here/../e2e/lib-e2e.sh"
. "$here/../e2e/lib-system.sh"
E2E_QUIET=1
# (the harness's TAP printer is not used: failures stop the benchmark)
e2e_skip_all() { echo "bench-system: skipped: $*" >&2; exit 77; }
e2e_bail() { echo "bench-system: $*" >&2; exit 1; }
e2e_system_init "$@"
command -v hyperfine >/dev/null || e2e_bail "hyperfine is needed (./run installs it)"
W=$E2E_WORK

# --- the project's VM: protected, booted once (its state exists) -------------
e2e_define_vm bench-project uefi notpm
PU=$E2E_UUID
e2e_sample "$W/s.xml" wmi-cimdtd20.xml "$PU"
e2e_random "$W/kp" 256
e2e_random "$W/pol" 512
for step in "set-key-protector --settings s.xml --key-protector kp" \
            "set-security-policy --settings s.xml --policy pol" \
            "modify-security-settings --settings s.xml"; do
  # shellcheck disable=SC2086
  e2e_call R $step
  e2e_method_ok R >/dev/null || e2e_bail "setup: $step: $R_JSON"
done
e2e_virsh start bench-project --paused >/dev/null && e2e_virsh destroy bench-project >/dev/null ||
  e2e_bail "setup: the protected VM does not start"
[ -f "$E2E_SWTPM_DIR/$PU/tpm2/tpm2-00.permall" ] || e2e_bail "setup: no vTPM state"

cat >"$W/project-prepare.sh" <<EOF
#!/bin/bash
head -c 512 /dev/urandom >"$W/pol"
EOF
PROJECT="cd $W && $E2E_CLI -c qemu:///system set-security-policy --settings s.xml --policy pol >/dev/null"

# --- the baseline's VM: a TPM whose secret is managed by hand -------------------
e2e_define_vm bench-baseline uefi notpm
BU=$E2E_UUID
cat >"$W/baseline-prepare.sh" <<EOF
#!/bin/bash
# a new secret and the definition naming it (what nova computes first; each
# secret's usage name is its own: libvirt allows one secret per usage name)
set -e
new=\$(cat /proc/sys/kernel/random/uuid)
echo "\$new" >"$W/b-new"
cat >"$W/b-secret.xml" <<XML
<secret ephemeral='no' private='yes'><uuid>\$new</uuid><usage type='vtpm'><name>vTPM of $BU, \$new</name></usage></secret>
XML
head -c 32 /dev/urandom | base64 >"$W/b-value"
sed "s|<encryption secret='[^']*'/>|<encryption secret='\$new'/>|" "$W/b-domain.in" >"$W/b-domain.xml"
EOF
cat >"$W/baseline.sh" <<EOF
#!/bin/bash
# the four commands, as an operator (or nova's driver) runs them
set -e
old=\$(cat "$W/b-cur") new=\$(cat "$W/b-new")
virsh -q -c qemu:///system secret-define "$W/b-secret.xml" >/dev/null
virsh -q -c qemu:///system secret-set-value "\$new" --file "$W/b-value" >/dev/null
virsh -q -c qemu:///system define "$W/b-domain.xml" >/dev/null
virsh -q -c qemu:///system secret-undefine "\$old" >/dev/null
echo "\$new" >"$W/b-cur"
EOF
chmod +x "$W/project-prepare.sh" "$W/baseline-prepare.sh" "$W/baseline.sh"
first=$(e2e_uuidgen)
printf "<secret ephemeral='no' private='yes'><uuid>%s</uuid><usage type='vtpm'><name>vTPM of %s, %s</name></usage></secret>\n" \
  "$first" "$BU" "$first" >"$W/b-first.xml"
e2e_virsh secret-define "$W/b-first.xml" >/dev/null &&
  head -c 32 /dev/urandom | base64 >"$W/b-value" &&
  e2e_virsh secret-set-value "$first" --file "$W/b-value" >/dev/null || e2e_bail "setup: first secret"
echo "$first" >"$W/b-cur"
e2e_virsh dumpxml --inactive bench-baseline |
  sed "s|</devices>|<tpm model='tpm-crb'><backend type='emulator' version='2.0'><encryption secret='$first'/></backend></tpm></devices>|" \
  >"$W/b-domain.in"
e2e_virsh define "$W/b-domain.in" >/dev/null || e2e_bail "setup: baseline VM with its TPM"

# Both do what they claim before they are timed.
"$W/project-prepare.sh" && bash -c "$PROJECT" || e2e_bail "the project's call fails"
before=$(e2e_tpm_secret bench-project)
"$W/project-prepare.sh" && bash -c "$PROJECT" || e2e_bail "the project's call fails"
[ "$(e2e_tpm_secret bench-project)" != "$before" ] || e2e_bail "the project's call changed nothing"
"$W/baseline-prepare.sh" && "$W/baseline.sh" || e2e_bail "the baseline fails"
[ "$(e2e_tpm_secret bench-baseline)" = "$(cat "$W/b-cur")" ] || e2e_bail "the baseline changed nothing"

# fillers: domains without a TPM, defined in one virsh session
fill_to() {            # fill_to N: N domains defined in all
  local n have i f
  have=$(e2e_virsh list --all --name | grep -c .)
  n=$(($1 - have))
  [ "$n" -gt 0 ] || return 0
  : >"$W/fill.cmds"
  for ((i = 0; i < n; i++)); do
    f=$W/fill-$have-$i.xml
    sed -e "s|@NAME@|bench-fill-$have-$i|" -e "s|@UUID@|$(e2e_uuidgen)|" -e '/@METADATA@/d' \
        -e '/@DEVICES@/d' "$E2E_LIB_DIR/domains/bios.xml" >"$f"
    echo "define $f" >>"$W/fill.cmds"
  done
  virsh -q -c qemu:///system <"$W/fill.cmds" >/dev/null || e2e_bail "cannot define the fillers"
  rm -f "$W"/fill-*.xml
}

# mean_ms LABEL COMMAND PREPARE -> prints a line, sets MEAN and MEDIAN (ms)
mean_ms() {
  hyperfine --style none --warmup 2 --runs "$RUNS" --prepare "$3" \
    --export-json "$W/h.json" "$2" >/dev/null 2>"$W/h.err" ||
    { cat "$W/h.err" >&2; e2e_bail "hyperfine failed on $1"; }
  read -r MEAN SD MEDIAN MIN < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f %.1f %.1f %.1f" % (r["mean"]*1000, r["stddev"]*1000, r["median"]*1000, r["min"]*1000))' "$W/h.json")
  printf '%-46s mean %7s ms +- %-6s median %7s  min %7s  (%d runs)\n' "$1" "$MEAN" "$SD" "$MEDIAN" "$MIN" "$RUNS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "# SetSecurityPolicy under qemu:///system ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
declare -A R
for n in 10 "$MANY"; do
  fill_to "$n"
  echo "## $(e2e_virsh list --all --name | grep -c .) domains defined"
  mean_ms "baseline (4 virsh commands)" "$W/baseline.sh" "$W/baseline-prepare.sh"
  b1=$MEAN bm1=$MEDIAN
  mean_ms "project: set-security-policy + re-key" "$PROJECT" "$W/project-prepare.sh"
  p=$MEAN pm=$MEDIAN
  mean_ms "baseline, again" "$W/baseline.sh" "$W/baseline-prepare.sh"
  b2=$MEAN
  R[$n]=$(ratio "$p" "$(awk -v a="$b1" -v b="$b2" 'BEGIN { print (a + b) / 2 }')")
  echo "project / baseline: ${R[$n]}x (means; medians $(ratio "$pm" "$bm1")x; baseline against itself $(ratio "$b2" "$b1")x)"
  R[p$n]=$p
done
echo "# at $MANY against 10 domains: project $(ratio "${R[p$MANY]}" "${R[p10]}")x"
