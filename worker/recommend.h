// Top-K recommendations from a saved model (recsys_recommend): loads a
// checkpoint's weights into this process, re-reads the data the model was
// trained on (the settings come from the checkpoint's MANIFEST), and scores
// every candidate item of a user with the model's own Forward over batches
// built by BatchBuilder, as the evaluation does.
#ifndef RECSYS_WORKER_RECOMMEND_H_
#define RECSYS_WORKER_RECOMMEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/data/dataset.h"
#include "common/data/split.h"
#include "models/model.h"
#include "ps/checkpoint.h"
#include "worker/batcher.h"

namespace recsys {

// Which items are never recommended to a user.
enum class Exclude {
  kTrain,  // the user's training items (the held-out items of the split stay candidates, as in evaluation)
  kAll,    // every item of the user in the data
};

struct Recommendation {
  std::uint64_t item = 0;
  float score = 0.0f;  // the model's logit, as the evaluation ranks by
};

// The Config a checkpoint was trained with: model, dim, layers, dropout,
// init scale, seed, data and evaluation settings from its MANIFEST (the
// settings a resumed run must share). Throws InputError naming the manifest
// for a missing or malformed setting.
Config ConfigFromManifest(const std::string& manifest_path, const Manifest& manifest);

class Recommender {
 public:
  // Verifies and loads checkpoint `checkpoint` (a ckpt-<epoch> folder or a
  // --checkpoint-dir with LATEST) and reads its data; `data_override`, if
  // not empty, replaces the checkpoint's --data path (data moved since).
  // The whole model is held in this process. Throws InputError for a
  // missing or corrupted checkpoint, missing data, or a model whose tables
  // differ from the checkpoint's.
  Recommender(const std::string& checkpoint, const std::string& data_override);
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  // Throws InputError naming the first user that is not in the data.
  void CheckUsers(const std::vector<std::uint64_t>& users) const;

  // The k best items for `user` (in the data), best first; equal scores in
  // increasing item id. Fewer when fewer items are left after `exclude`.
  std::vector<Recommendation> TopK(std::uint64_t user, int k, Exclude exclude);

  const Config& config() const { return config_; }
  const std::string& checkpoint_dir() const { return dir_; }
  int epoch() const { return epoch_; }

 private:
  // The weights of one table: a sparse table's rows by key, or a dense block in row order.
  struct Table {
    TableSpec spec;
    std::unordered_map<Key, std::size_t> index;  // sparse: key -> row
    std::vector<Real> values;                    // rows x width
  };

  // Fills params_ with the rows of batch_.keys (sparse) and the dense blocks.
  void Gather();

  std::string dir_;
  int epoch_ = 0;
  Config config_;
  Dataset data_;
  std::vector<UserHistory> users_;
  std::unordered_map<std::uint64_t, std::size_t> user_index_;
  std::vector<Table> tables_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<BatchBuilder> batcher_;

  // Scratch for scoring.
  Batch batch_;
  std::vector<std::vector<Real>> storage_;
  ParamView params_;
  ModelState state_;
};

}  // namespace recsys

#endif  // RECSYS_WORKER_RECOMMEND_H_
