#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-rekey.sh: how long a vTPM state re-key takes, `msvm-security rekey`
# against the only way there is without it: two swtpm runs, the first under
# the old key saving the permanent and volatile state blobs with
# `swtpm_ioctl --save`, the second under the new key on an empty directory
# loading them with `swtpm_ioctl --load`, initialising the TPM and storing
# the volatile state again.  Both run on the same libvirt-style state
# (swtpm_setup with EK, certificates, AES-256-CBC, an NV index, a persistent
# object and a stored volatile state), and both results are checked with
# swtpm before anything is timed.  Not a test: it prints figures.
#
# Usage: tests/bench/bench-rekey.sh [BUILDDIR] [RUNS]
#   BUILDDIR  meson build directory holding hooks/msvm-security (default build)
#   RUNS      runs per method (default 50)
# Uses hyperfine when installed, a plain loop otherwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export MSVM_BUILDDIR=${1:-$here/../../build}
RUNS=${2:-50}
MSVM_BUILDDIR=$(cd "$MSVM_BUILDDIR" && pwd) || exit 1
. "$here/../integration/lib-swtpm.sh"
it_setup >/dev/null

make_base bench libvirt || { echo "bench-rekey: cannot make the state" >&2; exit 1; }
PA=$(pass_file A)
PB=$(pass_file B)

# The two methods as stand-alone scripts (hyperfine runs each in a shell).
cat >"$WORK/msvm-rekey.sh" <<EOF
#!/bin/bash
exec "$MSVM" rekey --state-dir "$WORK/run/tpm2" --old-passphrase-file "$PA" \\
  --new-passphrase-file "$PB" >/dev/null
EOF
cat >"$WORK/swtpm-save-load.sh" <<EOF
#!/bin/bash
# Two swtpm runs; the blobs are plaintext files for a moment (the only way
# without a migration key).
set -e
w="$WORK/run"
start() { # DIR PWDFILE SOCKET [SWTPM-OPTION...]
  local d=\$1 k=\$2 s=\$3; shift 3
  swtpm socket --tpm2 --tpmstate dir="\$d" --server type=unixio,path="\$s" \\
    --ctrl type=unixio,path="\$s.ctrl" --pid file="\$s.pid" \\
    --log file=/dev/null -d --key pwdfile="\$k",mode=aes-256-cbc "\$@"
}
stop() { # SOCKET
  local pid; pid=\$(cat "\$1.pid")
  swtpm_ioctl --unix "\$1.ctrl" -s
  # Until it has exited (a zombie has an empty cmdline; reaping is init's).
  while grep -qs swtpm "/proc/\$pid/cmdline"; do sleep 0.001; done
}
start "\$w/tpm2" "$PA" "\$w/s1" --flags not-need-init
swtpm_ioctl --unix "\$w/s1.ctrl" --save permanent "\$w/permanent.blob"
swtpm_ioctl --unix "\$w/s1.ctrl" --save volatile "\$w/volatile.blob"
stop "\$w/s1"
mkdir "\$w/tpm2.new"
start "\$w/tpm2.new" "$PB" "\$w/s2"
swtpm_ioctl --unix "\$w/s2.ctrl" --load permanent "\$w/permanent.blob"
swtpm_ioctl --unix "\$w/s2.ctrl" --load volatile "\$w/volatile.blob"
swtpm_ioctl --unix "\$w/s2.ctrl" -i >/dev/null
swtpm_ioctl --unix "\$w/s2.ctrl" -v
stop "\$w/s2"
rm -f "\$w/permanent.blob" "\$w/volatile.blob" "\$w"/s1* "\$w"/s2*
rm -rf "\$w/tpm2"
mv "\$w/tpm2.new" "\$w/tpm2"
EOF
cat >"$WORK/prepare.sh" <<EOF
#!/bin/bash
rm -rf "$WORK/run" && cp -a "$WORK/base/bench" "$WORK/run"
EOF
chmod +x "$WORK"/*.sh

# Both methods must really re-key: check their results with swtpm.
for m in msvm-rekey swtpm-save-load; do
  "$WORK/prepare.sh" && "$WORK/$m.sh" || { echo "bench-rekey: $m failed" >&2; exit 1; }
  if ! tpm_verify "$WORK/run/tpm2" B:aes-256-cbc:pbkdf2 "$WORK/expect/bench" >/dev/null; then
    echo "bench-rekey: after $m swtpm under B does not read the state back" >&2
    exit 1
  fi
done

echo "# vTPM state re-key, A -> B, AES-256-CBC, PBKDF2; $(nproc) CPUs; swtpm $(swtpm --version | sed -n 's/.*version \([0-9.]*\).*/\1/p')"
echo "# state: $(cd "$WORK/base/bench/tpm2" && stat -c '%n %s B' tpm2-00.* | tr '\n' ' ')"
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine -N --warmup 3 --runs "$RUNS" --prepare "$WORK/prepare.sh" \
    --export-markdown "$WORK/bench.md" \
    -n "msvm-security rekey" "$WORK/msvm-rekey.sh" \
    -n "swtpm --save/--load (two swtpm runs)" "$WORK/swtpm-save-load.sh"
  echo
  cat "$WORK/bench.md"
else
  declare -A total
  for m in msvm-rekey swtpm-save-load; do
    total[$m]=0
    for _ in $(seq "$RUNS"); do
      "$WORK/prepare.sh"
      t0=$(date +%s%N)
      "$WORK/$m.sh"
      t1=$(date +%s%N)
      total[$m]=$((total[$m] + t1 - t0))
    done
    printf '%-20s mean %8.2f ms over %d runs\n' "$m" \
      "$(echo "${total[$m]} / $RUNS / 1000000" | bc -l)" "$RUNS"
  done
  printf 'ratio (swtpm-save-load / msvm-rekey): %.2f\n' \
    "$(echo "${total[swtpm-save-load]} / ${total[msvm-rekey]}" | bc -l)"
fi
