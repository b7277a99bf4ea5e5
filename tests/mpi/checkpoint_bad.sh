#!/usr/bin/env bash
# Bad checkpoints and checkpoint options: refused with a message naming the
# file and what is wrong, a non-zero exit, no metrics file, and the
# checkpoint left untouched. Each case is a row of the README's table
# ("Checkpoints and failures").
source "$(dirname "$0")/lib.sh"
args=(--sync --model mf --users 300 --items 200 --dim 16)
run_job 4 "${args[@]}" --epochs 2 --checkpoint-dir "$work/ck" || fail "training run"
ck="$work/ck/ckpt-2"
snapshot() { (cd "$work/ck" && find . -type f | sort | xargs md5sum); }

expect_error() {
  local pattern="$1"; shift
  rm -f "$work/m.jsonl" "$work/m.jsonl.partial"
  local before; before="$(snapshot)"
  if run_job 4 "$@" --metrics-out "$work/m.jsonl"; then fail "expected failure for: $*"; fi
  grep -qE -- "$pattern" "$work/out.txt" || fail "message should match '$pattern' for: $*"
  [ ! -e "$work/m.jsonl" ] || fail "metrics file written for failing job: $*"
  [ "$before" = "$(snapshot)" ] || fail "the checkpoint folder changed: $*"
  echo "ok: $* -> $(grep -m1 -E -- "$pattern" "$work/out.txt")"
}

# Settings and model must match.
expect_error "ckpt-2/MANIFEST: .*--dim was '16', this run has '32'" "${args[@]}" --dim 32 --epochs 3 --resume "$work/ck"
expect_error "ckpt-2/MANIFEST: the checkpoint is of model 'mf', this run trains 'fm'" --model fm --users 300 --items 200 --dim 16 --sync --epochs 3 --resume "$work/ck"
expect_error "ckpt-2/MANIFEST: .*--seed was '1', this run has '2'" "${args[@]}" --seed 2 --epochs 3 --resume "$work/ck"
expect_error "ckpt-2/MANIFEST: checkpoint table 0 'emb' width 17 .* this run's model has table 0 'emb' width 9" "${args[@]}" --dim 8 --init-from "$ck" --eval-only
# Where the checkpoint is.
expect_error "$work/nope: checkpoint folder does not exist" "${args[@]}" --epochs 3 --resume "$work/nope"
expect_error "holds no MANIFEST and no LATEST" "${args[@]}" --epochs 3 --resume "$work"
expect_error "$work/ck: already holds checkpoints .*--resume" "${args[@]}" --epochs 3 --checkpoint-dir "$work/ck"
expect_error "--eval-only needs a model" "${args[@]}" --eval-only
expect_error "--resume and --init-from exclude each other" "${args[@]}" --resume "$work/ck" --init-from "$work/ck"
expect_error "--keep-checkpoints must be at least 1" "${args[@]}" --checkpoint-dir "$work/other" --keep-checkpoints 0
expect_error "--checkpoint-every and --checkpoint-minutes need --checkpoint-dir" "${args[@]}" --checkpoint-every 2

# Corruption: a flipped byte, a truncated shard, a missing shard, an edited
# or missing manifest.
cp "$ck/shard-0.bin" "$work/shard.bak"
python3 - "$ck/shard-0.bin" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)
PY
expect_error "ckpt-2/shard-0.bin: corrupted: checksum [0-9a-f]+, the MANIFEST says [0-9a-f]+" "${args[@]}" --epochs 3 --resume "$work/ck"
if run_job 1 --verify-checkpoint "$work/ck"; then fail "--verify-checkpoint accepted a corrupted checkpoint"; fi
grep -q "corrupted: checksum" "$work/out.txt" || fail "--verify-checkpoint: no message"
head -c 100 "$work/shard.bak" > "$ck/shard-0.bin"
expect_error "ckpt-2/shard-0.bin: is 100 bytes, the MANIFEST says" "${args[@]}" --epochs 3 --resume "$work/ck"
rm "$ck/shard-0.bin"
expect_error "ckpt-2/shard-0.bin: missing" "${args[@]}" --epochs 3 --resume "$work/ck"
cp "$work/shard.bak" "$ck/shard-0.bin"
run_job 1 --verify-checkpoint "$work/ck" || fail "--verify-checkpoint after repair"
grep -q "is complete and intact" "$work/out.txt" || fail "--verify-checkpoint: no success message"
cp "$ck/MANIFEST" "$work/manifest.bak"
sed -i 's/^epoch 2$/epoch 5/' "$ck/MANIFEST"
expect_error "ckpt-2/MANIFEST: corrupted: checksum" "${args[@]}" --epochs 3 --resume "$work/ck"
head -c 200 "$work/manifest.bak" > "$ck/MANIFEST"
expect_error "ckpt-2/MANIFEST: incomplete: no checksum line" "${args[@]}" --epochs 3 --resume "$work/ck"
rm "$ck/MANIFEST"
expect_error "ckpt-2: incomplete checkpoint: MANIFEST is missing" "${args[@]}" --epochs 3 --resume "$work/ck"
printf '../../etc\n' > "$work/ck/LATEST.new"; cp "$work/ck/LATEST" "$work/latest.bak"; mv "$work/ck/LATEST.new" "$work/ck/LATEST"
expect_error "LATEST:1: expected the name of a ckpt-<epoch> folder" "${args[@]}" --epochs 3 --resume "$work/ck"
echo "all bad checkpoints refused"
