#!/usr/bin/env bash
# Export and recommendations (README, "Export and recommendations"): MF is
# trained on a small CSV data set; its export is read back with numpy, and
#  - the arrays have the documented shapes, ids and fields;
#  - every score recsys_recommend prints equals dot(p_u, q_i) + b_u + b_i + w0
#    computed from the exported arrays (to 1e-4);
#  - recsys_recommend's top-K for each user is the K items ranked highest by
#    that computation over the user's candidates (all items but the training
#    ones, as the evaluation ranks them; or all but every item of the user);
#  - recsys_export and --eval-only --init-from export the same bytes, and a
#    run without --checkpoint-dir the same rows; recsys_recommend under
#    mpirun -n 3 writes the same file as on one process;
#  - an unknown user and a missing checkpoint are clear errors (exit 2).
# Skips (77) without numpy (Debian: python3-numpy).
source "$(dirname "$0")/lib.sh"
bindir="$(dirname "$RECSYS_BIN")"
recommend="${RECSYS_RECOMMEND_BIN:-$bindir/recsys_recommend}"
exporter="${RECSYS_EXPORT_BIN:-$bindir/recsys_export}"
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import numpy" 2>/dev/null; then py="$p"; break; fi
done
[ -n "$py" ] || { echo "SKIP: numpy is not installed (Debian: apt-get install python3-numpy)"; exit 77; }

# 120 users x 80 items, 6..20 distinct items each with distinct timestamps.
"$py" - "$work/data.csv" <<'PY'
import random, sys
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    f.write("user,item,timestamp\n")
    for i in range(80):                      # every item appears
        f.write(f"{1000 + i % 120},{i},{i}\n")
    for u in range(1000, 1120):
        for t, i in enumerate(rng.sample(range(80), rng.randint(6, 20))):
            f.write(f"{u},{i},{100 + t}\n")
PY
args=(--sync --model mf --format csv --data "$work/data.csv" --dim 8 --epochs 3 --eval-full)

run_job 4 "${args[@]}" --checkpoint-dir "$work/ck" --export-embeddings "$work/emb" || fail "training with export"
grep -q "^export: .*ckpt-3 (epoch 3, 2 tables" "$work/out.txt" || fail "no 'export:' line"
[ -e "$work/emb/tables.json" ] || fail "no tables.json"
ls -a "$work/emb" | grep -q '\.tmp' && fail "temporary files left in the export: $(ls -a "$work/emb")"

# The same model exported three other ways: the same bytes.
run_job 4 "${args[@]}" --export-embeddings "$work/emb-nockpt" || fail "training with export, no --checkpoint-dir"
[ ! -e "$work/emb-nockpt/.checkpoint.tmp" ] || fail "the temporary checkpoint of the export was not removed"
"$exporter" "$work/ck" "$work/emb-tool" >"$work/out.txt" 2>&1 || fail "recsys_export"
run_job 3 "${args[@]}" --eval-only --init-from "$work/ck" --export-embeddings "$work/emb-eval" || fail "--eval-only export"
for d in emb-tool emb-eval; do
  for f in emb.npy emb.ids.npy emb.fields.npy w0.npy; do
    cmp -s "$work/emb/$f" "$work/$d/$f" || fail "$d/$f differs from emb/$f"
  done
done
# Another (--sync) run: the same rows, in the order that run created them.
"$py" - "$work/emb" "$work/emb-nockpt" <<'PY' || fail "the export of a run without --checkpoint-dir differs"
import sys
import numpy as np
def rows(d):
    W, ids, fields = (np.load(f"{d}/emb{s}.npy") for s in ("", ".ids", ".fields"))
    order = np.lexsort((ids, fields))
    return W[order], ids[order], fields[order], np.load(f"{d}/w0.npy")
for x, y in zip(rows(sys.argv[1]), rows(sys.argv[2])):
    assert np.array_equal(x, y)
PY

users=1000,1003,1050,1119
"$recommend" --checkpoint "$work/ck" --users "$users" --topk 10 --out "$work/recs.tsv" >"$work/out.txt" 2>&1 \
  || fail "recsys_recommend"
"$recommend" --checkpoint "$work/ck/ckpt-3" --users "$users" --topk 10 >"$work/recs-stdout.tsv" 2>"$work/out.txt" \
  || fail "recsys_recommend to stdout"
cmp -s "$work/recs.tsv" "$work/recs-stdout.tsv" || fail "--out and standard output differ"
printf '# users\n1000\n1003\n\n1050\n1119\n' >"$work/users.txt"
RECSYS_BIN="$recommend" run_job 3 --checkpoint "$work/ck" --users-file "$work/users.txt" --topk 10 \
  --out "$work/recs-mpi.tsv" || fail "recsys_recommend under mpirun -n 3"
