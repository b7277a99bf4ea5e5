#!/usr/bin/env bash
# The synthetic generator's streaming path (README, "Large tables", "50
# million keys") end to end: 100 000 users over 10 million items, 3 ranks.
# The job completes, the item universe is the 10 million items (held as a
# range), and the servers hold about the keys the epoch trained: every user,
# and the items drawn as positives (Zipf) and negatives (uniform, so nearly
# all distinct); evaluation candidates are read, not created (rows are
# created by pushes, README "Large tables").
source "$(dirname "$0")/lib.sh"
users=100000 items=10000000 per_user=3 neg=4 cands=4
run_job 3 --model mf --dim 8 --users "$users" --items "$items" --interactions-per-user "$per_user" --epochs 1 \
  --neg-ratio "$neg" --eval-negatives "$cands" --batch-size 2048 --metrics-out "$work/m.jsonl" \
  || fail "streaming job exited non-zero"
grep -q "^data: $users users (0 without a held-out item), $items items, $((users * (per_user - 1))) training positives" \
  "$work/out.txt" || fail "unexpected data line"
python3 - "$work/m.jsonl" "$users" "$items" "$per_user" "$neg" "$cands" <<'PY' || fail "key counts"
import json, math, sys
users, items, per_user, neg, cands = (int(x) for x in sys.argv[2:])
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][0]
train = users * (per_user - 1)
assert r["users"] == users, r["users"]
assert r["examples"] == train * (1 + neg), r["examples"]
keys = sum(s["keys"] for s in r["servers"])
# Uniform draws of `items`: expected distinct count of the trained ones
# (negatives); candidates may add rows only through training.
uniform = train * neg + users * cands
distinct = items * (1 - math.exp(-(train * neg) / items))
low, high = users + 0.95 * distinct, users + users * per_user + uniform
print(f"keys {keys:,}, expected in [{low:,.0f}, {high:,.0f}]")
assert low <= keys <= high, (keys, low, high)
PY
echo "ok"
