#!/usr/bin/env python3
"""A plain PyTorch CPU trainer of recsys-ps's models, for side-by-side speed
comparisons (launch/bench_train.py --torch). Not part of the project: it
needs PyTorch (Debian: python3-torch), which nothing else here uses.

Same protocol as recsys_worker on MovieLens-100k: leave-one-out split (each
user's latest interaction held out), 4 negatives per positive resampled each
epoch among the user's non-training items, shuffled batches of 256, dim 32,
Adam, BCE with logits; the same architectures and default hyper-parameters
(common/config.cc, kModelDefaults). One thread (torch.set_num_threads(1)).

Two rates over epochs 2..E: samples_per_s counts the whole epoch, like
recsys_worker's figure (the epoch's negative sampling, vectorised in numpy,
the shuffle, and the training loop); loop_samples_per_s counts the training
loop alone (batch indexing, forward, backward, optimizer step), which
favours PyTorch. HR@10 against 99 sampled items after the last epoch, and the time that
evaluation takes (943 users x 100 candidates, one forward per user, candidate
sampling included as in recsys_worker); with --eval-full also a full-ranking
evaluation (every item the user has not interacted with) and its time.
Prints one JSON line.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn

DEFAULTS = {  # lr, hidden layers, dropout (common/config.cc)
    "mf": (0.002, [], 0.0), "fm": (0.004, [], 0.0), "nfm": (0.002, [64], 0.2),
    "deepfm": (0.001, [64, 32], 0.0), "wide_deep": (0.001, [64, 32], 0.0), "gmf": (0.002, [], 0.0),
    "mlp": (0.001, [64, 32, 16], 0.0), "neumf": (0.001, [64, 32, 16], 0.0),
}


def age_bucket(age):
    for i, hi in enumerate([18, 25, 35, 45, 50, 56]):
        if age < hi:
            return i
    return 6


def load_ml100k(path, side):
    raw = np.loadtxt(os.path.join(path, "u.data"), dtype=np.int64)
    users, items, ts = raw[:, 0], raw[:, 1], raw[:, 3]
    # Dense ids.
    uid = {u: i for i, u in enumerate(np.unique(users))}
    iid = {v: i for i, v in enumerate(np.unique(items))}
    u = np.array([uid[x] for x in users])
    it = np.array([iid[x] for x in items])
    n_users, n_items = len(uid), len(iid)
    # Leave-one-out: latest timestamp, among ties the later line.
    order = np.lexsort((np.arange(len(u)), ts, u))
    last = np.ones(len(u), dtype=bool)
    last[:-1] = u[order][1:] != u[order][:-1]
    test_idx = order[last]
    train_mask = np.ones(len(u), dtype=bool)
    train_mask[test_idx] = False
    test = np.zeros(n_users, dtype=np.int64)
    test[u[test_idx]] = it[test_idx]
    seen = [set() for _ in range(n_users)]
    for a, b in zip(u, it):
        seen[a].add(b)
    train_u, train_i = u[train_mask], it[train_mask]
    train_seen = [set() for _ in range(n_users)]
    for a, b in zip(train_u, train_i):
        train_seen[a].add(b)

    # Side features as slots of one key space: [user, item, age, gender,
    # occupation, genre x G] with values (genres 1/n, padding 0).
    feats = None
    if side:
        occ = {}
        ufeat = np.zeros((n_users, 3), dtype=np.int64)
        with open(os.path.join(path, "u.user"), encoding="latin-1") as f:
            for line in f:
                p = line.strip().split("|")
                if p[0].isdigit() and int(p[0]) in uid:
                    ufeat[uid[int(p[0])]] = [age_bucket(int(p[1])), 0 if p[2] == "M" else 1,
                                             occ.setdefault(p[3], len(occ))]
        genres = [[] for _ in range(n_items)]
        with open(os.path.join(path, "u.item"), encoding="latin-1") as f:
            for line in f:
                p = line.rstrip("\n").split("|")
                if p[0].isdigit() and int(p[0]) in iid:
                    genres[iid[int(p[0])]] = [g for g, flag in enumerate(p[-19:]) if flag == "1"]
        g_max = max(len(g) for g in genres)
        # Key offsets: users, items, 7 ages, 2 genders, occupations, 19 genres, 1 padding row.
        off_age = n_users + n_items
        off_gender = off_age + 7
        off_occ = off_gender + 2
        off_genre = off_occ + len(occ)
        pad = off_genre + 19
        ukeys = np.stack([off_age + ufeat[:, 0], off_gender + ufeat[:, 1], off_occ + ufeat[:, 2]], 1)
        ikeys = np.full((n_items, g_max), pad, dtype=np.int64)
        ivals = np.zeros((n_items, g_max), dtype=np.float32)
        for i, g in enumerate(genres):
            for j, x in enumerate(g):
                ikeys[i, j] = off_genre + x
                ivals[i, j] = 1.0 / len(g)
        feats = dict(ukeys=torch.from_numpy(ukeys), ikeys=torch.from_numpy(ikeys), ivals=torch.from_numpy(ivals),
                     n_keys=pad + 1, g_max=g_max)
    return dict(n_users=n_users, n_items=n_items, train_u=train_u, train_i=train_i, train_seen=train_seen,
                seen=seen, test=test, feats=feats)


def tower(in_width, widths, dropout):
    layers = []
    for w in widths:
        lin = nn.Linear(in_width, w)
        nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_width = w
    return nn.Sequential(*layers), in_width


def normal_emb(n, d):
    e = nn.Embedding(n, d)
    nn.init.normal_(e.weight, std=0.01)
    return e


class IdModel(nn.Module):
    """MF, GMF, MLP, NeuMF over user and item ids."""

    def __init__(self, kind, n_users, n_items, dim, layers):
        super().__init__()
        self.kind = kind
        if kind == "mf":
            self.user = normal_emb(n_users, dim + 1)  # factors and bias, as recsys-ps's rows
            self.item = normal_emb(n_items, dim + 1)
            self.w0 = nn.Parameter(torch.zeros(1))
            return
        gmf, mlp = kind != "mlp", kind != "gmf"
        width = (dim if gmf else 0) + (dim if mlp else 0)
        self.user = normal_emb(n_users, width)
        self.item = normal_emb(n_items, width)
        self.dim, self.gmf, self.mlp = dim, gmf, mlp
        h = dim if gmf else 0
        if mlp:
            self.tower, out = tower(2 * dim, layers, 0.0)
            h += out
        self.h = nn.Linear(h, 1)
        nn.init.xavier_uniform_(self.h.weight)
        nn.init.zeros_(self.h.bias)

    def forward(self, u, i):
        p, q = self.user(u), self.item(i)
        if self.kind == "mf":
            d = p.shape[1] - 1
            return (p[:, :d] * q[:, :d]).sum(1) + p[:, d] + q[:, d] + self.w0
        parts = []
        if self.gmf:
            parts.append(p[:, :self.dim] * q[:, :self.dim])
        if self.mlp:
            parts.append(self.tower(torch.cat([p[:, -self.dim:], q[:, -self.dim:]], 1)))
        return self.h(torch.cat(parts, 1) if len(parts) > 1 else parts[0]).squeeze(1)


class FieldModel(nn.Module):
    """FM, NFM, DeepFM, Wide&Deep over slots [user, item, side features...]."""

    def __init__(self, kind, n_users, n_items, feats, dim, layers, dropout):
        super().__init__()
        self.kind, self.dim, self.feats = kind, dim, feats
        self.n_users = n_users
        n_keys = feats["n_keys"] if feats else n_users + n_items
        self.emb = normal_emb(n_keys, dim + 1)  # factors then the linear weight
        self.w0 = nn.Parameter(torch.zeros(1))
        if kind == "nfm":
            self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            self.tower, out = tower(dim, layers, 0.0)
        elif kind in ("deepfm", "wide_deep"):
            fields = 2 + (4 if feats else 0)  # user, item, age, gender, occupation, genre
            self.tower, out = tower(fields * dim, layers, dropout)
        if kind != "fm":
            self.h = nn.Linear(out, 1, bias=False)
            nn.init.xavier_uniform_(self.h.weight)

    def forward(self, u, i):
        keys = [u.unsqueeze(1), (self.n_users + i).unsqueeze(1)]
        vals = [torch.ones(len(u), 2)]
        if self.feats:
            f = self.feats
            keys += [f["ukeys"][u], f["ikeys"][i]]
            vals += [torch.ones(len(u), 3), f["ivals"][i]]
        keys, x = torch.cat(keys, 1), torch.cat(vals, 1)
        rows = self.emb(keys)  # batch x slots x (dim + 1)
        v, w = rows[:, :, :self.dim], rows[:, :, self.dim]
        logit = self.w0 + (x * w).sum(1)
        xv = x.unsqueeze(2) * v
        if self.kind in ("fm", "deepfm"):
            s = xv.sum(1)
            logit = logit + 0.5 * (s.pow(2).sum(1) - xv.pow(2).sum((1, 2)))
        if self.kind == "nfm":
            bi = 0.5 * (xv.sum(1).pow(2) - xv.pow(2).sum(1))
            logit = logit + self.h(self.tower(self.drop(bi))).squeeze(1)
        elif self.kind in ("deepfm", "wide_deep"):
            pooled = [xv[:, 0], xv[:, 1]]
            if self.feats:
                pooled += [xv[:, 2], xv[:, 3], xv[:, 4], xv[:, 5:].sum(1)]
            logit = logit + self.h(self.tower(torch.cat(pooled, 1))).squeeze(1)
        return logit


def sample_negatives(rng, data, users, k):
    """k negatives per entry of `users`, never a training positive of that
    user: uniform draws, and the draws that hit a positive are redrawn (all
    at once, vectorised) until none does."""
    n_items = data["n_items"]
    if "train_pairs" not in data:  # sorted user * n_items + item of the training positives
        data["train_pairs"] = np.unique(data["train_u"] * n_items + data["train_i"])
    pairs = data["train_pairs"]
    u = np.repeat(np.asarray(users), k)
    out = rng.integers(0, n_items, size=len(u))
    redo = np.arange(len(u))
    while len(redo):
        code = u[redo] * n_items + out[redo]
        hit = pairs[np.minimum(np.searchsorted(pairs, code), len(pairs) - 1)] == code
        redo = redo[hit]
        out[redo] = rng.integers(0, n_items, size=len(redo))
    return out.reshape(-1, k)


def hit_ratio(model, data, rng, topk=10):
    model.eval()
    hits = 0
    with torch.no_grad():
        for user in range(data["n_users"]):
            cands = [data["test"][user]]
            seen = data["seen"][user]
            while len(cands) < 100:
                c = int(rng.integers(0, data["n_items"]))
                if c not in seen and c not in cands:
                    cands.append(c)
            i = torch.tensor(cands)
            s = model(torch.full((100,), user, dtype=torch.long), i)
            hits += int((s[1:] >= s[0]).sum().item() < topk)
    model.train()
    return hits / data["n_users"]


def full_ranking_hit_ratio(model, data, topk=10):
    """HR@topk of the held-out item against every item the user has not
    interacted with (one forward over all items per user)."""
    model.eval()
    hits = 0
    items = torch.arange(data["n_items"])
    with torch.no_grad():
        for user in range(data["n_users"]):
            s = model(torch.full((data["n_items"],), user, dtype=torch.long), items)
            test = int(data["test"][user])
            mask = torch.zeros(data["n_items"], dtype=torch.bool)
            mask[list(data["seen"][user] - {test})] = True
            s = s.masked_fill(mask, float("-inf"))
            hits += int((s >= s[test]).sum().item() - 1 < topk)
    model.train()
    return hits / data["n_users"]


class EmbeddingAdam:
    """Adam for the whole model, with the embedding tables' rule chosen by
    --embedding-adam; the dense layers always take torch.optim.Adam."""

    def __init__(self, model, lr, kind):
        self.kind, self.lr = kind, lr
        if kind == "dense":
            self.dense = torch.optim.Adam(model.parameters(), lr=lr)
            return
        embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
        self.tables = [e.weight for e in embeddings]
        ids = {id(w) for w in self.tables}
        self.dense = torch.optim.Adam([q for q in model.parameters() if id(q) not in ids], lr=lr)
        if kind == "lazy":
            for e in embeddings:
                e.sparse = True
            self.sparse = torch.optim.SparseAdam(self.tables, lr=lr)
        else:  # per-row step counts, by hand: m, v and t of every row
            self.state = [(torch.zeros_like(w), torch.zeros_like(w), torch.zeros(w.shape[0], 1))
                          for w in self.tables]

    def zero_grad(self):
        self.dense.zero_grad()
        if self.kind != "dense":
            for w in self.tables:
                w.grad = None

    @torch.no_grad()
    def step(self):
        self.dense.step()
        if self.kind == "lazy":
            self.sparse.step()
        elif self.kind == "lazy-per-row":
            for w, (m, v, t) in zip(self.tables, self.state):
                rows = torch.nonzero(w.grad.abs().sum(1) > 0).squeeze(1)
                g = w.grad[rows]
                t[rows] += 1
                m[rows] = 0.9 * m[rows] + 0.1 * g
                v[rows] = 0.999 * v[rows] + 0.001 * g * g
                mhat = m[rows] / (1 - 0.9 ** t[rows])
                vhat = v[rows] / (1 - 0.999 ** t[rows])
                w[rows] -= self.lr * mhat / (vhat.sqrt() + 1e-8)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mf", choices=list(DEFAULTS))
    p.add_argument("--data", required=True)
    p.add_argument("--side-features", action="store_true")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--neg-ratio", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eval-full", action="store_true", help="also time a full-ranking evaluation (all items)")
    p.add_argument("--embedding-adam", default="dense", choices=["dense", "lazy", "lazy-per-row"],
                   help="how Adam updates the embedding tables: dense (torch.optim.Adam, every row at every "
                        "step; the default), lazy (torch.optim.SparseAdam: only the rows a batch touches, bias "
                        "corrected by the global step, as recsys-ps since session 7), lazy-per-row (only the "
                        "touched rows, bias corrected by each row's own update count, as recsys-ps before)")
    p.add_argument("--eval-every-epoch", action="store_true",
                   help="also evaluate HR@10 after every epoch (outside the timed part): hr_by_epoch")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    lr, layers, dropout = DEFAULTS[args.model]

    data = load_ml100k(args.data, args.side_features)
    if args.model in ("mf", "gmf", "mlp", "neumf"):
        model = IdModel(args.model, data["n_users"], data["n_items"], args.dim, layers)
    else:
        model = FieldModel(args.model, data["n_users"], data["n_items"], data["feats"], args.dim, layers, dropout)
    opt = EmbeddingAdam(model, lr, args.embedding_adam)
    loss_fn = nn.BCEWithLogitsLoss()

    pos_u, pos_i = data["train_u"], data["train_i"]
    timed_examples, timed_seconds, loop_seconds, loss_sum = 0, 0.0, 0.0, 0.0
    hr_by_epoch = []
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        neg = sample_negatives(rng, data, pos_u, args.neg_ratio)
        u = np.concatenate([pos_u, np.repeat(pos_u, args.neg_ratio)])
        i = np.concatenate([pos_i, neg.reshape(-1)])
        y = np.concatenate([np.ones(len(pos_u)), np.zeros(neg.size)]).astype(np.float32)
        perm = rng.permutation(len(u))
        u, i, y = torch.from_numpy(u[perm]), torch.from_numpy(i[perm]), torch.from_numpy(y[perm])
        start = time.perf_counter()
        for b in range(0, len(u), args.batch_size):
            ub, ib, yb = u[b:b + args.batch_size], i[b:b + args.batch_size], y[b:b + args.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(ub, ib), yb)
            loss.backward()
            opt.step()
        end = time.perf_counter()
        loss_sum = float(loss)
        if args.eval_every_epoch:
            hr_by_epoch.append(hit_ratio(model, data, np.random.default_rng(args.seed + 1)))
        if epoch >= 2 or args.epochs == 1:
            timed_examples += len(u)
            timed_seconds += end - epoch_start
            loop_seconds += end - start
    start = time.perf_counter()
    hr = hit_ratio(model, data, np.random.default_rng(args.seed + 1))
    eval_seconds = time.perf_counter() - start
    out = {"model": args.model, "samples_per_s": timed_examples / timed_seconds,
           "loop_samples_per_s": timed_examples / loop_seconds, "hr@10": hr,
           "eval_seconds": eval_seconds, "last_batch_loss": loss_sum, "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    if args.eval_every_epoch:
        out["hr_by_epoch"] = hr_by_epoch
    if args.eval_full:
        start = time.perf_counter()
        out["full_hr@10"] = full_ranking_hit_ratio(model, data)
        out["eval_full_seconds"] = time.perf_counter() - start
    print(json.dumps(out))


if __name__ == "__main__":
    main()
