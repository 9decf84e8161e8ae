# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# lib-twohost.sh: two libvirt "hosts" on one machine, for moving protected
# VMs between them (issue 10, DESIGN.md section 10).  Sourced after
# lib-e2e.sh; root only.
#
#   . "$(dirname "$0")/lib-e2e.sh"
#   . "$(dirname "$0")/lib-twohost.sh"
#   twohost_init           # host A (the harness's daemon) and host B up
#   on_b e2e_virsh list    # any harness helper, run against host B
#
# Host A is the harness's own session daemon (user E2E_USER, default
# msvm-e2e-mig-a); host B a second session daemon run the same way by the
# user E2E_B_USER (default msvm-e2e-mig-b), with its own home, store, state
# directory and runtime directory.  Each daemon's libvirtd.conf has its own
# host_uuid (libvirt refuses to migrate to "the same host" otherwise).  The
# project's hook is installed in libvirt's hook directory before either
# daemon starts (the global hook lock of lib-e2e.sh is held for the run), so
# both load it.  Root drives migrations from A's socket to B's
# (qemu+unix:///session?socket=...), the data over tcp://127.0.0.1:PORT.
#
# on_b CMD...: runs CMD with the harness's per-host variables (E2E_USER,
# E2E_UID, E2E_HOME, E2E_RT, E2E_WORK, E2E_STORE, E2E_SWTPM_DIR,
# E2E_SWTPM_PIDDIR) switched to host B, in this shell (so e2e_call's results
# stay visible), and switches them back.

: "${E2E_USER:=msvm-e2e-mig-a}"
E2E_B_USER=${E2E_B_USER:-${E2E_USER%-a}-b}
[ "$E2E_B_USER" != "$E2E_USER" ] || E2E_B_USER=$E2E_USER-b
TWOHOST_VARS=(E2E_USER E2E_UID E2E_GID E2E_HOME E2E_RT E2E_WORK E2E_STORE E2E_SWTPM_DIR
              E2E_SWTPM_PIDDIR E2E_URI)

twohost_conf() {       # twohost_conf HOME UID GID: libvirtd.conf with a host_uuid
  local d=$1/.config/libvirt
  mkdir -p "$d" && printf 'host_uuid = "%s"\n' "$(e2e_uuidgen)" >"$d/libvirtd.conf" &&
    chown -R "$2:$3" "$1/.config" && chmod 0700 "$1/.config" "$d"
}

# Before host A's daemon starts (E2E_BEFORE_DAEMON): the hook, A's host_uuid.
twohost_before_a() {
  e2e_hook_install || return 1
  twohost_conf "$E2E_HOME" "$E2E_UID" "$E2E_GID"
}

# Save A's per-host variables as A_*, fill B_* for host B.
twohost_save() {       # twohost_save PREFIX
  local v
  for v in "${TWOHOST_VARS[@]}"; do printf -v "$1_$v" '%s' "${!v-}"; done
}
twohost_load() {       # twohost_load PREFIX
  local v n
  for v in "${TWOHOST_VARS[@]}"; do n=$1_$v; printf -v "$v" '%s' "${!n-}"; done
}

on_b() {
  local rc
  twohost_save A
  twohost_load B
  "$@"
  rc=$?
  twohost_save B
  twohost_load A
  return $rc
}

twohost_stop_b() {
  local rc=$? d pid i
  set +e
  if [ -n "${B_E2E_RT:-}" ] && [ -S "$B_E2E_RT/libvirt/libvirt-sock" ]; then
    for d in $(on_b e2e_virsh list --name 2>/dev/null); do on_b e2e_virsh destroy "$d" >/dev/null 2>&1; done
  fi
  # everything B's user runs is this run's (the user is the test's own)
  if [ -n "${B_E2E_UID:-}" ] && [ "$B_E2E_UID" != 0 ]; then
    pkill -TERM -u "$B_E2E_UID" 2>/dev/null
    for i in $(seq 30); do pgrep -u "$B_E2E_UID" >/dev/null || break; sleep 0.1; done
    pkill -KILL -u "$B_E2E_UID" 2>/dev/null
  fi
  [ -n "${B_E2E_RT:-}" ] && rm -rf "$B_E2E_RT"
  [ -n "${B_E2E_HOME:-}" ] && [ "${E2E_KEEP:-0}" != 1 ] &&
    rm -rf "$B_E2E_HOME/.config/libvirt" "$B_E2E_HOME/.cache/libvirt" \
           "$B_E2E_HOME/.local/share/msvm-security" "$B_E2E_HOME/.local/share/libvirt"
  (exit $rc)
  e2e_hook_cleanup
}

