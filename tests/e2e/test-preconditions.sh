#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Issue 4's preconditions, end to end: each refused call returns its
# documented code (ReturnValue and exit status 1, --json parsed) and changes
# nothing: the inactive definition (read with --security-info), the libvirt
# secrets, the VM's store directory and its vTPM state directory (names,
# modes, owners, checksums) are compared before and after.
#
#  32777 domain not found                     32775 running, no --defer
#  32770 --defer without the hook loaded      32775 managed-save image, no --force
#  32775 memory snapshot, no --force          32775 nova's metadata, no --force
#  32775 foreign <encryption>, no --old-passphrase-file (and with it: re-keyed)
#  32769 the store not readable by the caller (permission refused)
#  32775 shielding on a BIOS/i440fx VM        32775 TPM or encryption with no protector
#  32773 shielding without TPM                32773 empty / oversized policy or key protector
#  32776 a property of the wrong CIM type     32770 KsdEnabled, BindToHostTpm
#  32773 InstanceID and --domain disagree     32770 a remote URI
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings

# refused CODE DESC VM UUID CLI-ARGS...: the call returns CODE, nothing changes
refused() {
  local code=$1 desc=$2 vm=$3 u=$4; shift 4
  e2e_snapshot "$vm" "$u" "$E2E_TMP/before"
  e2e_call R "$@"
  e2e_ok "$desc: ReturnValue $code" e2e_rv_is R "$code"
  e2e_snapshot "$vm" "$u" "$E2E_TMP/after"
  e2e_ok "  ... and nothing changed" e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"
}

kp=$E2E_WORK/kp pol=$E2E_WORK/pol
e2e_random "$kp" 100
e2e_random "$pol" 200
e2e_bytes "$E2E_WORK/empty" ""
e2e_random "$E2E_WORK/huge" $((64 * 1024 + 1))

# --- a protected VM, booted once (its state exists), NV data in it
vm=e2e-pre
e2e_define_vm "$vm" uefi notpm
u=$E2E_UUID
e2e_sample "$E2E_WORK/s.xml" wmi-cimdtd20.xml "$u"
ok_call() { e2e_call R "$@"; e2e_method_ok R; }
e2e_ok "setup: the os-win sequence on $vm" eval \
  'ok_call set-key-protector --settings s.xml --key-protector kp &&
   ok_call set-security-policy --settings s.xml --policy pol &&
   ok_call modify-security-settings --settings s.xml'
e2e_ok "setup: $vm boots" e2e_boot "$vm"
sdir=$(e2e_state_dir "$u")

# --- not found
ghost=$(e2e_uuidgen)
e2e_sample "$E2E_WORK/ghost.xml" wmi-cimdtd20.xml "$ghost"
refused 32777 "a domain that does not exist" "$vm" "$u" \
  set-security-policy --settings ghost.xml --policy pol
e2e_ok "  ... and no store entry for it" test ! -e "$E2E_STORE/$ghost"

# --- bad inputs on a stopped, protected VM
refused 32773 "an empty policy" "$vm" "$u" \
  set-security-policy --settings s.xml --policy empty
refused 32773 "an oversized policy (64 KiB + 1)" "$vm" "$u" \
  set-security-policy --settings s.xml --policy huge
refused 32773 "an empty key protector" "$vm" "$u" \
  set-key-protector --settings s.xml --key-protector empty
refused 32773 "an oversized key protector" "$vm" "$u" \
  set-key-protector --settings s.xml --key-protector huge
e2e_sample "$E2E_WORK/badtype.xml" invalid-type.xml "$u"
refused 32776 "TpmEnabled declared as a string (Incorrect data type)" "$vm" "$u" \
  modify-security-settings --settings badtype.xml
e2e_sample "$E2E_WORK/noshieldtpm.xml" wmi-cimdtd20.xml "$u" TpmEnabled=FALSE ShieldingRequested=TRUE
refused 32773 "shielding without TPM" "$vm" "$u" \
  modify-security-settings --settings noshieldtpm.xml
e2e_sample "$E2E_WORK/ksd.xml" wmi-cimdtd20.xml "$u" KsdEnabled=TRUE
refused 32770 "KsdEnabled TRUE (no libvirt counterpart)" "$vm" "$u" \
  modify-security-settings --settings ksd.xml
e2e_sample "$E2E_WORK/bind.xml" wmi-cimdtd20.xml "$u" BindToHostTpm=TRUE
refused 32770 "BindToHostTpm TRUE" "$vm" "$u" modify-security-settings --settings bind.xml
e2e_define_vm e2e-pre-other uefi notpm
refused 32773 "InstanceID and --domain name different VMs" "$vm" "$u" \
  modify-security-settings --settings s.xml --domain e2e-pre-other
refused 32770 "a remote URI" "$vm" "$u" \
  --connect qemu+ssh://e2e.invalid/session modify-security-settings --settings s.xml

head -c 5000000 /dev/zero | tr '\0' ' ' >"$E2E_WORK/big.xml"
cat "$E2E_WORK/s.xml" >>"$E2E_WORK/big.xml"
e2e_give "$E2E_WORK/big.xml"
refused 32773 "a settings instance over the size limit (5 MB)" "$vm" "$u" \
  modify-security-settings --settings big.xml
