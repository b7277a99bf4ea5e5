#include "common/config.h"

#include <cxxopts.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "common/error.h"

namespace recsys {
namespace {

// Tuned defaults of each model family (see README, "Quality"). An option the
// user gives on the command line overrides the model's default.
struct ModelDefaults {
  const char* model;
  int dim;
  float lr;
  float l2;
  int neg_ratio;
  int epochs;
  const char* optimizer;
  const char* layers;  // hidden widths of the deep tower ("" for none)
  float dropout;
};

constexpr ModelDefaults kModelDefaults[] = {
    {"mf", 32, 0.002f, 0.0f, 4, 20, "adam", "", 0.0f},
    // FM with side features does better on validation at lr 0.004 than
    // 0.002: HR@10 peak 0.705 / 0.703 vs 0.680 / 0.684 (seeds 1, 2; 3 ranks,
    // 20 epochs), epochs 16-20 mean 0.690 / 0.682 vs 0.675 / 0.679. Ids only
    // it is a wash (seed 1: peak 0.699 vs 0.688, epochs 16-20 0.677 vs
    // 0.686). README, "Quality against PyTorch".
    {"fm", 32, 0.004f, 0.0f, 4, 20, "adam", "", 0.0f},
    {"nfm", 32, 0.002f, 0.0f, 4, 20, "adam", "64", 0.2f},
    {"deepfm", 32, 0.001f, 0.0f, 4, 20, "adam", "64,32", 0.0f},
    {"wide_deep", 32, 0.001f, 0.0f, 4, 20, "adam", "64,32", 0.0f},
    // GMF overfits after ~10 epochs without L2: at 30 epochs, validation
    // HR@10 (mean of epochs 21-30, seed 1) 0.691 with L2 0.01 vs 0.663
    // with 0.001, 0.678 with lr 0.001 and L2 0.001 (README, "Quality").
    {"gmf", 32, 0.002f, 0.01f, 4, 20, "adam", "", 0.0f},
    // --adam-mode is lazy for every model (Config::adam_mode). With one
    // worker MLP learns more with dense (validation HR@10 peak over 20
    // epochs 0.681 / 0.689 / 0.679 vs lazy 0.673 / 0.673 / 0.676, seeds 1-3,
    // 3 ranks), but dense is exact only with --sync or one worker
    // (ps/optimizer.h); MF, GMF and NeuMF peak as high or higher lazy and
    // overfit less after (README, "Adam's bias correction, lazy and dense
    // rows").
    {"mlp", 32, 0.001f, 0.0f, 4, 20, "adam", "64,32,16", 0.0f},
    // NeuMF likewise peaks near epoch 12 and falls to ~0.60 HR@10 by epoch
    // 30 without L2. With Adam's bias correction by the global step (session
    // 7) L2 0.001 does better than 0.003: validation HR@10 peak over 20
    // epochs 0.702 vs 0.696 (medians of seeds 1-3), epochs 16-20 mean 0.682
    // vs 0.676. (Before, with per-row corrections, 0.003 won on the mean of
    // epochs 21-30, seed 1: 0.676 vs 0.667 with 0.01 and 0.656 with 0.001.)
    {"neumf", 32, 0.001f, 0.001f, 4, 20, "adam", "64,32,16", 0.0f},
};

// With --loss bpr, unless given (see ParseArgs).
constexpr float kBprLrScale = 3.75f;
constexpr float kBprL2 = 0.01f;
constexpr int kBprEpochs = 30;

const ModelDefaults* FindDefaults(const std::string& model) {
  for (const auto& d : kModelDefaults) {
    if (model == d.model) return &d;
  }
  return nullptr;
}

std::vector<int> ParseTopK(const std::string& text) {
  std::vector<int> ks;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    std::size_t used = 0;
    int k = 0;
    try {
      k = std::stoi(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != part.size() || k <= 0) {
      throw InputError(Concat("--topk: expected positive integers separated by commas (e.g. 10 or 5,10,20), got '",
                              text, "'"));
    }
    ks.push_back(k);
  }
  if (ks.empty()) throw InputError("--topk: expected at least one cut-off");
  if (text.back() == ',') throw InputError(Concat("--topk: trailing comma in '", text, "'"));
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

// "64,32,16" -> {64, 32, 16}; "" or "none" -> {} (no hidden layer).
std::vector<int> ParseLayers(const std::string& text) {
  std::vector<int> widths;
  if (text.empty() || text == "none") return widths;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    std::size_t used = 0;
    long width = 0;
    try {
      width = std::stol(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != part.size() || width <= 0 || width > 65536) {
      throw InputError(Concat("--layers: expected widths in [1, 65536] separated by commas (e.g. 64,32,16), or "
                              "'none', got '",
                              text, "'"));
    }
    widths.push_back(static_cast<int>(width));
  }
  if (!text.empty() && text.back() == ',') {
    throw InputError(Concat("--layers: trailing comma in '", text, "'"));
  }
  return widths;
}

// cxxopts reports a value it cannot convert ("Argument 'abc' failed to
// parse") without the option it was given to. Finds that option in argv
// ("--dim abc" or "--dim=abc") so the message can name it; "" if not found.
std::string OptionWithValue(int argc, const char* const* argv, const std::string& message) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) continue;
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq != std::string::npos ? arg.substr(eq + 1) : (i + 1 < argc ? argv[i + 1] : "");
    if (!value.empty() && message.find("\xE2\x80\x98" + value + "\xE2\x80\x99") != std::string::npos) return name;
    if (!value.empty() && message.find("'" + value + "'") != std::string::npos) return name;
  }
  return "";
}

}  // namespace

