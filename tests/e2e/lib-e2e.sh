# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# lib-e2e.sh: the end-to-end harness. A private libvirt *session* daemon with
# QEMU (TCG) and swtpm, throwaway domains, a TAP printer, helpers to put data
# into a stopped VM's vTPM and read it back, and before/after snapshots.
#
#   . "$MSVM_SOURCEDIR/tests/e2e/lib-e2e.sh"
#   e2e_init                 # daemon up (or "1..0 # SKIP why"); cleanup on exit
#   e2e_define_vm NAME [uefi|bios] [tpm|notpm]  -> sets E2E_UUID
#   e2e_cli --json set-key-protector ...        # the project's CLI, as the daemon user
#   e2e_virsh start NAME                        # virsh -c qemu:///session, same user
#   e2e_ok "what" command args...               # one TAP line
#   e2e_done                                    # plan, exit status
#
# Who runs what. As root, qemu:///session would reach the *system* daemon, so
# the harness uses an unprivileged user (E2E_USER, default msvm-e2e, created
# with useradd if absent) and runs the daemon and every client command as that
# user with setpriv; its home (from the password database, which is where the
# project looks for its store) is wiped of libvirt and msvm-security files at
# the start and the end of each run, and runs are serialized by a lock file.
# As a non-root user, that user runs everything; its real home is used (the
# project reads the home from the password database), only domains, secrets
# and store entries the run created are removed at the end, and the daemon
# gets a private XDG_RUNTIME_DIR so it never talks to the user's own session
# daemon (do not run the e2e suite while your own session daemon is running).
#
# The daemon: `libvirtd --timeout` (it exits when idle, so it never outlives
# a killed test for long), private XDG_RUNTIME_DIR, stopped and everything it
# started (qemu, swtpm, virtlogd, found through the private runtime dir) killed
# by pid at exit. Leftovers of a run that was killed are cleaned at the next
# run's start.

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${MSVM_SOURCEDIR:=$(cd "$E2E_LIB_DIR/../.." && pwd)}"
: "${MSVM_TEST_DATADIR:=$MSVM_SOURCEDIR/tests/data}"
: "${MSVM_SHARED_SAMPLES:=$MSVM_SOURCEDIR/../shared/samples}"
E2E_CLI=${MSVM_BUILDDIR:+$MSVM_BUILDDIR/hooks/msvm-security}
E2E_URI=qemu:///session
E2E_NV_INDEX=0x1500016

# e2e_grep_q ARGS...: `grep -q` that reads its input to the end.  The
# scripts run under pipefail, and `WRITER | grep -q X` leaving at the first
# match can kill a writer that has more to say with SIGPIPE: the pipeline
# fails and a match reads as a miss.  (`virsh dominfo`, which writes its
# lines one by one, made the campaign's seed 307 lose a managed-save image
# that way.)  Every pipe into a quiet grep in these scripts uses this.
e2e_grep_q() { grep "$@" >/dev/null; }

# ---------------------------------------------------------------- TAP

E2E_TAP_N=0
E2E_TAP_FAILED=0
E2E_LOG=/dev/null     # the current step's captured output (e2e_ok)
E2E_QUIET=${E2E_QUIET:-0}

e2e_diag() {          # diag lines on stderr (meson keeps them in the log)
  local line
  while IFS= read -r line; do printf '# %s\n' "$line" >&2; done <<<"$*"
}

e2e_note() {          # a line the reader of a demo or a test log wants to see
  printf '# %s\n' "$*"
}

# E2E_TODO="known bug ..." before a step: its failure is reported as TODO
# (a known, reported bug) instead of failing the test; a pass is a plain ok.
E2E_TODO=
e2e_tap() {           # e2e_tap RC DESCRIPTION [DIRECTIVE]
  local rc=$1 desc=$2 dir=${3:-}
  [ "$rc" -ne 0 ] && [ -n "$E2E_TODO" ] && [ -z "$dir" ] && dir="TODO $E2E_TODO"
  E2E_TAP_N=$((E2E_TAP_N + 1))
  local now
  now=$(date +%s.%N)
  [ -n "${E2E_TMP:-}" ] && [ -d "$E2E_TMP" ] &&
    awk -v a="${E2E_T_LAST:-$now}" -v b="$now" -v d="$desc" 'BEGIN { printf "%6.1f %s\n", b - a, d }' \
      >>"$E2E_TMP/timing"
  E2E_T_LAST=$now
  desc=${desc//#/\\#}
  if [ "$rc" -eq 0 ]; then
    echo "ok $E2E_TAP_N - $desc${dir:+ # $dir}"
  else
    echo "not ok $E2E_TAP_N - $desc${dir:+ # $dir}"
    case "$dir" in TODO*) ;; *) E2E_TAP_FAILED=$((E2E_TAP_FAILED + 1)) ;; esac
  fi
  return "$rc"
}

# e2e_ok DESC CMD...: run CMD (output captured in $E2E_LOG, shown on failure)
e2e_ok() {
  local desc=$1 rc; shift
  E2E_LOG=$E2E_TMP/step-$((E2E_TAP_N + 1)).log
  "$@" >"$E2E_LOG" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    e2e_diag "failed (exit $rc): $*"
    e2e_diag "$(tail -n 40 "$E2E_LOG")"
  fi
  e2e_tap "$rc" "$desc"
}

# e2e_not DESC CMD...: CMD must fail
e2e_not() {
  local desc=$1 rc; shift
  E2E_LOG=$E2E_TMP/step-$((E2E_TAP_N + 1)).log
  "$@" >"$E2E_LOG" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    e2e_diag "succeeded but should have failed: $*"
    e2e_diag "$(tail -n 20 "$E2E_LOG")"
    e2e_tap 1 "$desc"
  else
    e2e_tap 0 "$desc"
  fi
}

e2e_is() {            # e2e_is GOT EXPECTED DESC
  if [ "$1" = "$2" ]; then
    e2e_tap 0 "$3"
  else
    e2e_diag "got:      '$1'"
    e2e_diag "expected: '$2'"
    e2e_tap 1 "$3"
  fi
}

