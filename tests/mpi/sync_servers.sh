#!/usr/bin/env bash
# --sync: the number of servers does not change the result (1 vs 3 servers,
# same 2 workers): rows are initialised from (seed, table, key) and each
# key's updates are applied in the same order wherever it lives.
source "$(dirname "$0")/lib.sh"
args=(--sync --epochs 3 --users 400 --items 300 --dim 16)
for model in mf fm; do
  run_job 4 --servers 1 --model "$model" "${args[@]}" --metrics-out "$work/s1.jsonl" || fail "1 server"
  run_job 6 --servers 3 --model "$model" "${args[@]}" --metrics-out "$work/s3.jsonl" || fail "3 servers"
  same_metrics "$work/s1.jsonl" "$work/s3.jsonl" || fail "$model: 1 vs 3 servers differ"
done
echo "ok"
