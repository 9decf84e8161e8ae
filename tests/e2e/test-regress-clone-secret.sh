#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 3: retiring a generation must not undefine its secret
# while another domain still names it (DESIGN.md 6, invariant 2).  A
# protected VM A; a clone B made as an administrator does (A's dumpxml
# --inactive --security-info with a new name, no <uuid>), which names A's
# current secret S1.  Two protector changes on A (set-security-policy with
# new random policies, A stopped, recover after each): S1 is still defined
# and B starts.  Then B is undefined: the next call on A (recover) retires
# S1 (the secret is no longer listed).  In between, B names S1 only in a
# snapshot: S1 stays.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_init
e2e_need_cmds set-security-policy recover
E2E_BOOT_PAUSED=1

a=e2e-rg-clone-a
b=e2e-rg-clone-b
rg_protected "$a"
s1=$(e2e_tpm_secret "$a")
e2e_ok "A's definition names a secret S1 ($s1)" test -n "$s1"

e2e_virsh dumpxml --inactive --security-info "$a" |
  sed -e "s|<name>$a</name>|<name>$b</name>|" -e '/<uuid>/d' -e '/<nvram/d' >"$E2E_WORK/b.xml"
e2e_give "$E2E_WORK/b.xml"
E2E_DOMAINS+=("$b")
e2e_ok "clone B defined from A's definition (new name, no uuid)" e2e_virsh define b.xml
e2e_is "$(e2e_tpm_secret "$b")" "$s1" "  ... B names S1"
ub=$(e2e_virsh domuuid "$b" | head -n1)
E2E_UUIDS+=("$ub")

for i in 1 2; do
  e2e_random "$E2E_WORK/pnew$i" $((60 + i))
  e2e_call R set-security-policy --settings "s-$a.xml" --policy "pnew$i"
  e2e_ok "protector change $i on A (stopped): 0 or 4096 -> 7" e2e_method_ok R
  e2e_call R recover --domain "$a"
  e2e_ok "  ... recover answers 0" e2e_rv_is R 0
  # a boot after the first change: with or without a hook loaded (another
  # run may have one installed), last known good is then not S's generation
  [ "$i" = 1 ] && e2e_ok "  ... the VM boots" e2e_boot "$a"
done
e2e_ok "A names a new secret" test "$(e2e_tpm_secret "$a")" != "$s1"
e2e_ok "S1 is still defined (clone B names it)" rg_secret_listed "$s1"
e2e_ok "clone B starts" e2e_boot "$b"
e2e_ok "A boots" e2e_boot "$a"

# The same through a snapshot: B's definition stops naming S1, a snapshot of
# B (its metadata redefined, as a restored backup of libvirt's snapshot
# store has it) still does.  The scan reads snapshots only of the domains
# libvirt lists as having some (VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT).
e2e_virsh dumpxml --inactive --security-info "$b" >"$E2E_WORK/b-full.xml"
{ printf '<domainsnapshot><name>keeps-s1</name><state>shutoff</state><creationTime>%s</creationTime>' "$(date +%s)"
  cat "$E2E_WORK/b-full.xml"; echo '</domainsnapshot>'; } >"$E2E_WORK/b-snap.xml"
sed "/<tpm /,/<\/tpm>/d" "$E2E_WORK/b-full.xml" >"$E2E_WORK/b-notpm.xml"
e2e_give "$E2E_WORK/b-snap.xml" "$E2E_WORK/b-notpm.xml"
e2e_ok "a snapshot of B that names S1 (metadata redefined)" \
  e2e_virsh snapshot-create "$b" b-snap.xml --redefine
e2e_ok "B redefined without its TPM" e2e_virsh define b-notpm.xml
e2e_is "$(e2e_tpm_secret "$b")" "" "  ... B's definition names no secret"
e2e_call R recover --domain "$a"
e2e_ok "a call on A (recover) answers 0" e2e_rv_is R 0
e2e_ok "  ... and S1 is still defined (B's snapshot names it)" rg_secret_listed "$s1"
e2e_ok "the snapshot's metadata deleted" e2e_virsh snapshot-delete "$b" keeps-s1 --metadata

e2e_ok "B undefined" e2e_virsh undefine "$b"
e2e_call R recover --domain "$a"
e2e_ok "the next call on A (recover) answers 0" e2e_rv_is R 0
e2e_not "  ... and S1, named by nothing any more, is retired" rg_secret_listed "$s1"

e2e_done
