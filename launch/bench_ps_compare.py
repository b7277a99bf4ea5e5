#!/usr/bin/env python3
"""Runs launch/bench_ps.sh for several variants taking turns, and prints the
medians over the runs of each run's medians (the machine is noisy: compare
variants measured side by side, never across sessions).

  launch/bench_ps_compare.py --runs 11 --rows 500,1000,10000 \\
      area=build/tests/bench/recsys_bench_ps \\
      areas-off=build/tests/bench/recsys_bench_ps:RECSYS_SHARED_AREA_MB=0 \\
      base=/path/to/other/build/tests/bench/recsys_bench_ps

A variant is NAME=BINARY[:VAR=VALUE...]; the variables are set for the run
and passed to every rank (mpirun -x). One server, dim 32, Adam unless given.
"""
import argparse
import os
import statistics
import subprocess
import sys

COLUMNS = ["rows", "bytes", "mpi", "mpi_gbs", "pp_gbs", "pull", "pull_gbs", "mrows", "pull_ratio", "x8", "x8_gbs",
           "push", "push_gbs", "push_ratio", "push_x8", "push_x8_gbs", "push_x8_ratio"]
# Builds before session 11 print no push x8.
OLD_COLUMNS = COLUMNS[:14]


def parse_variant(text):
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        sys.exit(f"bench_ps_compare: variant {text!r}: expected NAME=BINARY[:VAR=VALUE...]")
    binary, *assignments = rest.split(":")
    env = {}
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep or not key:
            sys.exit(f"bench_ps_compare: variant {text!r}: {a!r} is not VAR=VALUE")
        env[key] = value
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench_ps_compare: variant {name}: {binary} is not an executable")
    return name, binary, env


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--rows", default="500,1000,10000")
    parser.add_argument("--dim", default="32")
    parser.add_argument("--servers", default="1")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_ps.sh")
    results = {name: {} for name, _, _ in variants}
    for run in range(args.runs):
        for name, binary, env in variants:
            e = dict(os.environ)
            e.update(env)
            e["BENCH_BIN"] = binary
            e["MPIRUN_ARGS"] = " ".join([e.get("MPIRUN_ARGS", "")] + ["-x " + k for k in env]).strip()
            out = subprocess.run([script, "-s", args.servers, "-d", args.dim, "-r", args.rows, "-o", args.optimizer],
                                 env=e, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"bench_ps_compare: {name}, run {run + 1}: bench_ps failed:\n{out.stdout}{out.stderr}")
            for line in out.stdout.splitlines():
                parts = line.replace("|", " ").split()
                if len(parts) in (len(COLUMNS), len(OLD_COLUMNS)) and parts[0].isdigit():
                    row = dict(zip(COLUMNS, map(float, parts)))
                    row["mpi_push"] = row["push"] * row["push_ratio"]
                    results[name].setdefault(int(row["rows"]), []).append(row)
        print(f"run {run + 1} of {args.runs} done", file=sys.stderr, flush=True)
    med = statistics.median
    print(f"medians over {args.runs} runs taking turns, us (x8: per pull or push, 8 in flight; x8/mpi: ratio of the "
          "medians, and the median of each run's ratio)")
    print(f"{'rows':>7} {'variant':<12} {'mpi pull':>9} {'pull':>9} {'pull x8':>9} {'x8/mpi':>7} {'(runs)':>7} "
          f"{'mpi push':>9} {'push':>9} {'push x8':>9} {'x8/mpi':>7}   pull x8 of each run")
    for rows in sorted({r for v in results.values() for r in v}):
        for name, _, _ in variants:
            rs = results[name].get(rows, [])
            if not rs:
                continue
            mpi, x8 = med(r["mpi"] for r in rs), med(r["x8"] for r in rs)
            each = med(r["mpi"] / r["x8"] for r in rs)
            mpi_push = med(r["mpi_push"] for r in rs)
            pushes = [r["push_x8"] for r in rs if "push_x8" in r]
            push_x8 = f"{med(pushes):>9.1f} {mpi_push / med(pushes):>7.2f}" if pushes else f"{'-':>9} {'-':>7}"
            print(f"{rows:>7} {name:<12} {mpi:>9.1f} {med(r['pull'] for r in rs):>9.1f} {x8:>9.1f} {mpi / x8:>7.2f} "
                  f"{each:>7.2f} {mpi_push:>9.1f} {med(r['push'] for r in rs):>9.1f} {push_x8}   "
                  f"{' '.join(str(round(r['x8'])) for r in rs)}")


if __name__ == "__main__":
    main()
