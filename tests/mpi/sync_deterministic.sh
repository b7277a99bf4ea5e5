#!/usr/bin/env bash
# --sync: two runs of the same configuration give identical metrics, for
# every model. (The towers' bias gradients once depended on where malloc put
# the gradient buffer, so MLP, NFM, DeepFM and Wide&Deep runs differed.)
source "$(dirname "$0")/lib.sh"
args=(--sync --epochs 3 --users 400 --items 300 --dim 16)
for model in mf fm gmf mlp neumf nfm deepfm wide_deep; do
  run_job 5 --model "$model" "${args[@]}" --metrics-out "$work/a.jsonl" || fail "run a"
  run_job 5 --model "$model" "${args[@]}" --metrics-out "$work/b.jsonl" || fail "run b"
  same_metrics "$work/a.jsonl" "$work/b.jsonl" || fail "$model: sync runs differ"
done
# One asynchronous worker is repeatable too: a server answers its messages
# in the order they were sent, so every pull sees the same pushes.
for model in mf mlp; do
  run_job 3 --model "$model" --epochs 3 --users 400 --items 300 --dim 16 --metrics-out "$work/a.jsonl" || fail "run a"
  run_job 3 --model "$model" --epochs 3 --users 400 --items 300 --dim 16 --metrics-out "$work/b.jsonl" || fail "run b"
  same_metrics "$work/a.jsonl" "$work/b.jsonl" || fail "$model: one-worker async runs differ"
done
echo "ok"
