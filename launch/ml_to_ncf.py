#!/usr/bin/env python3
"""Writes a MovieLens data set in the NCF authors' format.

    launch/ml_to_ncf.py --ml100k DIR --out PREFIX [--negatives 99] [--seed 1]

Produces PREFIX.train.rating, PREFIX.test.rating and PREFIX.test.negative
(tab-separated, 0-based user and item ids, as in the NCF repository): each
user's latest interaction (ties: the later line) is held out, and 99 items
the user never interacted with are drawn as its candidates. The files are
derived data: keep them out of version control (MovieLens' license).
"""
import argparse
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ml100k", required=True, help="folder with u.data")
    ap.add_argument("--out", required=True, help="output prefix")
    ap.add_argument("--negatives", type=int, default=99)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rows = []
    with open(f"{args.ml100k}/u.data") as f:
        for pos, line in enumerate(f):
            u, i, r, t = line.split("\t")
            rows.append((int(u) - 1, int(i) - 1, int(r), int(t), pos))
    n_items = max(r[1] for r in rows) + 1
    by_user = {}
    for row in rows:
        by_user.setdefault(row[0], []).append(row)
    rng = random.Random(args.seed)
    with open(args.out + ".train.rating", "w") as train, open(args.out + ".test.rating", "w") as test, \
            open(args.out + ".test.negative", "w") as neg:
        for u in sorted(by_user):
            hist = sorted(by_user[u], key=lambda r: (r[3], r[4]))
            last = hist[-1]
            for r in hist[:-1]:
                train.write(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\n")
            test.write(f"{last[0]}\t{last[1]}\t{last[2]}\t{last[3]}\n")
            seen = {r[1] for r in hist}
            cands = []
            while len(cands) < args.negatives:
                j = rng.randrange(n_items)
                if j not in seen and j not in cands:
                    cands.append(j)
            neg.write(f"({u},{last[1]})\t" + "\t".join(map(str, cands)) + "\n")


if __name__ == "__main__":
    main()
