#!/usr/bin/env bash
# Runs an experiment grid: one recsys_worker job per line of GRIDFILE, and
# one CSV row per job.
#
#   launch/grid.sh GRIDFILE [-n RANKS] [--out DIR] [--hostfile FILE] [-- options for every run]
#
# GRIDFILE has one configuration per line, recsys_worker options quoted as
# in a shell ("--model fm --dim 64", "--config base.toml --lr 0.01");
# '#' starts a comment, blank lines are skipped. Run i (from 1, counting
# configurations only) writes DIR/i.jsonl (--metrics-out), DIR/i.jsonl.config
# and DIR/i.log. DIR/results.csv (rewritten after every run) has one row per
# run: index, config, status, final_epoch (the reported epoch), epochs_run,
# hr@K and ndcg@K for every K any run reported, loss and samples_per_s of the
# reported epoch, and the run's wall seconds. A failed run gets its status
# ("exit N") and empty metrics; the grid goes on and exits 1 at the end.
#
# Runs go through launch/local.sh -n RANKS (default 6), or through
# launch/hostfile.sh FILE with --hostfile. DIR defaults to ./grid-out.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage="usage: launch/grid.sh GRIDFILE [-n RANKS] [--out DIR] [--hostfile FILE] [-- options for every run]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
case "$1" in -h|--help) echo "$usage"; exit 0 ;; esac
grid="$1"; shift
ranks=6 out="grid-out" hostfile=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--out|--hostfile)
      [ $# -ge 2 ] || { echo "grid.sh: $1 needs a value" >&2; exit 2; }
      case "$1" in -n) ranks="$2" ;; --out) out="$2" ;; --hostfile) hostfile="$2" ;; esac
      shift 2 ;;
    --) shift; break ;;
    *) echo "grid.sh: unknown argument '$1'" >&2; echo "$usage" >&2; exit 2 ;;
  esac
done
common=("$@")
[ -f "$grid" ] || { echo "grid.sh: grid file '$grid' not found" >&2; exit 2; }
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "grid.sh: -n expects a positive number of ranks, got '$ranks'" >&2; exit 2; }
mkdir -p "$out/.args"
rm -f "$out/.args/"* "$out/.runs.tsv"

# Split the grid file into one NUL-separated argument list per configuration
# (shell quoting and comments, as shlex reads them).
count="$(python3 - "$grid" "$out/.args" <<'PY'
import shlex, sys
grid, folder = sys.argv[1], sys.argv[2]
n = 0
for line_no, line in enumerate(open(grid), 1):
    try:
        args = shlex.split(line, comments=True)
    except ValueError as e:
        sys.exit(f"grid.sh: {grid}:{line_no}: {e}")
    if not args:
        continue
    for a in args:
        if a == "--metrics-out" or a.startswith("--metrics-out="):
            sys.exit(f"grid.sh: {grid}:{line_no}: --metrics-out is set by the grid (DIR/<index>.jsonl)")
    n += 1
    with open(f"{folder}/{n}", "w") as f:
        f.write("\0".join(args))
    with open(f"{folder}/{n}.line", "w") as f:  # the configuration as one shell-quoted line
        f.write(shlex.join(args))
print(n)
PY
)"
[ "$count" -gt 0 ] || { echo "grid.sh: no configurations in '$grid'" >&2; exit 2; }

if [ -n "$hostfile" ]; then
  launcher=("$root/launch/hostfile.sh" "$hostfile" -n "$ranks" --)
else
  launcher=("$root/launch/local.sh" -n "$ranks" --)
fi

# Collects DIR/results.csv from the runs so far.
collect() {
  python3 - "$out" <<'PY'
import csv, json, os, re, sys
out = sys.argv[1]
runs = [line.rstrip("\n").split("\t", 3) for line in open(os.path.join(out, ".runs.tsv"))]
finals = {}
for index, status, seconds, config in runs:
    path = os.path.join(out, f"{index}.jsonl")
    if status == "ok" and os.path.exists(path):
        rows = [json.loads(l) for l in open(path) if l.strip()]
        final = [r for r in rows if r.get("final")]
        epochs = [r for r in rows if not r.get("final")]
        finals[index] = (final[-1] if final else epochs[-1], len(epochs))
ks = sorted({int(m.group(1)) for r, _ in finals.values() for k in r for m in [re.fullmatch(r"hr@(\d+)", k)] if m})
columns = ["index", "config", "status", "final_epoch", "epochs_run"] + [f"hr@{k}" for k in ks] + \
          [f"ndcg@{k}" for k in ks] + ["loss", "samples_per_s", "seconds"]
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(columns)
    for index, status, seconds, config in runs:
        r, epochs_run = finals.get(index, ({}, ""))
        row = {"index": index, "config": config, "status": status, "final_epoch": r.get("epoch", ""),
               "epochs_run": epochs_run, "seconds": seconds}
        for c in columns[5:-1]:
            v = r.get(c, "")
            row[c] = (f"{v:.6g}" if abs(v) < 1e5 else f"{v:.0f}") if isinstance(v, float) else v
        w.writerow([row[c] for c in columns])
PY
}

failed=0
for i in $(seq 1 "$count"); do
  mapfile -d '' -t args < "$out/.args/$i"
  config="$(cat "$out/.args/$i.line")"
  rm -f "$out/$i.jsonl" "$out/$i.jsonl.config"
  start=$EPOCHREALTIME
  set +e
  "${launcher[@]}" "${args[@]}" "${common[@]}" --metrics-out "$out/$i.jsonl" > "$out/$i.log" 2>&1
  rc=$?
  set -e
  seconds="$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $start }")"
  if [ "$rc" -eq 0 ] && [ -f "$out/$i.jsonl" ]; then status=ok; else status="exit $rc"; failed=$((failed + 1)); fi
  printf '%s\t%s\t%s\t%s\n' "$i" "$status" "$seconds" "$config" >> "$out/.runs.tsv"
  collect
  if [ "$status" = ok ]; then
    echo "[$i/$count] $config: $(grep -m1 '^final:' "$out/$i.log" || echo done) (${seconds}s)"
  else
    echo "[$i/$count] $config: FAILED ($status), see $out/$i.log; last line: $(tail -n 1 "$out/$i.log")" >&2
  fi
done
rm -rf "$out/.args"
echo "grid.sh: $count runs, $failed failed; results in $out/results.csv"
[ "$failed" -eq 0 ]
