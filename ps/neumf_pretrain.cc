#include "ps/neumf_pretrain.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <unordered_map>
#include <utility>

#include "common/error.h"
#include "common/keys.h"
#include "ps/optimizer.h"
#include "ps/server_shard.h"

namespace recsys {
namespace {

namespace fs = std::filesystem;

// One verified source checkpoint.
struct Source {
  const char* option;  // "--pretrain-gmf" or "--pretrain-mlp"
  const char* model;   // the model it must hold
  std::string dir;     // the resolved ckpt-<epoch> folder
  Manifest manifest;
};

std::string SettingOf(const Manifest& m, const std::string& name) {
  for (const auto& [key, value] : m.settings) {
    if (key == name) return value;
  }
  return "(not recorded)";
}

const TableSpec* FindTable(const std::vector<TableSpec>& tables, const std::string& name) {
  for (const TableSpec& t : tables) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Source Open(const char* option, const char* model, const std::string& path, const Config& config) {
  Source s{option, model, ResolveCheckpoint(path), Manifest()};
  s.manifest = VerifyCheckpoint(s.dir);
  const std::string where = s.dir + "/MANIFEST";
  if (s.manifest.model != model) {
    ThrowInputError(where, 0, Concat(option, " needs a checkpoint of model '", model, "'; this one is of model '",
                                     s.manifest.model, "'"));
  }
  // The settings that decide the tables' shapes and what the keys mean.
  std::vector<std::string> names = {"--dim", "--format", "--data"};
  if (std::string(model) == "mlp") names.push_back("--layers");
  if (config.format == "synthetic") {
    for (const char* n : {"--users", "--items", "--interactions-per-user", "--seed"}) names.push_back(n);
  }
  const auto ours = ResumeSettings(config);
  std::string diffs;
  for (const std::string& name : names) {
    const auto it = std::find_if(ours.begin(), ours.end(), [&](const auto& p) { return p.first == name; });
    RECSYS_CHECK(it != ours.end(), name);
    const std::string theirs = SettingOf(s.manifest, name);
    if (theirs != it->second) diffs += Concat("; ", name, " was '", theirs, "', this run has '", it->second, "'");
  }
  if (!diffs.empty()) {
    ThrowInputError(where, 0, Concat(option, ": the checkpoint was trained with other settings", diffs,
                                     " (GMF, MLP and NeuMF must share --dim, MLP and NeuMF --layers, and all the data)"));
  }
  return s;
}

// Calls sink for every row of every shard file of `s`, checking each file's
// checksum against the verified manifest (in case it changed since).
void ReadRows(const Source& s, const RowSink& sink) {
  for (const ShardFileInfo& f : s.manifest.shards) {
    const std::string path = s.dir + "/" + f.name;
    const ShardFileInfo got = ReadShardFile(path, sink);
    if (got.checksum != f.checksum) {
      ThrowInputError(path, 0, "changed while it was being read (checksum differs from the verified one)");
    }
  }
}

// Stores row `key` of dense block `spec` into flat (spec.dense_size floats).
void GatherDense(const TableSpec& spec, Key key, const Real* values, std::vector<Real>* flat) {
  flat->resize(static_cast<std::size_t>(spec.dense_size), 0.0f);
  const std::int64_t first = static_cast<std::int64_t>(ValueOf(key)) * spec.width;
  for (std::int64_t j = 0; j < spec.width && first + j < spec.dense_size; ++j) {
    (*flat)[static_cast<std::size_t>(first + j)] = values[j];
  }
}

// Writes flat (spec.dense_size floats) into `shard` as the rows of dense block `spec`.
void ScatterDense(const TableSpec& spec, const std::vector<Real>& flat, ServerShard* shard) {
  RECSYS_CHECK(static_cast<std::int64_t>(flat.size()) == spec.dense_size, spec.name);
  std::vector<Real> row(static_cast<std::size_t>(spec.width));
  for (std::int64_t r = 0; r < spec.dense_rows(); ++r) {
    std::fill(row.begin(), row.end(), 0.0f);
    for (std::int64_t j = 0; j < spec.width && r * spec.width + j < spec.dense_size; ++j) {
      row[static_cast<std::size_t>(j)] = flat[static_cast<std::size_t>(r * spec.width + j)];
    }
    shard->Restore(spec.id, MakeKey(kFieldDense, static_cast<std::uint64_t>(r)), row.data(), row.size());
  }
}

}  // namespace

Manifest BuildPretrainedNeuMf(const Config& config, const std::vector<TableSpec>& neumf_tables,
                              const std::string& out_dir) {
  const Source gmf = Open("--pretrain-gmf", "gmf", config.pretrain_gmf, config);
  const Source mlp = Open("--pretrain-mlp", "mlp", config.pretrain_mlp, config);
  const int dim = config.dim;
  const auto alpha = static_cast<Real>(config.pretrain_alpha);

  // The three models' tables must be the ones models/ncf.h describes; the
  // settings matched, so a mismatch here means a changed model, but say so
  // rather than combine the wrong floats.
  const TableSpec* n_emb = FindTable(neumf_tables, "emb");
  const TableSpec* n_h = FindTable(neumf_tables, "h");
  const TableSpec* n_b = FindTable(neumf_tables, "b");
  RECSYS_CHECK(n_emb && n_h && n_b && n_emb->width == 2 * dim, "not NeuMF's tables");
  const auto expect = [](const Source& s, const std::string& name, std::int32_t width, std::int64_t dense_size) {
    const TableSpec* t = FindTable(s.manifest.tables, name);
    if (t == nullptr || (dense_size == 0 && t->width != width) || t->dense_size != dense_size) {
      ThrowInputError(s.dir + "/MANIFEST", 0, Concat(s.option, ": expected a table '", name, "' of ",
                                                     dense_size == 0 ? Concat("width ", width) : Concat(dense_size, " floats"),
                                                     ", as this run's NeuMF needs; the checkpoint has ",
                                                     t ? (t->dense() ? Concat(t->dense_size, " floats") : Concat("width ", t->width)) : "none"));
    }
    return t;
  };
  expect(gmf, "emb", dim, 0);
  expect(gmf, "h", 0, dim);
  expect(gmf, "b", 0, 1);
  expect(mlp, "emb", dim, 0);
  const TableSpec* m_h = expect(mlp, "h", 0, n_h->dense_size - dim);
  expect(mlp, "b", 0, 1);
  // The tower: every other NeuMF table comes from MLP under the same name.
  std::unordered_map<std::string, const TableSpec*> tower;  // name -> NeuMF's spec
  for (const TableSpec& t : neumf_tables) {
    if (t.name == "emb" || t.name == "h" || t.name == "b") continue;
    expect(mlp, t.name, t.width, t.dense_size);
    tower[t.name] = &t;
  }
  if (mlp.manifest.tables.size() != tower.size() + 3 || gmf.manifest.tables.size() != 3) {
    ThrowInputError(mlp.dir + "/MANIFEST", 0, "the GMF or MLP checkpoint has tables this run's NeuMF does not");
  }

  // Weights only: a stateless optimizer makes stride == width.
  OptimizerConfig sgd;
  sgd.name = "sgd";
  ServerShard shard(neumf_tables, config.seed, sgd);

  std::unordered_map<Key, std::vector<Real>> gmf_emb;
  std::vector<Real> h_gmf, h_mlp, b_gmf, b_mlp;
  ReadRows(gmf, [&](const TableSpec& spec, int /*stride*/, Key key, const Real* values) {
    if (spec.name == "emb") {
      gmf_emb[key].assign(values, values + dim);
    } else if (spec.name == "h") {
      GatherDense(spec, key, values, &h_gmf);
    } else if (spec.name == "b") {
      GatherDense(spec, key, values, &b_gmf);
    }
  });
  std::vector<Real> row(static_cast<std::size_t>(2 * dim));
  ReadRows(mlp, [&](const TableSpec& spec, int /*stride*/, Key key, const Real* values) {
    if (spec.name == "emb") {
      const auto it = gmf_emb.find(key);
      if (it != gmf_emb.end()) {
        std::copy(it->second.begin(), it->second.end(), row.begin());
        gmf_emb.erase(it);
      } else {
        InitRow(*n_emb, config.seed, key, row.data());
      }
      std::copy(values, values + dim, row.begin() + dim);
      shard.Restore(n_emb->id, key, row.data(), row.size());
    } else if (spec.name == "h") {
      GatherDense(spec, key, values, &h_mlp);
    } else if (spec.name == "b") {
      GatherDense(spec, key, values, &b_mlp);
    } else {
      const TableSpec* t = tower.at(spec.name);
      shard.Restore(t->id, key, values, static_cast<std::size_t>(t->width));
    }
  });
  for (const auto& [key, g] : gmf_emb) {  // keys GMF saw and MLP did not
    InitRow(*n_emb, config.seed, key, row.data());
    std::copy(g.begin(), g.end(), row.begin());
    shard.Restore(n_emb->id, key, row.data(), row.size());
  }
  if (h_gmf.empty() || h_mlp.empty() || b_gmf.empty() || b_mlp.empty()) {
    ThrowInputError(h_gmf.empty() || b_gmf.empty() ? gmf.dir : mlp.dir, 0,
                    "holds no output layer (h, b): not a trained NCF checkpoint");
  }
  RECSYS_CHECK(static_cast<std::int64_t>(h_mlp.size()) == m_h->dense_size, "h");
  std::vector<Real> h(static_cast<std::size_t>(n_h->dense_size));
  for (int j = 0; j < dim; ++j) h[static_cast<std::size_t>(j)] = alpha * h_gmf[static_cast<std::size_t>(j)];
  for (std::size_t j = 0; j < h_mlp.size(); ++j) h[static_cast<std::size_t>(dim) + j] = (1 - alpha) * h_mlp[j];
  ScatterDense(*n_h, h, &shard);
  ScatterDense(*n_b, {alpha * b_gmf[0] + (1 - alpha) * b_mlp[0]}, &shard);

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) ThrowInputError(out_dir, 0, Concat("cannot create the folder for the pre-trained NeuMF: ", ec.message()));
  Manifest m;
  m.epoch = std::max(gmf.manifest.epoch, mlp.manifest.epoch);
  m.model = "neumf";
  m.servers = 1;
  m.workers = 0;
  m.settings = ResumeSettings(config);
  m.tables = neumf_tables;
  m.shards.push_back(WriteShardFile(out_dir, 0, shard));
  WriteManifest(out_dir, m);
  return m;
}

}  // namespace recsys
