#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The layering of DESIGN.md section 2 and issue 9, checked on the sources:
#  - util/ includes nothing of xml/, tpm/, plugin/ or hooks/;
#  - xml/ and tpm/ include nothing of plugin/ or hooks/;
#  - each base helper exists once: read()/write() loops only in
#    util/msvm-io.c, rename() of a whole file only in util/msvm-file.c, the
#    errno mapping only in util/msvm-errno.c, UUID parsing only in
#    util/msvm-uuid.c, the owner-and-mode trust rule only in
#    util/msvm-trust.c.
set -u
src=$MSVM_SOURCEDIR
n=0 failed=0
t() { n=$((n + 1)); if [ -z "$2" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; printf '# %s\n' $2; failed=1; fi; }
headers_of() { local d; for d in "$@"; do ls "$src/$d"/*.h 2>/dev/null; done | xargs -n1 basename | sort -u; }
includes_any() {   # includes_any DIR HEADER...: the files of DIR that include one of them
  local dir=$1; shift
  local h
  for h in "$@"; do grep -l "#include \"$h\"" "$src/$dir"/*.[ch] 2>/dev/null | sed "s|$src/||;s|\$|:$h|"; done
}
t "util/ includes no header of xml/, tpm/, plugin/ or hooks/" "$(includes_any util $(headers_of xml tpm plugin hooks))"
t "xml/ includes no header of tpm/, plugin/ or hooks/" "$(includes_any xml $(headers_of tpm plugin hooks))"
t "tpm/ includes no header of plugin/ or hooks/" "$(includes_any tpm $(headers_of plugin hooks))"
code=$(ls "$src"/{util,xml,tpm,plugin,hooks}/*.c)
others() { grep -lE "$1" $code | sed "s|$src/||" | grep -vx "$2"; }
t "read() and write() loops only in util/msvm-io.c" "$(others '(=|\(|\|\|) *(read|write)\(' util/msvm-io.c)"
t "whole-file rename() only in util/msvm-file.c" "$(others '[^_a-z]rename\(' util/msvm-file.c)"
# (an errno mapping: EACCES with a return code on its line or the next; an
# EACCES that only means "locked by another" (F_SETLK) or "not ours to
# read" is not one)
errno_maps() {
  local f
  for f in $code; do
    awk '/EACCES/ && !/EAGAIN/ { want = 2 } want > 0 && /MSVM_RC_/ { hit = 1 } { want-- }
         END { exit !hit }' "$f" && echo "${f#"$src"/}"
  done | grep -vx util/msvm-errno.c
}
t "errno mapping only in util/msvm-errno.c" "$(errno_maps)"
# (the MOF reader's \\uXXXX escapes are hex digits too, not a UUID)
t "UUID parsing only in util/msvm-uuid.c" "$(others 'g_ascii_xdigit_value' util/msvm-uuid.c | grep -vx xml/msvm-instance-mof.c)"
t "the trust rule only in util/msvm-trust.c" "$(others '& *022\)' util/msvm-trust.c)"
echo "1..$n"
exit $failed
