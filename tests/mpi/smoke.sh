#!/usr/bin/env bash
# The smallest job (1 coordinator, 1 server, 1 worker) trains MF and FM on
# synthetic data, prints a line per epoch and writes complete metrics records.
source "$(dirname "$0")/lib.sh"
for model in mf fm; do
  run_job 3 --model "$model" --epochs 2 --users 300 --items 200 --metrics-out "$work/m.jsonl" \
    || fail "$model job exited non-zero"
  [ "$(grep -c '^epoch' "$work/out.txt")" -eq 2 ] || fail "expected 2 epoch lines"
  grep -q 'HR@10' "$work/out.txt" || fail "no HR@10 in output"
  [ ! -e "$work/m.jsonl.partial" ] || fail "partial metrics file left behind"
  python3 - "$work/m.jsonl" <<'PY' || fail "metrics records incomplete"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
final = rows.pop()
assert final["final"] is True and final["epoch"] == 2, final
assert [r["epoch"] for r in rows] == [1, 2], rows
for r in rows:
    for k in ("epoch", "loss", "hr@10", "ndcg@10", "users", "samples_per_s", "servers"):
        assert k in r, k
    assert r["users"] == 300, r["users"]
    assert 0 <= r["ndcg@10"] <= r["hr@10"] <= 1
    assert r["samples_per_s"] > 0 and r["loss"] > 0
PY
done
echo "ok"
