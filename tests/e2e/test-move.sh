#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 10 against a real session daemon: guardians, export-protector,
# import-protector and forget.  "host-b" is a second guardian on a store
# root of its own (tests/integration/guardian-tool.c, the library's codec):
# the daemon's host exports for it and the tool reads what arrived, then
# seals it back for the daemon's guardian, as host B sends a VM back.
#
# Checked: guardian show/list/trust/forget and their refusals; an export for
# host-b changes nothing and holds the VM's seed and secret UUIDs; it does
# not import here (32769); a backup (--with-state, for this host's own
# guardian) restores after the VM, its secrets, its store entry and its
# state were deleted: the secrets come back with the same UUIDs, the VM
# starts (libvirt hands swtpm the secret's value: a wrong one fails the
# start) and the NV data written before reads back; forget is refused while
# the domain is defined and leaves no secret and no entry; every refusal
# (another guardian's bundle, an untrusted signer, an altered, truncated or
# empty file, a domain already defined, an entry under another seed, a
# failure at the last step) leaves nothing behind.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds guardian export-protector import-protector forget
TOOL=$MSVM_BUILDDIR/tests/guardian-tool
[ -x "$TOOL" ] || e2e_bail "no $TOOL"
E2E_BOOT_PAUSED=1

vm=e2e-move
e2e_define_vm "$vm" uefi tpm
u=$E2E_UUID
e2e_protected_vm "$vm" "$u" "$E2E_TMP/P" 32 48
sdir=$(e2e_state_dir "$u")
B=$E2E_TMP/host-b
mkdir -p "$B" && chmod 0700 "$B"

snap() { e2e_snapshot "$vm" "$u" "$1"; }
# everything of the VM on this host: secrets, store entry, state, definition
vm_gone() {
  local s
  s=$(e2e_vm_secrets "$u")
  [ -z "$s" ] || { echo "secrets left: $s"; return 1; }
  [ ! -e "$E2E_STORE/$u" ] || { echo "store entry left"; ls -la "$E2E_STORE/$u"; return 1; }
  [ ! -e "$sdir" ] || { echo "state left: $sdir"; return 1; }
  ! e2e_virsh dominfo "$u" >/dev/null 2>&1 || { echo "domain still defined"; return 1; }
}

# ------------------------------------------------------------------ guardians
e2e_ok "guardian show writes two certificates" \
  eval 'e2e_cli guardian show --output g-a.pem &&
        test "$(grep -c "BEGIN CERTIFICATE" "$E2E_WORK/g-a.pem")" = 2'
e2e_ok "  ... in the store's root-only guardian/ folder, private keys 0600" \
  eval 'test "$(stat -c %a "$E2E_STORE/guardian")" = 700 &&
        test "$(stat -c %a "$E2E_STORE/guardian/signing.key")" = 600 &&
        test "$(stat -c %a "$E2E_STORE/guardian/encryption.key")" = 600'
e2e_ok "  ... and the same certificates the next time" \
  eval 'e2e_cli guardian show | cmp - "$E2E_WORK/g-a.pem"'
e2e_call R guardian show
e2e_ok "  ... with --json under Certificates" \
  eval 'e2e_rv_is R 0 && jq -j .Certificates <<<"$R_JSON" | cmp - "$E2E_WORK/g-a.pem"'
"$TOOL" "$B" show >"$E2E_WORK/g-b.pem" && e2e_give "$E2E_WORK/g-b.pem"
"$TOOL" "$B" show >"$E2E_TMP/g-c.pem" && rm -rf "$B"   # a guardian that is then lost
mkdir -p "$B" && chmod 0700 "$B"
"$TOOL" "$B" show >"$E2E_WORK/g-b.pem" && e2e_give "$E2E_WORK/g-b.pem"
cp "$E2E_TMP/g-c.pem" "$E2E_WORK/g-c.pem" && e2e_give "$E2E_WORK/g-c.pem"
e2e_call R guardian trust --name host-b --certificate g-b.pem
e2e_ok "guardian trust host-b: 0" e2e_rv_is R 0
e2e_call R guardian trust --name host-b --certificate g-b.pem
e2e_ok "  ... the same bundle again: 0, nothing changed" \
  eval 'e2e_rv_is R 0 && grep -q "already trusted" <<<"$R_MSG"'
