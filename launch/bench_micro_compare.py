#!/usr/bin/env python3
"""Runs Google Benchmark binaries (recsys_bench builds) taking turns and
prints, for each benchmark, the median over the runs of its real time, and
each variant's ratio to the first. The machine is noisy: compare builds
measured side by side like this, never across sessions.

  launch/bench_micro_compare.py --runs 11 --filter 'BM_TablePullMany|BM_TablePush' \\
      old=/path/to/old/build/tests/bench/recsys_bench new=build/tests/bench/recsys_bench

Each run is pinned to one core (taskset -c CORE, default 1).
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--filter", required=True, help="--benchmark_filter regex")
    parser.add_argument("--min-time", default="0.15", help="--benchmark_min_time, seconds")
    parser.add_argument("--core", default="1")
    parser.add_argument("variants", nargs="+", help="NAME=BINARY")
    args = parser.parse_args()
    variants = []
    for v in args.variants:
        name, sep, binary = v.partition("=")
        if not sep or not name or not os.access(binary, os.X_OK):
            sys.exit(f"bench_micro_compare: variant {v!r}: expected NAME=BINARY, an executable")
        variants.append((name, binary))
    times = collections.defaultdict(lambda: collections.defaultdict(list))
    order = []
    for run in range(args.runs):
        for name, binary in variants:
            out = subprocess.run(["taskset", "-c", args.core, binary, "--benchmark_filter=" + args.filter,
                                  "--benchmark_min_time=" + args.min_time, "--benchmark_format=json"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"bench_micro_compare: {name}, run {run + 1} failed:\n{out.stderr}")
            for bm in json.loads(out.stdout)["benchmarks"]:
                scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[bm["time_unit"]]
                if bm["name"] not in times:
                    order.append(bm["name"])
                times[bm["name"]][name].append(bm["real_time"] * scale)
        print(f"run {run + 1} of {args.runs} done", file=sys.stderr, flush=True)
    first = variants[0][0]
    print(f"medians over {args.runs} runs taking turns, us; ratios to {first}")
    for bm in order:
        line = f"{bm:58s}"
        for name, _ in variants:
            line += f" {name}={statistics.median(times[bm][name]) if times[bm][name] else float('nan'):10.2f}"
        for name, _ in variants[1:]:
            if times[bm][name] and times[bm][first]:
                line += f" {name}/{first}={statistics.median(times[bm][name]) / statistics.median(times[bm][first]):.3f}"
        print(line)


if __name__ == "__main__":
    main()
