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
                             [--torch] [--eval-full] [--json out.json]
       launch/bench_train.py --workers 1,2,4,8,14 [--models mf] ...   (scaling)
       launch/bench_train.py --torch --quality 20 [--models mf] ...    (HR@10 by epoch, ours and PyTorch)
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


def run_ours(model, args, data, binary=None, workers=1, extra=(), epochs=None):
    """One recsys_worker run (1 coordinator, 1 server, `workers` workers);
    returns the per-epoch JSON records and the command."""
    env = dict(os.environ)
    if binary:
        env["RECSYS_BIN"] = binary
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "metrics.json")
        cmd = [os.path.join(ROOT, "launch", "local.sh"), "-n", str(2 + workers), "--",
               "--model", model, "--format", "ml-100k", "--data", data,
               "--servers", "1", "--epochs", str(epochs or args.epochs), "--batch-size", "256",
               "--dim", "32", "--optimizer", "adam", "--neg-ratio", "4",
               # One batch pulled ahead for every model, as measured before
               # the towers' models defaulted to --prefetch 0 (a quality
               # setting for many asynchronous workers; README, "Asynchronous
               # vs synchronous"); the HR@10 printed is of this setting.
               "--prefetch", "1",
               "--seed", str(args.seed), "--metrics-out", out]
        if model not in SIDE_FEATURES:
            cmd.append("--no-side-features")
        if args.extra:
            cmd += args.extra.split()
        cmd += list(extra)
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
        # nanoseconds of worker time per sample, by phase (summed over workers)
        "ns_per_sample": split,
        "hr@10": records[-1].get("hr@10"),
        # The last evaluation (943 users x 100 candidates with the default
        # options), and the first one, which also samples the candidates
        # (later evaluations reuse them).
        "eval_seconds": records[-1]["eval_seconds"],
        "first_eval_seconds": records[0]["eval_seconds"],
        # CPU seconds of the server per training sample, epochs 2..E.
        "server_cpu_us_per_sample": server_cpu_per_sample(records) * 1e6,
    }


def server_cpu_per_sample(records):
    """The servers' CPU time per sample over epochs 2..E (0 if unknown)."""
    if len(records) < 2 or "servers" not in records[0] or "servers" not in records[-1]:
        return 0.0
    cpu = sum(s["cpu_seconds"] for s in records[-1]["servers"]) - sum(s["cpu_seconds"] for s in records[0]["servers"])
    return cpu / sum(r["examples"] for r in records[1:])