e2e_call R guardian trust --name host-b --certificate g-c.pem
e2e_ok "  ... the name with other certificates: 32775" e2e_rv_is R 32775
for bad in "../x" "a/b" "local" ".h" ""; do
  e2e_call R guardian trust --name "$bad" --certificate g-b.pem
  e2e_ok "  ... the name '$bad': 32773" e2e_rv_is R 32773
done
e2e_call R guardian trust --name self --certificate g-a.pem
e2e_ok "  ... this host's own certificates: 32773" e2e_rv_is R 32773
e2e_call R guardian list
e2e_ok "guardian list: this host's guardian, then host-b, with SHA-256 fingerprints" \
  eval 'jq -e ".Guardians | length == 2 and .[0].Local and .[1].Name == \"host-b\" and
               (.[1].SigningFingerprint | length) == 95" <<<"$R_JSON" >/dev/null &&
        test "$(jq -r ".Guardians[1].SigningFingerprint" <<<"$R_JSON")" = \
             "$(openssl x509 -in "$E2E_WORK/g-b.pem" -noout -fingerprint -sha256 | cut -d= -f2)"'
"$TOOL" "$B" trust host-a "$E2E_WORK/g-a.pem" >/dev/null

# ------------------------------------------------------------------ export
secrets_before=$(e2e_vm_secrets "$u" | sort)
seed_before=$(e2e_store_seed "$u")
snap "$E2E_TMP/s0"
e2e_call R export-protector --domain "$vm" --guardian host-b --output b1.bundle
e2e_ok "export-protector for host-b: 0" e2e_rv_is R 0
e2e_ok "  ... the bundle is 0600" test "$(stat -c %a "$E2E_WORK/b1.bundle")" = 600
snap "$E2E_TMP/s1"
e2e_ok "  ... and nothing on this host changed" e2e_unchanged "$E2E_TMP/s0" "$E2E_TMP/s1"
e2e_ok "  ... nothing secret in the clear (no seed, no key protector bytes)" \
  eval '! grep -q "$seed_before" <(e2e_hex <"$E2E_WORK/b1.bundle") &&
        ! grep -qF "$(e2e_hex <"$E2E_WORK/kp" | head -c 32)" <(e2e_hex <"$E2E_WORK/b1.bundle")'
"$TOOL" "$B" open "$E2E_WORK/b1.bundle" >"$E2E_TMP/b1.txt" 2>&1
e2e_ok "host-b opens it: this VM, this seed, signed by host-a" \
  eval 'grep -qx "vm-uuid $u" "$E2E_TMP/b1.txt" && grep -qx "seed $seed_before" "$E2E_TMP/b1.txt" &&
        grep -qx "signer host-a" "$E2E_TMP/b1.txt" && grep -qx "definition no" "$E2E_TMP/b1.txt"'
e2e_ok "  ... with the VM's secret UUIDs" \
  eval 'test "$(sed -n "s/^generation [0-9]* //p" "$E2E_TMP/b1.txt" | sort)" = "$secrets_before"'
e2e_call R import-protector --input b1.bundle
e2e_ok "a bundle for host-b does not import here: 32769" e2e_rv_is R 32769
e2e_call R export-protector --domain "$vm" --guardian nobody --output x.bundle
e2e_ok "export for an unknown guardian: 32777, no file" \
  eval 'e2e_rv_is R 32777 && test ! -e "$E2E_WORK/x.bundle"'
e2e_call R export-protector --domain "$vm" --guardian ../x --output x.bundle
e2e_ok "export for a bad guardian name: 32773" e2e_rv_is R 32773
e2e_call R forget --domain "$u"
e2e_ok "forget while the domain is defined: 32775" e2e_rv_is R 32775
e2e_call R forget --domain "$vm"
e2e_ok "forget takes a UUID, not a name: 32773" e2e_rv_is R 32773
snap "$E2E_TMP/s2"
e2e_ok "  ... and nothing changed by the refusals" e2e_unchanged "$E2E_TMP/s0" "$E2E_TMP/s2"
e2e_virsh start --paused "$vm" >/dev/null
e2e_call R export-protector --domain "$vm" --guardian local --with-state --output x.bundle
e2e_ok "export --with-state of a running VM: 32775, no file" \
  eval 'e2e_rv_is R 32775 && test ! -e "$E2E_WORK/x.bundle"'
