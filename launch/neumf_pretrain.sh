#!/usr/bin/env bash
# NeuMF with and without pre-training on MovieLens-100k (README, "NeuMF
# pre-training"), mean and spread over seeds. Per seed, on 6 ranks
# (asynchronous, as the quality table):
#   1. GMF and MLP with --validation (every epoch checkpointed); the epoch
#      chosen on validation is the one NeuMF starts from;
#   2. NeuMF from those two checkpoints (alpha 0.5), fine-tuned with plain SGD
#      (lr 0.001, as the paper does), --validation choosing the epoch;
#   3. NeuMF from scratch (its defaults), --validation choosing the epoch.
# Reported test metrics are those of the validation-chosen epochs.
#
#   launch/neumf_pretrain.sh [--data DIR] [--seeds "1 2 3"] [--out DIR] [-- extra recsys_worker args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/../shared/datasets/ml-100k"
seeds="1 2 3"
out="$root/out/neumf_pretrain"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "neumf_pretrain.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
extra=("$@")
[ -f "$data/u.data" ] || { echo "neumf_pretrain.sh: MovieLens-100k not found in $data" >&2; exit 2; }
mkdir -p "$out"
bin="$out/recsys_worker"
cp "${RECSYS_BIN:-$root/build/recsys_worker}" "$bin"
D=(--format ml-100k --data "$data" --validation)

run() {  # name seed args...
  local name="$1" seed="$2"; shift 2
  RECSYS_BIN="$bin" "$root/launch/local.sh" -n 6 -- "$@" "${D[@]}" --seed "$seed" \
    --metrics-out "$out/$name-$seed.jsonl" "${extra[@]}" > "$out/$name-$seed.log" 2>&1 \
    || { echo "$name seed $seed failed; see $out/$name-$seed.log" >&2; exit 1; }
}
chosen() {  # jsonl -> epoch of its final record
  python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]['epoch'])" "$1"
}

for seed in $seeds; do
  rm -rf "$out/ck-gmf-$seed" "$out/ck-mlp-$seed"
  run gmf "$seed" --model gmf --epochs 30 --patience 8 --checkpoint-dir "$out/ck-gmf-$seed" --keep-checkpoints 30
  run mlp "$seed" --model mlp --epochs 30 --patience 8 --checkpoint-dir "$out/ck-mlp-$seed" --keep-checkpoints 30
  run neumf-pretrained "$seed" --model neumf --epochs 10 --patience 4 --optimizer sgd --lr 0.001 \
    --pretrain-gmf "$out/ck-gmf-$seed/ckpt-$(chosen "$out/gmf-$seed.jsonl")" \
    --pretrain-mlp "$out/ck-mlp-$seed/ckpt-$(chosen "$out/mlp-$seed.jsonl")"
  run neumf-scratch "$seed" --model neumf --epochs 20 --patience 5
done

# shellcheck disable=SC2086  # one argument per seed
python3 - "$out" $seeds <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
print("| run | HR@10 (mean ± sd) | NDCG@10 (mean ± sd) | validation HR@10 | epochs chosen |")
print("| --- | --- | --- | --- | --- |")
for name in ("gmf", "mlp", "neumf-pretrained", "neumf-scratch"):
    fin = [[json.loads(l) for l in open(f"{out}/{name}-{s}.jsonl")][-1] for s in seeds]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    hr = [f["hr@10"] for f in fin]; nd = [f["ndcg@10"] for f in fin]; va = [f["valid_hr@10"] for f in fin]
    print(f"| {name} | {statistics.mean(hr):.3f} ± {sd(hr):.3f} | {statistics.mean(nd):.3f} ± {sd(nd):.3f} | "
          f"{statistics.mean(va):.3f} | {'/'.join(str(f['epoch']) for f in fin)} |")
PY
