#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Two processes calling SetSecurityPolicy on the same stopped VM at once, a
# few rounds. Each must finish with a documented code (0, 4096 with a job
# reaching 7, or 32774 System is in use), at least one must succeed, and the
# VM must end up under exactly one of the two policies: the store's current
# generation holds one of them, the state opens under that one's passphrase
# and not the other's, the VM boots and its NV data is intact.
set -uo pipefail
. "$(dirname "$0")/lib-e2e.sh"

e2e_init
e2e_need_cmds set-key-protector set-security-policy modify-security-settings

vm=e2e-conc
e2e_define_vm "$vm" uefi notpm
u=$E2E_UUID
e2e_protected_vm "$vm" "$u" "$E2E_TMP/P0" 48 256
sdir=$(e2e_state_dir "$u")
kp=$E2E_WORK/kp

# One call's outcome: a documented code; a job is followed to its end.
outcome() {           # outcome JSONFILE EXITFILE -> "ok" | "busy" | error text
  local rv job ex
  ex=$(cat "$2")
  rv=$(jq -r '.ReturnValue // empty' "$1" 2>/dev/null)
  job=$(jq -r '.Job // empty' "$1" 2>/dev/null)
  case "$rv" in
    0) [ "$ex" = 0 ] && echo ok || echo "exit $ex with ReturnValue 0" ;;
    4096) if e2e_cli job wait "$(e2e_job_id "$job")" --timeout 120 >/dev/null 2>&1; then
            echo ok
          else
            echo "job $job did not complete"
          fi ;;
    32774) [ "$ex" = 1 ] && echo busy || echo "exit $ex with ReturnValue 32774" ;;
    *) echo "ReturnValue '$rv' (exit $ex): $(cat "$1")" ;;
  esac
}

rounds=${E2E_CONCURRENT_ROUNDS:-3}
for r in $(seq "$rounds"); do
  e2e_random "$E2E_WORK/polA" $((500 + r))
  e2e_random "$E2E_WORK/polB" $((700 + r))
  e2e_vm_passphrase "$E2E_TMP/PA" "$u" "$kp" "$E2E_WORK/polA"
  e2e_vm_passphrase "$E2E_TMP/PB" "$u" "$kp" "$E2E_WORK/polB"
  pids=()
  for w in A B; do
    ( e2e_cli --json set-security-policy --settings s.xml --policy "pol$w" \
        >"$E2E_TMP/out$w" 2>"$E2E_TMP/err$w"
      echo $? >"$E2E_TMP/exit$w" ) &
    pids+=($!)
  done
  wait "${pids[@]}"   # not a bare wait: the daemon is a child too
  oa=$(outcome "$E2E_TMP/outA" "$E2E_TMP/exitA")
  ob=$(outcome "$E2E_TMP/outB" "$E2E_TMP/exitB")
  e2e_note "round $r: A $oa, B $ob"
  e2e_ok "round $r: call A finished with a documented code" \
    eval "case '$oa' in ok|busy) true ;; *) echo '$oa'; false ;; esac"
  e2e_ok "round $r: call B finished with a documented code" \
    eval "case '$ob' in ok|busy) true ;; *) echo '$ob'; false ;; esac"
  e2e_ok "round $r: at least one succeeded" test "$oa" = ok -o "$ob" = ok
  # which policy is current in the store
  cur=$(e2e_store_get "$u" store current)
  e2e_store_get "$u" "generation $cur" policy | base64 -d >"$E2E_TMP/curpol" 2>/dev/null
  if cmp -s "$E2E_TMP/curpol" "$E2E_WORK/polA"; then win=A lose=B
  elif cmp -s "$E2E_TMP/curpol" "$E2E_WORK/polB"; then win=B lose=A
  else win=none lose=none
  fi
  e2e_ok "round $r: the current generation holds one of the two policies ($win)" test "$win" != none
  [ "$win" = none ] && continue
  if [ "$win" = A ]; then wo=$oa; else wo=$ob; fi
  e2e_is "$wo" ok "round $r: the winner is a call that succeeded"
  e2e_ok "round $r: the state opens under the winner's passphrase" \
    e2e_tpm_nv_read "$sdir" "$E2E_TMP/P$win" 32 "$E2E_TMP/data.back"
  e2e_ok "round $r: the NV data is intact" cmp "$E2E_TMP/data" "$E2E_TMP/data.back"
  e2e_ok "round $r: the loser's passphrase does not open it" \
    e2e_tpm_refuses "$sdir" "$E2E_TMP/P$lose"
  e2e_ok "round $r: the VM boots" e2e_boot "$vm"
done

e2e_done