head -c 3000 /dev/urandom >"$E2E_WORK/garbage.xml"
e2e_give "$E2E_WORK/garbage.xml"
e2e_snapshot "$vm" "$u" "$E2E_TMP/before"
e2e_call R modify-security-settings --settings garbage.xml
e2e_ok "random bytes as the instance: a documented failure (${R_RV:-none})" \
  eval '[ "$R_EXIT" = 1 ] && [ "$R_RV" -ge 32768 ] && [ "$R_RV" -le 32778 ]'
e2e_snapshot "$vm" "$u" "$E2E_TMP/after"
e2e_ok "  ... and nothing changed" e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"
refused 32770 "a remote URI with a transport (qemu+tcp)" "$vm" "$u" \
  --connect qemu+tcp://127.0.0.1/session modify-security-settings --settings s.xml

# --- permission refused: the store is not readable by the caller (the
# daemon user; this is why the harness never runs the client as root)
chmod 000 "$E2E_STORE/$u"
refused 32769 "the VM's store not readable by the caller" "$vm" "$u" \
  set-security-policy --settings s.xml --policy pol
chmod 700 "$E2E_STORE/$u"
# libvirt itself refuses: another user connecting to this daemon's socket
if [ "$E2E_ROOT_MODE" = 1 ] && getent passwd nobody >/dev/null; then
  other_call() {
    local rt
    rt=$(mktemp -d /tmp/msvm-e2e-other.XXXXXX)
    cp "$E2E_WORK/s.xml" "$E2E_WORK/pol" "$rt/"
    chown -R nobody "$rt"
    (cd "$rt" && setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
      env -i PATH=/usr/bin:/bin HOME=/nonexistent XDG_RUNTIME_DIR="$rt" \
      "$E2E_CLI" --json --connect "qemu:///session?socket=$E2E_RT/libvirt/libvirt-sock" \
      set-security-policy --settings s.xml --policy pol) >"$E2E_TMP/other.json"
    R_EXIT=$?
    rm -rf "$rt"
    R_RV=$(jq -r '.ReturnValue // empty' "$E2E_TMP/other.json")
  }
  e2e_snapshot "$vm" "$u" "$E2E_TMP/before"
  other_call
  e2e_is "$R_RV/$R_EXIT" 32769/1 "another user connecting to the daemon (libvirt refuses): ReturnValue 32769"
  e2e_snapshot "$vm" "$u" "$E2E_TMP/after"
  e2e_ok "  ... and nothing changed" e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"
else
  e2e_skip "another user connecting to the daemon: 32769" "needs root to run as a second user"
fi
e2e_skip "a read-only libvirt connection: 32769" \
  "the session daemon has no read-only socket and section 8 gives the CLI no read-only option"

# --- running VM
e2e_virsh start "$vm" >/dev/null
refused 32775 "a running VM without --defer" "$vm" "$u" \
  set-security-policy --settings s.xml --policy pol
if [ "$E2E_HOOK_LOADED" = 0 ]; then
  refused 32770 "--defer on a running VM without the hook loaded by the daemon" "$vm" "$u" \
    set-security-policy --settings s.xml --policy pol --defer
else
  e2e_skip "--defer without the hook loaded: 32770" "a libvirt qemu hook is installed on this host"
fi

# --- managed-save image, memory snapshot
e2e_ok "setup: managed save of $vm" e2e_virsh managedsave "$vm"
refused 32775 "a managed-save image without --force" "$vm" "$u" \
  set-security-policy --settings s.xml --policy pol
e2e_virsh managedsave-remove "$vm" >/dev/null
e2e_virsh start "$vm" >/dev/null
if e2e_virsh snapshot-create-as "$vm" mem1 --memspec "file=$E2E_WORK/mem1,snapshot=external" \
     >/dev/null 2>"$E2E_TMP/snap.err"; then
  e2e_virsh destroy "$vm" >/dev/null
  refused 32775 "a memory snapshot without --force" "$vm" "$u" \
    set-security-policy --settings s.xml --policy pol
  e2e_virsh snapshot-delete "$vm" mem1 --metadata >/dev/null
else
  e2e_virsh destroy "$vm" >/dev/null
  e2e_skip "a memory snapshot without --force: 32775" \
    "libvirt could not take one here: $(head -n1 "$E2E_TMP/snap.err")"
fi

# --- shielding on BIOS / i440fx
e2e_define_vm e2e-pre-bios bios notpm
ub=$E2E_UUID
e2e_sample "$E2E_WORK/bios-shield.xml" wmi-cimdtd20.xml "$ub" ShieldingRequested=TRUE
refused 32775 "shielding on a BIOS/i440fx VM" e2e-pre-bios "$ub" \
  set-security-policy --settings bios-shield.xml --policy pol