ParsedArgs ParseArgs(int argc, const char* const* argv) {
  cxxopts::Options options("recsys_worker",
                           "Distributed parameter-server trainer for recommender models.\n"
                           "Start under MPI: mpirun -n N recsys_worker [options]. Rank 0 coordinates,\n"
                           "ranks 1..S are parameter servers, the rest are workers.");
  Config d;  // defaults shown in --help
  // clang-format off
  options.add_options("Model")
    ("model", "Model: mf, fm, nfm, deepfm, wide_deep, gmf, mlp, neumf", cxxopts::value<std::string>()->default_value(d.model))
    ("loss", "Loss: bce (sampled negatives) or bpr (pairwise)", cxxopts::value<std::string>()->default_value(d.loss))
    ("dim", "Embedding dimension (model default)", cxxopts::value<int>())
    ("init-scale", "Std-dev of the initial embeddings", cxxopts::value<float>()->default_value("0.01"))
    ("l2", "L2 regularisation on the rows of each batch (model default)", cxxopts::value<float>())
    ("layers", "Hidden widths of the deep tower, e.g. 64,32,16, or none (model default)", cxxopts::value<std::string>())
    ("dropout", "Dropout rate in [0, 1) of the deep models in training (model default)", cxxopts::value<float>());
  options.add_options("Training")
    ("optimizer", "Server-side optimizer: sgd, adagrad, adam (model default)", cxxopts::value<std::string>())
    ("lr", "Learning rate (model default)", cxxopts::value<float>())
    ("dense-lr", "Learning rate of the dense blocks, the towers' weights (default: --lr)", cxxopts::value<float>())
    ("adam-mode", "Adam on the embedding rows: lazy (a row moves only when it gets a gradient) or dense (it also takes "
                  "the steps it missed, as under dense Adam)", cxxopts::value<std::string>()->default_value("lazy"))
    ("epochs", "Training epochs (model default)", cxxopts::value<int>())
    ("batch-size", "Examples (positives and negatives) per batch", cxxopts::value<int>()->default_value("256"))
    ("neg-ratio", "Sampled negatives per positive, resampled every epoch (model default)", cxxopts::value<int>());
  options.add_options("Data")
    ("format", "Data format: synthetic, ml-100k, ml-1m, ncf, csv", cxxopts::value<std::string>()->default_value(d.format))
    ("data", "Folder (ml-*), prefix (ncf) or file (csv)", cxxopts::value<std::string>()->default_value(""))
    ("no-side-features", "Use user and item ids only, even if the data has side features")
    ("users", "synthetic: number of users", cxxopts::value<std::uint64_t>()->default_value(std::to_string(d.users)))
    ("items", "synthetic: number of items", cxxopts::value<std::uint64_t>()->default_value(std::to_string(d.items)))
    ("interactions-per-user", "synthetic: interactions per user", cxxopts::value<int>()->default_value(std::to_string(d.interactions_per_user)));
  options.add_options("Evaluation")
    ("eval-candidates", "NCF .test.negative file with each user's held-out item and candidates", cxxopts::value<std::string>()->default_value(""))
    ("eval-full", "Rank the held-out item against all items the user has not interacted with")
    ("eval-negatives", "Sampled candidates per user", cxxopts::value<int>()->default_value("99"))
    ("topk", "Cut-offs K for HR@K and NDCG@K, e.g. 10 or 5,10,20", cxxopts::value<std::string>()->default_value("10"))
    ("validation", "Hold out each user's second-latest interaction to choose the reported epoch")
    ("patience", "With --validation: stop after N epochs without a better validation HR (0: never)", cxxopts::value<int>()->default_value("0"));
  options.add_options("Parameter servers")
    ("servers", "Number of parameter-server ranks (default: a quarter of the ranks)", cxxopts::value<int>()->default_value("0"))
    ("staleness", "Unacknowledged pushes a worker may have in flight", cxxopts::value<int>()->default_value(std::to_string(d.staleness)))
    ("prefetch", "Batches a worker pulls ahead of the one it computes, 0 to 2, at most --staleness (default: 0 for models with a deep tower, else 1)", cxxopts::value<int>())
    ("sync", "Synchronous, deterministic training (staleness 0, bulk-synchronous servers)");
  options.add_options("Hot-row cache")
    ("cache-rows", "Rows of the most frequently pulled keys each worker keeps and serves locally, refreshed at least every --staleness steps (0: no cache; off with --staleness < 2 or --sync)", cxxopts::value<std::int64_t>()->default_value("0"));
  options.add_options("Run")
    ("seed", "Random seed (data, initialisation, sampling)", cxxopts::value<std::uint64_t>()->default_value("1"))
    ("metrics-out", "Write one JSON object per epoch to this file", cxxopts::value<std::string>()->default_value(""))
    ("stall-timeout", "Abort the job, naming the rank, when a rank makes no progress for this many seconds (0: never)", cxxopts::value<double>()->default_value("0"))
    ("h,help", "Print this help");
  options.add_options("Checkpoints")
    ("checkpoint-dir", "Write checkpoints into this folder (every epoch unless --checkpoint-every/--checkpoint-minutes)", cxxopts::value<std::string>()->default_value(""))
    ("checkpoint-every", "Checkpoint every N epochs (and after the last)", cxxopts::value<int>())
    ("checkpoint-minutes", "Also checkpoint at the first epoch end M minutes after the previous checkpoint", cxxopts::value<double>()->default_value("0"))
    ("keep-checkpoints", "Complete checkpoints to keep, newest first", cxxopts::value<int>()->default_value("2"))
    ("resume", "Continue the run saved in this checkpoint (a --checkpoint-dir, using its LATEST, or one ckpt-<epoch> folder)", cxxopts::value<std::string>()->default_value(""))
    ("init-from", "Start a fresh run from the weights of this checkpoint (same model and tables)", cxxopts::value<std::string>()->default_value(""))
    ("eval-only", "Evaluate the model of --resume or --init-from once, and exit")
    ("verify-checkpoint", "Check this checkpoint (manifest, sizes, checksums) and exit", cxxopts::value<std::string>()->default_value(""))
    ("export-embeddings", "At the end of the run (or with --eval-only), write every table as DIR/<table>.npy with its ids and DIR/tables.json", cxxopts::value<std::string>()->default_value(""))
    ("pretrain-gmf", "NeuMF: start from this trained GMF checkpoint (with --pretrain-mlp)", cxxopts::value<std::string>()->default_value(""))
    ("pretrain-mlp", "NeuMF: start from this trained MLP checkpoint (with --pretrain-gmf)", cxxopts::value<std::string>()->default_value(""))
    ("pretrain-alpha", "NeuMF pre-training: weight of GMF's output layer (MLP's: 1 - alpha)", cxxopts::value<double>()->default_value("0.5"));
  options.add_options("Large tables")
    ("max-memory-per-server", "Bound on each server's table and admission bytes, e.g. 512M, 4G (0: none)", cxxopts::value<std::string>()->default_value("0"))
    ("max-rows-per-server", "Bound on each server's rows (0: none)", cxxopts::value<std::uint64_t>()->default_value("0"))
    ("on-table-full", "At a bound: error (stop the job) or evict (drop the least recently touched rows)", cxxopts::value<std::string>()->default_value("error"))
    ("min-count", "Create a row only at its key's N-th sighting in pushes (1: at once)", cxxopts::value<int>()->default_value("1"))
    ("expire-after", "Drop rows not touched for E epochs, at epoch ends (0: never)", cxxopts::value<int>()->default_value("0"));
  // clang-format on

  ParsedArgs parsed;
  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
    const std::string option = OptionWithValue(argc, argv, e.what());
    throw InputError(Concat(option.empty() ? "" : option + ": ", e.what(), " (see --help)"));
  } catch (const cxxopts::exceptions::exception& e) {
    throw InputError(Concat(e.what(), " (see --help)"));
  }
  if (r.count("help")) {
    parsed.exit_now = true;
    parsed.message = options.help();
    return parsed;
  }
  if (!r.unmatched().empty()) {
    throw InputError(Concat("unexpected argument '", r.unmatched().front(), "' (see --help)"));
  }

  Config& c = parsed.config;
  try {
    c.model = r["model"].as<std::string>();
    const ModelDefaults* md = FindDefaults(c.model);
    if (md == nullptr) {
      std::string names;
      for (const auto& m : kModelDefaults) names += Concat(names.empty() ? "" : ", ", m.model);
      throw InputError(Concat("--model: unknown model '", c.model, "'; expected one of: ", names));
    }
    c.dim = r.count("dim") ? r["dim"].as<int>() : md->dim;
    c.lr = r.count("lr") ? r["lr"].as<float>() : md->lr;
    if (r.count("dense-lr")) {
      c.dense_lr = r["dense-lr"].as<float>();
      // 0 stands for "as --lr" inside; given, it must be a step.
      if (c.dense_lr == 0.0f) throw InputError("--dense-lr must be positive, got 0");
    }
    c.l2 = r.count("l2") ? r["l2"].as<float>() : md->l2;
    c.epochs = r.count("epochs") ? r["epochs"].as<int>() : md->epochs;
    if (r["loss"].as<std::string>() == "bpr") {
      // BPR trains on one pair per positive, 2.5x fewer examples per epoch
      // than BCE with 4 negatives: a larger step, more epochs (each costs
      // 40% of a BCE epoch) and L2 against the overfitting the larger step
      // brings. Chosen on --validation for MF on MovieLens-100k (README,
      // "Quality"): best validation HR@10 0.699 (lr 0.0075, L2 0.01) vs
      // 0.695 (lr 0.005, L2 0.01), 0.685 (lr 0.005, no L2), 0.674 (lr 0.01).
      if (!r.count("lr")) c.lr = md->lr * kBprLrScale;
      if (!r.count("l2")) c.l2 = kBprL2;
      if (!r.count("epochs")) c.epochs = kBprEpochs;
    }
    c.neg_ratio = r.count("neg-ratio") ? r["neg-ratio"].as<int>() : md->neg_ratio;
    c.optimizer = r.count("optimizer") ? r["optimizer"].as<std::string>() : md->optimizer;
    c.adam_mode = r["adam-mode"].as<std::string>();
    c.layers = ParseLayers(r.count("layers") ? r["layers"].as<std::string>() : std::string(md->layers));
    c.dropout = r.count("dropout") ? r["dropout"].as<float>() : md->dropout;
    c.loss = r["loss"].as<std::string>();
    c.init_scale = r["init-scale"].as<float>();
    c.batch_size = r["batch-size"].as<int>();
    c.format = r["format"].as<std::string>();
    c.data = r["data"].as<std::string>();
    c.side_features = r.count("no-side-features") == 0;
    c.users = r["users"].as<std::uint64_t>();
    c.items = r["items"].as<std::uint64_t>();
    c.interactions_per_user = r["interactions-per-user"].as<int>();
    c.eval_candidates = r["eval-candidates"].as<std::string>();
    c.eval_full = r.count("eval-full") > 0;
    c.eval_negatives = r["eval-negatives"].as<int>();
    c.topk = ParseTopK(r["topk"].as<std::string>());
    c.validation = r.count("validation") > 0;
    c.patience = r["patience"].as<int>();
    c.servers = r["servers"].as<int>();
    c.staleness = r["staleness"].as<int>();
    // Towers' dense blocks, shared by every worker, learn more slowly when a
    // worker's pull misses its own last push (measured, README).
    c.prefetch = r.count("prefetch") ? r["prefetch"].as<int>() : (c.layers.empty() ? 1 : 0);
    c.sync = r.count("sync") > 0;
    c.seed = r["seed"].as<std::uint64_t>();
    c.metrics_out = r["metrics-out"].as<std::string>();
    c.stall_timeout = r["stall-timeout"].as<double>();
    c.checkpoint_dir = r["checkpoint-dir"].as<std::string>();
    c.checkpoint_minutes = r["checkpoint-minutes"].as<double>();
    // --checkpoint-dir alone: every epoch.
    c.checkpoint_every = r.count("checkpoint-every") ? r["checkpoint-every"].as<int>()
                         : (!c.checkpoint_dir.empty() && c.checkpoint_minutes == 0 ? 1 : 0);
    c.keep_checkpoints = r["keep-checkpoints"].as<int>();
    c.resume = r["resume"].as<std::string>();
    c.init_from = r["init-from"].as<std::string>();
    c.eval_only = r.count("eval-only") > 0;
    c.verify_checkpoint = r["verify-checkpoint"].as<std::string>();
    c.export_embeddings = r["export-embeddings"].as<std::string>();
    c.pretrain_gmf = r["pretrain-gmf"].as<std::string>();
    c.pretrain_mlp = r["pretrain-mlp"].as<std::string>();
    c.pretrain_alpha = r["pretrain-alpha"].as<double>();
    c.cache_rows = r["cache-rows"].as<std::int64_t>();
    c.max_memory_per_server = ParseByteSize("--max-memory-per-server", r["max-memory-per-server"].as<std::string>());
    c.max_rows_per_server = r["max-rows-per-server"].as<std::uint64_t>();
    c.on_table_full = r["on-table-full"].as<std::string>();
    c.min_count = r["min-count"].as<int>();
    c.expire_after = r["expire-after"].as<int>();
  } catch (const cxxopts::exceptions::exception& e) {
    throw InputError(Concat(e.what(), " (see --help)"));
  }
  if (c.sync) c.staleness = 0;
  ValidateConfig(c);
  return parsed;
}

