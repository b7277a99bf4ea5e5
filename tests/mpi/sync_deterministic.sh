#!/usr/bin/env bash
# --sync: two runs of the same configuration give identical metrics.
source "$(dirname "$0")/lib.sh"
args=(--sync --epochs 3 --users 400 --items 300 --dim 16)
for model in mf fm; do
  run_job 5 --model "$model" "${args[@]}" --metrics-out "$work/a.jsonl" || fail "run a"
  run_job 5 --model "$model" "${args[@]}" --metrics-out "$work/b.jsonl" || fail "run b"
  same_metrics "$work/a.jsonl" "$work/b.jsonl" || fail "$model: sync runs differ"
done
echo "ok"
