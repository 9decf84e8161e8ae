#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 5 (without the hook; test-regress-empty-tpm2-hook.sh has
# the hook's half): an empty `tpm2` directory is "no TPM yet", as libvirt
# 9.6+ treats it.  A protected VM, stopped, every file of its tpm2 directory
# removed but the directory kept: `recover` answers 0 and `virsh start`
# succeeds.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_init
e2e_need_cmds recover
E2E_BOOT_PAUSED=1

vm=e2e-rg-empty
rg_protected "$vm"
u=$RG_UUID
sdir=$(e2e_state_dir "$u")
e2e_ok "every file of the tpm2 directory removed, the directory kept" \
  eval 'find "$sdir" -mindepth 1 -delete && test -d "$sdir" && test -z "$(ls -A "$sdir")"'
e2e_call R recover --domain "$vm"
e2e_ok "recover answers 0" e2e_rv_is R 0
e2e_ok "no journal left open" rg_no_journal "$u"
e2e_ok "virsh start succeeds" e2e_boot "$vm"
e2e_ok "  ... and the new state opens under the current passphrase" \
  e2e_tpm_opens "$sdir" "$E2E_TMP/P-$vm"

e2e_done