void ValidateConfig(const Config& c) {
  auto positive = [](const char* name, double v) {
    if (!(v > 0) || !std::isfinite(v)) throw InputError(Concat(name, " must be positive, got ", v));
  };
  positive("--dim", c.dim);
  positive("--epochs", c.epochs);
  positive("--batch-size", c.batch_size);
  positive("--lr", c.lr);
  if (c.dense_lr != 0.0f) positive("--dense-lr", c.dense_lr);
  positive("--eval-negatives", c.eval_negatives);
  if (c.patience < 0) throw InputError(Concat("--patience must be >= 0, got ", c.patience));
  if (c.patience > 0 && !c.validation) throw InputError("--patience needs --validation (early stopping never looks at the test set)");
  if (c.dim > 4096) throw InputError(Concat("--dim must be at most 4096, got ", c.dim));
  if (c.neg_ratio < 1) throw InputError(Concat("--neg-ratio must be at least 1, got ", c.neg_ratio));
  if (c.loss == "bpr" && c.neg_ratio != 1) {
    // BPR pairs each positive with exactly one negative.
  }
  if (!(c.l2 >= 0) || !std::isfinite(c.l2)) throw InputError(Concat("--l2 must be >= 0, got ", c.l2));
  if (!(c.init_scale >= 0) || !std::isfinite(c.init_scale)) {
    throw InputError(Concat("--init-scale must be >= 0, got ", c.init_scale));
  }
  for (int w : c.layers) {
    if (w <= 0 || w > 65536) throw InputError(Concat("--layers: widths must be in [1, 65536], got ", w));
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) throw InputError(Concat("--dropout must be in [0, 1), got ", c.dropout));
  if (c.staleness < 0) throw InputError(Concat("--staleness must be >= 0, got ", c.staleness));
  if (c.prefetch < 0 || c.prefetch > kMaxPrefetch) {
    throw InputError(Concat("--prefetch must be 0, 1 or 2, got ", c.prefetch));
  }
  if (c.cache_rows < 0 || c.cache_rows >= (std::int64_t{1} << 30)) {
    throw InputError(Concat("--cache-rows must be in [0, 2^30), got ", c.cache_rows));
  }
  if (c.loss != "bce" && c.loss != "bpr") {
    throw InputError(Concat("--loss: unknown loss '", c.loss, "'; expected one of: bce, bpr"));
  }
  if (c.optimizer != "sgd" && c.optimizer != "adagrad" && c.optimizer != "adam") {
    throw InputError(Concat("--optimizer: unknown optimizer '", c.optimizer, "'; expected one of: sgd, adagrad, adam"));
  }
  if (c.adam_mode != "lazy" && c.adam_mode != "dense") {
    throw InputError(Concat("--adam-mode: unknown mode '", c.adam_mode, "'; expected one of: lazy, dense"));
  }
  static const char* kFormats[] = {"synthetic", "ml-100k", "ml-1m", "ncf", "csv"};
  if (std::find_if(std::begin(kFormats), std::end(kFormats), [&](const char* f) { return c.format == f; }) ==
      std::end(kFormats)) {
    throw InputError(Concat("--format: unknown format '", c.format, "'; expected one of: synthetic, ml-100k, ml-1m, ncf, csv"));
  }
  if (c.format != "synthetic" && c.data.empty()) throw InputError(Concat("--format ", c.format, " needs --data"));
  if (c.format == "synthetic") {
    positive("--users", static_cast<double>(c.users));
    positive("--items", static_cast<double>(c.items));
    if (c.interactions_per_user < 2) {
      throw InputError(Concat("--interactions-per-user must be at least 2, got ", c.interactions_per_user));
    }
    if (static_cast<std::uint64_t>(c.interactions_per_user) >= c.items) {
      throw InputError(Concat("--interactions-per-user (", c.interactions_per_user, ") must be below --items (",
                              c.items, ")"));
    }
  }
  if (c.eval_full && !c.eval_candidates.empty()) {
    throw InputError("--eval-full and --eval-candidates exclude each other");
  }
  if (c.servers < 0) throw InputError(Concat("--servers must be positive, got ", c.servers));
  if (!(c.stall_timeout >= 0) || !std::isfinite(c.stall_timeout)) {
    throw InputError(Concat("--stall-timeout must be >= 0 seconds, got ", c.stall_timeout));
  }
  if (c.checkpoint_every < 0) throw InputError(Concat("--checkpoint-every must be >= 0, got ", c.checkpoint_every));
  if (!(c.checkpoint_minutes >= 0) || !std::isfinite(c.checkpoint_minutes)) {
    throw InputError(Concat("--checkpoint-minutes must be >= 0, got ", c.checkpoint_minutes));
  }
  if (c.checkpoint_dir.empty() && (c.checkpoint_every > 0 || c.checkpoint_minutes > 0)) {
    throw InputError("--checkpoint-every and --checkpoint-minutes need --checkpoint-dir");
  }
  if (c.keep_checkpoints < 1) throw InputError(Concat("--keep-checkpoints must be at least 1, got ", c.keep_checkpoints));
  if (!c.resume.empty() && !c.init_from.empty()) throw InputError("--resume and --init-from exclude each other");
  if (c.eval_only && c.resume.empty() && c.init_from.empty()) {
    throw InputError("--eval-only needs a model to evaluate: give --init-from DIR or --resume DIR");
  }
  const bool pretrain = !c.pretrain_gmf.empty() || !c.pretrain_mlp.empty();
  if (pretrain) {
    if (c.pretrain_gmf.empty() || c.pretrain_mlp.empty()) {
      throw InputError("--pretrain-gmf and --pretrain-mlp go together: NeuMF pre-training needs both checkpoints");
    }
    if (c.model != "neumf") {
      throw InputError(Concat("--pretrain-gmf/--pretrain-mlp initialise a NeuMF model; this run trains '", c.model,
                              "' (use --model neumf)"));
    }
    if (!c.resume.empty() || !c.init_from.empty()) {
      throw InputError("--pretrain-gmf/--pretrain-mlp exclude --resume and --init-from");
    }
  }
  if (!(c.pretrain_alpha >= 0.0 && c.pretrain_alpha <= 1.0)) {
    throw InputError(Concat("--pretrain-alpha must be in [0, 1], got ", c.pretrain_alpha));
  }
  // Large tables.
  if (c.on_table_full != "error" && c.on_table_full != "evict") {
    throw InputError(Concat("--on-table-full: expected error or evict, got '", c.on_table_full, "'"));
  }
  if (c.on_table_full == "evict" && c.max_memory_per_server == 0 && c.max_rows_per_server == 0) {
    throw InputError("--on-table-full evict needs --max-memory-per-server or --max-rows-per-server");
  }
  if (c.min_count < 1 || c.min_count > 255) throw InputError(Concat("--min-count must be in [1, 255], got ", c.min_count));
  if (c.expire_after < 0) throw InputError(Concat("--expire-after must be >= 0 epochs, got ", c.expire_after));
}

