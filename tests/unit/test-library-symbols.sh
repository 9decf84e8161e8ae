#!/bin/bash
# libmsvm-security exports exactly the symbols of its public headers
# (plugin/libmsvm-security.map): nothing of the static libraries linked into
# it (store, translation, re-key engine) leaks into its ABI.
set -u
lib="$MSVM_BUILDDIR/plugin/libmsvm-security.so"
map="$MSVM_SOURCEDIR/plugin/libmsvm-security.map"
echo "1..3"
if [ -f "$lib" ]; then echo "ok 1 - library built"; else echo "not ok 1 - $lib missing"; exit 0; fi
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {sub(/@.*/, "", $3); print $3}' | sort -u)
wanted=$(sed -n 's/^ *\(msvm_[a-z_0-9]*\);$/\1/p' "$map" | sort -u)
if [ "$exported" = "$wanted" ]; then
  echo "ok 2 - exported symbols are the public API"
else
  echo "not ok 2 - exported symbols differ from the map"
  diff <(echo "$wanted") <(echo "$exported") | sed 's/^/# /'
fi
# every exported symbol is declared in a public header
missing=""
for s in $wanted; do
  grep -q "\b$s\b" "$MSVM_SOURCEDIR/plugin/msvm-security.h" "$MSVM_SOURCEDIR/plugin/msvm-error.h" || missing="$missing $s"
done
if [ -z "$missing" ]; then echo "ok 3 - every exported symbol is declared in msvm-security.h or msvm-error.h"
else echo "not ok 3 - not declared:$missing"; fi