cmp -s "$work/recs.tsv" "$work/recs-mpi.tsv" || fail "mpirun -n 3 output differs from one process"
"$recommend" --checkpoint "$work/ck" --users "$users" --topk 7 --exclude all --out "$work/recs-all.tsv" \
  >"$work/out.txt" 2>&1 || fail "recsys_recommend --exclude all"

"$py" - "$work/emb" "$work/data.csv" "$work/recs.tsv" "$work/recs-all.tsv" <<'PY' || fail "export or recommendations wrong"
import json, sys
import numpy as np
emb_dir, data, recs_train, recs_all = sys.argv[1:5]
meta = json.load(open(f"{emb_dir}/tables.json"))
assert meta["model"] == "mf" and meta["dim"] == 8, meta
W = np.load(f"{emb_dir}/emb.npy")
ids = np.load(f"{emb_dir}/emb.ids.npy")
fields = np.load(f"{emb_dir}/emb.fields.npy")
w0 = float(np.load(f"{emb_dir}/w0.npy")[0, 0])
assert W.dtype == np.float32 and W.flags["C_CONTIGUOUS"] and ids.dtype == np.int64 and fields.dtype == np.uint8
assert W.shape == (200, 9) and ids.shape == (200,) and fields.shape == (200,), (W.shape, ids.shape, fields.shape)
assert np.load(f"{emb_dir}/w0.npy").shape == (1, 1)
emb = meta["tables"][0]
assert emb["name"] == "emb" and emb["rows"] == 200 and emb["width"] == 9
assert emb["columns"] == {"embedding": [0, 8], "bias": [8, 9]}, emb["columns"]
assert emb["rows_by_field"] == {"user": 120, "item": 80}, emb["rows_by_field"]
assert meta["fields"]["0"] == "user" and meta["fields"]["1"] == "item"
assert sorted(ids[fields == 0].tolist()) == list(range(1000, 1120))
assert sorted(ids[fields == 1].tolist()) == list(range(80))
row = {(int(f), int(i)): r for r, (f, i) in enumerate(zip(fields, ids))}
P = {u: W[row[(0, u)]] for u in range(1000, 1120)}
Q = np.stack([W[row[(1, i)]] for i in range(80)])

# Leave-one-out as the trainer does it: the latest interaction is held out.
hist = {}
for line in open(data).read().split("\n")[1:]:
    if line:
        u, i, t = map(int, line.split(","))
        hist.setdefault(u, {})[i] = max(t, hist.get(u, {}).get(i, -1))

def scores(u):
    p = P[u].astype(np.float64)
    return Q[:, :8].astype(np.float64) @ p[:8] + p[8] + Q[:, 8].astype(np.float64) + w0

def check(path, exclude_all):
    got = {}
    for line in open(path):
        u, i, s = line.rstrip("\n").split("\t")
        got.setdefault(int(u), []).append((int(i), float(s)))
    assert sorted(got) == [1000, 1003, 1050, 1119], sorted(got)
    for u, recs in got.items():
        items = hist[u]
        held_out = max(items, key=lambda i: items[i])
        excluded = set(items) if exclude_all else set(items) - {held_out}
        s = scores(u)
        cands = sorted((i for i in range(80) if i not in excluded), key=lambda i: (-s[i], i))
        k = len(recs)
        assert k == min(10 if not exclude_all else 7, len(cands)), (u, k)
        for i, sc in recs:
            assert i not in excluded, f"user {u}: recommended item {i} is excluded"
            assert abs(sc - s[i]) < 1e-4, f"user {u} item {i}: recommend {sc}, from the arrays {s[i]}"
        rec_items = [i for i, _ in recs]
        if rec_items != cands[:k]:
            # Only float ties may reorder: position by position the scores agree.
            for j, i in enumerate(rec_items):
                assert abs(s[i] - s[cands[j]]) < 1e-5, f"user {u}: top-{k} {rec_items} != {cands[:k]}"
        if not exclude_all:
            assert held_out in cands
check(recs_train, False)
check(recs_all, True)
print("export shapes, scores and top-K agree")
PY

set +e
"$recommend" --checkpoint "$work/ck" --users 1000,99999 >"$work/out.txt" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown user: exit $rc, expected 2"
grep -q "user 99999 is not in the data" "$work/out.txt" || fail "unknown user: no clear message"
set +e
"$recommend" --checkpoint "$work/nope" --users 1000 >"$work/out.txt" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "missing checkpoint: exit $rc, expected 2"
grep -q "nope: checkpoint folder does not exist" "$work/out.txt" || fail "missing checkpoint: no clear message"
echo ok
