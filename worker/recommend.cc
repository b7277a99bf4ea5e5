#include "worker/recommend.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "common/data/item_universe.h"
#include "common/error.h"
#include "common/keys.h"
#include "worker/run.h"

namespace recsys {
namespace {

// Examples scored per Forward call.
constexpr std::size_t kChunk = 8192;

class SettingReader {
 public:
  SettingReader(const std::string& path, const Manifest& m) : path_(path), m_(m) {}
  std::string Get(const std::string& name) const {
    for (const auto& [n, v] : m_.settings) {
      if (n == name) return v;
    }
    ThrowInputError(path_, 0, Concat("setting ", name, " is not recorded (written by an older build?)"));
  }
  std::uint64_t U64(const std::string& name) const {
    const std::string v = Get(name);
    errno = 0;
    char* end = nullptr;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || v[0] == '-') Bad(name, v);
    return x;
  }
  double Double(const std::string& name) const {
    const std::string v = Get(name);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);  // hex floats too
    if (v.empty() || *end != '\0') Bad(name, v);
    return x;
  }
  bool OnOff(const std::string& name) const {
    const std::string v = Get(name);
    if (v != "on" && v != "off") Bad(name, v);
    return v == "on";
  }
  [[noreturn]] void Bad(const std::string& name, const std::string& v) const {
    ThrowInputError(path_, 0, Concat("setting ", name, " has a malformed value '", v, "'"));
  }

 private:
  const std::string& path_;
  const Manifest& m_;
};