std::uint64_t ParseByteSize(const std::string& option, const std::string& text) {
  const auto fail = [&]() -> std::uint64_t {
    throw InputError(Concat(option, ": expected a byte count such as 1048576, 512M or 4G (K, M, G, T: powers of 1024), got '",
                            text, "'"));
  };
  std::size_t end = 0;
  while (end < text.size() && ((text[end] >= '0' && text[end] <= '9') || text[end] == '.')) ++end;
  if (end == 0) return fail();
  errno = 0;
  char* parsed_end = nullptr;
  const std::string number = text.substr(0, end);
  const double value = std::strtod(number.c_str(), &parsed_end);
  if (errno != 0 || parsed_end != number.c_str() + number.size() || !std::isfinite(value)) return fail();
  std::string suffix = text.substr(end);
  for (char& ch : suffix) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double scale = 1;
  if (!suffix.empty()) {
    static const char* kUnits = "KMGT";
    const char* u = std::strchr(kUnits, suffix[0]);
    if (u == nullptr || suffix[0] == '\0') {
      if (suffix != "B") return fail();
    } else {
      for (const char* p = kUnits; p <= u; ++p) scale *= 1024;
      const std::string rest = suffix.substr(1);
      if (!rest.empty() && rest != "B" && rest != "IB") return fail();
    }
  }
  const double bytes = value * scale;
  if (bytes >= 18446744073709551615.0) return fail();
  if (bytes != std::floor(bytes) && scale == 1) return fail();  // fractional bytes
  return static_cast<std::uint64_t>(bytes);
}