def run_torch(model, args, data, epochs=None, extra=()):
    cmd = [TORCH_PYTHON, os.path.join(ROOT, "launch", "bench_torch.py"), "--model", model,
           "--data", data, "--epochs", str(epochs or args.epochs), "--seed", str(args.seed)] + list(extra)
    if model in SIDE_FEATURES:
        cmd.append("--side-features")
    if args.eval_full:
        cmd.append("--eval-full")
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
    p.add_argument("--eval-full", action="store_true", help="also time full-ranking evaluation (all items): one "
                   "more 1-epoch run of ours with --eval-full per repeat, and bench_torch.py --eval-full")
    p.add_argument("--workers", default="", help="scaling mode: comma-separated worker counts (e.g. 1,2,4,8,14), "
                   "1 server each; prints samples/s, bytes per sample and the server's CPU per sample")
    p.add_argument("--quality", type=int, default=0, metavar="E",
                   help="quality mode: one run of ours and of bench_torch.py (needs --torch) per model and seed "
                   "(--repeats seeds), E epochs, HR@10 after every epoch; prints the peak and the last")
    p.add_argument("--json", default="bench_train.json", help="where to write the results")
    args = p.parse_args()

    data = os.environ.get("ML100K_DIR", os.path.join(ROOT, "..", "shared", "datasets", "ml-100k"))
    if not os.path.exists(os.path.join(data, "u.data")):
        print(f"bench_train: skipped, MovieLens-100k not found at {data} (set ML100K_DIR)")
        return 0
    if args.torch and subprocess.run([TORCH_PYTHON, "-c", "import torch"], capture_output=True).returncode != 0:
        sys.exit(f"bench_train: --torch needs PyTorch for {TORCH_PYTHON} (Debian: apt-get install python3-torch; "
                 "TORCH_PYTHON=/usr/bin/python3)")

    if args.workers:
        return scaling(args, data)
    if args.quality:
        return quality(args, data)

    results = {"config": vars(args), "models": {}}
    for model in args.models.split(","):
        # Ours, the baseline and PyTorch take turns within each repeat, so a
        # change in the machine's load hits all of them alike.
        ours, base, theirs = [], [], []
        for _ in range(args.repeats):
            records, cmd = run_ours(model, args, data)
            ours.append(summarize_ours(records))
            if args.baseline:
                base.append(summarize_ours(run_ours(model, args, data, args.baseline)[0]))
            if args.torch:
                rec, tcmd = run_torch(model, args, data)
                theirs.append(rec)
        entry = {
            "command": cmd,
            "runs": ours,
            "samples_per_s": median_of(ours, "samples_per_s"),
            "pulled_bytes_per_sample": median_of(ours, "pulled_bytes_per_sample"),
            "pushed_bytes_per_sample": median_of(ours, "pushed_bytes_per_sample"),
            "ns_per_sample": {k: statistics.median(r["ns_per_sample"][k] for r in ours)
                              for k in ours[0]["ns_per_sample"]},
            "hr@10": median_of(ours, "hr@10"),
            "eval_seconds": median_of(ours, "eval_seconds"),
            "first_eval_seconds": median_of(ours, "first_eval_seconds"),
        }
        if args.eval_full:
            full = []
            for _ in range(args.repeats):
                records, _ = run_ours(model, args, data, extra=["--eval-full"], epochs=1)
                full.append({"eval_seconds": records[-1]["eval_seconds"], "hr@10": records[-1].get("hr@10")})
            entry["eval_full_seconds"] = median_of(full, "eval_seconds")
        if args.baseline:
            entry["baseline"] = {"binary": args.baseline, "runs": base,
                                 "samples_per_s": median_of(base, "samples_per_s")}
            entry["speedup"] = entry["samples_per_s"] / entry["baseline"]["samples_per_s"]
        if args.torch:
            entry["torch"] = {"command": tcmd, "runs": theirs,
                              "samples_per_s": median_of(theirs, "samples_per_s"),
                              "loop_samples_per_s": median_of(theirs, "loop_samples_per_s"),
                              "hr@10": median_of(theirs, "hr@10"),
                              "eval_seconds": median_of(theirs, "eval_seconds")}
            # Both count whole epochs (sampling included); loop_ratio is
            # against PyTorch's training loop alone.
            entry["ratio"] = entry["samples_per_s"] / entry["torch"]["samples_per_s"]
            entry["loop_ratio"] = entry["samples_per_s"] / entry["torch"]["loop_samples_per_s"]
            # The ratio of each (ours, PyTorch) pair run back to back: how
            # much the load moved shows in their spread.
            entry["pair_ratios"] = [o["samples_per_s"] / t["samples_per_s"] for o, t in zip(ours, theirs)]
            entry["eval_ratio"] = entry["torch"]["eval_seconds"] / entry["eval_seconds"]
            if args.eval_full:
                entry["torch"]["eval_full_seconds"] = median_of(theirs, "eval_full_seconds")
                entry["eval_full_ratio"] = entry["torch"]["eval_full_seconds"] / entry["eval_full_seconds"]
        results["models"][model] = entry
        print(f"  {model}: {entry['samples_per_s']:.0f} samples/s", file=sys.stderr, flush=True)
        with open(args.json, "w") as f:  # after every model, so a long run can be read while it goes
            json.dump(results, f, indent=1)

    head = f"{'model':<10} {'samples/s':>10} {'pullB/ex':>9} {'pushB/ex':>9} " \
           f"{'sample':>7} {'pull_w':>7} {'compute':>7} {'push':>7} {'HR@10':>6}"
    if args.baseline:
        head += f" {'base/s':>9} {'new/base':>8}"
    if args.torch:
        head += f" {'torch/s':>9} {'ours/torch':>10} {'pairs':>15} {'t loop/s':>9} {'ours/loop':>9} {'t HR@10':>7}"
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
            pairs = "/".join(f"{r:.1f}" for r in e["pair_ratios"])
            line += (f" {e['torch']['samples_per_s']:>9.0f} {e['ratio']:>9.1f}x {pairs:>15}"
                     f" {e['torch']['loop_samples_per_s']:>9.0f} {e['loop_ratio']:>8.1f}x {e['torch']['hr@10']:>7.3f}")
        print(line)
    print("evaluation seconds (943 users x 100 candidates; first = with candidate sampling; full = all items)")
    print(f"{'model':<10} {'ours':>7} {'first':>7}" + (f" {'torch':>7} {'t/ours':>7}" if args.torch else "") +
          (f" {'full':>7}" + (f" {'t full':>7} {'t/ours':>7}" if args.torch else "") if args.eval_full else ""))
    for model, e in results["models"].items():
        line = f"{model:<10} {e['eval_seconds']:>7.3f} {e['first_eval_seconds']:>7.3f}"
        if args.torch:
            line += f" {e['torch']['eval_seconds']:>7.3f} {e['eval_ratio']:>6.1f}x"
        if args.eval_full:
            line += f" {e['eval_full_seconds']:>7.3f}"
            if args.torch:
                line += f" {e['torch']['eval_full_seconds']:>7.3f} {e['eval_full_ratio']:>6.1f}x"
        print(line)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.json}")
    return 0