e2e_skip() {          # e2e_skip DESC REASON
  e2e_tap 0 "$1" "SKIP $2"
}

e2e_skip_all() {
  echo "1..0 # SKIP $*"
  exit 0
}

e2e_bail() {
  echo "Bail out! $*"
  exit 1
}

e2e_done() {
  if [ -f "$E2E_TMP/timing" ]; then
    e2e_diag "total $(awk -v a="$E2E_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')s" \
      "(lock wait ${E2E_LOCK_WAITED:-0}s); slowest steps (seconds):"
    e2e_diag "$(sort -rn "$E2E_TMP/timing" | head -n 5)"
  fi
  echo "1..$E2E_TAP_N"
  [ "$E2E_TAP_FAILED" -eq 0 ]
  exit $?
}

# ---------------------------------------------------------------- setup

e2e_require_cmds() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] || e2e_skip_all "missing programs: ${missing[*]} (./run installs them)"
}

# The daemon user's environment: nothing from ours but the test knobs.
e2e_user_env() {
  E2E_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
           HOME="$E2E_HOME" USER="$E2E_USER" LOGNAME="$E2E_USER"
           XDG_RUNTIME_DIR="$E2E_RT" LIBVIRT_DEFAULT_URI="$E2E_URI" LC_ALL=C.UTF-8)
  local v
  for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS G_DEBUG MALLOC_CHECK_ G_SLICE \
           MSVM_SECURITY_FAULT_INJECT MSVM_SECURITY_FAULT_TRACE \
           MSVM_SECURITY_FAULT_FAIL MSVM_SECURITY_FAULT_STALL; do
    [ -n "${!v+x}" ] && E2E_ENV+=("$v=${!v}")
  done
}

# e2e_as_user CMD...: run CMD as the daemon user, in the work dir, with the
# daemon user's environment (plus VAR=value words given before CMD via env).
e2e_as_user() {
  e2e_user_env
  if [ "$E2E_ROOT_MODE" = 1 ]; then
    (cd "$E2E_WORK" && exec setpriv --reuid="$E2E_UID" --regid="$E2E_GID" --init-groups \
       env -i "${E2E_ENV[@]}" "$@")
  else
    (cd "$E2E_WORK" && exec env -i "${E2E_ENV[@]}" "$@")
  fi
}

e2e_virsh() { e2e_as_user virsh -q -c "$E2E_URI" "$@"; }
e2e_cli()   { e2e_as_user "$E2E_CLI" "$@"; }

# A file the daemon user can read (and we can still read/remove).
e2e_give() {          # e2e_give FILE...
  local f
  for f in "$@"; do
    chmod 0600 "$f"
    [ "$E2E_ROOT_MODE" = 1 ] && chown "$E2E_UID:$E2E_GID" "$f"
  done
  return 0
}

# Kill a pid only if it belongs to the daemon user.
e2e_kill_pid() {      # e2e_kill_pid PID [SIGNAL]
  local pid=$1 sig=${2:-TERM} uid
  [ -n "$pid" ] || return 0
  uid=$(ps -o uid= -p "$pid" 2>/dev/null | tr -d ' ') || return 0
  [ -n "$uid" ] && [ "$uid" = "$E2E_UID" ] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
}

# Every process the daemon of runtime dir RT started: the daemon and
# virtlogd from their pid files, qemu and swtpm because their command lines
# name RT (sockets and pid files live there), and our own swtpm instances.
e2e_pids_of_rt() {    # e2e_pids_of_rt RT
  local rt=$1 f pid
  for f in "$rt"/libvirt/libvirtd.pid "$rt"/libvirt/virtlogd.pid "$rt"/e2e-swtpm-*.pid; do
    [ -f "$f" ] && pid=$(cat "$f" 2>/dev/null) && [ -n "$pid" ] && echo "$pid"
  done
  ps -u "$E2E_UID" -o pid=,args= 2>/dev/null | while read -r pid args; do
    case "$args" in *"$rt/"*) echo "$pid" ;; esac
  done
}

e2e_stop_rt() {       # stop everything a (possibly stale) runtime dir started
  local rt=$1 pid pids i
  [ -d "$rt" ] || return 0
  pids=$(e2e_pids_of_rt "$rt" | sort -u)
  for pid in $pids; do e2e_kill_pid "$pid" TERM; done
  for i in $(seq 30); do
    local alive=0
    for pid in $pids; do
      [ "$(ps -o uid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$E2E_UID" ] && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in $pids; do e2e_kill_pid "$pid" KILL; done
  rm -rf "$rt"
}

# Files of the daemon user that a run creates: wiped in root mode only.
e2e_wipe_home() {
  rm -rf "$E2E_HOME/.config/libvirt" "$E2E_HOME/.cache/libvirt" \
         "$E2E_HOME/.local/share/msvm-security" "$E2E_HOME/.local/share/libvirt"
}

e2e_cleanup() {
  local rc=$?
  set +e
  if [ -n "${E2E_RT:-}" ] && [ -S "$E2E_RT/libvirt/libvirt-sock" ]; then
    local d u
    for d in $(e2e_virsh list --name 2>/dev/null); do
      e2e_virsh destroy "$d" >/dev/null 2>&1
    done
    if [ "$E2E_ROOT_MODE" = 0 ]; then
      # only what this run made
      for d in "${E2E_DOMAINS[@]}"; do
        e2e_virsh undefine --nvram --managed-save --snapshots-metadata "$d" >/dev/null 2>&1
        rm -f "$E2E_HOME/.config/libvirt/qemu/nvram/${d}_VARS.fd"   # transient ones keep it
      done
      for u in $(e2e_virsh secret-list 2>/dev/null | awk '{print $1}'); do
        local usage
        usage=$(e2e_virsh secret-dumpxml "$u" 2>/dev/null)
        for d in "${E2E_UUIDS[@]}" "${E2E_DOMAINS[@]}"; do
          case "$usage" in *"$d"*) e2e_virsh secret-undefine "$u" >/dev/null 2>&1 ;; esac
        done
      done
      for u in "${E2E_UUIDS[@]}"; do
        rm -rf "$E2E_HOME/.local/share/msvm-security/$u" \
               "$E2E_HOME/.config/libvirt/qemu/swtpm/$u"
      done
    fi
  fi
  e2e_tpm_stop 2>/dev/null
  [ -n "${E2E_RT:-}" ] && e2e_stop_rt "$E2E_RT"
  [ "$E2E_ROOT_MODE" = 1 ] && [ "${E2E_KEEP:-0}" != 1 ] && e2e_wipe_home
  [ -n "${E2E_STATE_FILE:-}" ] && rm -f "$E2E_STATE_FILE"
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "# E2E_KEEP=1: work files kept in $E2E_TMP" >&2
  else
    [ -n "${E2E_TMP:-}" ] && rm -rf "$E2E_TMP"
  fi
  exit $rc
}

