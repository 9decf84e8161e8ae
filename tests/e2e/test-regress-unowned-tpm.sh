#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 2: a VM whose TPM secret the project did not create is
# never refused by the hook (DESIGN.md 6, invariant 5).  A vtpm secret S the
# test defines itself, a VM whose TPM is encrypted under S, started once
# (libvirt creates the state under S) and destroyed; then
# `modify-security-settings` with an instance holding only InstanceID and
# VirtualizationBasedSecurityOptOut=TRUE (no protector needed) answers 0.
# With the hook installed, `virsh start` succeeds (the hook lets through a
# VM whose TPM secret is none of the project's generations), the state still
# opens under S's passphrase, and `recover` answers 0.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_use_hook
e2e_init
e2e_need_cmds modify-security-settings recover

rv0() { e2e_rv_is R 0; }
vm=e2e-rg-unowned
rg_foreign_vm "$vm" "$E2E_WORK/fpass"
u=$RG_UUID
sdir=$(e2e_state_dir "$u")
e2e_ok "setup: the state opens under the foreign passphrase" e2e_tpm_opens "$sdir" "$E2E_WORK/fpass"

e2e_settings "$E2E_WORK/vbs.xml" "$u" VirtualizationBasedSecurityOptOut=TRUE
e2e_call R modify-security-settings --settings vbs.xml
e2e_ok "modify-security-settings with VirtualizationBasedSecurityOptOut=TRUE only: 0" rv0
e2e_is "$(e2e_tpm_secret "$vm")" "$RG_FSECRET" "  ... the TPM still names the foreign secret"

E2E_BOOT_PAUSED=1
e2e_ok "virsh start succeeds through the hook (its TPM is not the project's)" e2e_boot "$vm"
e2e_ok "  ... the state still opens under the foreign passphrase" \
  e2e_tpm_opens "$sdir" "$E2E_WORK/fpass"
e2e_call R recover --domain "$vm"
e2e_ok "recover --domain answers 0" rv0
e2e_ok "the VM starts again afterwards" e2e_boot "$vm"
e2e_ok "the foreign secret is still defined" rg_secret_listed "$RG_FSECRET"

e2e_done
