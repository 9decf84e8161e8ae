#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A build without -Dfault_injection (what packages ship) holds no fault
# points (DESIGN.md section 11): none of its programs or libraries contains
# the names of the fault points' environment variables, of the hook's
# arming file or of a fault point, and none exports or imports the fault
# functions, and the library and the CLI name no path into their build tree
# (the libtpms helper is run from where it is installed, never from there).
# Only defined in such builds (tests/meson.build, 'faults').
set -u
b=$MSVM_BUILDDIR
files=("$b/hooks/msvm-security" "$b/hooks/msvm-security-hook"
       "$b/hooks/msvm-security-hook-module.so" "$b/plugin/libmsvm-security.so"
       "$b/tpm/msvm-security-tpm-validate")
n=0 failed=0
t() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
for f in "${files[@]}"; do
  name=${f#"$b"/}
  if [ ! -f "$f" ]; then t 1 "$name is built"; continue; fi
  found=$(strings -a "$f" | grep -E 'MSVM_SECURITY_FAULT|MSVM_SECURITY_TEST_|\.fault-inject|msvm-fault-point|process-protected|store-fsync-dir|rekey-(write|fsync|exchange)|state-check-opened|after-define|msvm_fault_' | sort -u | head -5 | tr '\n' ' ')
  t "$([ -z "$found" ] && echo 0 || echo 1)" "$name: no fault point, variable or arming file${found:+ (found: $found)}"
done
# nor does the library or the CLI look for programs in its build tree
for f in "$b/plugin/libmsvm-security.so" "$b/hooks/msvm-security"; do
  found=$(strings -a "$f" 2>/dev/null | grep -cF "$b")
  t "$([ "$found" = 0 ] && echo 0 || echo 1)" "${f#"$b"/}: no path into the build tree ($b)"
done
echo "1..$n"
exit $failed