e2e_init() {
  E2E_DOMAINS=()
  E2E_UUIDS=()
  e2e_require_cmds libvirtd virsh qemu-system-x86_64 swtpm swtpm_ioctl tpm2_nvdefine \
    tpm2_nvwrite tpm2_nvread openssl jq setpriv flock sha256sum od
  [ -n "${MSVM_BUILDDIR:-}" ] || e2e_bail "MSVM_BUILDDIR is not set"
  [ -x "$E2E_CLI" ] || e2e_bail "no CLI at $E2E_CLI"
  [ -e /usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0 ] || \
    ls /usr/lib/*/libtss2-tcti-swtpm.so* >/dev/null 2>&1 || \
    e2e_skip_all "the swtpm TCTI for tpm2-tools is missing (libtss2-tcti-swtpm0)"

  if [ "$(id -u)" -eq 0 ]; then
    E2E_ROOT_MODE=1
    E2E_USER=${E2E_USER:-msvm-e2e}
    if ! getent passwd "$E2E_USER" >/dev/null; then
      useradd --create-home --shell /usr/sbin/nologin --comment "msvm-security e2e tests" \
        "$E2E_USER" >/dev/null 2>&1 || e2e_bail "cannot create the user $E2E_USER"
    fi
  else
    E2E_ROOT_MODE=0
    E2E_USER=$(id -un)
  fi
  E2E_UID=$(id -u "$E2E_USER")
  E2E_GID=$(id -g "$E2E_USER")
  E2E_HOME=$(getent passwd "$E2E_USER" | cut -d: -f6)
  [ -d "$E2E_HOME" ] || e2e_bail "home of $E2E_USER ($E2E_HOME) does not exist"
  E2E_STORE=$E2E_HOME/.local/share/msvm-security
  E2E_SWTPM_DIR=$E2E_HOME/.config/libvirt/qemu/swtpm

  # One run at a time per daemon user (its home is shared), whether started
  # by root or by that user: root makes the lock file writable for the user.
  E2E_LOCK_FILE=/tmp/msvm-e2e-$E2E_UID.lock
  exec 9>>"$E2E_LOCK_FILE" || e2e_bail "cannot open $E2E_LOCK_FILE"
  [ "$E2E_ROOT_MODE" = 1 ] && chmod 0666 "$E2E_LOCK_FILE" 2>/dev/null
  local t_lock=$SECONDS
  flock -w "${E2E_LOCK_WAIT:-1200}" 9 || e2e_bail "another e2e run holds $E2E_LOCK_FILE"
  # Checkouts of this harness before 624fea9 lock /tmp/msvm-e2e-<runner uid>-<uid>.lock:
  # hold that one too, so that an older clone running at the same time waits.
  exec 8>>"/tmp/msvm-e2e-$(id -u)-$E2E_UID.lock" &&
    flock -w "${E2E_LOCK_WAIT:-1200}" 8 || e2e_bail "another e2e run holds the old lock"
  E2E_LOCK_WAITED=$((SECONDS - t_lock))
  E2E_T0=$(date +%s.%N)
  E2E_T_LAST=$E2E_T0

  # Leftovers of a run that was killed: its runtime dir is recorded here.
  E2E_STATE_FILE=/tmp/msvm-e2e-$(id -u)-$E2E_UID.state
  if [ -f "$E2E_STATE_FILE" ]; then
    local stale
    stale=$(cat "$E2E_STATE_FILE")
    case "$stale" in /tmp/msvm-e2e-rt.*) e2e_stop_rt "$stale" ;; esac
    rm -f "$E2E_STATE_FILE"
  fi

  E2E_TMP=$(mktemp -d /tmp/msvm-e2e-work.XXXXXX)
  E2E_RT=$(mktemp -d /tmp/msvm-e2e-rt.XXXXXX)
  E2E_WORK=$E2E_TMP/user
  mkdir -p "$E2E_WORK"
  chmod 0711 "$E2E_TMP"
  chmod 0700 "$E2E_RT" "$E2E_WORK"
  if [ "$E2E_ROOT_MODE" = 1 ]; then
    chown "$E2E_UID:$E2E_GID" "$E2E_RT" "$E2E_WORK"
  fi
  echo "$E2E_RT" >"$E2E_STATE_FILE"
  trap e2e_cleanup EXIT
  trap 'exit 130' INT TERM HUP

  [ "$E2E_ROOT_MODE" = 1 ] && e2e_wipe_home

  # The CLI must be reachable by the daemon user.
  e2e_as_user test -x "$E2E_CLI" ||
    e2e_skip_all "user $E2E_USER cannot execute $E2E_CLI (build in a directory others can read)"

  # A test that must prepare something before the daemon starts (e.g. put a
  # hook in place: daemons read hooks only when they start) names a function
  # here; it runs under the run lock, after the leftovers were cleaned.
  if [ -n "${E2E_BEFORE_DAEMON:-}" ]; then
    local t_before=$SECONDS
    "$E2E_BEFORE_DAEMON" || e2e_bail "$E2E_BEFORE_DAEMON failed"
    # (waiting for the global hook lock is lock wait, not the first step's time)
    E2E_LOCK_WAITED=$((E2E_LOCK_WAITED + SECONDS - t_before))
    E2E_T0=$(date +%s.%N)
    E2E_T_LAST=$E2E_T0
  fi

  # The daemon. fd 9 (the run lock) is not inherited.
  e2e_user_env
  if [ "$E2E_ROOT_MODE" = 1 ]; then
    (cd "$E2E_WORK" && exec setpriv --reuid="$E2E_UID" --regid="$E2E_GID" --init-groups \
       env -i "${E2E_ENV[@]}" libvirtd --timeout "${E2E_DAEMON_IDLE:-120}") \
       >"$E2E_TMP/libvirtd.log" 2>&1 7>&- 8>&- 9>&- &
  else
    (cd "$E2E_WORK" && exec env -i "${E2E_ENV[@]}" libvirtd --timeout "${E2E_DAEMON_IDLE:-120}") \
       >"$E2E_TMP/libvirtd.log" 2>&1 7>&- 8>&- 9>&- &
  fi
  E2E_DAEMON_PID=$!
  local i
  for i in $(seq 100); do
    [ -S "$E2E_RT/libvirt/libvirt-sock" ] && break
    kill -0 "$E2E_DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! e2e_virsh uri >/dev/null 2>&1; then
    e2e_diag "$(cat "$E2E_TMP/libvirtd.log")"
    e2e_bail "the libvirt session daemon did not start"
  fi
  # libvirt's qemu hooks (SYSCONFDIR/libvirt/hooks, session daemons too) in
  # force for this daemon: some expectations differ with the project's hook.
  E2E_HOOK_LOADED=0
  local h
  for h in /etc/libvirt/hooks/qemu /etc/libvirt/hooks/qemu.d/*; do
    [ -f "$h" ] && [ -x "$h" ] && E2E_HOOK_LOADED=1
  done
  return 0
}

# ---------------------------------------------------------------- domains

e2e_uuidgen() { cat /proc/sys/kernel/random/uuid; }

# e2e_define_vm NAME [uefi|bios] [tpm|notpm] [extra XML for <devices>] [UUID]
#               [<metadata> element]
# Defines a throwaway domain (no disk, no network, 128 MiB, TCG) and sets
# E2E_UUID to its UUID (a new one unless given: redefining keeps it).
e2e_define_vm() {
  local name=$1 fw=${2:-uefi} tpm=${3:-notpm} extra=${4:-} meta=${6:-} f
  E2E_UUID=${5:-$(e2e_uuidgen)}
  f=$E2E_WORK/$name.xml
  sed -e "s|@NAME@|$name|" -e "s|@UUID@|$E2E_UUID|" \
      "$E2E_LIB_DIR/domains/$fw.xml" >"$f.in"
  local devs=$extra
  [ "$tpm" = tpm ] && devs="<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>$devs"
  awk -v devs="$devs" -v meta="$meta" '
    /@DEVICES@/ { print devs; next }
    /@METADATA@/ { print meta; next }
    { print }' "$f.in" >"$f"
  rm -f "$f.in"
  e2e_give "$f"
  E2E_DOMAINS+=("$name")
  E2E_UUIDS+=("$E2E_UUID")
  e2e_virsh define "$f" >/dev/null
}

e2e_state_dir() { echo "$E2E_SWTPM_DIR/$1/tpm2"; }   # e2e_state_dir UUID

e2e_domstate() { e2e_virsh domstate "$1" 2>/dev/null | head -n1; }

# The swtpm libvirt runs for a running domain (pid from libvirt's pid file).
e2e_swtpm_running() {  # e2e_swtpm_running NAME
  local f pid
  for f in "${E2E_SWTPM_PIDDIR:-$E2E_RT/libvirt/qemu/run/swtpm}"/*-"$1"-swtpm.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && \
      ps -o args= -p "$pid" | e2e_grep_q swtpm && return 0
  done
  return 1
}

# e2e_boot NAME: start, check it runs with its swtpm, destroy. "Boots" means
# QEMU started with the vTPM (there is no guest OS to wait for).
# E2E_BOOT_PAUSED=1: start --paused, cheaper under TCG (no firmware runs);
# QEMU still initializes the vTPM, so swtpm must open the state (a wrong key
# fails the start with "TPM result for CMD_INIT").
E2E_LAST_BOOT_SECONDS=
e2e_boot() {
  local name=$1 t0 t1 rc=0 want=running paused=()
  [ "${E2E_BOOT_PAUSED:-0}" = 1 ] && paused=(--paused) want=paused
  t0=$(date +%s.%N)
  if ! e2e_virsh start "$name" "${paused[@]}"; then
    return 1
  fi
  t1=$(date +%s.%N)
  E2E_LAST_BOOT_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  echo "started in ${E2E_LAST_BOOT_SECONDS}s"
  [ "$(e2e_domstate "$name")" = "$want" ] || { echo "not $want after start"; rc=1; }
  if [ $rc = 0 ] && e2e_virsh dumpxml "$name" | e2e_grep_q '<tpm '; then
    e2e_swtpm_running "$name" || { echo "no swtpm running for $name"; rc=1; }
  fi
  e2e_virsh destroy "$name" >/dev/null || rc=1
  return $rc
}

# ---------------------------------------------------------------- settings

# e2e_settings FILE UUID [Prop=VALUE...]: a CIM-XML Msvm_SecuritySettingData
# instance as a client builds it (only the given properties).
e2e_settings() {
  local f=$1 uuid=$2 p; shift 2
  {
    printf '<INSTANCE CLASSNAME="Msvm_SecuritySettingData">'
    printf '<PROPERTY NAME="InstanceID" TYPE="string"><VALUE>Microsoft:%s</VALUE></PROPERTY>' \
      "${uuid^^}"
    for p in "$@"; do
      local n=${p%%=*} v=${p#*=} t=boolean
      case "$n" in ElementName|Caption|Description) t=string ;; esac
      printf '<PROPERTY NAME="%s" TYPE="%s"><VALUE>%s</VALUE></PROPERTY>' "$n" "$t" "$v"
    done
    printf '</INSTANCE>'
  } >"$f"
  e2e_give "$f"
}

# e2e_sample OUT SAMPLE UUID [Prop=VALUE...]: one of tests/e2e/samples with
# the VM's UUID in InstanceID (and __PATH), properties set to VALUE.
e2e_sample() {
  local out=$1 sample=$2 uuid=$3 p; shift 3
  sed "s/5F2B7A1C-3D4E-4F60-8A9B-0C1D2E3F4A5B/${uuid^^}/gI" "$E2E_LIB_DIR/samples/$sample" >"$out"
  for p in "$@"; do
    local n=${p%%=*} v=${p#*=}
    case "$sample" in
      *.mof) sed -i "s/^\([[:space:]]*$n = \).*;/\1$v;/" "$out" ;;
      *) sed -i "s|\(<PROPERTY NAME=\"$n\"[^>]*><VALUE>\)[^<]*|\1$v|" "$out" ;;
    esac
    grep -q "$n" "$out" || { echo "e2e_sample: no $n in $sample" >&2; return 1; }
  done
  e2e_give "$out"
}

# e2e_random FILE SIZE: random bytes (a key protector or policy)
e2e_random() {
  head -c "$2" /dev/urandom >"$1"
  e2e_give "$1"
}

# Does the CLI have these commands yet? (skip what cannot run, with the reason)
e2e_missing_cmds() {
  local c missing=()
  for c in "$@"; do
    e2e_cli "$c" --help >/dev/null 2>&1 || missing+=("$c")
  done
  echo "${missing[*]}"
}
e2e_need_cmds() {
  local m
  m=$(e2e_missing_cmds "$@")
  [ -z "$m" ] || e2e_skip_all "msvm-security has no command $m yet"
}

# e2e_rv_is VAR CODE: the call's ReturnValue is CODE and the exit status
# follows DESIGN.md section 8 (0 for 0/4096, else 1).
e2e_rv_is() {
  local var=$1 want=$2 rv ex json
  rv=$(eval echo "\${${var}_RV}")
  ex=$(eval echo "\${${var}_EXIT}")
  json=$(eval echo "\${${var}_JSON}")
  if [ "$rv" != "$want" ]; then
    echo "ReturnValue '$rv', expected $want; exit $ex; output: $json"
    cat "$E2E_TMP/last-stderr"
    return 1
  fi
  case "$want" in
    0|4096) [ "$ex" = 0 ] || { echo "exit status $ex for ReturnValue $rv"; return 1; } ;;
    *) [ "$ex" = 1 ] || { echo "exit status $ex for ReturnValue $rv"; return 1; } ;;
  esac
}

# The libvirt secrets that belong to a VM: their XML names its UUID or name.
e2e_vm_secrets() {    # e2e_vm_secrets UUID [NAME]
  local u x
  for u in $(e2e_virsh secret-list 2>/dev/null | awk '{print $1}'); do
    x=$(e2e_virsh secret-dumpxml "$u" 2>/dev/null)
    case "$x" in
      *"$1"*) echo "$u" ;;
      *) [ -n "${2:-}" ] && case "$x" in *"$2"*) echo "$u" ;; esac ;;
    esac
  done
}

# e2e_secret_is_vtpm UUID: private, not ephemeral, usage vtpm.
e2e_secret_is_vtpm() {
  local x
  x=$(e2e_virsh secret-dumpxml "$1") || return 1
  echo "$x"
  grep -q "private='yes'\|private=\"yes\"" <<<"$x" &&
    grep -q "ephemeral='no'\|ephemeral=\"no\"" <<<"$x" &&
    grep -q "usage type='vtpm'\|usage type=\"vtpm\"" <<<"$x"
}

e2e_bytes() {         # e2e_bytes FILE STRING: a byte array input
  printf '%s' "$2" >"$1"
  e2e_give "$1"
}

# e2e_call VAR CLI-ARGS...: run the CLI with --json; VAR_RV gets ReturnValue,
# VAR_JOB the job reference, VAR_JSON the object, VAR_EXIT the exit status.
e2e_call() {
  local var=$1 out rc; shift
  out=$(e2e_cli --json "$@" 2>"$E2E_TMP/last-stderr")
  rc=$?
  printf -v "${var}_EXIT" '%s' "$rc"
  printf -v "${var}_JSON" '%s' "$out"
  printf -v "${var}_RV" '%s' "$(jq -r '.ReturnValue // empty' <<<"$out" 2>/dev/null)"
  printf -v "${var}_JOB" '%s' "$(jq -r '.Job // empty' <<<"$out" 2>/dev/null)"
  printf -v "${var}_MSG" '%s' "$(jq -r '.Message // empty' <<<"$out" 2>/dev/null)"
  echo "msvm-security --json $*" >>"$E2E_TMP/calls.log"
  echo "  exit $rc: $out" >>"$E2E_TMP/calls.log"
  return 0
}

# Job id from a reference Msvm_ConcreteJob.InstanceID="<uuid>".
e2e_job_id() { sed -n 's/.*InstanceID="\([^"]*\)".*/\1/p' <<<"$1"; }

# e2e_method_ok VAR: 0, or 4096 with a job that reaches JobState 7.
e2e_method_ok() {
  local var=$1 rv job
  rv=$(eval echo "\${${var}_RV}")
  job=$(eval echo "\${${var}_JOB}")
  case "$rv" in
    0) return 0 ;;
    4096)
      [ -n "$job" ] || { echo "4096 without a job"; return 1; }
      e2e_cli job wait "$(e2e_job_id "$job")" --timeout 120 ;;
    *) echo "ReturnValue '$rv': $(eval echo "\${${var}_JSON}") $(cat "$E2E_TMP/last-stderr")"
       return 1 ;;
  esac
}

