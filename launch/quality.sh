#!/usr/bin/env bash
# Quality table on MovieLens-100k: each configuration trained with 3 seeds on
# 6 ranks (--ranks); reports HR@10 / NDCG@10 (mean and spread over seeds) of the final
# record (the last epoch, or the epoch chosen on --validation), epochs and
# time, as CSV and a Markdown table.
#
#   launch/quality.sh [--data DIR] [--seeds "1 2 3"] [--ranks 6] [--out DIR] [--only NAME[,NAME...]] [-- extra recsys_worker args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/../shared/datasets/ml-100k"
seeds="1 2 3"
out="$root/out/quality"
only=""
ranks=6
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --ranks) ranks="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "quality.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
extra=("$@")
[ -f "$data/u.data" ] || { echo "quality.sh: MovieLens-100k not found in $data" >&2; exit 2; }
mkdir -p "$out"
# A private copy of the binary, so a rebuild during the run does not change it.
bin="$out/recsys_worker"
cp "${RECSYS_BIN:-$root/build/recsys_worker}" "$bin"

# name|arguments (model defaults apply to everything not given)
configs=(
  "mf|--model mf"
  "mf-bpr|--model mf --loss bpr"
  "fm-ids|--model fm --no-side-features"
  "fm-side|--model fm"
  "gmf|--model gmf"
  "mlp|--model mlp"
  "neumf|--model neumf"
  "nfm-ids|--model nfm --no-side-features"
  "nfm-side|--model nfm"
  "deepfm-ids|--model deepfm --no-side-features"
  "deepfm-side|--model deepfm"
  "wide_deep-ids|--model wide_deep --no-side-features"
  "wide_deep-side|--model wide_deep"
)
csv="$out/quality.csv"
echo "name,seed,epoch,hr10,ndcg10,epochs_run,seconds,args" > "$csv"
for entry in "${configs[@]}"; do
  name="${entry%%|*}"; args="${entry#*|}"
  [ -n "$only" ] && [[ ",$only," != *",$name,"* ]] && continue
  for seed in $seeds; do
    m="$out/$name-$seed.jsonl"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    RECSYS_BIN="$bin" "$root/launch/local.sh" -n "$ranks" -- $args --format ml-100k --data "$data" --seed "$seed" \
      --metrics-out "$m" "${extra[@]}" > "$out/$name-$seed.log" 2>&1 || { echo "$name seed $seed failed; see $out/$name-$seed.log" >&2; continue; }
    end=$(date +%s.%N)
    python3 - "$m" "$name" "$seed" "$start" "$end" "$args ${extra[*]}" >> "$csv" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
final = rows[-1]
print(f'{sys.argv[2]},{sys.argv[3]},{final["epoch"]},{final["hr@10"]:.4f},{final["ndcg@10"]:.4f},{len(rows)-1},'
      f'{float(sys.argv[5])-float(sys.argv[4]):.1f},"{sys.argv[6].strip()}"')
PY
    tail -n 1 "$csv"
  done
done
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
names = list(dict.fromkeys(r["name"] for r in rows))
print("\n| config | HR@10 (mean ± sd) | NDCG@10 (mean ± sd) | seeds | epoch reported | time/run (s) | arguments |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for n in names:
    rs = [r for r in rows if r["name"] == n]
    hr = [float(r["hr10"]) for r in rs]; nd = [float(r["ndcg10"]) for r in rs]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print(f'| {n} | {statistics.mean(hr):.3f} ± {sd(hr):.3f} | {statistics.mean(nd):.3f} ± {sd(nd):.3f} | {len(rs)} | '
          f'{"/".join(r["epoch"] for r in rs)} | {statistics.median(float(r["seconds"]) for r in rs):.0f} | `{rs[0]["args"]}` |')
PY
