#!/usr/bin/env bash
# The 50-million-key benchmark (README, "Large tables", "50 million keys"):
# one epoch of MF (dim 16, AdaGrad) on the streaming synthetic generator, with
# enough users, drawn items and sampled items that ~50 million distinct keys
# reach the servers, first over 8 servers and 4 workers (13 ranks), then over
# 4 servers and 4 workers (9 ranks), one configuration at a time. Reports, per
# server rank, its keys, table bytes, bytes per row and peak resident memory
# (the servers' own report in --metrics-out: peak_rss_bytes, VmHWM), the
# epoch time, and checks that the peak memory per server roughly halves from
# 4 to 8 servers (8-server mean <= 0.6 x the 4-server mean).
#
#   launch/bench_big.sh [--users N] [--items N] [--neg-ratio N] [--eval-negatives N] [--servers "8 4"] [--out DIR]
#
# Keys: every user (--users, each with 2 interactions: one to train, one held
# out), its training item and its --neg-ratio negatives, drawn from --items
# (Zipf for the interactions, uniform for negatives), so with a billion items
# nearly every draw is a new key. Rows are created by pushes only (a9274b8),
# so only training's keys become rows: 2 + neg-ratio per user, and the
# defaults (2M users, 24 negatives) make ~50.5M rows from 50M training
# examples. The held-out item and --eval-negatives candidates per user are
# read (InitRow for absent rows) but take no memory.
#
# Memory: the servers hold ~7.5 GB of rows in all, and a growing slab briefly
# holds its old copy too, so the script refuses to start a configuration with
# less than --min-free-gb (default 16) GiB available. RECSYS_BIN picks the
# binary (default build/recsys_worker).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RECSYS_BIN="${RECSYS_BIN:-$root/build/recsys_worker}"
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export RECSYS_PROGRESS="${RECSYS_PROGRESS:-plain}"

users=2000000
items=1000000000
neg_ratio=24
eval_negatives=19
workers=4
servers_list="8 4"
min_free_gb=16
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --neg-ratio) neg_ratio="$2"; shift 2 ;;
    --eval-negatives) eval_negatives="$2"; shift 2 ;;
    --servers) servers_list="$2"; shift 2 ;;
    --min-free-gb) min_free_gb="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench_big.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="$(mktemp -d "${TMPDIR:-/tmp}/bench_big.XXXXXX")"
mkdir -p "$out"

for servers in $servers_list; do
  avail_kb="$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)"
  if [ "$avail_kb" -lt $((min_free_gb * 1024 * 1024)) ]; then
    echo "bench_big.sh: only $((avail_kb / 1024 / 1024)) GiB available, need $min_free_gb (--min-free-gb); not starting $servers servers" >&2
    exit 3
  fi
  ranks=$((1 + servers + workers))
  args=(--model mf --dim 16 --optimizer adagrad --loss bce --neg-ratio "$neg_ratio"
        --users "$users" --items "$items" --interactions-per-user 2 --epochs 1
        --eval-negatives "$eval_negatives" --batch-size 4096 --servers "$servers"
        --stall-timeout 600 --metrics-out "$out/s$servers.jsonl")
  echo "== $servers servers, $workers workers ($ranks ranks): launch/local.sh -n $ranks -- ${args[*]}"
  start=$(date +%s.%N)
  "$root/launch/local.sh" -n "$ranks" -- "${args[@]}" 2>&1 | tee "$out/s$servers.log" | grep -Ev "^epoch +[0-9]+ +batches"
  end=$(date +%s.%N)
  echo "$start $end" > "$out/s$servers.wall"
done

python3 - "$out" $servers_list <<'PY'
import json, os, sys
out, configs = sys.argv[1], [int(s) for s in sys.argv[2:]]
GiB, MiB = 1 << 30, 1 << 20
summary = {}
for s in configs:
    rows = [json.loads(l) for l in open(os.path.join(out, f"s{s}.jsonl")) if l.strip()]
    r = [x for x in rows if not x.get("final")][-1]
    start, end = (float(v) for v in open(os.path.join(out, f"s{s}.wall")).read().split())
    servers = r["servers"]
    keys = sum(x["keys"] for x in servers)
    print(f"\n{s} servers: {keys:,} keys; epoch: train {r['train_seconds']:.0f} s + eval {r['eval_seconds']:.0f} s "
          f"({r['examples']:,} training examples, {r['samples_per_s']:.0f}/s); whole job {end - start:.0f} s")
    print("| server rank | keys | table MiB | table bytes/row | peak RSS MiB | peak RSS bytes/row |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for x in servers:
        # peak_rss_bytes: VmHWM (ps/server_loop.cc); rss_bytes is the resident memory now.
        x["rss_bytes"] = x.get("peak_rss_bytes", x["rss_bytes"])
        print(f"| {x['rank']} | {x['keys']:,} | {x['table_bytes'] / MiB:.0f} | {x['table_bytes'] / x['keys']:.1f} | "
              f"{x['rss_bytes'] / MiB:.0f} | {x['rss_bytes'] / x['keys']:.1f} |")
    mean_rss = sum(x["rss_bytes"] for x in servers) / len(servers)
    mean_table = sum(x["table_bytes"] for x in servers) / len(servers)
    print(f"mean per server: {keys / len(servers):,.0f} keys, table {mean_table / MiB:.0f} MiB, peak RSS "
          f"{mean_rss / MiB:.0f} MiB; all servers: table {sum(x['table_bytes'] for x in servers) / GiB:.2f} GiB, "
          f"peak RSS {sum(x['rss_bytes'] for x in servers) / GiB:.2f} GiB")
    summary[s] = {"keys": keys, "mean_rss": mean_rss, "mean_table": mean_table}
ok = True
for small, big in [(a, b) for a in configs for b in configs if b == 2 * a]:
    ratio = summary[big]["mean_rss"] / summary[small]["mean_rss"]
    table_ratio = summary[big]["mean_table"] / summary[small]["mean_table"]
    verdict = "ok" if ratio <= 0.6 else "FAIL"
    ok &= ratio <= 0.6
    print(f"\npeak RSS per server, {big} vs {small} servers: {ratio:.2f}x (table bytes {table_ratio:.2f}x); "
          f"expected ~0.5, at most 0.6: {verdict}")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(f"results in {out}")
sys.exit(0 if ok else 1)
PY
