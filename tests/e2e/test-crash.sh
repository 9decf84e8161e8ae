#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A protector change killed at each of its crash-safety points, end to end.
# SetSecurityPolicy on a stopped, protected VM with NV data in its vTPM runs
# with MSVM_SECURITY_FAULT_INJECT=N for N = 1, 2, ... until a run completes.
# After each kill, `msvm-security recover --domain` must answer 0 and then:
#  - no journal is left open in the store;
#  - when the kill came after the domain define (the commit point: the
#    definition carries the journal's change id), the change is finished (the
#    state is under the new protector); before it, the change is abandoned:
#    nothing changed (definition, secrets and state as before the call, and
#    the store too when the journal was not even written);
#  - the VM boots, the NV data reads back under the protector now in force,
#    and the other passphrase does not open the state;
#  - no secret of the VM is left that no generation in the store accounts
#    for, and no more than current + last known good are kept; no stray files
#    beside the state directory or in the store.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings recover

vm=e2e-crash
e2e_define_vm "$vm" uefi notpm
u=$E2E_UUID
e2e_protected_vm "$vm" "$u" "$E2E_TMP/P.cur" 64 300
sdir=$(e2e_state_dir "$u")
kp=$E2E_WORK/kp

# Secrets of the VM that the store does not account for, and how many.
secrets_accounted() {
  local s n=0 gens
  gens=$(for g in $(e2e_store_generations "$u"); do e2e_store_get "$u" "generation $g" secret; done)
  for s in $(e2e_vm_secrets "$u" "$vm"); do
    n=$((n + 1))
    grep -qx "$s" <<<"$gens" || { echo "secret $s belongs to no generation in the store"; return 1; }
  done
  s=$(e2e_tpm_secret "$vm")
  grep -qx "$s" <<<"$gens" || { echo "the definition's secret $s is not in the store"; return 1; }
  [ "$n" -le 2 ] || { echo "$n secrets kept (current + last known good at most)"; return 1; }
  # every generation in the store is one something needs
  local need g
  need=" $(e2e_store_get "$u" store current) $(e2e_store_get "$u" store state) $(e2e_store_get "$u" store last-known-good) "
  for g in $(e2e_store_generations "$u"); do
    [[ "$need" == *" $g "* ]] || { echo "generation $g kept, needed by nothing (needed:$need)"; return 1; }
  done
}
no_stray_files() {
  local extra
  extra=$(cd "$E2E_SWTPM_DIR/$u" && ls -A | grep -vx tpm2)
  [ -z "$extra" ] || { echo "beside tpm2: $extra"; return 1; }
  extra=$(cd "$E2E_STORE/$u" && ls -A | grep -vx -e lock -e store)
  [ -z "$extra" ] || { echo "in the store: $extra"; return 1; }
}

# In the loop a boot is `virsh start --paused`: QEMU initializes the vTPM, so
# swtpm must open the state with libvirt's secret, without the firmware
# running under TCG (about 40 boots).
E2E_BOOT_PAUSED=${E2E_BOOT_PAUSED:-1}
max=${E2E_CRASH_MAX_POINTS:-80}
n=1
completed=0
while [ "$n" -le "$max" ]; do
  e2e_random "$E2E_WORK/pol.new" $((100 + n))
  e2e_vm_passphrase "$E2E_TMP/P.new" "$u" "$kp" "$E2E_WORK/pol.new"
  # Start from a settled VM: with the project's hook loaded, a start moves
  # last known good and the generation it replaced waits for the next call
  # (the hook cannot undefine secrets); recover retires it now.
  e2e_call R recover --domain "$vm"
  e2e_snapshot "$vm" "$u" "$E2E_TMP/before"
  MSVM_SECURITY_FAULT_TRACE=1 MSVM_SECURITY_FAULT_INJECT=$n \
    e2e_call R set-security-policy --settings s.xml --policy pol.new
  point=$(sed -n "s/^msvm-fault-point $n //p" "$E2E_TMP/last-stderr" | tail -n1)
  abandoned=0
  if [ "$R_EXIT" != 137 ]; then
    e2e_ok "fault point $n: not reached, the change completes (0 or 4096 -> 7)" e2e_method_ok R
    completed=1
    expect=new
  else
    # Committed: the journal is written, or already closed with the new
    # policy current.
    cur=$(e2e_store_get "$u" store current)
    e2e_store_get "$u" "generation $cur" policy | base64 -d >"$E2E_TMP/curpol" 2>/dev/null
    if grep -q '^\[journal\]' "$(e2e_store_file "$u")" 2>/dev/null; then
      cid=$(e2e_store_get "$u" journal change-id)
      if [ -n "$cid" ] && e2e_virsh dumpxml --inactive "$vm" | e2e_grep_q "change=[\"']$cid[\"']"; then
        expect=new why="journal open, defined"
      else
        expect=old why="journal open, not defined yet: abandoned" abandoned=1
      fi
    elif cmp -s "$E2E_TMP/curpol" "$E2E_WORK/pol.new"; then
      expect=new why="journal closed"
    else
      expect=old why="no journal yet"
    fi
    e2e_call R recover --domain "$vm"
    e2e_ok "killed at fault point $n ($point; $why): recover answers 0" e2e_rv_is R 0
  fi
  e2e_not "  ... no journal left open" grep -q '^\[journal\]' "$(e2e_store_file "$u")"
  if [ "$expect" = old ]; then
    e2e_snapshot "$vm" "$u" "$E2E_TMP/after"
    if [ "$abandoned" = 1 ]; then
      # the store counted a generation number; everything else is as before
      no_store() { sed '/^== store/,/^== state/{/^== state/!d}' "$1"; }
      e2e_ok "  ... abandoned: definition, secrets and state as before" \
        e2e_unchanged <(no_store "$E2E_TMP/before") <(no_store "$E2E_TMP/after")
    else
      e2e_ok "  ... killed before the journal: nothing changed" \
        e2e_unchanged "$E2E_TMP/before" "$E2E_TMP/after"
    fi
    good=$E2E_TMP/P.cur bad=$E2E_TMP/P.new
  else
    good=$E2E_TMP/P.new bad=$E2E_TMP/P.cur
  fi
  e2e_ok "  ... every secret and generation is needed (current, state, last known good)" \
    secrets_accounted
  e2e_ok "  ... no stray files beside the state or in the store" no_stray_files
  e2e_ok "  ... the VM starts (its vTPM opens under libvirt's secret)" e2e_boot "$vm"
  e2e_ok "  ... the NV data reads back under the $expect protector" \
    e2e_tpm_nv_read "$sdir" "$good" 32 "$E2E_TMP/data.back"
  e2e_ok "  ... byte for byte" cmp "$E2E_TMP/data" "$E2E_TMP/data.back"
  e2e_ok "  ... the $([ $expect = new ] && echo old || echo new) passphrase does not open it" \
    e2e_tpm_refuses "$sdir" "$bad"
  [ "$expect" = old ] || cp "$good" "$E2E_TMP/P.cur"
  [ "$completed" = 1 ] && break
  n=$((n + 1))
done
e2e_ok "the change completed within $max fault points (it has $((n - 1)))" test "$completed" = 1
e2e_note "fault points in one SetSecurityPolicy: $((n - 1))"

e2e_done
