# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# lib-system.sh: the end-to-end harness for the *privileged* libvirt daemon
# (qemu:///system), as every real host runs it: libvirtd and virtlogd as
# root, QEMU as libvirt-qemu, swtpm as tss, the project's hook as root, the
# store in /var/lib/msvm-security.  Sourced after lib-e2e.sh, whose TAP
# printer and helpers it reuses.
#
#   . "$(dirname "$0")/lib-e2e.sh"
#   . "$(dirname "$0")/lib-system.sh"
#   e2e_system_init "$@"     # re-runs the script in a private namespace
#
# The host is never touched.  The script re-executes itself under
# `unshare --mount --net`: in that mount namespace
#   /run                         is a fresh tmpfs (libvirt's sockets, pid files),
#   /etc/libvirt                 is a copy of the host's (the hook goes into
#                                its hooks/qemu.d/ before the daemon starts;
#                                qemu.conf gets cgroup_controllers = [ ] so no
#                                cgroup is made on the host),
#   /var/lib, /var/log, /var/cache  are overlays whose upper layers live in
#                                the run's temporary directory (so
#                                /var/lib/libvirt, /var/lib/msvm-security,
#                                /var/lib/swtpm-localca and /var/log/libvirt
#                                start as the host has them, and every write
#                                lands in the temporary directory),
# libvirtd.conf gets socket permissions instead of polkit (there is no D-Bus
# in the namespace): read-only socket for all, read-write for root and the
# group libvirt, as on a host without polkit;
# and the network namespace has only loopback (no bridge, no dnsmasq, no
# firewall rule reaches the host).  A host's own daemon, VMs and secrets are
# invisible.  The daemons are this script's children; at exit every process
# of the namespace is killed and the temporary directory removed, so nothing
# is left behind (the mounts die with the namespace).
#
# Needs root, `unshare` with mount namespaces (not inside a chroot that
# forbids them: then the test is skipped, with that reason) and Debian's
# libvirt-daemon-system (its libvirt-qemu user; ./run installs it).

E2E_SYSTEM_USERS_NEEDED="libvirt-qemu tss nobody"

e2e_system_reexec() {
  [ "$(id -u)" -eq 0 ] || e2e_skip_all "the system daemon suite runs as root (CI does)"
  local u
  for u in $E2E_SYSTEM_USERS_NEEDED; do
    getent passwd "$u" >/dev/null ||
      e2e_skip_all "no user $u (Debian's libvirt-daemon-system brings libvirt-qemu; ./run installs it)"
  done
  command -v unshare >/dev/null || e2e_skip_all "no unshare (util-linux)"
  unshare --mount --net --propagation private true 2>/dev/null ||
    e2e_skip_all "cannot make a private mount and network namespace here (unshare --mount --net)"
  exec unshare --mount --net --propagation private -- \
    env E2E_SYSTEM_NS=1 bash "$0" "$@"
}

