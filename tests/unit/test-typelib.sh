#!/bin/bash
# The built typelib loads and holds every exported function (test-typelib.py,
# run with a python3 that has python3-gi: Debian's, whatever else is first in
# PATH).  Skipped when the build has no typelib (-Dintrospection=disabled,
# sanitizers).
set -u
typelib_dir=$MSVM_BUILDDIR/plugin
if [ ! -f "$typelib_dir/MsvmSecurity-1.0.typelib" ]; then
  echo "1..0 # SKIP no MsvmSecurity-1.0.typelib in this build (introspection disabled)"
  exit 0
fi
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import gi' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "1..1"
  echo "not ok 1 - a python3 with python3-gi (./run installs it)"
  exit 0
fi
export LD_LIBRARY_PATH=$typelib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export GI_TYPELIB_PATH=$typelib_dir${GI_TYPELIB_PATH:+:$GI_TYPELIB_PATH}
exec "$py" "$MSVM_SOURCEDIR/tests/unit/test-typelib.py" \
  "$MSVM_SOURCEDIR/plugin/libmsvm-security.map" "$typelib_dir"
