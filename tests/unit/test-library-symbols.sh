#!/bin/bash
# libmsvm-security exports exactly the symbols of its public headers
# (plugin/msvm-security.h, util/msvm-error.h) and its version script
# (plugin/libmsvm-security.map) says the same, both ways: nothing of the
# static libraries linked into it (store, translation, re-key engine, util)
# leaks into its ABI, and nothing a public header declares is missing from
# the library.
set -u
lib="$MSVM_BUILDDIR/plugin/libmsvm-security.so"
map="$MSVM_SOURCEDIR/plugin/libmsvm-security.map"
headers=("$MSVM_SOURCEDIR/plugin/msvm-security.h" "$MSVM_SOURCEDIR/util/msvm-error.h")
echo "1..4"
if [ -f "$lib" ]; then echo "ok 1 - library built"; else echo "not ok 1 - $lib missing"; exit 0; fi
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {sub(/@.*/, "", $3); print $3}' | sort -u)
in_map=$(sed -n 's/^ *\(msvm_[a-z_0-9]*\);$/\1/p' "$map" | sort -u)
# a declaration: a line that starts with its type and names msvm_X(
# (and G_DECLARE_*_TYPE(Type, prefix, ...) declares prefix_get_type())
declared=$( { grep -ohE '^[^ #/*][^(]*\bmsvm_[a-z0-9_]+ *\(' "${headers[@]}" |
              sed -E 's/.*\b(msvm_[a-z0-9_]+) *\($/\1/'
            grep -ohE '\bG_DECLARE_[A-Z_]+_TYPE *\( *[A-Za-z0-9_]+ *, *msvm_[a-z0-9_]+' "${headers[@]}" |
              sed -E 's/.*, *(msvm_[a-z0-9_]+)$/\1_get_type/'; } | sort -u)
if [ "$exported" = "$in_map" ]; then
  echo "ok 2 - the exported symbols are the version script's"
else
  echo "not ok 2 - exported symbols differ from the map (< map, > library)"
  diff <(echo "$in_map") <(echo "$exported") | sed 's/^/# /'
fi
missing=$(comm -23 <(echo "$in_map") <(echo "$declared") | tr '\n' ' ')
if [ -z "${missing// /}" ]; then echo "ok 3 - every symbol of the map is declared in a public header"
else echo "not ok 3 - in the map, declared in no public header: $missing"; fi
missing=$(comm -13 <(echo "$in_map") <(echo "$declared") | tr '\n' ' ')
if [ -z "${missing// /}" ]; then echo "ok 4 - every function a public header declares is in the map"
else echo "not ok 4 - declared in a public header, missing from the map (and the library): $missing"; fi