e2e_call R export-protector --domain "$vm" --guardian host-b --output running.bundle
e2e_ok "export of the running VM without its state (a live migration's): 0" \
  eval 'e2e_rv_is R 0 && "$TOOL" "$B" open "$E2E_WORK/running.bundle" | e2e_grep_q -x "vm-uuid $u"'
e2e_virsh destroy "$vm" >/dev/null
snap "$E2E_TMP/s2"

# ------------------------------------------------------------------ backup and restore
e2e_call R export-protector --domain "$vm" --guardian local --with-state --output backup.bundle
e2e_ok "a backup: export --with-state for this host's own guardian: 0" e2e_rv_is R 0
cp "$E2E_WORK/backup.bundle" "$E2E_TMP/backup.orig"
e2e_call R import-protector --input backup.bundle
e2e_ok "  ... while the domain is defined, its import is refused: 32775" e2e_rv_is R 32775
snap "$E2E_TMP/s3"
e2e_ok "  ... nothing changed" e2e_unchanged "$E2E_TMP/s2" "$E2E_TMP/s3"

# the VM, its vTPM state and its secrets are deleted; forget removes the rest
e2e_ok "the VM is undefined with its vTPM state" \
  e2e_virsh undefine --nvram --tpm "$vm"
rm -rf "$E2E_SWTPM_DIR/$u"
e2e_call R forget --domain "$u"
e2e_ok "forget: 0" e2e_rv_is R 0
e2e_ok "  ... no secret of the VM, no store entry" vm_gone
e2e_call R forget --domain "$u"
e2e_ok "  ... forget again: 32777" e2e_rv_is R 32777

# refusals of the backup's import leave nothing behind
head -c 0 /dev/null >"$E2E_WORK/empty.bundle"; e2e_give "$E2E_WORK/empty.bundle"
head -c 500 "$E2E_TMP/backup.orig" >"$E2E_WORK/cut.bundle"; e2e_give "$E2E_WORK/cut.bundle"
for f in empty cut; do
  e2e_call R import-protector --input $f.bundle
  e2e_ok "import of the $f file: 32773, nothing left" eval 'e2e_rv_is R 32773 && vm_gone'
done
size=$(stat -c %s "$E2E_TMP/backup.orig")
for pos in 30 200 $((size / 2)) $((size - 5)); do
  cp "$E2E_TMP/backup.orig" "$E2E_WORK/flip.bundle"
  printf '\x5a' | dd of="$E2E_WORK/flip.bundle" bs=1 seek="$pos" conv=notrunc status=none
  e2e_give "$E2E_WORK/flip.bundle"
  e2e_call R import-protector --input flip.bundle
  e2e_ok "import with byte $pos changed: refused (32773 or 32769), nothing left" \
    eval '{ e2e_rv_is R 32773 >/dev/null || e2e_rv_is R 32769; } && vm_gone'
done
if [ "${MSVM_FAULT_BUILD:-1}" = 1 ]; then
  out=$(e2e_as_user env MSVM_SECURITY_FAULT_FAIL=import-define-domain "$E2E_CLI" --json \
          import-protector --input backup.bundle 2>&1)
  e2e_ok "a failure at the last step (the define) undoes everything: nothing left" \
    eval 'jq -e ".ReturnValue == 32768" <<<"$out" >/dev/null && vm_gone'
fi

e2e_call R import-protector --input backup.bundle
e2e_ok "import-protector of the backup: 0" e2e_rv_is R 0
e2e_ok "  ... the secrets are back with the same UUIDs, private vtpm secrets" \
  eval 'test "$(e2e_vm_secrets "$u" | sort)" = "$secrets_before" &&
        for s in $secrets_before; do e2e_secret_is_vtpm "$s" >/dev/null || exit 1; done'
e2e_ok "  ... the store entry has the same seed, 0600 in a 0700 directory" \
  eval 'test "$(e2e_store_seed "$u")" = "$seed_before" &&
        test "$(stat -c %a "$E2E_STORE/$u")" = 700 &&
        test "$(stat -c %a "$E2E_STORE/$u/store")" = 600'
e2e_ok "  ... the domain is defined again, naming the current secret" \
  eval 'test "$(e2e_tpm_secret "$vm")" = "$(e2e_store_get "$u" "generation $(e2e_store_get "$u" store current)" secret)"'
