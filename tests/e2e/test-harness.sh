#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The end-to-end harness itself, against the real libvirt session daemon,
# QEMU (TCG) and swtpm, without the project's service: what the other e2e
# tests rely on must be true here first.
#  - the daemon runs as the unprivileged user, a throwaway UEFI q35 VM with a
#    vTPM boots (QEMU + swtpm running), and the boot time is measured;
#  - data written by hand into a stopped VM's vTPM (swtpm + tpm2-tools on its
#    state dir) survives a boot and reads back;
#  - the harness's own passphrase derivation gives DESIGN.md section 5's test
#    vectors, and a VM whose vtpm secret holds such a passphrase boots with
#    an encrypted state (header flags 0x09) that opens under that passphrase
#    and not under another one;
#  - a snapshot sees a change of the definition, the secrets and the state.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_note "daemon user: $E2E_USER (root mode: $E2E_ROOT_MODE), runtime dir: $E2E_RT"

# --- the derivation against DESIGN.md section 5's vectors
seed=$(for i in $(seq 0 31); do printf '%02x' "$i"; done)
vuuid=5f2b7a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b
e2e_bytes "$E2E_TMP/kp" key-protector
e2e_bytes "$E2E_TMP/pol" policy
e2e_passphrase "$E2E_TMP/p1" "$seed" "$vuuid" "$E2E_TMP/kp" "$E2E_TMP/pol"
e2e_is "$(cat "$E2E_TMP/p1")" 8e88a3b30728b41185deac01e8f503460d1bae710d666968789a7e4487a10c79 \
  "passphrase derivation: test vector with both halves"
e2e_passphrase "$E2E_TMP/p2" "$seed" "$vuuid" "" "$E2E_TMP/pol"
e2e_is "$(cat "$E2E_TMP/p2")" 2376323d277495c836cecb525df74336f14402295cbe0acc4962dfaf73b3d751 \
  "passphrase derivation: test vector without key protector"
e2e_passphrase "$E2E_TMP/p3" "$seed" "$vuuid" "$E2E_TMP/kp" ""
e2e_is "$(cat "$E2E_TMP/p3")" 898a6ccd2b8d6b008c4c44699c25f676c2ab171c1e88a622ff284c99fbf671ad \
  "passphrase derivation: test vector without policy"

# --- a quiet grep at the end of a pipe reads to the end (seed 307)
# `grep -q` leaves at the first match; a writer with more to say then dies
# of SIGPIPE and, under pipefail, the match reads as a miss.
writer() { echo 'Managed save:   yes'; sleep 0.3; echo 'Security model: none'; }
e2e_not "a writer killed by a leaving 'grep -q' fails the pipeline (the hazard)" \
  eval "writer | grep -q '^Managed save: *yes'"
e2e_ok "  ... e2e_grep_q reads to the end: the match is a match" \
  eval "writer | e2e_grep_q '^Managed save: *yes'"
e2e_not "  ... and no e2e script pipes into 'grep -q'" \
  eval "grep -n '| *grep -q' '$(dirname "$0")'/*.sh | grep -v -e 'WRITER | grep -q' -e 'writer | grep -q'"

# --- a plaintext vTPM
e2e_ok "define a UEFI q35 VM with a vTPM (no encryption)" e2e_define_vm e2e-h-plain uefi tpm
plain=e2e-h-plain; plain_uuid=$E2E_UUID
e2e_ok "it boots under TCG with swtpm running" e2e_boot "$plain"
e2e_note "first boot (swtpm_setup creates the TPM): ${E2E_LAST_BOOT_SECONDS}s"
sdir=$(e2e_state_dir "$plain_uuid")
e2e_is "$(e2e_state_flags "$sdir/tpm2-00.permall")" 0x00 "the new state is plaintext (flags 0)"
head -c 24 /dev/urandom | e2e_hex >"$E2E_TMP/data"
e2e_give "$E2E_TMP/data"
e2e_ok "NV data written into the stopped VM's vTPM by hand" \
  e2e_tpm_nv_write "$sdir" "" "$E2E_TMP/data"
e2e_ok "it boots again" e2e_boot "$plain"
e2e_note "second boot: ${E2E_LAST_BOOT_SECONDS}s"
e2e_ok "the NV data reads back after the boot" \
  e2e_tpm_nv_read "$sdir" "" 48 "$E2E_TMP/data.back"
e2e_ok "same bytes" cmp "$E2E_TMP/data" "$E2E_TMP/data.back"

# --- an encrypted vTPM under a harness-derived passphrase
e2e_define_vm e2e-h-enc uefi notpm
enc=e2e-h-enc; enc_uuid=$E2E_UUID
e2e_snapshot "$enc" "$enc_uuid" "$E2E_TMP/snap1"
head -c 32 /dev/urandom | e2e_hex >"$E2E_TMP/seed"
e2e_passphrase "$E2E_TMP/pass" "$(cat "$E2E_TMP/seed")" "$enc_uuid" "$E2E_TMP/kp" "$E2E_TMP/pol"
secret_uuid=$(e2e_uuidgen)
cat >"$E2E_WORK/secret.xml" <<EOF
<secret ephemeral='no' private='yes'>
  <uuid>$secret_uuid</uuid>
  <usage type='vtpm'><name>e2e-harness-$enc_uuid</name></usage>
</secret>
EOF
e2e_give "$E2E_WORK/secret.xml"
e2e_ok "a private vtpm secret holding the passphrase" \
  eval 'e2e_virsh secret-define secret.xml && e2e_virsh secret-set-value '"$secret_uuid"' --file '"$E2E_TMP/pass"' --plain'
tpmxml="<tpm model='tpm-crb'><backend type='emulator' version='2.0'><encryption secret='$secret_uuid'/></backend></tpm>"
e2e_ok "the definition gets the TPM with <encryption>" \
  e2e_define_vm "$enc" uefi notpm "$tpmxml" "$enc_uuid"
e2e_snapshot "$enc" "$enc_uuid" "$E2E_TMP/snap2"
e2e_not "a snapshot sees the change (definition and secrets)" \
  e2e_unchanged "$E2E_TMP/snap1" "$E2E_TMP/snap2"
e2e_ok "the encrypted VM boots" e2e_boot "$enc"
edir=$(e2e_state_dir "$enc_uuid")
e2e_is "$(e2e_state_flags "$edir/tpm2-00.permall")" 0x09 "its state is AES-256 encrypted (flags 0x09)"
e2e_ok "NV data written under the passphrase" e2e_tpm_nv_write "$edir" "$E2E_TMP/pass" "$E2E_TMP/data"
e2e_ok "the encrypted VM boots again" e2e_boot "$enc"
e2e_ok "the NV data reads back under the passphrase" \
  e2e_tpm_nv_read "$edir" "$E2E_TMP/pass" 48 "$E2E_TMP/data.back2"
e2e_ok "same bytes" cmp "$E2E_TMP/data" "$E2E_TMP/data.back2"
e2e_snapshot "$enc" "$enc_uuid" "$E2E_TMP/snap3"
e2e_passphrase "$E2E_TMP/other" "$(cat "$E2E_TMP/seed")" "$enc_uuid" "" "$E2E_TMP/pol"
e2e_ok "another passphrase does not open the state" e2e_tpm_refuses "$edir" "$E2E_TMP/other"
e2e_snapshot "$enc" "$enc_uuid" "$E2E_TMP/snap4"
e2e_ok "a failed open changes nothing (snapshot equal)" \
  e2e_unchanged "$E2E_TMP/snap3" "$E2E_TMP/snap4"

e2e_done
