#!/usr/bin/env bash
# Runs of one seed repeat exactly, for every model: two --sync runs (5
# ranks: 1 server, 3 workers) give identical metrics, and so do two runs
# with one asynchronous worker (a server answers its messages in the order
# they were sent, so every pull sees the same pushes). The towers' bias gradients once
# depended on where malloc put the gradient buffer, so MLP, NeuMF, NFM,
# DeepFM and Wide&Deep runs could differ.
source "$(dirname "$0")/lib.sh"
models=(mf fm gmf mlp neumf nfm deepfm wide_deep)
# Under the sanitizers, one model of each kind (every code path, not every
# model): 32 jobs would take most of this test's timeout there.
[ -n "${RECSYS_SANITIZED:-}" ] && models=(mf fm mlp deepfm)
data=(--epochs 3 --users 400 --items 300 --dim 16)
for model in "${models[@]}"; do
  run_job 5 --model "$model" --sync "${data[@]}" --metrics-out "$work/a.jsonl" || fail "run a"
  run_job 5 --model "$model" --sync "${data[@]}" --metrics-out "$work/b.jsonl" || fail "run b"
  same_metrics "$work/a.jsonl" "$work/b.jsonl" || fail "$model: sync runs differ"
  run_job 3 --model "$model" "${data[@]}" --metrics-out "$work/a.jsonl" || fail "run a (one worker)"
  run_job 3 --model "$model" "${data[@]}" --metrics-out "$work/b.jsonl" || fail "run b (one worker)"
  same_metrics "$work/a.jsonl" "$work/b.jsonl" || fail "$model: one-worker async runs differ"
done
echo "ok"
