#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# meson install step: the hook as a regular file (not a symlink) named
# 50-msvm-security in libvirt's qemu hook directory, whatever the prefix
# (meson option hookdir).  Copied under a temporary name and renamed, so a
# daemon starting meanwhile never sees half a file; a symlink already there
# is replaced, not followed.
#   install-hook.sh BUILT-HOOK HOOKDIR
set -eu
src=$1
dir=${DESTDIR:-}$2
mkdir -p "$dir"
tmp="$dir/.50-msvm-security.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$dir/50-msvm-security"
trap - EXIT
echo "Installing $src to $dir/50-msvm-security"
