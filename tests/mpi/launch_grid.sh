#!/usr/bin/env bash
# launch/grid.sh: a 2-line grid on tiny synthetic data writes one metrics
# file per run and one results.csv row per run with the reported epoch, the
# HR/NDCG columns of every cut-off, loss, samples/s and seconds; a failing
# configuration is recorded and makes the grid exit 1 after the others ran.
source "$(dirname "$0")/lib.sh"
cat > "$work/grid.txt" <<'GRID'
# tiny synthetic runs; '#' starts a comment
--model mf --epochs 2 --users 300 --items 200 --sync

--model fm --epochs 3 --users 300 --items 200 --topk 5,10 --sync   # two cut-offs
GRID
set +e
timeout 600 "$root/launch/grid.sh" "$work/grid.txt" -n 3 --out "$work/g" > "$work/out.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "grid exited $rc"
cat "$work/out.txt"
for i in 1 2; do
  [ -f "$work/g/$i.jsonl" ] && [ -f "$work/g/$i.jsonl.config" ] && [ -f "$work/g/$i.log" ] || fail "run $i files missing"
done
python3 - "$work/g/results.csv" "$work/g" <<'PY' || fail "results.csv wrong"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2, rows
assert list(rows[0].keys()) == ["index", "config", "status", "final_epoch", "epochs_run", "hr@5", "hr@10",
                                "ndcg@5", "ndcg@10", "loss", "samples_per_s", "seconds"], list(rows[0].keys())
a, b = rows
assert a["config"] == "--model mf --epochs 2 --users 300 --items 200 --sync", a["config"]
assert b["config"] == "--model fm --epochs 3 --users 300 --items 200 --topk 5,10 --sync", b["config"]
assert a["status"] == b["status"] == "ok"
assert (a["final_epoch"], a["epochs_run"], b["final_epoch"], b["epochs_run"]) == ("2", "2", "3", "3")
assert a["hr@5"] == "" and a["ndcg@5"] == "" and b["hr@5"] != ""
for row, i in ((a, 1), (b, 2)):
    final = [json.loads(l) for l in open(f"{sys.argv[2]}/{i}.jsonl")][-1]
    assert final["final"] is True
    for k in ("hr@10", "ndcg@10", "loss"):
        assert abs(float(row[k]) - final[k]) <= 1e-5 * max(1, abs(final[k])), (k, row[k], final[k])
    assert float(row["samples_per_s"]) > 0 and float(row["seconds"]) > 0
print("results.csv:", open(sys.argv[1]).read(), sep="\n")
PY

# A failing configuration is recorded; the next one still runs.
printf -- '--model nope --epochs 1\n--model mf --epochs 1 --users 300 --items 200\n' > "$work/bad.txt"
if "$root/launch/grid.sh" "$work/bad.txt" -n 3 --out "$work/b" > "$work/out.txt" 2>&1; then fail "grid with a failing run exited 0"; fi
grep -q 'FAILED (exit 2)' "$work/out.txt" || fail "failure not reported"
python3 - "$work/b/results.csv" <<'PY' || fail "results.csv of the failing grid wrong"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["status"] for r in rows] == ["exit 2", "ok"], rows
assert rows[0]["hr@10"] == "" and rows[1]["final_epoch"] == "1", rows
PY
printf -- '--model mf --metrics-out x.jsonl\n' > "$work/own.txt"
if "$root/launch/grid.sh" "$work/own.txt" -n 3 --out "$work/c" > "$work/out.txt" 2>&1; then fail "--metrics-out in a grid line accepted"; fi
grep -q "own.txt:1: --metrics-out is set by the grid" "$work/out.txt" || fail "no file:line for --metrics-out in a grid line"
echo "ok"
