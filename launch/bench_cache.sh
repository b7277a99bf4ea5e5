#!/usr/bin/env bash
# The hot-row cache (README, "Hot-row cache") on a synthetic Zipf workload:
# one run per cache size, side by side, each repeated; prints a Markdown
# table of the hit rate, pulled bytes per sample, samples/s (median over
# runs of the median epoch) and HR@10 of the last epoch, and the ratios to
# the run without the cache (cache size 0).
#
#   launch/bench_cache.sh [--ranks 4] [--caches "0 10000 20000"] [--staleness 8]
#                         [--repeats 3] [-- extra recsys_worker options]
#
# Default workload: MF, dim 32, 20000 users x 20000 items, 40 interactions
# per user (Zipf item popularity), batch 1024, 2 epochs, 1 worker and 2
# servers (4 ranks), so that every run is reproducible and the HR@10 of two
# cache sizes differ only through the cache. RECSYS_BIN picks the binary.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks=4
caches="0 10000 20000 30000 40000"
staleness=8
repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift 2 ;;
    --caches) caches="$2"; shift 2 ;;
    --staleness) staleness="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "bench_cache.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
workload=(--model mf --dim 32 --users 20000 --items 20000 --interactions-per-user 40 --batch-size 1024 --epochs 2
          --servers 2 --staleness "$staleness")
export RECSYS_PROGRESS=off
out="$(mktemp -d "${TMPDIR:-/tmp}/bench_cache.XXXXXX")"
trap 'rm -rf "$out"' EXIT
echo "launch/local.sh -n $ranks -- ${workload[*]} $* --cache-rows N" >&2
# Cache sizes interleaved within each repeat, so load changes hit them alike.
for r in $(seq 1 "$repeats"); do
  for c in $caches; do
    "$root/launch/local.sh" -n "$ranks" -- "${workload[@]}" "$@" --cache-rows "$c" \
      --metrics-out "$out/c$c.r$r.jsonl" >"$out/c$c.r$r.out" 2>&1 \
      || { echo "bench_cache.sh: run with --cache-rows $c failed:" >&2; tail -5 "$out/c$c.r$r.out" >&2; exit 1; }
    echo "  cache $c, run $r done" >&2
  done
done
python3 - "$out" "$repeats" $caches <<'PY'
import json, statistics, sys
out, repeats, caches = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3:]]
rows = {}
for c in caches:
    runs = []
    for r in range(1, repeats + 1):
        recs = [json.loads(l) for l in open(f"{out}/c{c}.r{r}.jsonl") if l.strip()]
        recs = [x for x in recs if not x.get("final")]
        runs.append(recs)
    last = runs[0][-1]
    rows[c] = dict(hit=last.get("cache_hit_rate", 0.0), bps=last["pulled_bytes_per_sample"],
                   sps=statistics.median(statistics.median(x["samples_per_s"] for x in recs) for recs in runs),
                   hr=last["hr@10"], hrs=sorted({recs[-1]["hr@10"] for recs in runs}))
base = rows[caches[0]]
print("| cache rows | hit rate | pulled B/sample | samples/s | HR@10 |")
print("| ---: | ---: | ---: | ---: | ---: |")
for c in caches:
    x = rows[c]
    hr = f"{x['hr']:.4f}" if len(x["hrs"]) == 1 else "/".join(f"{h:.4f}" for h in x["hrs"])
    print(f"| {c} | {100 * x['hit']:.1f}% | {x['bps']:.1f} ({base['bps'] / x['bps']:.2f}x fewer) | "
          f"{x['sps']:.0f} ({x['sps'] / base['sps']:.2f}x) | {hr} |")
PY
