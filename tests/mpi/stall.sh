#!/usr/bin/env bash
# --stall-timeout: a rank that makes no progress (a test hook makes it sleep,
# RECSYS_DEBUG_STALL_RANK) brings the job down with a message naming it; so
# does a worker left waiting on a server that stopped answering.
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
# A server that stops answering pulls and pushes (test hook
# RECSYS_DEBUG_MUTE_RANK) while the workers wait on it: a waiting worker
# (PsClient's watchdog) brings the job down naming itself and that server,
# in async and in --sync (lockstep) mode.
args2=(--model mf --users 300 --items 200 --dim 8 --epochs 3 --servers 2 --stall-timeout 3)
for mode in async sync; do
  extra=(); [ "$mode" = sync ] && extra=(--sync)
  start=$(date +%s)
  if RECSYS_DEBUG_MUTE_RANK=2 RECSYS_DEBUG_MUTE_AFTER=5 run_job 5 "${args2[@]}" "${extra[@]}" \
      --metrics-out "$work/m.jsonl"; then
    fail "$mode: a job with a silent server exited 0"
  fi
  elapsed=$(( $(date +%s) - start ))
  grep -qE "rank [34] \(worker [01]\) waited [0-9.]+ s for a reply from (.*, )?rank 2 \(server 1\)" "$work/out.txt" ||
    fail "$mode: no message from a worker naming the silent server (rank 2)"
  grep -q "no longer answering" "$work/out.txt" || fail "$mode: the test hook did not fire"
  [ "$elapsed" -le 60 ] || fail "$mode: the job with a silent server took ${elapsed}s to end"
  [ ! -e "$work/m.jsonl" ] || fail "$mode: metrics file written by a stalled job"
  echo "ok ($mode): $(grep -m1 'waited' "$work/out.txt")"
done
# Without a stall the watchdog stays quiet.
run_job 4 "${args[@]}" || fail "a healthy job with --stall-timeout failed"
echo ok