twohost_init() {
  [ "$(id -u)" -eq 0 ] || e2e_skip_all "two hosts need root (two users' daemons, driven by root)"
  E2E_BEFORE_DAEMON=twohost_before_a
  e2e_init
  twohost_save A

  # host B: its user, home, lock, runtime dir and daemon, as e2e_init does for A
  if ! getent passwd "$E2E_B_USER" >/dev/null; then
    useradd --create-home --shell /usr/sbin/nologin --comment "msvm-security e2e tests (host B)" \
      "$E2E_B_USER" >/dev/null 2>&1 || e2e_bail "cannot create the user $E2E_B_USER"
  fi
  # B's processes are killed and its libvirt files wiped at the end: only
  # a user the harness made (its comment says so) is used
  case "$(getent passwd "$E2E_B_USER" | cut -d: -f5)" in
    "msvm-security e2e tests"*) ;;
    *) e2e_bail "user $E2E_B_USER exists and is not one the e2e harness made; choose E2E_B_USER" ;;
  esac
  B_E2E_USER=$E2E_B_USER
  B_E2E_UID=$(id -u "$E2E_B_USER")
  B_E2E_GID=$(id -g "$E2E_B_USER")
  B_E2E_HOME=$(getent passwd "$E2E_B_USER" | cut -d: -f6)
  exec 6>>"/tmp/msvm-e2e-$B_E2E_UID.lock" && chmod 0666 "/tmp/msvm-e2e-$B_E2E_UID.lock" &&
    flock -w "${E2E_LOCK_WAIT:-1200}" 6 || e2e_bail "another e2e run holds host B's lock"
  B_E2E_STORE=$B_E2E_HOME/.local/share/msvm-security
  B_E2E_SWTPM_DIR=$B_E2E_HOME/.config/libvirt/qemu/swtpm
  B_E2E_URI=qemu:///session
  B_E2E_RT=$(mktemp -d /tmp/msvm-e2e-rt.XXXXXX)
  B_E2E_SWTPM_PIDDIR=$B_E2E_RT/libvirt/qemu/run/swtpm
  B_E2E_WORK=$E2E_TMP/host-b
  mkdir -p "$B_E2E_WORK" && chmod 0700 "$B_E2E_RT" "$B_E2E_WORK" &&
    chown "$B_E2E_UID:$B_E2E_GID" "$B_E2E_RT" "$B_E2E_WORK" || e2e_bail "host B's directories"
  trap twohost_stop_b EXIT
  rm -rf "$B_E2E_HOME/.config/libvirt" "$B_E2E_HOME/.cache/libvirt" \
         "$B_E2E_HOME/.local/share/msvm-security" "$B_E2E_HOME/.local/share/libvirt"
  twohost_conf "$B_E2E_HOME" "$B_E2E_UID" "$B_E2E_GID" || e2e_bail "host B's libvirtd.conf"
  on_b e2e_as_user test -x "$E2E_CLI" || e2e_skip_all "user $E2E_B_USER cannot execute $E2E_CLI"
  on_b e2e_user_env
  (cd "$B_E2E_WORK" && exec setpriv --reuid="$B_E2E_UID" --regid="$B_E2E_GID" --init-groups \
     env -i "${E2E_ENV[@]}" libvirtd --timeout "${E2E_DAEMON_IDLE:-300}") \
     >"$E2E_TMP/libvirtd-b.log" 2>&1 6>&- 7>&- 8>&- 9>&- &
  local i
  for i in $(seq 100); do
    [ -S "$B_E2E_RT/libvirt/libvirt-sock" ] && break
    sleep 0.1
  done
  on_b e2e_virsh uri >/dev/null 2>&1 || {
    e2e_diag "$(cat "$E2E_TMP/libvirtd-b.log")"; e2e_bail "host B's daemon did not start"; }
  A_SOCKET_URI="qemu+unix:///session?socket=$A_E2E_RT/libvirt/libvirt-sock"
  B_SOCKET_URI="qemu+unix:///session?socket=$B_E2E_RT/libvirt/libvirt-sock"
}

# twohost_migrate FROM TO NAME: root's `virsh migrate --live --persistent
# --undefinesource` from host FROM (A or B) to host TO, on a free port
twohost_migrate() {
  local from=$1 to=$2 name=$3 src dst port
  src=${from}_SOCKET_URI dst=${to}_SOCKET_URI
  port=$((49152 + RANDOM % 8000))
  while ss -Htln "sport = :$port" 2>/dev/null | e2e_grep_q .; do port=$((port + 1)); done
  virsh -q -c "${!src}" migrate --live --persistent --undefinesource "$name" "${!dst}" \
    --migrateuri "tcp://127.0.0.1:$port"
}

# twohost_give_b FILE...: files host B's user can read (copies into B's work dir)
twohost_give_b() {
  local f
  for f in "$@"; do
    cp "$f" "$B_E2E_WORK/" && chown "$B_E2E_UID:$B_E2E_GID" "$B_E2E_WORK/$(basename "$f")" &&
      chmod 0600 "$B_E2E_WORK/$(basename "$f")" || return 1
  done
}
twohost_give_a() {
  local f
  for f in "$@"; do
    cp "$f" "$A_E2E_WORK/" && chown "$A_E2E_UID:$A_E2E_GID" "$A_E2E_WORK/$(basename "$f")" &&
      chmod 0600 "$A_E2E_WORK/$(basename "$f")" || return 1
  done
}