# The mount namespace's identity: processes that share it are ours.
e2e_system_ns_pids() {
  local me p
  me=$(readlink /proc/self/ns/mnt)
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
    [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$me" ] && echo "$p"
  done
}

e2e_system_cleanup() {
  local rc=$? d i pids
  set +e
  if [ -S /run/libvirt/libvirt-sock ]; then
    for d in $(virsh -q -c qemu:///system list --name 2>/dev/null); do
      virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
    done
  fi
  e2e_tpm_stop 2>/dev/null
  [ -n "${E2E_SYSTEM_LIBVIRTD:-}" ] && kill -TERM "$E2E_SYSTEM_LIBVIRTD" 2>/dev/null
  [ -n "${E2E_SYSTEM_VIRTLOGD:-}" ] && kill -TERM "$E2E_SYSTEM_VIRTLOGD" 2>/dev/null
  for i in $(seq 50); do
    pids=$(e2e_system_ns_pids)
    [ -z "$pids" ] && break
    [ "$i" = 30 ] && kill -KILL $pids 2>/dev/null
    sleep 0.1
  done
  wait 2>/dev/null
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "# E2E_KEEP=1: the namespace's files are kept in $E2E_SYSTEM_BASE" >&2
  else
    # (the overlays' upper layers hold files of tss and libvirt-qemu)
    cd / && umount -R /var/lib/swtpm-localca /var/lib /var/log /var/cache /etc/libvirt 2>/dev/null
    [ -n "${E2E_SYSTEM_BASE:-}" ] && rm -rf "$E2E_SYSTEM_BASE"
  fi
  exit $rc
}

# e2e_system_init "$@": outside the namespace, re-run this script inside one;
# inside, make the private directories, install the hook, start the daemons.
e2e_system_init() {
  [ "${E2E_SYSTEM_NS:-0}" = 1 ] || e2e_system_reexec "$@"
  unset E2E_SYSTEM_NS
  E2E_DOMAINS=()
  E2E_UUIDS=()
  e2e_require_cmds libvirtd virtlogd virsh qemu-system-x86_64 swtpm swtpm_ioctl tpm2_nvdefine \
    tpm2_nvwrite tpm2_nvread openssl jq setpriv sha256sum od ip
  [ -n "${MSVM_BUILDDIR:-}" ] || e2e_bail "MSVM_BUILDDIR is not set"
  [ -x "$E2E_CLI" ] || e2e_bail "no CLI at $E2E_CLI"
  [ -x "$E2E_HOOK_SRC" ] || e2e_bail "the hook is not built ($E2E_HOOK_SRC)"

  E2E_SYSTEM_BASE=$(mktemp -d /tmp/msvm-e2e-system.XXXXXX) || e2e_bail "no temporary directory"
  chmod 0711 "$E2E_SYSTEM_BASE"
  trap e2e_system_cleanup EXIT
  trap 'exit 130' INT TERM HUP
  local b=$E2E_SYSTEM_BASE d
  mount --make-rprivate / || e2e_bail "cannot make the mounts private"
  mount -t tmpfs -o mode=0755 msvm-e2e-run /run || e2e_bail "cannot mount a private /run"
  mkdir -p "$b/etc" && cp -a /etc/libvirt "$b/etc/libvirt" &&
    mount --bind "$b/etc/libvirt" /etc/libvirt || e2e_bail "cannot bind a copy of /etc/libvirt"
  for d in lib log cache; do
    mkdir -p "$b/var-$d/upper" "$b/var-$d/work" &&
      mount -t overlay "msvm-e2e-var-$d" \
        -o "lowerdir=/var/$d,upperdir=$b/var-$d/upper,workdir=$b/var-$d/work" "/var/$d" ||
      e2e_bail "cannot put an overlay on /var/$d"
  done
  # swtpm's local CA as swtpm-tools leaves it (empty, tss's): what tss
  # creates there on the first start stays in the run's directory, and a
  # host's own CA (perhaps made by root, which tss could not use) is unseen
  mkdir -p "$b/swtpm-localca" && chown tss:root "$b/swtpm-localca" && chmod 0750 "$b/swtpm-localca" &&
    mkdir -p /var/lib/swtpm-localca && mount --bind "$b/swtpm-localca" /var/lib/swtpm-localca ||
    e2e_bail "cannot give swtpm a private local CA"
  ip link set lo up 2>/dev/null
  # no cgroup of the host's is touched; no network autostarts (none exists
  # in this network namespace anyway); the daemon answers to root only
  # QEMU stays in this mount namespace (libvirt's default gives it one of its
  # own, which the cleanup's namespace scan would not see)
  printf 'cgroup_controllers = [ ]\nnamespaces = [ ]\n' >>/etc/libvirt/qemu.conf
  # No D-Bus and no polkit in here: the sockets' access as a host without
  # polkit sets it (libvirtd.conf's own example): the read-only socket for
  # everyone, the read-write one for root and the group libvirt
  cat >>/etc/libvirt/libvirtd.conf <<'CONF'
unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
CONF
  # nothing of the host's starts in here: no network, no storage pool (a
  # logical pool would activate the host's volume groups), no VM, no hook
  # but the project's (daemon and network hooks would run host scripts)
  rm -f /etc/libvirt/qemu/networks/autostart/* /etc/libvirt/qemu/*.xml \
        /etc/libvirt/storage/autostart/* /etc/libvirt/storage/*.xml 2>/dev/null
  rm -rf /etc/libvirt/hooks && mkdir -m 0755 /etc/libvirt/hooks
  rm -rf /var/lib/libvirt/qemu/*.xml /var/lib/libvirt/swtpm /var/lib/msvm-security \
         /etc/libvirt/secrets 2>/dev/null

  # the hook, as the package installs it, older than the daemon's start
  mkdir -m 0755 -p "$(dirname "$HOOK_DST")" &&
    cp "$E2E_HOOK_SRC" "$HOOK_DST" && chmod 0755 "$HOOK_DST" &&
    touch -d "@$(($(date +%s) - 5))" "$HOOK_DST" || e2e_bail "cannot install the hook at $HOOK_DST"
  E2E_HOOK_LOADED=1

  # who runs what: root runs the CLI and virsh (E2E_UID 0), with a HOME of
  # its own so nothing lands in /root; swtpm by hand runs as tss, like
  # libvirt's, so the state keeps its owner
  E2E_ROOT_MODE=1
  E2E_USER=root E2E_UID=0 E2E_GID=0
  E2E_URI=qemu:///system
  E2E_TMP=$b/work
  E2E_WORK=$E2E_TMP/user
  E2E_HOME=$E2E_TMP/home
  E2E_RT=$E2E_TMP/rt
  mkdir -p "$E2E_WORK" "$E2E_HOME" "$E2E_RT"
  chmod 0700 "$E2E_WORK" "$E2E_HOME" "$E2E_RT"
  chmod 0711 "$E2E_TMP"
  E2E_STORE=/var/lib/msvm-security
  E2E_SWTPM_DIR=/var/lib/libvirt/swtpm
  E2E_SWTPM_PIDDIR=/run/libvirt/qemu/swtpm
  E2E_TPM_USER=tss
  E2E_TPM_WORK=$E2E_TMP/tpm
  E2E_TPM_RT=$E2E_TPM_WORK
  mkdir -p "$E2E_TPM_WORK" && chown tss: "$E2E_TPM_WORK" && chmod 0700 "$E2E_TPM_WORK"
  E2E_T0=$(date +%s.%N)
  E2E_T_LAST=$E2E_T0
  E2E_LOCK_WAITED=0

  # the daemons, as root, in the foreground of their own (children of this
  # script, so they are reaped and killed with it)
  virtlogd >"$E2E_TMP/virtlogd.log" 2>&1 &
  E2E_SYSTEM_VIRTLOGD=$!
  local i
  for i in $(seq 100); do [ -S /run/libvirt/virtlogd-sock ] && break; sleep 0.1; done
  libvirtd >"$E2E_TMP/libvirtd.log" 2>&1 &
  E2E_SYSTEM_LIBVIRTD=$!
  for i in $(seq 150); do
    [ -S /run/libvirt/libvirt-sock ] && break
    kill -0 "$E2E_SYSTEM_LIBVIRTD" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$(e2e_virsh uri 2>/dev/null)" != qemu:///system ]; then
    e2e_diag "$(cat "$E2E_TMP/libvirtd.log")"
    e2e_bail "the privileged libvirt daemon did not start"
  fi
  return 0
}

# e2e_system_modes PATH...: mode, owner and group of each path (the test
# compares them before and after re-keys)
e2e_system_modes() {
  local p
  for p in "$@"; do stat -c '%n %a %U:%G' "$p" 2>&1; done
}