# ---------------------------------------------------------------- passphrases

# The vTPM passphrase of DESIGN.md section 5, computed here independently of
# the project (openssl's HKDF): e2e_passphrase OUT SEEDHEX UUID KPFILE POLFILE
# (an empty file name or a missing file is an unset half).
e2e_hex() { od -An -v -t x1 | tr -d ' \n'; }
e2e_passphrase() {
  local out=$1 seed=$2 uuid=$3 kp=${4:-} pol=${5:-} ikm h n
  ikm=$seed
  for h in "$kp" "$pol"; do
    if [ -n "$h" ] && [ -f "$h" ]; then
      n=$(stat -c %s "$h")
      ikm+=$(printf '%08x' "$n")$(e2e_hex <"$h")
    else
      ikm+=00000000
    fi
  done
  openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt "hexkey:$ikm" \
    -kdfopt "hexsalt:${uuid//-/}" -kdfopt "info:msvm-security vtpm passphrase v1" HKDF |
    tr -d ':\n' | tr 'A-F' 'a-f' >"$out"
  e2e_give "$out"
  [ "$(stat -c %s "$out")" = 64 ]
}

# e2e_protected_vm NAME UUID PASSOUT KPSIZE POLSIZE: the os-win sequence on
# the stopped VM (settings $E2E_WORK/s.xml, key protector $E2E_WORK/kp, policy
# $E2E_WORK/pol0, random bytes of those sizes), one boot, the passphrase in
# PASSOUT, and known NV data ($E2E_TMP/data) written into its vTPM.
e2e_protected_vm() {
  local vm=$1 u=$2 pass=$3 sdir
  e2e_sample "$E2E_WORK/s.xml" wmi-cimdtd20.xml "$u"
  e2e_random "$E2E_WORK/kp" "$4"
  e2e_random "$E2E_WORK/pol0" "$5"
  e2e_ok "setup: the os-win sequence" eval \
    'e2e_call R set-key-protector --settings s.xml --key-protector kp && e2e_method_ok R &&
     e2e_call R set-security-policy --settings s.xml --policy pol0 && e2e_method_ok R &&
     e2e_call R modify-security-settings --settings s.xml && e2e_method_ok R'
  e2e_ok "setup: the VM boots" e2e_boot "$vm"
  sdir=$(e2e_state_dir "$u")
  e2e_vm_passphrase "$pass" "$u" "$E2E_WORK/kp" "$E2E_WORK/pol0"
  head -c 16 /dev/urandom | e2e_hex >"$E2E_TMP/data"
  e2e_ok "setup: NV data in the vTPM" e2e_tpm_nv_write "$sdir" "$pass" "$E2E_TMP/data"
}

