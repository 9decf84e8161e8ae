#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# debian/libmsvm-security0.symbols lists exactly the symbols of
# plugin/libmsvm-security.map (a symbol missing from the file only warns in
# dpkg-gensymbols; one the library no longer has fails the package build,
# which only the root-only packaging suite would show).
set -uo pipefail
src=${MSVM_SOURCEDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
echo "1..1"
map=$(sed -n 's/^ *\(msvm_[a-z0-9_]*\);$/\1/p' "$src/plugin/libmsvm-security.map" | LC_ALL=C sort)
sym=$(sed -n 's/^ \(msvm_[a-z0-9_]*\)@MSVM_SECURITY_[0-9.]* .*/\1/p' "$src/debian/libmsvm-security0.symbols" | LC_ALL=C sort)
if [ -n "$map" ] && [ "$map" = "$sym" ]; then
  echo "ok 1 - debian/libmsvm-security0.symbols has the map's $(wc -l <<<"$map") symbols"
else
  diff <(echo "$map") <(echo "$sym") | sed 's/^/# /'
  echo "not ok 1 - debian/libmsvm-security0.symbols differs from plugin/libmsvm-security.map (< map, > symbols file)"
  exit 1
fi
