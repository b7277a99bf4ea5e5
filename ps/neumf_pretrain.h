// NeuMF pre-training (He et al., WWW 2017, section 3.4.1): a NeuMF model
// built from a trained GMF and a trained MLP checkpoint.
//
// The combination is written as an ordinary checkpoint folder (one shard
// file, a MANIFEST of model "neumf"), which the run then loads exactly as it
// loads --init-from: verified, table-checked, and read by every server, each
// keeping the rows ShardOf assigns to it. So the combination needs no new
// server protocol and is a pure function of two folders, testable without MPI.
// The cost: the process that combines (the coordinator) holds the whole model
// in memory once, which is fine for NCF-sized tables (ml-100k: 2.6k keys).
//
// With the tables of models/ncf.h, NeuMF's parameters are:
//   "emb" row of key k   [GMF emb row (dim), MLP emb row (dim)]; a key found
//                        in only one checkpoint gets NeuMF's initial values
//                        (InitRow) in the other half
//   "mlp<l>.w/.b"        copied from the MLP checkpoint
//   "h"                  [alpha * h_gmf (dim), (1 - alpha) * h_mlp (last width)]
//   "b"                  alpha * b_gmf + (1 - alpha) * b_mlp
// so that NeuMF's logit is alpha * GMF's logit + (1 - alpha) * MLP's. Only
// weights are carried over: the optimizer state of the new run starts fresh
// (the paper switches to plain SGD here; we keep the configured optimizer).
#ifndef RECSYS_PS_NEUMF_PRETRAIN_H_
#define RECSYS_PS_NEUMF_PRETRAIN_H_

#include <string>
#include <vector>

#include "common/config.h"
#include "common/table_spec.h"
#include "ps/checkpoint.h"

namespace recsys {

// Reads config.pretrain_gmf and config.pretrain_mlp (a checkpoint folder or
// a --checkpoint-dir with LATEST each), verifies both in full (manifest and
// shard checksums) and checks that they are of models "gmf" and "mlp", were
// trained with this run's --dim (and, for MLP, --layers) on the same data,
// and have the tables `neumf_tables` implies. Then writes the NeuMF
// checkpoint into `out_dir` (created if missing; an earlier combination
// there is replaced) with weights as above, alpha = config.pretrain_alpha,
// and returns its manifest. `neumf_tables` are the tables of the NeuMF model
// this run builds (config.dim, config.layers). Throws InputError naming the
// checkpoint and the problem.
Manifest BuildPretrainedNeuMf(const Config& config, const std::vector<TableSpec>& neumf_tables,
                              const std::string& out_dir);

}  // namespace recsys

#endif  // RECSYS_PS_NEUMF_PRETRAIN_H_
