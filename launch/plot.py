#!/usr/bin/env python3
"""Plots training curves of one or several runs into a PNG.

    launch/plot.py RUN.jsonl [RUN2.jsonl ...] --out plot.png [--k 10] [--size 1200x500] [--labels a,b] [--title T]

Left: training loss per epoch. Right: HR@K (solid) and NDCG@K (dashed) per
epoch for every cut-off K the runs report (--topk), or only those of
--k (e.g. --k 10 or --k 5,20). One colour per run,
labelled with the file name (less .jsonl) or --labels. Reads the
--metrics-out files of recsys_worker; the closing {"final": true} record
(the reported epoch) is not an epoch and is left out of the curves, and
marked with a dot on the first HR curve. The PNG is exactly --size pixels.

Needs matplotlib (Debian: python3-matplotlib). When `python3` is another
interpreter without it (pyenv, a venv), the script runs itself again with
/usr/bin/python3.
"""
import argparse
import json
import os
import re
import sys

try:
    import matplotlib
except ImportError:
    system = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(system) and os.path.exists(system) \
            and not os.environ.get("RECSYS_PLOT_REEXEC"):
        os.environ["RECSYS_PLOT_REEXEC"] = "1"
        os.execv(system, [system] + sys.argv)
    sys.exit("plot.py: matplotlib not found; install it (Debian: apt-get install python3-matplotlib)")
matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

DPI = 100


def read_run(path):
    """Epoch records and the final record (or None) of a metrics file."""
    epochs, final = [], None
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        sys.exit(f"plot.py: {path}: cannot read: {e.strerror}")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            sys.exit(f"plot.py: {path}:{n}: not a JSON record: {e.msg}")
        if not isinstance(record, dict) or "epoch" not in record:
            sys.exit(f"plot.py: {path}:{n}: expected a metrics record with \"epoch\"")
        if record.get("final"):
            final = record
        else:
            epochs.append(record)
    if not epochs:
        sys.exit(f"plot.py: {path}: no epoch records")
    return epochs, final


def cutoffs(records):
    return sorted({int(m.group(1)) for r in records for k in r for m in [re.fullmatch(r"hr@(\d+)", k)] if m})


def main():
    parser = argparse.ArgumentParser(description="Loss and HR/NDCG per epoch of recsys-ps runs, into a PNG.")
    parser.add_argument("runs", nargs="+", metavar="RUN.jsonl", help="--metrics-out files")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--size", default="1200x500", help="WIDTHxHEIGHT in pixels (default 1200x500)")
    parser.add_argument("--labels", help="comma-separated names of the runs (default: file names)")
    parser.add_argument("--title", default="", help="figure title")
    parser.add_argument("--k", help="cut-offs to draw, e.g. 10 or 5,20 (default: every one reported)")
    args = parser.parse_args()
    m = re.fullmatch(r"([1-9][0-9]*)x([1-9][0-9]*)", args.size)
    if not m:
        parser.error(f"--size: expected WIDTHxHEIGHT in pixels, e.g. 1200x500, got '{args.size}'")
    width, height = int(m.group(1)), int(m.group(2))
    if args.k is not None and not re.fullmatch(r"[1-9][0-9]*(,[1-9][0-9]*)*", args.k):
        parser.error(f"--k: expected cut-offs separated by commas, e.g. 10 or 5,20, got '{args.k}'")
    only = {int(k) for k in args.k.split(",")} if args.k else None
    labels = args.labels.split(",") if args.labels else \
        [os.path.basename(p)[:-6] if p.endswith(".jsonl") else os.path.basename(p) for p in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"--labels: {len(labels)} names for {len(args.runs)} runs")

    fig, (ax_loss, ax_rank) = plt.subplots(1, 2, figsize=(width / DPI, height / DPI), dpi=DPI)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (path, label) in enumerate(zip(args.runs, labels)):
        epochs, final = read_run(path)
        color = colors[i % len(colors)]
        x = [r["epoch"] for r in epochs]
        ax_loss.plot(x, [r.get("loss", float("nan")) for r in epochs], color=color, marker="o", ms=3, label=label)
        ks = [k for k in cutoffs(epochs) if only is None or k in only]
        if not ks:
            sys.exit(f"plot.py: {path}: reports none of the cut-offs --k {args.k}")
        for j, k in enumerate(ks):
            shade = 1.0 - 0.3 * j  # later cut-offs lighter
            ax_rank.plot(x, [r.get(f"hr@{k}", float("nan")) for r in epochs], color=color, alpha=shade,
                         label=f"{label} HR@{k}")
            ax_rank.plot(x, [r.get(f"ndcg@{k}", float("nan")) for r in epochs], color=color, alpha=shade,
                         linestyle="--", label=f"{label} NDCG@{k}")
            if final is not None and j == 0 and f"hr@{k}" in final:
                ax_rank.plot([final["epoch"]], [final[f"hr@{k}"]], "o", color=color, ms=6)
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss")
    ax_rank.set(title="ranking (HR solid, NDCG dashed; dot: reported epoch)", xlabel="epoch")
    for ax in (ax_loss, ax_rank):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.legend(fontsize="small")
    ax_rank.legend(fontsize="x-small", ncol=2)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    # Not bbox_inches="tight": the file keeps exactly the requested size.
    fig.savefig(args.out, dpi=DPI)
    print(f"plot.py: wrote {args.out} ({width}x{height}, {len(args.runs)} run(s))")


if __name__ == "__main__":
    main()
