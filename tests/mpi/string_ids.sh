#!/usr/bin/env bash
# Open vocabularies (README, "Data"): MF trained on a CSV whose user and item
# ids are strings (and some 64-bit integers) over 1 server and 2 workers:
#  - every user is evaluated, and no ids collide;
#  - the exported ids are the documented key values of the ids: for a string,
#    the low 56 bits of Mix64(FNV-1a(bytes) | 2^63), recomputed here in Python
#    from the README's recipe;
#  - an empty id names the file and the line, exit 2.
# Skips (77) without numpy (Debian: python3-numpy).
source "$(dirname "$0")/lib.sh"
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null; then py="$p"; break; fi
done
[ -n "$py" ] || { echo "SKIP: numpy is not installed (Debian: apt-get install python3-numpy)"; exit 77; }

# 150 users (UUID-like strings, and a few 64-bit integers) x 300 items ("sku-..." strings).
"$py" - "$work/data.csv" "$work/ids.txt" <<'PY'
import random, sys, uuid
rng = random.Random(11)
users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(140)]
users += [str(18446744073709551615 - i) for i in range(10)]   # huge integers
items = [f"sku-{rng.getrandbits(40):x}/\u00e9" for _ in range(300)]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("user,item,timestamp\n")
    for i, it in enumerate(items):             # every item appears
        f.write(f"{users[i % len(users)]},\"{it}\",{i}\n")
    for u in users:
        for t, it in enumerate(rng.sample(items, rng.randint(6, 20))):
            f.write(f"{u},{it},{100 + t}\n")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for u in users: f.write(f"0 {u}\n")
    for it in items: f.write(f"1 {it}\n")
PY
args=(--sync --model mf --format csv --data "$work/data.csv" --dim 8 --epochs 3)
run_job 4 "${args[@]}" --export-embeddings "$work/emb" --checkpoint-dir "$work/ck" --metrics-out "$work/m.jsonl" \
  || fail "training on string ids"
grep -q "^data: 150 users" "$work/out.txt" || fail "expected 150 users"
grep -q "collide" "$work/out.txt" && fail "unexpected id collisions"
[ "$(metric "$work/m.jsonl" users)" = 150 ] || fail "not every user evaluated"

"$py" - "$work/emb" "$work/ids.txt" <<'PY' || fail "exported ids are not the documented key values"
import sys
import numpy as np
M = (1 << 64) - 1
def mix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
def csv_id(s):          # the 64-bit id of a csv field
    if s.isdigit() and s.isascii(): return int(s)
    h = 0xcbf29ce484222325
    for b in s.encode("utf-8"): h = ((h ^ b) * 0x100000001b3) & M
    return mix64(h) | (1 << 63)
def key_value(i):       # keys.h: MakeKey's low 56 bits
    return i if i < (1 << 56) else mix64(i) & ((1 << 56) - 1)
want = set()
for line in open(sys.argv[2], encoding="utf-8"):
    field, text = line.rstrip("\n").split(" ", 1)
    want.add((int(field), key_value(csv_id(text))))
ids, fields = np.load(f"{sys.argv[1]}/emb.ids.npy"), np.load(f"{sys.argv[1]}/emb.fields.npy")
got = {(int(f), int(i)) for f, i in zip(fields, ids)}
assert got == want, f"{len(got ^ want)} ids differ, e.g. {sorted(got ^ want)[:3]}"
print(f"{len(got)} exported ids match")
PY

# recsys_recommend takes the users' strings as they are in the file.
recommend="${RECSYS_RECOMMEND_BIN:-$(dirname "$RECSYS_BIN")/recsys_recommend}"
user="$(sed -n 2p "$work/ids.txt" | cut -d' ' -f2)"
"$recommend" --checkpoint "$work/ck" --users "$user" --topk 5 --out "$work/recs.tsv" >"$work/out.txt" 2>&1 \
  || fail "recsys_recommend with a string user id"
[ "$(wc -l <"$work/recs.tsv")" = 5 ] || fail "expected 5 recommendations: $(cat "$work/recs.tsv")"
"$recommend" --checkpoint "$work/ck" --users "no-such-user" >"$work/out.txt" 2>&1 && fail "an unknown string user was accepted"
grep -q "not in the data" "$work/out.txt" || fail "no clear error for an unknown string user: $(cat "$work/out.txt")"

printf 'user,item\nalice,book\nbob,""\n' >"$work/bad.csv"
set +e
timeout 300 "$root/launch/local.sh" -n 3 -- --format csv --data "$work/bad.csv" >"$work/out.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an empty item id was accepted"
grep -q "bad.csv:3: expected an item id, got an empty field" "$work/out.txt" || fail "no error naming bad.csv:3"
echo "ok"
