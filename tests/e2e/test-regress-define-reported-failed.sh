#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 4: a domain define that libvirt applied but reported as
# failed must be re-read before any undo, not undone by undefining the
# secret the new definition names.  MSVM_SECURITY_FAULT_FAIL=define-domain
# (a test-only knob: the define is carried out by libvirt and then reported
# to the provider as failed) in the CLI's environment; set-security-policy
# on a protected, stopped VM answers 0: the definition names a new secret,
# that secret is defined, the VM boots and the NV data reads back under the
# new passphrase (and not the old one).
# Without the knob in the code (it is ignored) this test passes trivially.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_init
e2e_need_cmds set-security-policy recover
E2E_BOOT_PAUSED=1

vm=e2e-rg-deffail
rg_protected "$vm"
u=$RG_UUID
sdir=$(e2e_state_dir "$u")
s_old=$(e2e_tpm_secret "$vm")

e2e_random "$E2E_WORK/pnew" 77
MSVM_SECURITY_FAULT_FAIL=define-domain \
  e2e_call R set-security-policy --settings "s-$vm.xml" --policy pnew
e2e_ok "set-security-policy with the define reported as failed: 0" e2e_rv_is R 0
s_new=$(e2e_tpm_secret "$vm")
e2e_ok "the definition names a new secret ($s_new)" test -n "$s_new" -a "$s_new" != "$s_old"
e2e_ok "  ... that secret is defined" rg_secret_listed "$s_new"
e2e_ok "  ... it is the store's current generation's" \
  test "$(e2e_store_get "$u" "generation $(e2e_store_get "$u" store current)" secret)" = "$s_new"
e2e_ok "no journal left open" rg_no_journal "$u"
e2e_ok "the VM boots" e2e_boot "$vm"
e2e_ok "the new passphrase" e2e_vm_passphrase "$E2E_TMP/Pnew" "$u" "$E2E_WORK/kp-$vm" "$E2E_WORK/pnew"
e2e_ok "the NV data reads back under it" \
  e2e_tpm_nv_read "$sdir" "$E2E_TMP/Pnew" "$(stat -c %s "$E2E_TMP/data-$vm")" "$E2E_TMP/data.back"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data-$vm" "$E2E_TMP/data.back"
e2e_ok "the old passphrase no longer opens the state" e2e_tpm_refuses "$sdir" "$E2E_TMP/P-$vm"

e2e_done
