#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/demo-system.sh BUILD_DIR: the second part of `./run demo`, the real
# deployment: the privileged libvirt daemon (qemu:///system) as every host
# runs it -- libvirtd as root, QEMU as libvirt-qemu, swtpm as tss, the
# project's hook in /etc/libvirt/hooks/qemu.d as root, the store in
# /var/lib/msvm-security -- in the private mount and network namespace of
# tests/e2e/lib-system.sh, so the host's own daemon, VMs and secrets are not
# touched.  Each command is printed as an administrator types it.
#
#   the os-win sequence with shielding on a UEFI q35 VM; the boot the
#   shielding message asks for; the vTPM state owned by tss and encrypted; a
#   policy change on the stopped VM (re-key, owner kept); --defer on the
#   running VM, finished by the hook at the next start.
# Root only (it says so and exits 0 otherwise).  Exits non-zero if a step fails.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: tests/demo-system.sh BUILD_DIR" >&2; exit 2; }
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "demo: no build directory $1" >&2; exit 2; }
export MSVM_BUILDDIR=$BUILD MSVM_SOURCEDIR=$ROOT
shift

N=${DEMO_STEP0:-0}
step() { N=$((N + 1)); printf '\n=== %d. %s\n' "$N" "$*"; }
say()  { printf '    %s\n' "$@"; }
fail() { printf '\ndemo: FAILED at step %d: %s\n' "$N" "$*" >&2; exit 1; }
show() { printf '# %s\n' "$*"; }           # what the administrator types, as root
indent() { sed 's/^/    /'; }

. "$ROOT/tests/e2e/lib-e2e.sh"
. "$ROOT/tests/e2e/lib-system.sh"
E2E_QUIET=1
e2e_skip_all() { say "(skipped: $*)"; exit 0; }
e2e_bail() { fail "$*"; }
if [ "${E2E_SYSTEM_NS:-0}" != 1 ]; then
  step "The real deployment: the privileged daemon, qemu:///system"
  say "In a private mount and network namespace: /run, /var/lib, /var/log and a copy of"
  say "/etc/libvirt of its own, so this host's own daemon, VMs and secrets stay untouched."
fi
export DEMO_STEP0=$N
e2e_system_init "$BUILD" "$@"

vsh() {               # vsh ARGS...: virsh as root, its output indented
  show "virsh $*"
  e2e_virsh "$@" >"$E2E_TMP/vsh" 2>&1
  local rc=$?
  indent <"$E2E_TMP/vsh"
  return $rc
}
msvm() {               # msvm ARGS...: the CLI as root, its report, a job waited for
  show "msvm-security $*"
  e2e_cli "$@" >"$E2E_TMP/out" 2>&1
  local rc=$?
  indent <"$E2E_TMP/out"
  return $rc
}

step "libvirtd and virtlogd run as root; the hook is installed where the package puts it"
show "ls -l /etc/libvirt/hooks/qemu.d/"
ls -l /etc/libvirt/hooks/qemu.d/ | indent
vsh uri

step "Define a VM: UEFI on q35, 128 MiB, no disk, no network, no TPM yet"
vm=demo-system
e2e_define_vm "$vm" uefi notpm || fail "virsh define"
uuid=$E2E_UUID
show "virsh define $vm.xml"
say "Domain '$vm' defined ($uuid)"

step "The os-win call sequence with shielding (ShieldingRequested TRUE)"
cd "$E2E_WORK" || fail "work dir"
e2e_sample settings.xml wmi-cimdtd20.xml "$uuid" ShieldingRequested=TRUE || fail "settings"
head -c 64 /dev/urandom >kp.bin
head -c 256 /dev/urandom >policy1.bin
head -c 256 /dev/urandom >policy2.bin
head -c 256 /dev/urandom >policy3.bin
msvm set-key-protector --settings settings.xml --key-protector kp.bin || fail "SetKeyProtector"
msvm set-security-policy --settings settings.xml --policy policy1.bin || fail "SetSecurityPolicy"
msvm modify-security-settings --settings settings.xml || fail "ModifySecuritySettings"
say "the definition now has an encrypted TPM 2.0 emulator and secure boot with enrolled keys:"
e2e_virsh dumpxml --inactive "$vm" | sed -n -e '/<os/,/<\/os>/p' -e '/<tpm/,/<\/tpm>/p' | indent

step "Boot it (start --reset-nvram, as the shielding message says: the enrolled keys need fresh NVRAM)"
vsh start "$vm" --reset-nvram || fail "start"
[ "$(e2e_domstate "$vm")" = running ] || fail "not running"
show "ps -o user,args -C swtpm"
ps -o user=,args= -C swtpm | cut -c1-150 | indent
ps -o user= -C swtpm | e2e_grep_q '^tss' || fail "swtpm does not run as tss"
vsh destroy "$vm"

step "The vTPM state: tss's, encrypted (header flags 0x09)"
sdir=$(e2e_state_dir "$uuid")
show "ls -ln $sdir"
ls -l "$sdir" | indent
say "flags: $(e2e_state_flags "$sdir/tpm2-00.permall")"
show "ls -ld /var/lib/msvm-security/$uuid"
ls -ld "/var/lib/msvm-security/$uuid" | indent

step "Change the policy of the stopped VM: a new generation, the state re-keyed, its owner kept"
msvm set-security-policy --settings settings.xml --policy policy2.bin || fail "SetSecurityPolicy"
ls -l "$sdir" | indent
vsh start "$vm" || fail "start after the re-key"

step "Change it while the VM runs: --defer, finished by the hook at the next start"
msvm --json set-security-policy --settings settings.xml --policy policy3.bin --defer || fail "--defer"
job=$(jq -r '.Job // empty' <"$E2E_TMP/out")
id=$(e2e_job_id "$job")
[ -n "$id" ] || fail "no job"
msvm job show "$id"
vsh destroy "$vm"
vsh start "$vm" || fail "start through the hook"
msvm job show "$id"
e2e_cli --json job show "$id" | jq -e '.ConcreteJob.JobState == 7' >/dev/null ||
  fail "the job did not complete"
vsh destroy "$vm"

step "Clean up: the namespace's daemons, VM, secrets and store go away with it"
say "done"
