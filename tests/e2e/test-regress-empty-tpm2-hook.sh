#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 8, finding 5 (with the hook; test-regress-empty-tpm2.sh is the half
# without it): an empty `tpm2` directory is "no TPM yet", as libvirt 9.6+
# treats it.  With the hook installed, a protected VM, stopped, every file
# of its tpm2 directory removed but the directory kept: `virsh start`
# succeeds (the hook does not refuse it) and afterwards the store's `state`
# generation equals `current`.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"
. "$(dirname "$0")/lib-regress.sh"

e2e_use_hook
e2e_init
E2E_BOOT_PAUSED=1

vm=e2e-rg-empty-h
rg_protected "$vm"
u=$RG_UUID
sdir=$(e2e_state_dir "$u")
e2e_ok "every file of the tpm2 directory removed, the directory kept" \
  eval 'find "$sdir" -mindepth 1 -delete && test -d "$sdir" && test -z "$(ls -A "$sdir")"'
e2e_ok "virsh start succeeds through the hook" e2e_boot "$vm"
e2e_is "$(e2e_store_get "$u" store state)" "$(e2e_store_get "$u" store current)" \
  "afterwards the store's state generation equals current"
e2e_ok "the new state opens under the current passphrase" e2e_tpm_opens "$sdir" "$E2E_TMP/P-$vm"
e2e_ok "the VM starts again" e2e_boot "$vm"

e2e_done
