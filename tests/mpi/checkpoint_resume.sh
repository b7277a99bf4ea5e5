#!/usr/bin/env bash
# Checkpoints: a --sync run interrupted after 2 epochs and resumed to 4 ends
# with exactly the metrics of the uninterrupted run (epochs 3 and 4, and the
# final record), also when resumed into 3 servers instead of 2; old
# checkpoints beyond --keep-checkpoints are deleted.
source "$(dirname "$0")/lib.sh"
args=(--sync --model mf --users 400 --items 300 --dim 16)
run_job 5 --servers 2 "${args[@]}" --epochs 4 --checkpoint-dir "$work/full" --checkpoint-every 1 \
  --metrics-out "$work/full.jsonl" || fail "uninterrupted run"
[ "$(cat "$work/full/LATEST")" = "ckpt-4" ] || fail "LATEST should name ckpt-4"
[ "$(ls "$work/full" | grep -c '^ckpt-')" = 2 ] || fail "--keep-checkpoints 2 should leave 2 checkpoints: $(ls "$work/full")"
[ -e "$work/full/ckpt-3/MANIFEST" ] && [ ! -e "$work/full/ckpt-2" ] || fail "ckpt-3 kept, ckpt-2 deleted"

run_job 5 --servers 2 "${args[@]}" --epochs 2 --checkpoint-dir "$work/part" --metrics-out "$work/part.jsonl" || fail "2-epoch run"
run_job 6 --servers 3 "${args[@]}" --epochs 4 --resume "$work/part/ckpt-2" --metrics-out "$work/resumed3.jsonl" \
  || fail "resumed run on 3 servers"
run_job 5 --servers 2 "${args[@]}" --epochs 4 --resume "$work/part" --checkpoint-dir "$work/part" \
  --metrics-out "$work/resumed.jsonl" || fail "resumed run"
grep -q "^resumed: .*ckpt-2 (epoch 2" "$work/out.txt" || fail "no 'resumed' line"
grep -q "^epoch   1 " "$work/out.txt" && fail "a resumed run must not train epoch 1 again"
[ "$(cat "$work/part/LATEST")" = "ckpt-4" ] || fail "the resumed run should checkpoint on to ckpt-4"

python3 - "$work/full.jsonl" "$work/resumed.jsonl" "$work/resumed3.jsonl" <<'PY' || fail "resumed metrics differ"
import json, sys
def rows(p): return [json.loads(l) for l in open(p) if l.strip()]
full = rows(sys.argv[1])
for path in sys.argv[2:]:
    res = rows(path)
    assert [r["epoch"] for r in res] == [3, 4, 4], [r["epoch"] for r in res]
    for a, b in zip(full[2:], res):
        assert a.get("final") == b.get("final")
        for k in a:
            if k in ("loss", "users", "examples") or k.startswith("hr@") or k.startswith("ndcg@"):
                assert a[k] == b[k], f"{path}: epoch {a['epoch']}: {k} {a[k]!r} != {b[k]!r}"
print("epochs 3, 4 and the final record identical")
PY
echo ok
