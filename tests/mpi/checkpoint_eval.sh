#!/usr/bin/env bash
# Saved models: a checkpoint written by 2 servers, evaluated with --eval-only
# on 3 servers (--resume) and on 1 server (--init-from), reproduces the
# HR/NDCG the training run reported for that epoch (re-sharding on load).
source "$(dirname "$0")/lib.sh"
args=(--model fm --users 500 --items 300 --dim 16 --topk 5,10)
run_job 5 --servers 2 "${args[@]}" --epochs 3 --checkpoint-dir "$work/ck" --metrics-out "$work/train.jsonl" \
  || fail "training run"
run_job 6 --servers 3 "${args[@]}" --resume "$work/ck/ckpt-2" --eval-only --metrics-out "$work/e3.jsonl" \
  || fail "eval-only on 3 servers"
grep -q "^eval-only: .*ckpt-2 (epoch 2)" "$work/out.txt" || fail "no eval-only line"
grep -q "^epoch " "$work/out.txt" && fail "--eval-only must not train"
run_job 4 --servers 1 "${args[@]}" --init-from "$work/ck" --eval-only --metrics-out "$work/e1.jsonl" \
  || fail "eval-only from --init-from on 1 server"
python3 - "$work/train.jsonl" "$work/e3.jsonl" 2 "$work/e1.jsonl" 3 <<'PY' || fail "eval-only metrics differ"
import json, sys
train = {r["epoch"]: r for r in map(json.loads, open(sys.argv[1])) if not r.get("final")}
for path, epoch in zip(sys.argv[2::2], sys.argv[3::2]):
    [e] = [json.loads(l) for l in open(path)]
    assert e["eval_only"] is True and e["epoch"] == int(epoch), e
    for k in ("hr@5", "hr@10", "ndcg@5", "ndcg@10", "users"):
        assert e[k] == train[int(epoch)][k], f"{path}: {k} {e[k]} != {train[int(epoch)][k]}"
print("eval-only reproduces the training run's metrics")
PY
echo ok