# --- TPM or encryption with no protector
e2e_define_vm e2e-pre-bare uefi notpm
ubare=$E2E_UUID
e2e_sample "$E2E_WORK/bare.xml" wmi-cimdtd20.xml "$ubare"
refused 32775 "TpmEnabled with no protector" e2e-pre-bare "$ubare" \
  modify-security-settings --settings bare.xml
e2e_settings "$E2E_WORK/bare-enc.xml" "$ubare" EncryptStateAndVmMigrationTraffic=TRUE
refused 32775 "EncryptStateAndVmMigrationTraffic with no protector" e2e-pre-bare "$ubare" \
  modify-security-settings --settings bare-enc.xml

# --- a TPM 1.2
e2e_define_vm e2e-pre-tpm12 uefi notpm \
  "<tpm model='tpm-tis'><backend type='emulator' version='1.2'/></tpm>"
u12=$E2E_UUID
e2e_sample "$E2E_WORK/t12.xml" wmi-cimdtd20.xml "$u12"
refused 32775 "a VM with a TPM 1.2" e2e-pre-tpm12 "$u12" \
  set-security-policy --settings t12.xml --policy pol

# --- a transient domain (running, since that is all it can be)
e2e_define_vm e2e-pre-transient uefi notpm
ut=$E2E_UUID
e2e_virsh dumpxml e2e-pre-transient >"$E2E_WORK/transient.xml"
e2e_give "$E2E_WORK/transient.xml"
e2e_virsh undefine --nvram e2e-pre-transient >/dev/null
if e2e_virsh create transient.xml >/dev/null 2>"$E2E_TMP/create.err"; then
  e2e_sample "$E2E_WORK/tr.xml" wmi-cimdtd20.xml "$ut"
  refused 32775 "a transient domain" e2e-pre-transient "$ut" \
    set-security-policy --settings tr.xml --policy pol
  e2e_virsh destroy e2e-pre-transient >/dev/null
else
  e2e_skip "a transient domain: 32775" "virsh create failed: $(head -n1 "$E2E_TMP/create.err")"
fi

# --- nova's guest
nova="<metadata><nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:name>e2e</nova:name></nova:instance></metadata>"
e2e_define_vm e2e-pre-nova uefi notpm "" "" "$nova"
unova=$E2E_UUID
e2e_sample "$E2E_WORK/nova.xml" wmi-cimdtd20.xml "$unova"
refused 32775 "a guest with nova's metadata, without --force" e2e-pre-nova "$unova" \
  set-key-protector --settings nova.xml --key-protector kp

# --- a TPM whose <encryption> secret the project did not create
vf=e2e-pre-foreign
uf=$(e2e_uuidgen)
fsec=$(e2e_uuidgen)
head -c 24 /dev/urandom | e2e_hex >"$E2E_WORK/foreign-pass"
e2e_give "$E2E_WORK/foreign-pass"
cat >"$E2E_WORK/fsec.xml" <<EOF
<secret ephemeral='no' private='yes'>
  <uuid>$fsec</uuid>
  <usage type='vtpm'><name>e2e-foreign-$uf</name></usage>
</secret>
EOF
e2e_give "$E2E_WORK/fsec.xml"
e2e_virsh secret-define fsec.xml >/dev/null
e2e_virsh secret-set-value "$fsec" --file "$E2E_WORK/foreign-pass" --plain >/dev/null
e2e_define_vm "$vf" uefi notpm \
  "<tpm model='tpm-crb'><backend type='emulator' version='2.0'><encryption secret='$fsec'/></backend></tpm>" "$uf"
e2e_ok "setup: the foreign-secret VM boots" e2e_boot "$vf"
fdir=$(e2e_state_dir "$uf")
head -c 16 /dev/urandom | e2e_hex >"$E2E_TMP/fdata"
e2e_ok "setup: NV data in its vTPM" e2e_tpm_nv_write "$fdir" "$E2E_WORK/foreign-pass" "$E2E_TMP/fdata"
e2e_sample "$E2E_WORK/f.xml" wmi-cimdtd20.xml "$uf"
refused 32775 "a foreign <encryption> secret without --old-passphrase-file" "$vf" "$uf" \
  set-key-protector --settings f.xml --key-protector kp
e2e_call R set-key-protector --settings f.xml --key-protector kp --old-passphrase-file foreign-pass
e2e_ok "with --old-passphrase-file: 0 or 4096 -> 7" e2e_method_ok R
e2e_ok "  ... the VM boots" e2e_boot "$vf"
e2e_vm_passphrase "$E2E_TMP/fnew" "$uf" "$kp" ""
e2e_ok "  ... its NV data reads back under the project's passphrase" \
  e2e_tpm_nv_read "$fdir" "$E2E_TMP/fnew" 32 "$E2E_TMP/fdata.back"
e2e_ok "  ... byte for byte" cmp "$E2E_TMP/fdata" "$E2E_TMP/fdata.back"
e2e_ok "  ... the foreign passphrase no longer opens it" \
  e2e_tpm_refuses "$fdir" "$E2E_WORK/foreign-pass"
e2e_ok "  ... the foreign secret itself is left defined" e2e_virsh secret-dumpxml "$fsec"

e2e_done