std::vector<int> ParseIntList(const SettingReader& s, const std::string& name) {
  const std::string v = s.Get(name);
  std::vector<int> out;
  if (v == "none") return out;
  std::size_t pos = 0;
  while (pos <= v.size()) {
    const std::size_t comma = std::min(v.find(',', pos), v.size());
    const std::string part = v.substr(pos, comma - pos);
    char* end = nullptr;
    const long x = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || x <= 0) s.Bad(name, v);
    out.push_back(static_cast<int>(x));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

Config ConfigFromManifest(const std::string& path, const Manifest& m) {
  const SettingReader s(path, m);
  Config c;
  c.model = m.model;
  c.loss = s.Get("--loss");
  c.dim = static_cast<int>(s.U64("--dim"));
  c.layers = ParseIntList(s, "--layers");
  c.dropout = static_cast<float>(s.Double("--dropout"));
  c.init_scale = static_cast<float>(s.Double("--init-scale"));
  c.seed = s.U64("--seed");
  c.format = s.Get("--format");
  c.data = s.Get("--data");
  c.side_features = !s.OnOff("--no-side-features");
  c.users = s.U64("--users");
  c.items = s.U64("--items");
  c.interactions_per_user = static_cast<int>(s.U64("--interactions-per-user"));
  c.validation = s.OnOff("--validation");
  c.eval_candidates = s.Get("--eval-candidates");
  c.eval_full = s.OnOff("--eval-full");
  c.topk = ParseIntList(s, "--topk");
  return c;
}

Recommender::Recommender(const std::string& checkpoint, const std::string& data_override) {
  dir_ = ResolveCheckpoint(checkpoint);
  const Manifest m = VerifyCheckpoint(dir_);
  const std::string manifest_path = dir_ + "/MANIFEST";
  epoch_ = m.epoch;
  config_ = ConfigFromManifest(manifest_path, m);
  if (!data_override.empty()) config_.data = data_override;

  // The data exactly as the training run read it (all users here).
  data_ = ReadDataset(DataOptionsFrom(config_), [](std::uint64_t) { return true; });
  SplitStats stats;
  users_ = LeaveOneOutSplit(data_, config_.validation, &stats);
  for (std::size_t u = 0; u < users_.size(); ++u) user_index_[users_[u].user] = u;
  if (data_.items.empty() && data_.dense_items == 0) throw InputError("the data has no items");

  // The slot layout the coordinator agreed on (side features only if the run used them).
  const std::vector<std::uint8_t> slot_field =
      config_.side_features ? SlotLayout(data_.user_slot_fields, data_.item_slot_fields) : SlotLayout({}, {});
  model_ = MakeModel(ModelConfigFrom(config_, slot_field));
  CheckTables(manifest_path, m, model_->Tables());
  batcher_ = std::make_unique<BatchBuilder>(slot_field, &data_);

  tables_.resize(m.tables.size());
  for (std::size_t t = 0; t < m.tables.size(); ++t) {
    Table& table = tables_[t];
    table.spec = m.tables[t];
    if (table.spec.dense()) {
      // Every row starts at the value a server would create it with.
      const std::size_t width = static_cast<std::size_t>(table.spec.width);
      table.values.resize(static_cast<std::size_t>(table.spec.dense_rows()) * width);
      for (std::int64_t r = 0; r < table.spec.dense_rows(); ++r) {
        InitRow(table.spec, config_.seed, MakeKey(kFieldDense, static_cast<std::uint64_t>(r)),
                table.values.data() + static_cast<std::size_t>(r) * width);
      }
    }
  }
  for (const ShardFileInfo& f : m.shards) {
    const std::string path = dir_ + "/" + f.name;
    const ShardFileInfo got = ReadShardFile(path, [&](const TableSpec& spec, int, Key key, const Real* values) {
      if (spec.id >= tables_.size()) ThrowInputError(path, 0, Concat("table ", spec.id, " is not in the MANIFEST"));
      Table& table = tables_[spec.id];
      const std::size_t width = static_cast<std::size_t>(spec.width);
      std::size_t row;
      if (spec.dense()) {
        row = static_cast<std::size_t>(ValueOf(key));  // checked by ReadShardFile
      } else {
        row = table.values.size() / width;
        table.index.emplace(key, row);
        table.values.resize(table.values.size() + width);
      }
      std::copy(values, values + width, table.values.begin() + static_cast<std::ptrdiff_t>(row * width));
    });
    if (got.checksum != f.checksum) {
      ThrowInputError(path, 0, "changed while it was being loaded (checksum differs from the verified one)");
    }
  }
  storage_.resize(tables_.size());
  params_.resize(tables_.size());
  state_.training = false;
}

void Recommender::CheckUsers(const std::vector<std::uint64_t>& users) const {
  for (std::uint64_t u : users) {
    if (user_index_.count(u) == 0) {
      throw InputError(Concat("user ", u, " is not in the data the model was trained on (--format ", config_.format,
                              config_.data.empty() ? "" : Concat(" --data ", config_.data), ", ", users_.size(),
                              " users)"));
    }
  }
}

void Recommender::Gather() {
  for (std::size_t t = 0; t < tables_.size(); ++t) {
    Table& table = tables_[t];
    const int width = table.spec.width;
    TableView& view = params_[t];
    view.width = width;
    if (table.spec.dense()) {
      view.data = table.values.data();
      view.rows = table.spec.dense_rows();
      continue;
    }
    std::vector<Real>& rows = storage_[t];
    rows.resize(batch_.keys.size() * static_cast<std::size_t>(width));
    for (std::size_t i = 0; i < batch_.keys.size(); ++i) {
      Real* out = rows.data() + i * static_cast<std::size_t>(width);
      const auto it = table.index.find(batch_.keys[i]);
      if (it == table.index.end()) {
        // A key the checkpoint lacks was never pulled; a server would create
        // it with these values.
        InitRow(table.spec, config_.seed, batch_.keys[i], out);
      } else {
        const Real* in = table.values.data() + it->second * static_cast<std::size_t>(width);
        std::copy(in, in + width, out);
      }
    }
    view.data = rows.data();
    view.rows = static_cast<std::int64_t>(batch_.keys.size());
  }
}

std::vector<Recommendation> Recommender::TopK(std::uint64_t user, int k, Exclude exclude) {
  CheckUsers({user});
  const UserHistory& h = users_[user_index_.at(user)];
  std::vector<std::uint64_t> excluded = exclude == Exclude::kAll ? h.positives : h.train;
  std::sort(excluded.begin(), excluded.end());

  std::vector<Recommendation> scored;
  std::vector<Example> examples;
  auto flush = [&] {
    if (examples.empty()) return;
    batcher_->Build(examples.data(), static_cast<int>(examples.size()), &batch_);
    Gather();
    model_->Forward(batch_, params_, &state_);
    for (std::size_t e = 0; e < examples.size(); ++e) {
      scored.push_back(Recommendation{examples[e].item, state_.logits[static_cast<Eigen::Index>(e)]});
    }
    examples.clear();
  };
  ItemUniverse(data_.dense_items, data_.items).ForEach([&](std::uint64_t item) {
    if (std::binary_search(excluded.begin(), excluded.end(), item)) return;
    examples.push_back(Example{user, item, 0.0f});
    if (examples.size() == kChunk) flush();
  });
  flush();
  const auto better = [](const Recommendation& a, const Recommendation& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  };
  const std::size_t n = std::min(scored.size(), static_cast<std::size_t>(std::max(k, 0)));
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(), better);
  scored.resize(n);
  return scored;
}

}  // namespace recsys
