#!/usr/bin/env bash
# --stall-timeout: a rank that makes no progress (a test hook makes it sleep,
# RECSYS_DEBUG_STALL_RANK) brings the job down with a message naming it.
source "$(dirname "$0")/lib.sh"
args=(--model mf --users 300 --items 200 --dim 8 --epochs 3 --servers 1 --stall-timeout 3)
for case in "3:worker 1" "1:server 0"; do
  rank="${case%%:*}"; role="${case#*:}"
  start=$(date +%s)
  if RECSYS_DEBUG_STALL_RANK="$rank" run_job 4 "${args[@]}" --metrics-out "$work/m.jsonl"; then
    fail "a stalled job exited 0"
  fi
  elapsed=$(( $(date +%s) - start ))
  grep -q "rank $rank ($role) made no progress for" "$work/out.txt" || fail "no message naming rank $rank ($role)"
  [ "$elapsed" -le 60 ] || fail "the stalled job took ${elapsed}s to end"
  [ ! -e "$work/m.jsonl" ] || fail "metrics file written by a stalled job"
  echo "ok: $(grep -m1 'made no progress' "$work/out.txt")"
done
# Without a stall the watchdog stays quiet.
run_job 4 "${args[@]}" || fail "a healthy job with --stall-timeout failed"
echo ok