e2e_ok "  ... the vTPM state is in place, owned by the session user" \
  eval 'test "$(stat -c %U "$sdir")" = "$E2E_USER" && test -f "$sdir/tpm2-00.permall" &&
        test "$(stat -c %U "$sdir/tpm2-00.permall")" = "$E2E_USER"'
e2e_ok "the restored VM starts (libvirt gives swtpm the imported secret)" e2e_boot "$vm"
e2e_ok "  ... and the NV data written before the backup reads back" \
  eval 'e2e_tpm_nv_read "$sdir" "$E2E_TMP/P" "$(stat -c %s "$E2E_TMP/data")" "$E2E_TMP/nv" &&
        cmp "$E2E_TMP/nv" "$E2E_TMP/data"'

# ------------------------------------------------------------------ back from host-b
"$TOOL" "$B" reseal "$E2E_WORK/b1.bundle" host-a "$E2E_WORK/b2.bundle" >/dev/null
e2e_give "$E2E_WORK/b2.bundle"
snap "$E2E_TMP/s4"
e2e_call R import-protector --input b2.bundle
e2e_ok "host-b's bundle for this host (same seed, VM defined): 0, no secret redefined" \
  eval 'e2e_rv_is R 0 && grep -q "0 secrets defined" <<<"$R_MSG" && grep -q "guardian .host-b." <<<"$R_MSG"'
e2e_call R guardian forget --name host-b
e2e_ok "guardian forget host-b: 0" e2e_rv_is R 0
snap "$E2E_TMP/s5"
e2e_call R import-protector --input b2.bundle
e2e_ok "  ... then host-b's bundle is from an untrusted signer: 32769" e2e_rv_is R 32769
snap "$E2E_TMP/s6"
e2e_ok "  ... nothing changed" e2e_unchanged "$E2E_TMP/s5" "$E2E_TMP/s6"
e2e_call R guardian forget --name host-b
e2e_ok "guardian forget of an unknown name: 32777" e2e_rv_is R 32777

# the domain undefined but its vTPM state kept: the backup's state would overwrite it
e2e_virsh undefine --nvram --keep-tpm "$vm" >/dev/null
snap "$E2E_TMP/s7"
e2e_call R import-protector --input backup.bundle
e2e_ok "the backup again while the VM's state directory exists: 32775" e2e_rv_is R 32775
snap "$E2E_TMP/s8"
e2e_ok "  ... nothing changed" e2e_unchanged "$E2E_TMP/s7" "$E2E_TMP/s8"

# another lineage of the VM (another seed, other secrets), from host-b, trusted again
"$TOOL" "$B" reseed "$E2E_WORK/b1.bundle" host-a "$E2E_WORK/b3.bundle" >/dev/null
e2e_give "$E2E_WORK/b3.bundle"
e2e_cli guardian trust --name host-b --certificate g-b.pem >/dev/null
snap "$E2E_TMP/s9"
e2e_call R import-protector --input b3.bundle
e2e_ok "an entry under another seed: 32775 without --force" e2e_rv_is R 32775
snap "$E2E_TMP/s10"
e2e_ok "  ... nothing changed" e2e_unchanged "$E2E_TMP/s9" "$E2E_TMP/s10"
out=$(e2e_as_user env MSVM_SECURITY_FAULT_FAIL=import-store "$E2E_CLI" --json \
        import-protector --input b3.bundle --force 2>&1)
snap "$E2E_TMP/s11"
e2e_ok "  ... --force failing after the old secrets were undefined: 32768, all put back" \
  eval 'jq -e ".ReturnValue == 32768" <<<"$out" >/dev/null &&
        e2e_unchanged "$E2E_TMP/s9" "$E2E_TMP/s11"'
e2e_call R import-protector --input b3.bundle --force
new_secrets=$(e2e_vm_secrets "$u" | sort)
e2e_ok "  ... with --force: 0, the new seed, the new secrets, the old ones undefined" \
  eval 'e2e_rv_is R 0 && test "$(e2e_store_seed "$u")" != "$seed_before" &&
        test -n "$new_secrets" && test -z "$(comm -12 <(echo "$new_secrets") <(echo "$secrets_before"))" &&
        test "$(echo "$new_secrets" | wc -l)" = "$(echo "$secrets_before" | wc -l)"'

e2e_done
