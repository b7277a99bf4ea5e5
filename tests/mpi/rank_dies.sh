#!/usr/bin/env bash
# A worker killed with SIGKILL in the middle of training: the job ends within
# 30 s with a non-zero exit and a message naming the rank, the latest
# checkpoint verifies, and --resume from it completes the run.
source "$(dirname "$0")/lib.sh"
args=(--sync --model mf --users 3000 --items 1000 --dim 16 --servers 2 --epochs 12)
ck="$work/ck"
set +e
# Marks this job's ranks (mpirun passes its environment on), so that only a
# rank of this job is killed when other tests run the same binary (ctest -j).
export RECSYS_RANK_DIES_JOB="$$-$work"
timeout 600 "$root/launch/local.sh" -n 6 -- "${args[@]}" --checkpoint-dir "$ck" >"$work/out.txt" 2>&1 &
job=$!
set -e
for _ in $(seq 1 1200); do [ -e "$ck/LATEST" ] && break; sleep 0.1; done
[ -e "$ck/LATEST" ] || fail "no checkpoint completed"
# The worker of MPI rank 5 of this job: a process of this binary whose
# environment says so.
victim=""
for pid in $(pgrep -f "$RECSYS_BIN" || true); do
  env_of="$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null || true)"
  if grep -qx "OMPI_COMM_WORLD_RANK=5" <<<"$env_of" && grep -qxF "RECSYS_RANK_DIES_JOB=$RECSYS_RANK_DIES_JOB" <<<"$env_of"; then
    victim=$pid
  fi
done
[ -n "$victim" ] || fail "rank 5 not found (did the job end already?)"
kill -9 "$victim"
start=$(date +%s)
set +e
wait "$job"
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
[ "$rc" -ne 0 ] || fail "the job exited 0 after a rank was killed"
[ "$elapsed" -le 30 ] || fail "the job took ${elapsed}s to end after the kill"
grep -qiE "rank 5.*(signal 9|killed)|(signal 9|killed).*rank 5|process rank 5" "$work/out.txt" || fail "no message naming rank 5"
echo "ok: the job ended ${elapsed}s after the kill (exit $rc): $(grep -m1 -iE 'rank 5' "$work/out.txt")"
latest="$(cat "$ck/LATEST")"
run_job 1 --verify-checkpoint "$ck" || fail "the latest checkpoint ($latest) does not verify"
grep -q "is complete and intact" "$work/out.txt" || fail "no verification message"
run_job 6 "${args[@]}" --resume "$ck" --checkpoint-dir "$ck" --metrics-out "$work/m.jsonl" || fail "resume after the kill"
grep -q "^resumed: .*$latest" "$work/out.txt" || fail "did not resume from $latest"
grep -q "^final: epoch 12" "$work/out.txt" || fail "the resumed run did not complete"
echo ok
