#!/usr/bin/env bash
# --validation: the reported epoch is chosen on the validation items alone,
# the last metrics record is marked final and carries that epoch's test
# metrics; --patience stops early. Without --validation the final record is
# the last epoch.
source "$(dirname "$0")/lib.sh"
run_job 4 --model mf --epochs 8 --users 500 --items 300 --validation --patience 2 --topk 5,10 \
  --metrics-out "$work/v.jsonl" || fail "validation run"
grep -q '^final: epoch .* (best on validation)' "$work/out.txt" || fail "no final line"
python3 - "$work/v.jsonl" <<'PY' || fail "final record wrong"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
final, epochs = rows[-1], rows[:-1]
assert final["final"] is True and final["selected_by"] == "validation", final
assert all("final" not in r for r in epochs)
assert all(r["valid_users"] == 500 for r in epochs)
best = max(epochs, key=lambda r: (r["valid_hr@10"], -r["epoch"]))
assert final["epoch"] == best["epoch"], (final["epoch"], best["epoch"])
for k in ("hr@5", "hr@10", "ndcg@5", "ndcg@10"):
    assert final[k] == best[k], k
# patience 2: either all 8 epochs ran, or the run stopped 2 epochs after the best.
assert len(epochs) == 8 or len(epochs) == best["epoch"] + 2, (len(epochs), best["epoch"])
PY
run_job 3 --model mf --epochs 2 --users 200 --items 150 --metrics-out "$work/n.jsonl" || fail "plain run"
python3 - "$work/n.jsonl" <<'PY' || fail "final record of a run without validation"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[-1]["final"] is True and rows[-1]["selected_by"] == "last" and rows[-1]["epoch"] == 2
assert rows[-1]["hr@10"] == rows[-2]["hr@10"]
assert "valid_hr@10" not in rows[-2]
PY
run_job 3 --patience 2 && fail "--patience without --validation accepted"
grep -q "needs --validation" "$work/out.txt" || fail "no message for --patience without --validation"
echo ok