def quality(args, data):
    """HR@10 of ours and of the PyTorch trainer after every epoch, same
    protocol and batch size; the peak over epochs 1..E (an oracle on the test
    items, applied to both alike) and the last, medians over --repeats seeds."""
    if not args.torch:
        sys.exit("bench_train: --quality compares against PyTorch; add --torch")
    results = {"config": vars(args), "quality": {}}
    print(f"HR@10 over {args.quality} epochs (batch 256, dim 32, Adam, 4 negatives), median over {args.repeats} seeds")
    print(f"{'model':<10} {'ours peak':>9} {'(epoch)':>7} {'ours last':>9} {'torch peak':>10} {'(epoch)':>7} "
          f"{'torch last':>10} {'peak diff':>9}")
    base_seed = args.seed
    for model in args.models.split(","):
        ours, theirs = [], []
        for r in range(args.repeats):
            args.seed = base_seed + r
            records, cmd = run_ours(model, args, data, epochs=args.quality)
            ours.append([rec["hr@10"] for rec in records])
            rec, tcmd = run_torch(model, args, data, epochs=args.quality, extra=["--eval-every-epoch"])
            theirs.append(rec["hr_by_epoch"])
        args.seed = base_seed
        peak = lambda runs: statistics.median(max(h) for h in runs)
        at = lambda runs: statistics.median(h.index(max(h)) + 1 for h in runs)
        last = lambda runs: statistics.median(h[-1] for h in runs)
        e = {"ours": ours, "torch": theirs, "ours_peak": peak(ours), "ours_peak_epoch": at(ours),
             "ours_last": last(ours), "torch_peak": peak(theirs), "torch_peak_epoch": at(theirs),
             "torch_last": last(theirs), "command": cmd, "torch_command": tcmd}
        results["quality"][model] = e
        print(f"{model:<10} {e['ours_peak']:>9.3f} {e['ours_peak_epoch']:>7.0f} {e['ours_last']:>9.3f} "
              f"{e['torch_peak']:>10.3f} {e['torch_peak_epoch']:>7.0f} {e['torch_last']:>10.3f} "
              f"{e['ours_peak'] - e['torch_peak']:>+9.3f}", flush=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"wrote {args.json}")
    return 0


def scaling(args, data):
    """samples/s of 1 server and W workers (1 + 1 + W ranks), medians of the repeats."""
    results = {"config": vars(args), "scaling": {}}
    print(f"median of {args.repeats} runs, epochs 2..{args.epochs}, 1 server, W workers on {os.cpu_count()} cores")
    print(f"{'model':<10} {'W':>3} {'ranks':>5} {'samples/s':>10} {'per worker':>10} {'pullB/ex':>9} "
          f"{'pushB/ex':>9} {'srv cpu us/ex':>13}")
    for model in args.models.split(","):
        rows = []
        for w in [int(x) for x in args.workers.split(",")]:
            runs = []
            for _ in range(args.repeats):
                records, cmd = run_ours(model, args, data, workers=w)
                runs.append(summarize_ours(records))
            row = {"workers": w, "ranks": w + 2, "command": cmd, "runs": runs,
                   "samples_per_s": median_of(runs, "samples_per_s"),
                   "pulled_bytes_per_sample": median_of(runs, "pulled_bytes_per_sample"),
                   "pushed_bytes_per_sample": median_of(runs, "pushed_bytes_per_sample"),
                   "server_cpu_us_per_sample": median_of(runs, "server_cpu_us_per_sample")}
            rows.append(row)
            print(f"{model:<10} {w:>3} {w + 2:>5} {row['samples_per_s']:>10.0f} {row['samples_per_s'] / w:>10.0f} "
                  f"{row['pulled_bytes_per_sample']:>9.0f} {row['pushed_bytes_per_sample']:>9.0f} "
                  f"{row['server_cpu_us_per_sample']:>13.2f}", flush=True)
        results["scaling"][model] = rows
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
