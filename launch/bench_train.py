#!/usr/bin/env python3
"""End-to-end training benchmark of recsys-ps (and, with --torch, of a plain
PyTorch trainer of the same models) on MovieLens-100k.

For each model it runs recsys_worker with 3 ranks (1 coordinator, 1 server,
1 worker; asynchronous; batch 256; dim 32; Adam; 4 negatives) for a fixed
number of epochs, `--repeats` times, and reads the --metrics-out JSON. The
first epoch is a warm-up (rows are created on first touch, pages faulted in)
and is left out: a run's samples/s is its examples over its training seconds
in epochs 2..E, summed. The table shows medians over the repeats.

Usage: launch/bench_train.py [--models mf,fm,...] [--epochs 4] [--repeats 3]
                             [--torch] [--json out.json]
Environment: RECSYS_BIN (default build/recsys_worker), ML100K_DIR.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The interpreter that has PyTorch (Debian's python3-torch installs into
# /usr/bin/python3, which a pyenv or venv python3 on PATH may shadow).
TORCH_PYTHON = os.environ.get("TORCH_PYTHON", sys.executable)
MODELS = ["mf", "fm", "gmf", "mlp", "neumf", "nfm", "deepfm", "wide_deep"]
# The factorisation-machine family uses ml-100k's side features (age,
# gender, occupation, genres); the id models (MF, NCF) read ids only.
SIDE_FEATURES = {"fm", "nfm", "deepfm", "wide_deep"}


def run_ours(model, args, data, binary=None):
    """One recsys_worker run; returns the per-epoch JSON records."""
    env = dict(os.environ)
    if binary:
        env["RECSYS_BIN"] = binary
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "metrics.json")
        cmd = [os.path.join(ROOT, "launch", "local.sh"), "-n", "3", "--",
               "--model", model, "--format", "ml-100k", "--data", data,
               "--servers", "1", "--epochs", str(args.epochs), "--batch-size", "256",
               "--dim", "32", "--optimizer", "adam", "--neg-ratio", "4",
               "--seed", str(args.seed), "--metrics-out", out]
        if model not in SIDE_FEATURES:
            cmd.append("--no-side-features")
        if args.extra:
            cmd += args.extra.split()
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        if res.returncode != 0:
            sys.exit(f"bench_train: {' '.join(cmd)} failed:\n{res.stdout}")
        with open(out) as f:
            records = [json.loads(line) for line in f if line.strip()]
    # Only the per-epoch records (a final summary repeats the last epoch).
    return [r for r in records if not r.get("final")], " ".join(cmd)


def summarize_ours(records):
    timed = [r for r in records if r["epoch"] >= 2] or records
    examples = sum(r["examples"] for r in timed)
    seconds = sum(r["train_seconds"] for r in timed)
    split = {k: sum(r["time_split"][k] for r in timed) / examples * 1e9 for k in timed[0]["time_split"]}
    return {
        "samples_per_s": examples / seconds,
        "pulled_bytes_per_sample": sum(r["pulled_bytes"] for r in timed) / examples,
        "pushed_bytes_per_sample": sum(r["pushed_bytes"] for r in timed) / examples,
        # nanoseconds of worker time per sample, by phase
        "ns_per_sample": split,
        "hr@10": records[-1].get("hr@10"),
    }


def run_torch(model, args, data):
    cmd = [TORCH_PYTHON, os.path.join(ROOT, "launch", "bench_torch.py"), "--model", model,
           "--data", data, "--epochs", str(args.epochs), "--seed", str(args.seed)]
    if model in SIDE_FEATURES:
        cmd.append("--side-features")
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        sys.exit(f"bench_train: {' '.join(cmd)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1]), " ".join(cmd)


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--torch", action="store_true", help="also run launch/bench_torch.py and print ours/torch")
    p.add_argument("--extra", default="", help="extra recsys_worker options")
    p.add_argument("--baseline", default="", help="another recsys_worker binary, run interleaved with RECSYS_BIN "
                   "(same machine state), reported as 'base' and new/base")
    p.add_argument("--json", default="bench_train.json", help="where to write the results")
    args = p.parse_args()

    data = os.environ.get("ML100K_DIR", os.path.join(ROOT, "..", "shared", "datasets", "ml-100k"))
    if not os.path.exists(os.path.join(data, "u.data")):
        print(f"bench_train: skipped, MovieLens-100k not found at {data} (set ML100K_DIR)")
        return 0
    if args.torch and subprocess.run([TORCH_PYTHON, "-c", "import torch"], capture_output=True).returncode != 0:
        sys.exit(f"bench_train: --torch needs PyTorch for {TORCH_PYTHON} (Debian: apt-get install python3-torch; "
                 "TORCH_PYTHON=/usr/bin/python3)")

    results = {"config": vars(args), "models": {}}
    for model in args.models.split(","):
        ours, base = [], []
        for _ in range(args.repeats):
            records, cmd = run_ours(model, args, data)
            ours.append(summarize_ours(records))
            if args.baseline:
                base.append(summarize_ours(run_ours(model, args, data, args.baseline)[0]))
        entry = {
            "command": cmd,
            "runs": ours,
            "samples_per_s": median_of(ours, "samples_per_s"),
            "pulled_bytes_per_sample": median_of(ours, "pulled_bytes_per_sample"),
            "pushed_bytes_per_sample": median_of(ours, "pushed_bytes_per_sample"),
            "ns_per_sample": {k: statistics.median(r["ns_per_sample"][k] for r in ours)
                              for k in ours[0]["ns_per_sample"]},
            "hr@10": median_of(ours, "hr@10"),
        }
        if args.baseline:
            entry["baseline"] = {"binary": args.baseline, "runs": base,
                                 "samples_per_s": median_of(base, "samples_per_s")}
            entry["speedup"] = entry["samples_per_s"] / entry["baseline"]["samples_per_s"]
        if args.torch:
            theirs = []
            for _ in range(args.repeats):
                rec, tcmd = run_torch(model, args, data)
                theirs.append(rec)
            entry["torch"] = {"command": tcmd, "runs": theirs,
                              "samples_per_s": median_of(theirs, "samples_per_s"),
                              "hr@10": median_of(theirs, "hr@10")}
            entry["ratio"] = entry["samples_per_s"] / entry["torch"]["samples_per_s"]
        results["models"][model] = entry
        print(f"  {model}: {entry['samples_per_s']:.0f} samples/s", file=sys.stderr, flush=True)

    head = f"{'model':<10} {'samples/s':>10} {'pullB/ex':>9} {'pushB/ex':>9} " \
           f"{'sample':>7} {'pull_w':>7} {'compute':>7} {'push':>7} {'HR@10':>6}"
    if args.baseline:
        head += f" {'base/s':>9} {'new/base':>8}"
    if args.torch:
        head += f" {'torch/s':>9} {'t HR@10':>7} {'ours/torch':>10}"
    print(f"median of {args.repeats} runs, epochs 2..{args.epochs}; bytes per sample; ns per sample by phase")
    print(head)
    for model, e in results["models"].items():
        ns = e["ns_per_sample"]
        line = (f"{model:<10} {e['samples_per_s']:>10.0f} {e['pulled_bytes_per_sample']:>9.0f} "
                f"{e['pushed_bytes_per_sample']:>9.0f} {ns['sample']:>7.0f} {ns['pull_wait']:>7.0f} "
                f"{ns['compute']:>7.0f} {ns['push']:>7.0f} {e['hr@10']:>6.3f}")
        if args.baseline:
            line += f" {e['baseline']['samples_per_s']:>9.0f} {e['speedup']:>7.2f}x"
        if args.torch:
            line += f" {e['torch']['samples_per_s']:>9.0f} {e['torch']['hr@10']:>7.3f} {e['ratio']:>9.1f}x"
        print(line)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
