# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lib-hook.sh: running the BUILT hook exactly as libvirt does
# (OBJECT OPERATION SUBOPERATION EXTRA, domain XML on standard input, and only
# USER, HOME, LOGNAME, PATH and LC_ALL=C in the environment), for the
# tests/integration/test-hook-*.sh scripts and tests/bench/bench-hook.sh.
#
# Where the hook looks: it finds its store from its own user id, so as root it
# uses the system store /var/lib/msvm-security and libvirt's
# /var/lib/libvirt/swtpm.  A test must not touch those on the host, so when
# run as root, hook_ns_enter re-executes the script in a private mount
# namespace with a tmpfs over /var/lib: every file the hook (or the test)
# creates there vanishes with the namespace.  As another user the hook uses
# that user's session store (~/.local/share/msvm-security and
# ~/.config/libvirt/qemu/swtpm, the home from the password database); the
# tests then use fresh random UUIDs and remove only what they created.

HOOK=${MSVM_BUILDDIR:-}/hooks/msvm-security-hook
HOOK_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOOK_NS=urn:x-msvm-security:domain:1

# hook_ns_enter "$@": as root, run this script again inside a private mount
# namespace with /var/lib on a tmpfs (see above).  Call it first.
hook_ns_enter() {
  if [ "$(id -u)" -eq 0 ] && [ -z "${MSVM_HOOK_TEST_NS:-}" ]; then
    if ! command -v unshare >/dev/null ||
       ! unshare --mount --propagation private -- true 2>/dev/null; then
      echo "1..0 # SKIP a private mount namespace (unshare) is needed to keep the test off /var/lib"
      exit 0
    fi
    MSVM_HOOK_TEST_NS=1 exec unshare --mount --propagation private -- bash "$0" "$@"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    mount -t tmpfs -o mode=0755 msvm-hook-test /var/lib || {
      echo "Bail out! cannot mount a tmpfs over /var/lib in the private namespace"
      exit 1
    }
  fi
}

# Where this user's hook keeps things (DESIGN.md section 5).
hook_paths() {
  HOOK_USER=$(id -un)
  HOOK_HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
  if [ "$(id -u)" -eq 0 ]; then
    STORE_ROOT=/var/lib/msvm-security
    SWTPM_ROOT=/var/lib/libvirt/swtpm
  else
    STORE_ROOT=$HOOK_HOME/.local/share/msvm-security
    SWTPM_ROOT=$HOOK_HOME/.config/libvirt/qemu/swtpm
  fi
}

# hook_run [VAR=VALUE...] -- NAME OPERATION SUBOPERATION XMLFILE: run the hook
# as libvirt does; sets HOOK_RC, HOOK_OUT and HOOK_ERR (file names).
# Extra VAR=VALUE (before --) are for fault injection only; HOOK_WRAP (an
# array, e.g. strace and its options) runs the hook.
HOOK_WRAP=()
hook_run() {
  local extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do extra+=("$1"); shift; done
  shift
  HOOK_OUT=$WORK/hook.out
  HOOK_ERR=$WORK/hook.err
  # (The group's redirection takes the shell's "Killed" notice of a
  # fault-injected run.)
  {
    env -i USER="$HOOK_USER" HOME="$HOOK_HOME" LOGNAME="$HOOK_USER" PATH="$HOOK_PATH" \
      LC_ALL=C "${extra[@]}" "${HOOK_WRAP[@]}" "$HOOK" "$1" "$2" "$3" - <"$4" \
      >"$HOOK_OUT" 2>"$HOOK_ERR"
    HOOK_RC=$?
  } 2>>"$WORK/shell.log"
}

# hook_listing: every file under the store root and the swtpm root, with
# sizes, modes and contents' checksums: "no file touched" comparisons.
hook_listing() {
  local d
  for d in "$STORE_ROOT" "$SWTPM_ROOT" "$@"; do
    [ -e "$d" ] || { echo "absent $d"; continue; }
    find "$d" -printf '%p %y %m %s %T@\n' | LC_ALL=C sort
    find "$d" -type f -exec md5sum {} + 2>/dev/null | LC_ALL=C sort
  done
}

# hook_domain_xml FILE NAME UUID [SECRET|-] [MANAGED yes|no] [EXTRA-DEVICES]:
# a domain definition as libvirt formats it.
hook_domain_xml() {
  local file=$1 name=$2 uuid=$3 secret=${4:--} managed=${5:-yes} extra=${6:-}
  {
    echo "<domain type='qemu' id='1'>"
    echo "  <name>$name</name>"
    echo "  <uuid>$uuid</uuid>"
    if [ "$managed" = yes ]; then
      echo "  <metadata>"
      echo "    <msvm:security xmlns:msvm=\"$HOOK_NS\" version=\"1\">"
      echo "      <msvm:setting name=\"TpmEnabled\">TRUE</msvm:setting>"
      echo "    </msvm:security>"
      echo "  </metadata>"
    fi
    echo "  <memory unit='KiB'>131072</memory>"
    echo "  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"
    echo "  <devices>"
    echo "    <emulator>/usr/bin/qemu-system-x86_64</emulator>"
    if [ "$secret" != - ]; then
      echo "    <tpm model='tpm-crb'>"
      echo "      <backend type='emulator' version='2.0'>"
      echo "        <encryption secret='$secret'/>"
      echo "      </backend>"
      echo "    </tpm>"
    fi
    [ -n "$extra" ] && echo "$extra"
    echo "  </devices>"
    echo "</domain>"
  } >"$file"
}

hook_uuid() { cat /proc/sys/kernel/random/uuid; }

# strace installed and allowed to trace here (ptrace may be forbidden).
hook_have_strace() {
  command -v strace >/dev/null && strace -qq -o /dev/null true 2>/dev/null
}

# The operations libvirt runs hooks for (docs/hooks.rst), with their
# suboperation.
HOOK_OPERATIONS=(
  "prepare begin" "start begin" "started begin" "stopped end" "release end"
  "migrate begin" "restore begin" "reconnect begin" "attach begin"
)

# hook_quiet DESC: the last run exited 0 and printed nothing at all.
hook_quiet() {
  if [ "$HOOK_RC" -eq 0 ] && [ ! -s "$HOOK_OUT" ] && [ ! -s "$HOOK_ERR" ]; then
    tap_ok 0 "$1"
  else
    tap_ok 1 "$1"
    diag "exit $HOOK_RC, stdout: $(head -c 300 "$HOOK_OUT"), stderr: $(head -c 600 "$HOOK_ERR")"
  fi
}

# hook_refused DESC PATTERN: exit non-zero, nothing on stdout, exactly one
# line on stderr matching PATTERN.
hook_refused() {
  local lines
  lines=$(wc -l <"$HOOK_ERR")
  if [ "$HOOK_RC" -ne 0 ] && [ ! -s "$HOOK_OUT" ] && [ "$lines" -eq 1 ] &&
     grep -q -- "$2" "$HOOK_ERR"; then
    tap_ok 0 "$1"
  else
    tap_ok 1 "$1"
    diag "exit $HOOK_RC, $lines lines on stderr: $(cat "$HOOK_ERR")"
  fi
}