int PrefetchDepth(const Config& c) {
  const bool cache = c.cache_rows > 0 && c.staleness >= 2;
  return std::min({c.prefetch, c.staleness, cache ? 1 : kMaxPrefetch});
}

std::string DescribeConfig(const Config& c) {
  std::string ks;
  for (int k : c.topk) ks += Concat(ks.empty() ? "" : ",", k);
  std::string layers;
  for (int w : c.layers) layers += Concat(layers.empty() ? "" : ",", w);
  return Concat("model=", c.model, " loss=", c.loss, " dim=", c.dim,
                c.layers.empty() ? "" : Concat(" layers=", layers),
                c.dropout > 0 ? Concat(" dropout=", c.dropout) : std::string(), " optimizer=", c.optimizer, " lr=", c.lr,
                c.dense_lr != 0.0f ? Concat(" dense_lr=", c.dense_lr) : std::string(),
                c.optimizer == "adam" && c.adam_mode != "lazy" ? Concat(" adam_mode=", c.adam_mode) : std::string(),
                " l2=", c.l2, " epochs=", c.epochs, " batch=", c.batch_size, " neg=", c.neg_ratio,
                " format=", c.format, c.data.empty() ? "" : Concat(" data=", c.data),
                " side_features=", c.side_features ? "on" : "off", " eval=",
                c.eval_full ? "full" : (c.eval_candidates.empty() ? Concat(c.eval_negatives, " sampled") : "file"),
                " topk=", ks, c.validation ? " validation" : "", " staleness=", c.staleness,
                c.sync ? " sync" : Concat(" prefetch=", PrefetchDepth(c), " async"),
                c.cache_rows > 0 ? Concat(" cache_rows=", c.cache_rows, c.staleness < 2 ? " (off: staleness < 2)" : "")
                                 : std::string(),
                " seed=", c.seed);
}

}  // namespace recsys
