#include "worker/run.h"

#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/log.h"
#include "common/topology.h"
#include "models/model.h"
#include "ps/checkpoint.h"
#include "ps/server_loop.h"
#include "worker/export.h"
#include "worker/worker_loop.h"

namespace recsys {

ModelConfig ModelConfigFrom(const Config& config, const std::vector<std::uint8_t>& slot_field) {
  ModelConfig mc;
  mc.name = config.model;
  mc.dim = config.dim;
  mc.slot_field = slot_field;
  mc.init_scale = config.init_scale;
  mc.layers = config.layers;
  mc.dropout = config.dropout;
  return mc;
}

std::vector<TableSpec> MakeModelTables(const Config& config, const std::vector<std::uint8_t>& slot_field) {
  return MakeModel(ModelConfigFrom(config, slot_field))->Tables();
}

DataOptions DataOptionsFrom(const Config& c) {
  DataOptions o;
  o.format = c.format;
  o.path = c.data;
  o.eval_candidates = c.eval_candidates;
  o.side_features = c.side_features;
  o.seed = c.seed;
  o.users = c.users;
  o.items = c.items;
  o.interactions_per_user = c.interactions_per_user;
  return o;
}

namespace {

// The checkpoint a training run with --export-embeddings but no
// --checkpoint-dir writes after its last epoch, to export from.
std::string ExportCheckpointDir(const Config& config) { return config.export_embeddings + "/.checkpoint.tmp"; }

// Models that read only the user and item slots: side-feature slots would
// only cost pulls of rows they never use.
bool UsesSideFeatures(const std::string& model) {
  return model != "mf" && model != "gmf" && model != "mlp" && model != "neumf";
}

}  // namespace

std::vector<EpochResult> RunRank(Transport& transport, const Config& user_config) {
  Config config = user_config;
  if (!UsesSideFeatures(config.model)) config.side_features = false;
  // --export-embeddings reads a verified checkpoint after the run (the
  // servers already know how to write every row; the exporter streams them
  // from the files). A training run without --checkpoint-dir writes one
  // checkpoint, after its last epoch, into a folder of its own that the
  // export removes. Every rank sets the same Config.
  const bool export_tmp = !config.export_embeddings.empty() && !config.eval_only && config.checkpoint_dir.empty();
  if (export_tmp) {
    config.checkpoint_dir = ExportCheckpointDir(config);
    config.checkpoint_every = 0;
    config.checkpoint_minutes = 0;
    config.keep_checkpoints = 1;
  }
  const Topology topology(transport.size(), config.servers);
  switch (topology.RoleOf(transport.rank())) {
    case Role::kCoordinator: {
      std::error_code ec;
      // A folder left by an export that crashed holds an unrelated run.
      if (export_tmp) std::filesystem::remove_all(config.checkpoint_dir, ec);
      auto results = RunCoordinator(transport, topology, config, [&config](const std::vector<std::uint8_t>& slot_field) {
        return MakeModelTables(config, slot_field);
      });
      if (!config.export_embeddings.empty()) {
        const std::string source =
            config.eval_only ? (config.resume.empty() ? config.init_from : config.resume) : config.checkpoint_dir;
        const ExportSummary s = ExportCheckpoint(source, config.export_embeddings);
        if (export_tmp) std::filesystem::remove_all(config.checkpoint_dir, ec);
        std::printf("export: %s (epoch %d, %zu tables, %llu rows) -> %s/tables.json\n", s.checkpoint.c_str(), s.epoch,
                    s.tables, static_cast<unsigned long long>(s.rows), config.export_embeddings.c_str());
        std::fflush(stdout);
      }
      return results;
    }
    case Role::kServer:
      RunServer(transport, topology, config);
      return {};
    case Role::kWorker:
      RunWorker(transport, topology, config);
      return {};
  }
  return {};
}

}  // namespace recsys