# The project's store (plugin/msvm-store.c): <store>/<uuid>/store, a GKeyFile;
# group [store] has seed (base64), current, state, last-known-good; groups
# [generation N] have secret, key-protector, policy (base64).
e2e_store_file() { echo "$E2E_STORE/$1/store"; }
e2e_store_get() {     # e2e_store_get UUID GROUP KEY
  awk -v g="[$2]" -v k="$3" '
    /^\[/ { in_g = ($0 == g); next }
    in_g { i = index($0, "="); if (i && substr($0, 1, i - 1) == k) { print substr($0, i + 1); exit } }
  ' "$(e2e_store_file "$1")" 2>/dev/null
}
e2e_store_seed() {    # e2e_store_seed UUID -> the 32-byte seed as hex
  local b
  b=$(e2e_store_get "$1" store seed)
  [ -n "$b" ] || return 1
  base64 -d <<<"$b" | e2e_hex
}
e2e_store_generations() {  # the generation numbers in the store
  sed -n 's/^\[generation \([0-9]*\)\]$/\1/p' "$(e2e_store_file "$1")" 2>/dev/null
}
# The passphrase libvirt holds for the VM's current generation, computed from
# the seed and the halves the test chose: e2e_vm_passphrase OUT UUID KPFILE POLFILE
e2e_vm_passphrase() {
  local seed
  seed=$(e2e_store_seed "$2") || { echo "no seed in the store of $2"; return 1; }
  e2e_passphrase "$1" "$seed" "$2" "${3:-}" "${4:-}"
}
# The secret the persistent definition names in <encryption secret=...>.
e2e_tpm_secret() {    # e2e_tpm_secret NAME
  e2e_virsh dumpxml --inactive "$1" | sed -n "s/.*<encryption secret=['\"]\([^'\"]*\)['\"].*/\1/p" | head -n1
}

# ---------------------------------------------------------------- vTPM by hand

# e2e_tpm_start STATEDIR PASSFILE: swtpm on the stopped VM's state, as the
# state's owner (the daemon user; E2E_TPM_USER when set, e.g. tss under the
# system daemon), so files keep their owner, on a unix socket in
# E2E_TPM_WORK (default the work dir; tpm2-tss's swtpm TCTI: swtpm:path=P
# talks to P and P.ctrl).  The passphrase goes in on a file descriptor
# (pwdfd), so its file need not be readable by that user; files are written
# with mode 0600, as libvirt has swtpm write them (swtpm's default is 0640).
# PASSFILE empty: a plaintext state. Fails when the state does not open.
E2E_TPM_SOCK=
E2E_TPM_PIDFILE=
e2e_tpm_as_owner() {
  if [ -n "${E2E_TPM_USER:-}" ]; then
    (cd "${E2E_TPM_WORK:-$E2E_WORK}" && exec setpriv --reuid="$E2E_TPM_USER" \
       --regid="$(id -g "$E2E_TPM_USER")" --clear-groups \
       env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@")
  else
    e2e_as_user "$@"
  fi
}
e2e_tpm_start() {
  local dir=$1 pass=${2:-} key=() w=${E2E_TPM_WORK:-$E2E_WORK}
  [ -f "$dir/tpm2-00.permall" ] || { echo "no state in $dir"; return 1; }
  [ -n "$pass" ] && key=(--key "pwdfd=3,mode=aes-256-cbc")
  E2E_TPM_PIDFILE=${E2E_TPM_RT:-$E2E_RT}/e2e-swtpm-$$.pid
  rm -f "$w/swtpm.log" "$w/tpm.sock" "$w/tpm.sock.ctrl"
  if e2e_tpm_as_owner swtpm socket --tpm2 --tpmstate "dir=$dir,mode=0600" \
       --server "type=unixio,path=$w/tpm.sock" \
       --ctrl "type=unixio,path=$w/tpm.sock.ctrl" \
       --flags not-need-init,startup-clear "${key[@]}" \
       --log "file=$w/swtpm.log,level=0" \
       --pid "file=$E2E_TPM_PIDFILE" --daemon 3<"${pass:-/dev/null}"; then
    E2E_TPM_SOCK=$w/tpm.sock
    return 0
  fi
  cat "$w/swtpm.log" 2>/dev/null
  E2E_TPM_SOCK=
  return 1
}

e2e_tpm_stop() {
  [ -n "$E2E_TPM_SOCK" ] || return 0
  swtpm_ioctl --unix "$E2E_TPM_SOCK.ctrl" -s >/dev/null 2>&1
  local i pid
  pid=$(cat "$E2E_TPM_PIDFILE" 2>/dev/null)
  for i in $(seq 50); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ps -o args= -p "$pid" | e2e_grep_q '^swtpm'; then
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$E2E_TPM_PIDFILE"
  E2E_TPM_SOCK=
}

e2e_tpm2() {          # tpm2-tools against the swtpm started by e2e_tpm_start
  TPM2TOOLS_TCTI="swtpm:path=$E2E_TPM_SOCK" "$@"
}

# e2e_tpm_nv_write STATEDIR PASSFILE DATAFILE: define NV index E2E_NV_INDEX
# sized to the data and write it.
e2e_tpm_nv_write() {
  local dir=$1 pass=$2 data=$3 rc=0
  e2e_tpm_start "$dir" "$pass" || return 1
  e2e_tpm2 tpm2_nvdefine -C o -s "$(stat -c %s "$data")" -a "ownerread|ownerwrite" \
    "$E2E_NV_INDEX" >/dev/null || rc=1
  [ $rc = 0 ] && { e2e_tpm2 tpm2_nvwrite -C o -i "$data" "$E2E_NV_INDEX" || rc=1; }
  e2e_tpm_stop
  return $rc
}

# e2e_tpm_nv_read STATEDIR PASSFILE SIZE OUT
e2e_tpm_nv_read() {
  local dir=$1 pass=$2 size=$3 out=$4 rc=0
  e2e_tpm_start "$dir" "$pass" || return 1
  e2e_tpm2 tpm2_nvread -C o -s "$size" -o "$out" "$E2E_NV_INDEX" || rc=1
  e2e_tpm_stop
  return $rc
}

# e2e_tpm_opens STATEDIR PASSFILE: does the state open under PASSFILE?
# (swtpm refuses to start when the HMAC does not verify; nothing is written
# in that case.)
e2e_tpm_opens() {
  e2e_tpm_start "$1" "$2" || return 1
  e2e_tpm_stop
}

# e2e_tpm_refuses STATEDIR PASSFILE: the state is there and swtpm refuses it
# under PASSFILE (integrity check fails), so nothing was written.
e2e_tpm_refuses() {
  [ -f "$1/tpm2-00.permall" ] || { echo "no state in $1"; return 1; }
  if e2e_tpm_start "$1" "$2"; then
    e2e_tpm_stop
    echo "the state opened under $2"
    return 1
  fi
  grep -q 'HMAC\|decrypt\|Could not initialize libtpms' "${E2E_TPM_WORK:-$E2E_WORK}/swtpm.log" || {
    echo "swtpm failed for another reason:"; cat "${E2E_TPM_WORK:-$E2E_WORK}/swtpm.log"; return 1; }
  return 0
}

# The state file's header: version, header size, flags (0x09: AES-256 encrypted).
e2e_state_flags() {   # e2e_state_flags FILE -> e.g. 0x09
  printf '0x%s\n' "$(od -An -v -t x1 -j 4 -N 2 "$1" | tr -d ' ' | sed 's/^00//')"
}

# ---------------------------------------------------------------- snapshots

# e2e_snapshot NAME UUID OUT: everything a failing call must leave alone.
e2e_snapshot() {
  local name=$1 uuid=$2 out=$3
  {
    echo "== domstate"; e2e_domstate "$name"
    echo "== dumpxml --inactive --security-info"
    e2e_virsh dumpxml --inactive --security-info "$name" 2>&1
    echo "== secret-list"; e2e_virsh secret-list 2>&1 | sort
    echo "== managedsave"; e2e_virsh dominfo "$name" 2>/dev/null | grep -i 'managed save'
    echo "== store $E2E_STORE/$uuid"
    e2e_tree "$E2E_STORE/$uuid"
    echo "== state $E2E_SWTPM_DIR/$uuid"
    if [ "$(e2e_domstate "$name")" = running ]; then
      # swtpm owns the state while the VM runs: names only
      (cd "$E2E_SWTPM_DIR/$uuid" 2>/dev/null && find . -printf '%p %M %u:%g\n' | LC_ALL=C sort)
    else
      e2e_tree "$E2E_SWTPM_DIR/$uuid"
    fi
  } >"$out" 2>&1
}

e2e_tree() {          # names, modes, owners and checksums of a tree
  local d=$1
  [ -d "$d" ] || { echo "(absent)"; return 0; }
  (cd "$d" && find . -printf '%p %M %u:%g\n' | LC_ALL=C sort &&
     find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
}

# e2e_unchanged BEFORE AFTER: no difference (the diff goes to the step log).
e2e_unchanged() { diff -u "$1" "$2"; }

# ---------------------------------------------------------------- the hook

# e2e_use_hook (before e2e_init): the built hook is placed in libvirt's hook
# directory (<hookdir>/50-msvm-security, as `meson install` does) right before
# the daemon starts (daemons read that directory only when they start), with
# an mtime a few seconds in the past, and removed at the end, after the run's
# domains are destroyed (their release hooks run normally).  The hook
# directory is shared by every daemon on the machine, so runs that install it
# are serialized by a global lock (/tmp/msvm-e2e-hook.lock, any daemon user)
# held from the install to the removal (E2E_HOOK_SHARED=1: held shared by
# the runs of one build, so long campaigns can run side by side; the last
# one removes the hook).  Skips the test when the directory cannot be
# written (not root).
E2E_HOOK_SRC=${MSVM_BUILDDIR:-}/hooks/msvm-security-hook
E2E_HOOK_DIR=$(sed -n 's/^#define MSVM_HOOKDIR "\(.*\)"$/\1/p' "${MSVM_BUILDDIR:-.}/config.h" 2>/dev/null)
E2E_HOOK_DIR=${E2E_HOOK_DIR:-/etc/libvirt/hooks/qemu.d}
HOOK_SRC=$E2E_HOOK_SRC HOOK_DIR=$E2E_HOOK_DIR
HOOK_DST=$E2E_HOOK_DIR/50-msvm-security
E2E_HOOK_BACKUP=
E2E_HOOK_MADE_DIRS=()
E2E_HOOK_INSTALLED=

e2e_hook_remove() {
  local i
  [ -n "$E2E_HOOK_INSTALLED" ] || return 0
  # E2E_HOOK_SHARED=1: only the last run using this same hook removes it
  if [ "${E2E_HOOK_SHARED:-0}" = 1 ] && ! flock -x -n 7; then
    E2E_HOOK_INSTALLED=
    return 0
  fi
  rm -f "$HOOK_DST"
  [ -n "$E2E_HOOK_BACKUP" ] && mv -f "$E2E_HOOK_BACKUP" "$HOOK_DST"
  for ((i = ${#E2E_HOOK_MADE_DIRS[@]} - 1; i >= 0; i--)); do
    rmdir "${E2E_HOOK_MADE_DIRS[$i]}" 2>/dev/null
  done
  E2E_HOOK_INSTALLED=
}

e2e_hook_install() {
  local d=$E2E_HOOK_DIR missing=() i
  [ -x "$E2E_HOOK_SRC" ] || e2e_bail "the hook is not built ($E2E_HOOK_SRC)"
  while [ ! -d "$d" ]; do d=$(dirname "$d"); done
  [ -w "$d" ] || e2e_skip_all "cannot write libvirt's hook directory $E2E_HOOK_DIR (run as root)"
  exec 7>>/tmp/msvm-e2e-hook.lock || e2e_bail "cannot open /tmp/msvm-e2e-hook.lock"
  chmod 0666 /tmp/msvm-e2e-hook.lock 2>/dev/null
  if [ "${E2E_HOOK_SHARED:-0}" = 1 ]; then
    # the same hook already installed by a run that shares it: use it;
    # otherwise install it, once nobody holds the lock
    local waited=0
    while :; do
      flock -s -w "${E2E_LOCK_WAIT:-1800}" 7 || e2e_bail "another e2e run keeps the hook installed"
      if [ -e "$HOOK_DST" ] && cmp -s "$HOOK_DST" "$E2E_HOOK_SRC"; then
        E2E_HOOK_INSTALLED=1
        trap e2e_hook_cleanup EXIT
        return 0
      fi
      flock -u 7
      flock -x -n 7 && break
      waited=$((waited + 1))
      [ "$waited" -lt "${E2E_LOCK_WAIT:-1800}" ] || e2e_bail "another e2e run keeps the hook installed"
      sleep 1
    done
  fi
  [ "${E2E_HOOK_SHARED:-0}" = 1 ] ||
    flock -w "${E2E_LOCK_WAIT:-1800}" 7 || e2e_bail "another e2e run keeps the hook installed"
  # under the lock: the run that held it may just have removed directories it made
  d=$E2E_HOOK_DIR
  while [ ! -d "$d" ]; do missing+=("$d"); d=$(dirname "$d"); done
  for ((i = ${#missing[@]} - 1; i >= 0; i--)); do
    mkdir -m 0755 "${missing[$i]}" || e2e_bail "cannot create ${missing[$i]}"
    E2E_HOOK_MADE_DIRS+=("${missing[$i]}")
  done
  E2E_HOOK_INSTALLED=1
  trap e2e_hook_cleanup EXIT
  if [ "${E2E_HOOK_SHARED:-0}" = 1 ] && [ -e "$HOOK_DST" ] && cmp -s "$HOOK_DST" "$E2E_HOOK_SRC"; then
    :   # the same hook, installed by a run that shares it
  else
    if [ -e "$HOOK_DST" ] && ! cmp -s "$HOOK_DST" "$E2E_HOOK_SRC"; then
      E2E_HOOK_BACKUP=$E2E_HOOK_DIR/.50-msvm-security.e2e-backup.$$
      mv -f "$HOOK_DST" "$E2E_HOOK_BACKUP"
    fi
    cp "$E2E_HOOK_SRC" "$HOOK_DST.tmp.$$" && chmod 0755 "$HOOK_DST.tmp.$$" &&
      touch -d "@$(($(date +%s) - 5))" "$HOOK_DST.tmp.$$" &&
      mv -f "$HOOK_DST.tmp.$$" "$HOOK_DST" || e2e_bail "cannot install the hook at $HOOK_DST"
  fi
  # E2E_HOOK_SHARED=1 (long campaigns side by side, one build): other runs
  # of the same build may use the installed hook meanwhile; a run of
  # another build waits for all of them (it needs the lock exclusively).
  [ "${E2E_HOOK_SHARED:-0}" = 1 ] && flock -s 7
  return 0
}

e2e_hook_cleanup() {
  local rc=$? d
  set +e
  if [ -n "${E2E_RT:-}" ] && [ -S "$E2E_RT/libvirt/libvirt-sock" ]; then
    for d in "${E2E_DOMAINS[@]}"; do e2e_virsh destroy "$d" >/dev/null 2>&1; done
  fi
  e2e_hook_remove
  exec 7>&-
  (exit $rc)
  e2e_cleanup
}

e2e_use_hook() {
  E2E_BEFORE_DAEMON=e2e_hook_install
}
