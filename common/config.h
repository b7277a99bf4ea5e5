// The run's configuration, parsed from the command line with cxxopts. Every
// rank parses the same arguments, so every rank holds the same Config.
#ifndef RECSYS_COMMON_CONFIG_H_
#define RECSYS_COMMON_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

namespace recsys {

struct Config {
  // Model and loss.
  std::string model = "fm";
  std::string loss = "bce";
  int dim = 32;
  float init_scale = 0.01f;
  float l2 = 0.0f;  // on the rows of each batch, added to their gradients
  // Hidden widths of the deep models' tower, input side first (empty: none).
  std::vector<int> layers;
  float dropout = 0.0f;  // inverted-dropout rate of the deep models, in [0, 1)

  // Optimisation.
  std::string optimizer = "adam";
  float lr = 0.001f;
  // Step of the dense blocks (the towers' weights; 0: lr).
  float dense_lr = 0.0f;
  // Adam on the sparse rows: lazy or dense (ps/optimizer.h).
  std::string adam_mode = "lazy";
  int epochs = 20;
  int batch_size = 256;
  int neg_ratio = 4;

  // Data.
  std::string format = "synthetic";
  std::string data;
  bool side_features = true;
  std::uint64_t users = 2000;
  std::uint64_t items = 1000;
  int interactions_per_user = 30;

  // Evaluation.
  std::string eval_candidates;
  bool eval_full = false;
  // Hold out each user's second-latest interaction for validation: it picks
  // the epoch whose test metrics are reported, and stops early.
  bool validation = false;
  int patience = 0;  // with validation: stop after this many epochs without improvement (0: never)
  int eval_negatives = 99;
  std::vector<int> topk = {10};

  // Parameter servers.
  int servers = 0;  // 0: default for the number of ranks
  int staleness = 2;
  // Batches a worker pulls ahead of the one it computes (at most staleness).
  // Default: 1, or 0 for models with a deep tower, whose dense blocks then
  // see the worker's own last push (README, "Asynchronous vs synchronous").
  int prefetch = 1;
  bool sync = false;

  std::uint64_t seed = 1;
  std::string metrics_out;

  // Checkpoints and failures (README, "Checkpoints and failures").
  std::string checkpoint_dir;     // empty: no checkpoints
  int checkpoint_every = 0;       // epochs between checkpoints (0: only by time, if set)
  double checkpoint_minutes = 0;  // also checkpoint once this much time has passed (0: off)
  int keep_checkpoints = 2;       // complete checkpoints kept, newest first
  std::string resume;             // checkpoint folder (or its parent with LATEST) to continue from
  std::string init_from;          // checkpoint whose weights start a fresh run
  bool eval_only = false;         // evaluate the restored model once and exit
  double stall_timeout = 0;       // seconds without progress before aborting (0: never)
  std::string verify_checkpoint;  // check this checkpoint and exit (no training)
  std::string export_embeddings;  // write the final model as .npy files into this folder (empty: no)

  // NeuMF pre-training (He et al. 2017, section 3.4.1): start a --model neumf
  // run from a trained GMF and a trained MLP checkpoint (both or neither),
  // the output layer weighted alpha : 1 - alpha (ps/neumf_pretrain.h).
  std::string pretrain_gmf;
  std::string pretrain_mlp;
  double pretrain_alpha = 0.5;

  // Worker-side hot-row cache (README, "Hot-row cache"; worker/row_cache.h).
  // Rows each worker keeps; a cached row is refreshed at least every
  // `staleness` steps, so the cache is off when staleness < 2 (--sync).
  std::int64_t cache_rows = 0;

  // Large tables (README, "Large tables"; ps/server_shard.h).
  std::uint64_t max_memory_per_server = 0;  // bytes of table + admission state per server (0: no limit)
  std::uint64_t max_rows_per_server = 0;    // rows per server (0: no limit)
  std::string on_table_full = "error";      // error | evict (least recently touched rows)
  int min_count = 1;                        // a row is created at its key's N-th pushed sighting
  int expire_after = 0;                     // drop rows untouched for this many epochs (0: never)
};

// Parses a byte count with an optional K, M, G or T suffix (powers of 1024,
// optionally followed by "B" or "iB"): "512M", "1.5G", "1048576". Throws
// InputError naming `option` for anything else.
std::uint64_t ParseByteSize(const std::string& option, const std::string& text);

// The result of parsing: a Config, or the text to print and exit with 0
// (--help).
struct ParsedArgs {
  Config config;
  bool exit_now = false;
  std::string message;
};

// Parses argv. Options the user did not give take the model's tuned default
// (see ModelDefaults in config.cc). Throws InputError naming the option and
// what was expected for unknown options, malformed and out-of-range values.
ParsedArgs ParseArgs(int argc, const char* const* argv);

// Checks ranges and combinations; throws InputError. ParseArgs calls it.
void ValidateConfig(const Config& config);

// A one-line summary of the effective configuration.
std::string DescribeConfig(const Config& config);

// Most batches a worker may pull ahead (--prefetch is 0..kMaxPrefetch). At
// depth d a pull misses the worker's own last d pushes. 2 was measured
// 1.05-1.26x faster than 1 (within the machine's noise) but cost the towers'
// models 0.02-0.05 HR@10 against --sync on 16 ranks; 1 still costs MLP and
// Wide&Deep 0.02-0.03 there, so towers default to 0 (README, "Asynchronous
// vs synchronous").
constexpr int kMaxPrefetch = 2;

// The batches a worker does pull ahead: --prefetch, at most --staleness
// (0 under --sync), and at most 1 with the row cache (on with --cache-rows
// and staleness >= 2), whose freshness bound (worker/row_cache.h) counts on
// a pulled row missing at most one push.
int PrefetchDepth(const Config& config);

}  // namespace recsys

#endif  // RECSYS_COMMON_CONFIG_H_
