#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 8: the secrets a definition names are its TPM's
# (/domain/devices/tpm/backend/encryption/@secret), not look-alike elements
# a definer put under <metadata>.  A protected VM whose definition also
# carries, under <metadata>, a foreign element
#   <app:x xmlns:app='urn:example:app'><devices><tpm><backend>
#     <encryption secret='S'/></backend></tpm></devices></app:x>
# naming S, the secret of its generation at that time (added by
# dumpxml/edit/define after the os-win setup).  After two further protector
# changes (recover after each), S is undefined: nothing real names it any
# more.  The metadata element itself is left as the administrator wrote it.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_init
e2e_need_cmds set-security-policy recover
E2E_BOOT_PAUSED=1

vm=e2e-rg-xpath
rg_protected "$vm"
u=$RG_UUID
s1=$(e2e_tpm_secret "$vm")
e2e_ok "the definition names a secret S ($s1)" test -n "$s1"
app="<app:x xmlns:app='urn:example:app'><devices><tpm><backend><encryption secret='$s1'/></backend></tpm></devices></app:x>"
e2e_ok "a foreign <metadata> element naming S added (dumpxml/edit/define)" \
  rg_redefine "$vm" "s|</metadata>|$app</metadata>|"
e2e_ok "  ... libvirt keeps it" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q 'urn:example:app'"

for i in 1 2; do
  e2e_random "$E2E_WORK/pnew$i" $((50 + i))
  e2e_call R set-security-policy --settings "s-$vm.xml" --policy "pnew$i"
  e2e_ok "protector change $i (stopped): 0 or 4096 -> 7" e2e_method_ok R
  e2e_call R recover --domain "$vm"
  e2e_ok "  ... recover answers 0" e2e_rv_is R 0
  # a boot after the first change: with or without a hook loaded (another
  # run may have one installed), last known good is then not S's generation
  [ "$i" = 1 ] && e2e_ok "  ... the VM boots" e2e_boot "$vm"
done
# With a hook loaded (another test's, at this daemon's start) the setup boot
# made S last known good; a boot under the current generation moves it on.
if [ "$E2E_HOOK_LOADED" = 1 ]; then
  e2e_ok "(a hook is loaded) a boot moves last known good to the current generation" \
    e2e_boot "$vm"
  e2e_call R recover --domain "$vm"
fi
e2e_ok "the TPM names another secret now" test "$(rg_tpm_secret "$vm")" != "$s1"
e2e_not "S, named only under <metadata>, is undefined" rg_secret_listed "$s1"
e2e_ok "  ... and its generation is gone from the store" \
  eval "! grep -qx 'secret=$s1' '$(e2e_store_file "$u")'"
e2e_ok "the foreign metadata element is still in the definition" \
  eval "e2e_virsh dumpxml --inactive $vm | e2e_grep_q 'urn:example:app'"
e2e_ok "the VM boots" e2e_boot "$vm"

e2e_done
