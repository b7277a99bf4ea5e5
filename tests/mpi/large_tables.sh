#!/usr/bin/env bash
# Large tables (README "Large tables"): on a long-tail synthetic workload
# (Zipf item popularity, many items, few interactions per user),
#   --min-count 2 and 3 keep fewer rows than no admission, 3 fewer than 2;
#   --expire-after 1 drops rows at epoch ends and keeps fewer rows;
#   --max-rows-per-server stops the job with an error naming the server rank
#   and the limit, or with --on-table-full evict keeps every server within it;
#   a --sync run with admission and expiry, interrupted and resumed, gives
#   exactly the metrics and row counts of the uninterrupted run;
#   the metrics records carry the per-server fields.
source "$(dirname "$0")/lib.sh"
args=(--sync --model mf --users 1500 --items 30000 --interactions-per-user 6 --dim 8 --optimizer adagrad
      --eval-negatives 20)

# keys FILE [EPOCH]: rows over all servers in the record of EPOCH (default: last training record).
keys() {
  python3 - "$@" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and "servers" in json.loads(l)]
row = rows[-1] if len(sys.argv) < 3 else [r for r in rows if r["epoch"] == int(sys.argv[2])][0]
print(sum(s["keys"] for s in row["servers"]))
PY
}
# field FILE NAME: NAME summed over servers and epochs.
field() {
  python3 - "$@" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and "servers" in json.loads(l)]
print(sum(s[sys.argv[2]] for r in rows for s in r["servers"]))
PY
}

run_job 5 --servers 2 "${args[@]}" --epochs 2 --metrics-out "$work/plain.jsonl" || fail "run without admission"
python3 - "$work/plain.jsonl" <<'PY' || fail "server records"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    if r.get("final"):
        continue
    assert [s["rank"] for s in r["servers"]] == [1, 2], r["servers"]
    for s in r["servers"]:
        for k in ("rank", "keys", "table_bytes", "rss_bytes", "peak_rss_bytes", "pull_bytes", "push_bytes",
                  "pull_requests", "push_requests", "raw_bytes", "bytes_per_row", "rows_expired"):
            assert k in s, k
        assert s["keys"] > 0 and s["pull_requests"] > 0 and s["push_requests"] > 0
        assert s["peak_rss_bytes"] >= s["table_bytes"] > 0
        assert s["table_bytes"] <= 1.5 * s["raw_bytes"], s
print("server records ok")
PY
grep -q "^servers: .* keys (max/mean .*bytes/row.*x raw), peak rss max" "$work/out.txt" || fail "no per-epoch server line"
grep -q "^  server rank 2: .* keys, table .*peak rss" "$work/out.txt" || fail "no per-server line"
k0=$(keys "$work/plain.jsonl")

run_job 5 --servers 2 "${args[@]}" --epochs 2 --min-count 2 --metrics-out "$work/mc2.jsonl" || fail "--min-count 2"
run_job 5 --servers 2 "${args[@]}" --epochs 2 --min-count 3 --metrics-out "$work/mc3.jsonl" || fail "--min-count 3"
k2=$(keys "$work/mc2.jsonl"); k3=$(keys "$work/mc3.jsonl")
echo "rows after 2 epochs: no admission $k0, --min-count 2: $k2, --min-count 3: $k3"
[ "$k2" -lt "$k0" ] && [ "$k3" -lt "$k2" ] || fail "rows should fall with --min-count: $k0, $k2, $k3"
[ "$(field "$work/mc3.jsonl" pushes_dropped)" -gt 0 ] || fail "--min-count 3 dropped no pushes"
[ "$(field "$work/mc3.jsonl" pending_keys)" -gt 0 ] || fail "--min-count 3 has no pending keys"

run_job 5 --servers 2 "${args[@]}" --epochs 3 --metrics-out "$work/plain3.jsonl" || fail "3 epochs"
run_job 5 --servers 2 "${args[@]}" --epochs 3 --expire-after 1 --metrics-out "$work/exp.jsonl" || fail "--expire-after 1"
ke=$(keys "$work/exp.jsonl"); kp=$(keys "$work/plain3.jsonl")
echo "rows after 3 epochs: no expiry $kp, --expire-after 1: $ke"
[ "$ke" -lt "$kp" ] || fail "rows should fall with --expire-after: $kp vs $ke"
[ "$(field "$work/exp.jsonl" rows_expired)" -gt 0 ] || fail "no rows expired"
grep -q "^servers: .*, expired [0-9]" "$work/out.txt" || fail "no expired count in the server line"

# Limits: an error naming the server, or eviction within the bound.
if run_job 5 --servers 2 "${args[@]}" --epochs 1 --max-rows-per-server 500; then fail "the row limit should stop the job"; fi
grep -q "server rank [12]: --max-rows-per-server 500 is reached" "$work/out.txt" || fail "no clear error for the row limit"
if run_job 5 --servers 2 "${args[@]}" --epochs 1 --max-memory-per-server 256K; then fail "the memory limit should stop the job"; fi
grep -q "server rank [12]: --max-memory-per-server 262144 bytes would be exceeded" "$work/out.txt" || fail "no clear error for the memory limit"
run_job 5 --servers 2 "${args[@]}" --epochs 2 --max-rows-per-server 2000 --on-table-full evict \
  --metrics-out "$work/evict.jsonl" || fail "eviction run"
python3 - "$work/evict.jsonl" <<'PY' || fail "eviction bound"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and not json.loads(l).get("final")]
assert all(s["keys"] <= 2000 for r in rows for s in r["servers"]), "a server holds more than 2000 rows"
assert sum(s["rows_evicted"] for s in rows[-1]["servers"]) > 0, "nothing evicted"
print("eviction within the bound")
PY

# Resume keeps admission counts and last-touched epochs: identical results.
adm=(--min-count 2 --expire-after 1)
run_job 5 --servers 2 "${args[@]}" "${adm[@]}" --epochs 4 --metrics-out "$work/full.jsonl" || fail "uninterrupted run"
run_job 5 --servers 2 "${args[@]}" "${adm[@]}" --epochs 2 --checkpoint-dir "$work/ck" || fail "2-epoch run"
run_job 6 --servers 3 "${args[@]}" "${adm[@]}" --epochs 4 --resume "$work/ck" --metrics-out "$work/resumed.jsonl" \
  || fail "resumed run"
python3 - "$work/full.jsonl" "$work/resumed.jsonl" <<'PY' || fail "resumed run differs"
import json, sys
def rows(p): return [json.loads(l) for l in open(p) if l.strip()]
full, res = rows(sys.argv[1]), rows(sys.argv[2])
assert [r["epoch"] for r in res] == [3, 4, 4], [r["epoch"] for r in res]
for a, b in zip(full[2:], res):
    for k in a:
        if k in ("loss", "users", "examples") or k.startswith("hr@") or k.startswith("ndcg@"):
            assert a[k] == b[k], f"epoch {a['epoch']}: {k} {a[k]!r} != {b[k]!r}"
    if "servers" in a:
        for f in ("keys", "pending_keys", "rows_expired"):
            x, y = sum(s[f] for s in a["servers"]), sum(s[f] for s in b["servers"])
            assert x == y, f"epoch {a['epoch']}: {f} {x} != {y}"
print("epochs 3, 4 identical, with the same rows, pending keys and expiries")
PY
echo ok
