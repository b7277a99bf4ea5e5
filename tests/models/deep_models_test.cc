// Tests of the deep model families (NFM, DeepFM, Wide&Deep, GMF, MLP, NeuMF):
// registry and table layouts, forward passes against naive double-precision
// references, and numerical gradient checks of every parameter of every
// table (sparse and dense) for every (model, loss, batch shape).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/keys.h"
#include "models/layers.h"
#include "models/loss.h"
#include "models/model.h"
#include "tests/models/model_test_util.h"

namespace recsys {
namespace {

using namespace testing_util;  // NOLINT(build/namespaces): test helpers

const std::vector<std::string> kDeepModels = {"nfm", "deepfm", "wide_deep", "gmf", "mlp", "neumf"};

ModelConfig DeepConfig(const std::string& name, int dim, const std::vector<std::uint8_t>& slot_field,
                       std::vector<int> layers, float dropout = 0.0f) {
  ModelConfig config = Config(name, dim, slot_field);
  config.layers = std::move(layers);
  config.dropout = dropout;
  return config;
}

// The index of the table called `name`; fails the test if there is none.
TableId TableNamed(const Model& model, const std::string& name) {
  for (const TableSpec& spec : model.Tables())
    if (spec.name == name) return spec.id;
  ADD_FAILURE() << model.name() << " has no table " << name;
  return 0;
}

// ---- Registry and layout ----

TEST(ModelRegistry, AcceptsAllEightModels) {
  const std::vector<std::string> names = ModelNames();
  EXPECT_EQ(names.size(), 8u);
  for (const std::string& name : names) {
    const auto model = MakeModel(DeepConfig(name, 4, kWithSides, {8, 4}));
    EXPECT_EQ(model->name(), name);
    const std::vector<TableSpec>& tables = model->Tables();
    ASSERT_FALSE(tables.empty());
    EXPECT_FALSE(tables[0].dense()) << name << ": table 0 is the sparse embedding";
    for (size_t t = 0; t < tables.size(); ++t) {
      EXPECT_EQ(tables[t].id, t) << name;
      if (t > 0) {
        EXPECT_TRUE(tables[t].dense()) << name << " " << tables[t].name;
      }
    }
  }
}

TEST(ModelRegistry, RejectsBadLayersAndDropout) {
  for (const std::string& name : ModelNames()) {
    for (const std::vector<int>& layers : {std::vector<int>{64, 0}, std::vector<int>{-3}, std::vector<int>{1 << 20}}) {
      try {
        MakeModel(DeepConfig(name, 4, kUserItem, layers));
        FAIL() << name << ": expected InputError";
      } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--layers"), std::string::npos) << e.what();
      }
    }
    for (float dropout : {-0.1f, 1.0f, 1.5f, std::nanf("")}) {
      try {
        MakeModel(DeepConfig(name, 4, kUserItem, {4}, dropout));
        FAIL() << name << ": expected InputError for dropout " << dropout;
      } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--dropout"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(ModelRegistry, DeepModelsAcceptNoHiddenLayers) {
  for (const std::string& name : kDeepModels) EXPECT_NO_THROW(MakeModel(DeepConfig(name, 4, kWithSides, {}))) << name;
}

TEST(ModelRegistry, NcfNeedsUserAndItemSlots) {
  for (const char* name : {"gmf", "mlp", "neumf"}) {
    EXPECT_THROW(MakeModel(DeepConfig(name, 4, {kFieldItem, kFieldUser}, {4})), InternalError) << name;
  }
}

TEST(ModelTables, DeepFmLayout) {
  // kWithSides has 4 fields (user, item, age, genre): tower input 4 * 4 = 16.
  const auto model = MakeModel(DeepConfig("deepfm", 4, kWithSides, {5, 3}));
  const std::vector<TableSpec>& t = model->Tables();
  ASSERT_EQ(t.size(), 7u);
  const std::vector<std::string> names = {"emb", "w0", "deep0.w", "deep0.b", "deep1.w", "deep1.b", "h"};
  const std::vector<std::int64_t> sizes = {0, 1, 16 * 5, 5, 5 * 3, 3, 3};
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].name, names[i]);
    EXPECT_EQ(t[i].dense_size, sizes[i]) << names[i];
  }
  EXPECT_EQ(t[0].width, 5);
  EXPECT_EQ(t[2].width, kDenseRowWidth);
  EXPECT_EQ(t[2].dense_rows(), 2);  // 80 floats: one full row and a padded one
  EXPECT_EQ(t[2].init, InitKind::kUniform);
  EXPECT_FLOAT_EQ(t[2].init_scale, std::sqrt(6.0f / (16 + 5)));
  EXPECT_EQ(t[3].init, InitKind::kZeros);
  EXPECT_EQ(t[6].init, InitKind::kUniform);
  EXPECT_FLOAT_EQ(t[6].init_scale, std::sqrt(6.0f / (3 + 1)));
}

TEST(ModelTables, NcfLayouts) {
  const auto gmf = MakeModel(DeepConfig("gmf", 8, kWithSides, {16, 4}));
  ASSERT_EQ(gmf->Tables().size(), 3u);  // emb, h, b: no tower
  EXPECT_EQ(gmf->Tables()[0].width, 8);
  EXPECT_EQ(gmf->Tables()[TableNamed(*gmf, "h")].dense_size, 8);
  EXPECT_EQ(gmf->Tables()[TableNamed(*gmf, "b")].dense_size, 1);

  const auto mlp = MakeModel(DeepConfig("mlp", 8, kWithSides, {16, 4}));
  EXPECT_EQ(mlp->Tables()[0].width, 8);
  EXPECT_EQ(mlp->Tables()[TableNamed(*mlp, "mlp0.w")].dense_size, 16 * 16);
  EXPECT_EQ(mlp->Tables()[TableNamed(*mlp, "h")].dense_size, 4);

  const auto neumf = MakeModel(DeepConfig("neumf", 8, kWithSides, {16, 4}));
  EXPECT_EQ(neumf->Tables()[0].width, 16);  // GMF and MLP embeddings side by side
  EXPECT_EQ(neumf->Tables()[TableNamed(*neumf, "h")].dense_size, 8 + 4);
}

// ---- Naive references in double ----

// h^T relu-tower(input) with the tower's blocks read from `params` starting
// at table `first`, layer widths `widths`; `h` is the output table.
double NaiveTower(std::vector<double> a, const ParamView& params, TableId first, const std::vector<int>& widths,
                  TableId h) {
  TableId t = first;
  for (int out : widths) {
    const Real* w = params[t].data;
    const Real* b = params[t + 1].data;
    std::vector<double> next(static_cast<size_t>(out));
    for (int j = 0; j < out; ++j) {
      double z = b[j];
      for (size_t i = 0; i < a.size(); ++i) z += a[i] * w[i * static_cast<size_t>(out) + static_cast<size_t>(j)];
      next[static_cast<size_t>(j)] = std::max(0.0, z);
    }
    a = next;
    t += 2;
  }
  double logit = 0;
  for (size_t i = 0; i < a.size(); ++i) logit += a[i] * params[h].data[i];
  return logit;
}

// The per-field pooled embeddings of example e: fields in order of first
// appearance, each the sum of x_s v_s over its slots.
std::vector<double> NaivePooled(const Batch& batch, const TableView& emb, int dim, int e) {
  std::vector<std::uint8_t> fields;
  for (std::uint8_t f : batch.slot_field)
    if (std::find(fields.begin(), fields.end(), f) == fields.end()) fields.push_back(f);
  std::vector<double> pooled(fields.size() * static_cast<size_t>(dim), 0.0);
  for (int s = 0; s < batch.slots; ++s) {
    const int r = batch.Row(e, s);
    if (r < 0) continue;
    const size_t f = static_cast<size_t>(
        std::find(fields.begin(), fields.end(), batch.slot_field[static_cast<size_t>(s)]) - fields.begin());
    for (int k = 0; k < dim; ++k) pooled[f * static_cast<size_t>(dim) + static_cast<size_t>(k)] += batch.Value(e, s) * emb.Row(r)[k];
  }
  return pooled;
}

// ---- NFM ----

TEST(NfmModel, BiInteractionEqualsNaivePairwiseSum) {
  // With no hidden layer, w = w0 = 0 and h the unit vector of factor f, the
  // logit is BI_f, which must equal sum_{s<t} x_s x_t v_{s,f} v_{t,f}.
  const int dim = 5;
  const auto model = MakeModel(DeepConfig("nfm", dim, kWithSides, {}));
  const Batch batch = SideFeatureBatch();
  Params params(model->Tables(), batch);
  std::mt19937 rng(31);
  params.Randomize(&rng, 1.0f);
  std::vector<Real>& emb = params.table(0);
  for (size_t r = 0; r < batch.keys.size(); ++r) emb[r * (dim + 1) + dim] = 0;  // linear weights
  params.table(1)[0] = 0;                                                      // w0
  const TableId h = TableNamed(*model, "h");
  for (int f = 0; f < dim; ++f) {
    std::fill(params.table(h).begin(), params.table(h).end(), 0.0f);
    params.table(h)[static_cast<size_t>(f)] = 1;
    ModelState state;
    state.training = false;
    model->Forward(batch, params.view(), &state);
    for (int e = 0; e < batch.size; ++e) {
      double naive = 0;
      for (int s = 0; s < batch.slots; ++s) {
        for (int t = s + 1; t < batch.slots; ++t) {
          const int rs = batch.Row(e, s), rt = batch.Row(e, t);
          if (rs < 0 || rt < 0) continue;
          naive += static_cast<double>(batch.Value(e, s)) * batch.Value(e, t) * params.view()[0].Row(rs)[f] *
                   params.view()[0].Row(rt)[f];
        }
      }
      EXPECT_NEAR(state.logits[e], naive, 1e-5) << "factor " << f << " example " << e;
    }
  }
}

TEST(NfmModel, MatchesNaiveForward) {
  const int dim = 4;
  const std::vector<int> layers = {6, 3};
  const auto model = MakeModel(DeepConfig("nfm", dim, kWithSides, layers));
  const Batch batch = SideFeatureBatch();
  Params params(model->Tables(), batch);
  std::mt19937 rng(32);
  params.Randomize(&rng, 0.8f);
  ModelState state;
  state.training = false;
  model->Forward(batch, params.view(), &state);
  const TableView& emb = params.view()[0];
  for (int e = 0; e < batch.size; ++e) {
    std::vector<double> sum(dim, 0.0), sq(dim, 0.0);
    double logit = params.table(1)[0];
    for (int s = 0; s < batch.slots; ++s) {
      const int r = batch.Row(e, s);
      if (r < 0) continue;
      const double x = batch.Value(e, s);
      logit += x * emb.Row(r)[dim];
      for (int k = 0; k < dim; ++k) {
        sum[static_cast<size_t>(k)] += x * emb.Row(r)[k];
        sq[static_cast<size_t>(k)] += x * x * emb.Row(r)[k] * emb.Row(r)[k];
      }
    }
    std::vector<double> bi(dim);
    for (size_t k = 0; k < bi.size(); ++k) bi[k] = 0.5 * (sum[k] * sum[k] - sq[k]);
    logit += NaiveTower(bi, params.view(), 2, layers, TableNamed(*model, "h"));
    EXPECT_NEAR(state.logits[e], logit, 1e-4) << e;
  }
}

TEST(NfmModel, DropoutOnlyInTraining) {
  const Batch batch = SideFeatureBatch();
  const auto plain = MakeModel(DeepConfig("nfm", 4, kWithSides, {6}));
  const auto dropped = MakeModel(DeepConfig("nfm", 4, kWithSides, {6}, 0.5f));
  Params params(plain->Tables(), batch);
  std::mt19937 rng(33);
  params.Randomize(&rng, 0.8f);
  ModelState a, b;
  a.training = false;
  b.training = false;
  plain->Forward(batch, params.view(), &a);
  dropped->Forward(batch, params.view(), &b);
  for (int e = 0; e < batch.size; ++e) EXPECT_EQ(a.logits[e], b.logits[e]) << e;
  b.training = true;
  dropped->Forward(batch, params.view(), &b);
  EXPECT_GT((a.logits - b.logits).cwiseAbs().maxCoeff(), 1e-4) << "dropout changed nothing in training";
}

// ---- DeepFM and Wide&Deep ----

TEST(DeepFmModel, FmPartEqualsFmModelWhenDeepOutputIsZero) {
  const int dim = 4;
  const Batch batch = SideFeatureBatch();
  const auto deepfm = MakeModel(DeepConfig("deepfm", dim, kWithSides, {5, 3}));
  const auto fm = MakeModel(Config("fm", dim, kWithSides));
  Params params(deepfm->Tables(), batch);
  std::mt19937 rng(41);
  params.Randomize(&rng, 0.7f);
  const TableId h = TableNamed(*deepfm, "h");
  std::fill(params.table(h).begin(), params.table(h).end(), 0.0f);
  Params fm_params(fm->Tables(), batch);
  fm_params.table(0) = params.table(0);
  fm_params.table(1) = params.table(1);
  ModelState a, b;
  deepfm->Forward(batch, params.view(), &a);
  fm->Forward(batch, fm_params.view(), &b);
  for (int e = 0; e < batch.size; ++e) EXPECT_NEAR(a.logits[e], b.logits[e], 1e-5) << e;
}

TEST(DeepFmModel, DeepPartMatchesNaivePooledTower) {
  const int dim = 3;
  const std::vector<int> layers = {5, 2};
  const Batch batch = SideFeatureBatch();
  const auto deepfm = MakeModel(DeepConfig("deepfm", dim, kWithSides, layers));
  const auto fm = MakeModel(Config("fm", dim, kWithSides));
  Params params(deepfm->Tables(), batch);
  std::mt19937 rng(42);
  params.Randomize(&rng, 0.7f);
  Params fm_params(fm->Tables(), batch);
  fm_params.table(0) = params.table(0);
  fm_params.table(1) = params.table(1);
  ModelState a, b;
  a.training = false;
  deepfm->Forward(batch, params.view(), &a);
  fm->Forward(batch, fm_params.view(), &b);
  for (int e = 0; e < batch.size; ++e) {
    const double deep =
        NaiveTower(NaivePooled(batch, params.view()[0], dim, e), params.view(), 2, layers, TableNamed(*deepfm, "h"));
    EXPECT_NEAR(a.logits[e], b.logits[e] + deep, 1e-4) << e;
  }
}

TEST(WideDeepModel, WideIsLinearAndDeepIsPooledTower) {
  const int dim = 3;
  const std::vector<int> layers = {4};
  const Batch batch = SideFeatureBatch();
  const auto model = MakeModel(DeepConfig("wide_deep", dim, kWithSides, layers));
  Params params(model->Tables(), batch);
  std::mt19937 rng(43);
  params.Randomize(&rng, 0.7f);
  ModelState state;
  state.training = false;
  model->Forward(batch, params.view(), &state);
  const TableView& emb = params.view()[0];
  for (int e = 0; e < batch.size; ++e) {
    double wide = params.table(1)[0];
    for (int s = 0; s < batch.slots; ++s) {
      if (batch.Row(e, s) >= 0) wide += static_cast<double>(batch.Value(e, s)) * emb.Row(batch.Row(e, s))[dim];
    }
    const double deep = NaiveTower(NaivePooled(batch, emb, dim, e), params.view(), 2, layers, TableNamed(*model, "h"));
    EXPECT_NEAR(state.logits[e], wide + deep, 1e-4) << e;
  }
}

TEST(WideDeepModel, PoolsMultiHotFieldsAsWeightedSums) {
  // One genre field of two slots with x = 1/2 pools to the mean of the two
  // genre embeddings; the same genre once with x = 1 to that embedding.
  const int dim = 2;
  const std::vector<std::uint8_t> fields = {kFieldUser, kFieldItem, kFieldGenre, kFieldGenre};
  const Batch batch = BuildBatch(fields,
                                 {{Slot(kFieldUser, 1), Slot(kFieldItem, 1), Slot(kFieldGenre, 1, 0.5f),
                                   Slot(kFieldGenre, 2, 0.5f)},
                                  {Slot(kFieldUser, 1), Slot(kFieldItem, 1), Slot(kFieldGenre, 1), kEmpty}},
                                 {1, 0});
  FieldPooling pooling(fields);
  EXPECT_EQ(pooling.fields(), 3);
  Params params(MakeModel(DeepConfig("wide_deep", dim, fields, {}))->Tables(), batch);
  params.table(0) = {1, 2, 0,  /* user */ 3, 4, 0, /* item */ 10, 20, 0, /* genre 1 */ 30, 40, 0 /* genre 2 */};
  RowMatrix pooled;
  pooling.Forward(batch, params.view()[0], dim, &pooled);
  RowMatrix expected(2, 6);
  expected << 1, 2, 3, 4, 20, 30,  //
      1, 2, 3, 4, 10, 20;
  EXPECT_TRUE(pooled.isApprox(expected)) << pooled;
}

// ---- NCF ----

TEST(GmfModel, OnesAndZeroBiasIsThePlainDotProduct) {
  const int dim = 6;
  const auto model = MakeModel(DeepConfig("gmf", dim, kWithSides, {}));
  const Batch batch = SideFeatureBatch();
  Params params(model->Tables(), batch);
  std::mt19937 rng(51);
  params.Randomize(&rng, 1.0f);
  std::fill(params.table(TableNamed(*model, "h")).begin(), params.table(TableNamed(*model, "h")).end(), 1.0f);
  params.table(TableNamed(*model, "b"))[0] = 0;
  ModelState state;
  model->Forward(batch, params.view(), &state);
  const TableView& emb = params.view()[0];
  for (int e = 0; e < batch.size; ++e) {
    double dot = 0;
    for (int k = 0; k < dim; ++k) dot += static_cast<double>(emb.Row(batch.Row(e, 0))[k]) * emb.Row(batch.Row(e, 1))[k];
    EXPECT_NEAR(state.logits[e], dot, 1e-5) << e;
  }
}

TEST(GmfModel, EmptyItemSlotGivesTheBias) {
  const auto model = MakeModel(DeepConfig("gmf", 3, kUserItem, {}));
  const Batch batch = BuildBatch(kUserItem, {{Slot(kFieldUser, 1), kEmpty}}, {1});
  Params params(model->Tables(), batch);
  std::mt19937 rng(52);
  params.Randomize(&rng, 1.0f);
  ModelState state;
  model->Forward(batch, params.view(), &state);
  EXPECT_FLOAT_EQ(state.logits[0], params.table(TableNamed(*model, "b"))[0]);
}

TEST(MlpModel, MatchesNaiveTowerOverConcatenation) {
  const int dim = 3;
  const std::vector<int> layers = {7, 4, 2};
  const auto model = MakeModel(DeepConfig("mlp", dim, kWithSides, layers));
  const Batch batch = SideFeatureBatch();
  Params params(model->Tables(), batch);
  std::mt19937 rng(53);
  params.Randomize(&rng, 0.8f);
  ModelState state;
  state.training = false;
  model->Forward(batch, params.view(), &state);
  const TableView& emb = params.view()[0];
  for (int e = 0; e < batch.size; ++e) {
    std::vector<double> x;
    for (int k = 0; k < dim; ++k) x.push_back(emb.Row(batch.Row(e, 0))[k]);
    for (int k = 0; k < dim; ++k) x.push_back(emb.Row(batch.Row(e, 1))[k]);
    const double logit =
        NaiveTower(x, params.view(), 1, layers, TableNamed(*model, "h")) + params.table(TableNamed(*model, "b"))[0];
    EXPECT_NEAR(state.logits[e], logit, 1e-4) << e;
  }
}

TEST(NeuMfModel, IsGmfPlusMlpOnSeparateEmbeddings) {
  const int dim = 3;
  const std::vector<int> layers = {5, 2};
  const auto model = MakeModel(DeepConfig("neumf", dim, kWithSides, layers));
  const Batch batch = SideFeatureBatch();
  Params params(model->Tables(), batch);
  std::mt19937 rng(54);
  params.Randomize(&rng, 0.8f);
  ModelState state;
  state.training = false;
  model->Forward(batch, params.view(), &state);
  const TableView& emb = params.view()[0];
  const Real* h = params.table(TableNamed(*model, "h")).data();
  for (int e = 0; e < batch.size; ++e) {
    const Real* u = emb.Row(batch.Row(e, 0));
    const Real* i = emb.Row(batch.Row(e, 1));
    double gmf = 0;
    for (int k = 0; k < dim; ++k) gmf += static_cast<double>(h[k]) * u[k] * i[k];
    std::vector<double> x;
    for (int k = 0; k < dim; ++k) x.push_back(u[dim + k]);
    for (int k = 0; k < dim; ++k) x.push_back(i[dim + k]);
    // The tower's output weights are h[dim..): view them as their own table.
    std::vector<Real> tail(h + dim, h + dim + layers.back());
    ParamView view = params.view();
    TableView tail_view;
    tail_view.data = tail.data();
    tail_view.rows = 1;
    tail_view.width = static_cast<int>(tail.size());
    view.push_back(tail_view);
    const double mlp = NaiveTower(x, view, 1, layers, static_cast<TableId>(view.size() - 1));
    EXPECT_NEAR(state.logits[e], gmf + mlp + params.table(TableNamed(*model, "b"))[0], 1e-4) << e;
  }
}

// ---- State reuse ----

TEST(ModelStateReuse, DeepModelsGiveTheSameLogitsWithAReusedState) {
  for (const std::string& name : kDeepModels) {
    SCOPED_TRACE(name);
    const auto model = MakeModel(DeepConfig(name, 4, kWithSides, {6, 3}));
    const Batch big = SideFeatureBatch();
    const Batch small = BuildBatch(kWithSides,
                                   {{Slot(kFieldUser, 1), Slot(kFieldItem, 2), kEmpty, Slot(kFieldGenre, 1), kEmpty}}, {1});
    Params big_params(model->Tables(), big), small_params(model->Tables(), small);
    std::mt19937 rng(9);
    big_params.Randomize(&rng, 0.5f);
    small_params.Randomize(&rng, 0.5f);
    ModelState shared, fresh;
    shared.training = fresh.training = false;
    model->Forward(big, big_params.view(), &shared);
    model->Forward(small, small_params.view(), &shared);
    model->Forward(small, small_params.view(), &fresh);
    ASSERT_EQ(shared.logits.size(), 1);
    EXPECT_EQ(shared.logits[0], fresh.logits[0]);
  }
}

// ---- Gradients ----

struct DeepGradCase {
  std::string model;
  std::string loss;
  bool sides;
  std::vector<int> layers;
  float dropout;  // > 0: checked in training mode with a fixed dropout mask
};

void PrintTo(const DeepGradCase& c, std::ostream* out) {
  *out << c.model << "/" << c.loss << (c.sides ? "/sides" : "/useritem") << "/layers" << c.layers.size() << "/dropout"
       << c.dropout;
}

std::string CaseName(const DeepGradCase& c) {
  std::string name = c.model + "_" + c.loss + (c.sides ? "_sides" : "_useritem") + "_L";
  for (int w : c.layers) name += std::to_string(w) + "x";
  if (c.dropout > 0) name += "_dropout";
  return name;
}

class DeepGradCheck : public ::testing::TestWithParam<DeepGradCase> {};

// Forward and loss with a dropout mask that is the same at every call: the
// state's generator restarts from one seed, so the draws repeat.
double LossWithFixedMask(const Model& model, const Loss& loss, const Batch& batch, const ParamView& params,
                         bool training, ModelState* state) {
  state->training = training;
  state->rng = SplitMix64(12345);
  model.Forward(batch, params, state);
  Vector dlogits;
  return loss.Compute(batch, state->logits, &dlogits);
}

// The analytic gradient of the total loss against central differences for
// every float of every table: every column of every sparse row (including a
// key no slot refers to, whose gradient must be zero), every weight and bias
// of the tower and the output, and the padding past dense_size in the last
// row of a dense block (zero too).
TEST_P(DeepGradCheck, EveryParameterMatchesCentralDifferences) {
  const DeepGradCase& c = GetParam();
  const int dim = 4;
  const Batch batch = c.sides ? SideFeatureBatch() : UserItemBatch();
  const auto model = MakeModel(DeepConfig(c.model, dim, batch.slot_field, c.layers, c.dropout));
  const auto loss = MakeLoss(c.loss);
  Params params(model->Tables(), batch);
  std::mt19937 rng(c.sides ? 121 : 117);
  params.Randomize(&rng, 0.6f);
  const bool training = c.dropout > 0;

  ModelState state;
  LossWithFixedMask(*model, *loss, batch, params.view(), training, &state);
  loss->Compute(batch, state.logits, &state.dlogits);
  Params grads(model->Tables(), batch);  // zeroed
  model->Backward(batch, params.view(), &state, grads.view());

  // A step of 2^-10 keeps p +- eps exact in float; the float rounding of the
  // logits (~1e-7 relative) then costs ~1e-4 in the quotient.
  //
  // ReLU makes the loss piecewise smooth: when p +- eps moves a
  // pre-activation across zero, the central difference averages the slopes
  // of two pieces, while the analytic gradient is the slope of the piece p
  // is on. Such a parameter passes if the analytic gradient matches one of
  // the one-sided differences instead, and the test limits how many may take
  // that way out (a wrong gradient matches none of the three).
  const float eps = 1.0f / 1024;
  size_t checked = 0, expected = 0, one_sided = 0;
  ModelState probe;
  const double center = LossWithFixedMask(*model, *loss, batch, params.view(), training, &probe);
  for (size_t t = 0; t < params.storage().size(); ++t) {
    std::vector<Real>& table = params.table(static_cast<TableId>(t));
    expected += table.size();
    double largest = 0;
    for (size_t j = 0; j < table.size(); ++j) {
      const Real saved = table[j];
      table[j] = saved + eps;
      const double plus = LossWithFixedMask(*model, *loss, batch, params.view(), training, &probe);
      table[j] = saved - eps;
      const double minus = LossWithFixedMask(*model, *loss, batch, params.view(), training, &probe);
      table[j] = saved;
      const double numeric = (plus - minus) / (2.0 * eps);
      const double analytic = grads.table(static_cast<TableId>(t))[j];
      auto close = [analytic](double value, double scale) {
        return std::fabs(analytic - value) <= scale * (1e-3 + 1e-2 * std::fabs(value));
      };
      if (!close(numeric, 1) && (close((plus - center) / eps, 2) || close((center - minus) / eps, 2))) {
        ++one_sided;
        if (std::getenv("RECSYS_GRAD_DEBUG")) {
          std::cout << "  kink: " << model->Tables()[t].name << "[" << j << "] analytic " << analytic << " central "
                    << numeric << " right " << (plus - center) / eps << " left " << (center - minus) / eps << "\n";
        }
      } else {
        EXPECT_NEAR(analytic, numeric, 1e-3 + 1e-2 * std::fabs(numeric))
            << "table " << model->Tables()[t].name << " param " << j << " (row "
            << j / static_cast<size_t>(params.view()[t].width) << ", column "
            << j % static_cast<size_t>(params.view()[t].width) << ")";
      }
      largest = std::max(largest, std::fabs(analytic));
      ++checked;
    }
    // A pairwise loss sees only logit differences, to which a global bias
    // adds nothing: its gradient is zero (and checked to be so above). So is
    // a hidden bias whose unit is active for both examples of every pair.
    const std::string& name = model->Tables()[t].name;
    const bool bias = name == "w0" || name == "b" || (name.size() > 2 && name.compare(name.size() - 2, 2, ".b") == 0);
    if (!(loss->pairwise() && bias)) {
      EXPECT_GT(largest, 1e-3) << "table " << name << " gets no gradient";
    }
  }
  EXPECT_EQ(checked, expected);
  // One unit at a kink moves every parameter feeding it, so allow a quarter.
  EXPECT_LE(one_sided, expected / 4) << "too many parameters at a ReLU kink";
  if (one_sided > 0) std::cout << "  (" << one_sided << " of " << expected << " parameters at a ReLU kink)\n";
}

std::vector<DeepGradCase> AllDeepGradCases() {
  std::vector<DeepGradCase> cases;
  for (const std::string& model : kDeepModels) {
    for (const char* loss : {"bce", "bpr"}) {
      for (bool sides : {false, true}) cases.push_back({model, loss, sides, {6, 3}, 0.0f});
    }
    // No hidden layer; and dropout in training with a fixed mask.
    cases.push_back({model, "bce", true, {}, 0.0f});
    if (model != "gmf") cases.push_back({model, "bce", true, {5}, 0.3f});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(GradDeep, DeepGradCheck, ::testing::ValuesIn(AllDeepGradCases()),
                         [](const ::testing::TestParamInfo<DeepGradCase>& case_info) { return CaseName(case_info.param); });

TEST(GradAccumulationDeep, BackwardAddsIntoGrads) {
  for (const std::string& name : kDeepModels) {
    SCOPED_TRACE(name);
    const Batch batch = SideFeatureBatch();
    const auto model = MakeModel(DeepConfig(name, 3, batch.slot_field, {4, 2}));
    Params params(model->Tables(), batch);
    std::mt19937 rng(4);
    params.Randomize(&rng, 0.5f);
    ModelState state;
    model->Forward(batch, params.view(), &state);
    MakeLoss("bce")->Compute(batch, state.logits, &state.dlogits);
    Params once(model->Tables(), batch), twice(model->Tables(), batch);
    model->Backward(batch, params.view(), &state, once.view());
    model->Backward(batch, params.view(), &state, twice.view());
    model->Backward(batch, params.view(), &state, twice.view());
    for (size_t t = 0; t < once.storage().size(); ++t)
      for (size_t j = 0; j < once.storage()[t].size(); ++j)
        EXPECT_NEAR(twice.storage()[t][j], 2 * once.storage()[t][j], 1e-5);
  }
}

TEST(GradAccumulationDeep, BackwardWithoutForwardIsABug) {
  const Batch batch = SideFeatureBatch();
  for (const std::string& name : kDeepModels) {
    const auto model = MakeModel(DeepConfig(name, 3, batch.slot_field, {4}));
    Params params(model->Tables(), batch), grads(model->Tables(), batch);
    ModelState state;
    state.dlogits = Vector::Zero(batch.size);
    EXPECT_THROW(model->Backward(batch, params.view(), &state, grads.view()), InternalError) << name;
  }
}

// ---- Determinism ----

// A copy of `src`'s tables that starts `offset` floats (0..7) past a
// SIMD-aligned address, so a test can move where the buffers start.
class ShiftedParams {
 public:
  ShiftedParams(Params& src, int offset) : views_(src.view()) {
    for (std::size_t t = 0; t < views_.size(); ++t) {
      const std::vector<Real>& table = src.table(static_cast<TableId>(t));
      buffers_.emplace_back(table.size() + 8, 0.0f);
      std::copy(table.begin(), table.end(), buffers_.back().begin() + offset);
      views_[t].data = buffers_.back().data() + offset;
    }
  }
  const ParamView& view() const { return views_; }
  // Every table's values, concatenated.
  std::vector<Real> Values() const {
    std::vector<Real> out;
    for (const TableView& v : views_) out.insert(out.end(), v.data, v.data + v.rows * v.width);
    return out;
  }

 private:
  std::vector<std::vector<Real, Eigen::aligned_allocator<Real>>> buffers_;
  ParamView views_;
};

// 37 examples of random users, items, ages and one or two genres.
Batch RandomSideBatch(std::mt19937* rng) {
  std::uniform_int_distribution<int> user(0, 9), item(0, 14), age(0, 6), genre(0, 5), coin(0, 1);
  std::vector<std::vector<SlotSpec>> examples;
  std::vector<Real> labels;
  for (int e = 0; e < 37; ++e) {
    const bool two = coin(*rng) == 1;
    const Real g = two ? 0.5f : 1.0f;
    examples.push_back({Slot(kFieldUser, static_cast<std::uint64_t>(user(*rng))),
                        Slot(kFieldItem, static_cast<std::uint64_t>(item(*rng))),
                        Slot(kFieldAge, static_cast<std::uint64_t>(age(*rng))),
                        Slot(kFieldGenre, static_cast<std::uint64_t>(genre(*rng)), g),
                        two ? Slot(kFieldGenre, static_cast<std::uint64_t>(genre(*rng)), g) : kEmpty});
    labels.push_back(static_cast<Real>(e % 2));
  }
  return BuildBatch(kWithSides, examples, labels);
}

// A worker's results must not depend on where its buffers happen to start:
// otherwise two runs of one seed differ whenever malloc places a buffer
// differently, as Eigen splits a vectorised reduction into a scalar head and
// a SIMD body at the destination's first aligned element. Every model's
// logits and gradients are compared bit for bit with parameters and
// gradients at all eight float offsets from a 32-byte boundary.
TEST(ModelDeterminism, ResultsDoNotDependOnWhereTheBuffersStart) {
  std::mt19937 rng(77);
  const Batch batch = RandomSideBatch(&rng);
  for (const std::string& name : ModelNames()) {
    SCOPED_TRACE(name);
    const bool deep = std::find(kDeepModels.begin(), kDeepModels.end(), name) != kDeepModels.end();
    const auto model = MakeModel(DeepConfig(name, 12, batch.slot_field, deep ? std::vector<int>{20, 9} : std::vector<int>{}));
    const auto loss = MakeLoss("bce");
    Params params(model->Tables(), batch), zeros(model->Tables(), batch);
    params.Randomize(&rng, 0.5f);
    std::vector<Real> logits0, grads0;
    for (int offset = 0; offset < 8; ++offset) {
      SCOPED_TRACE(offset);
      const ShiftedParams shifted(params, offset);
      ShiftedParams grads(zeros, (offset * 3 + 1) % 8);
      ModelState state;
      state.training = false;
      model->Forward(batch, shifted.view(), &state);
      loss->Compute(batch, state.logits, &state.dlogits);
      model->Backward(batch, shifted.view(), &state, grads.view());
      const std::vector<Real> logits(state.logits.data(), state.logits.data() + state.logits.size());
      if (offset == 0) {
        logits0 = logits;
        grads0 = grads.Values();
        continue;
      }
      EXPECT_EQ(logits, logits0);
      const std::vector<Real> g = grads.Values();
      ASSERT_EQ(g.size(), grads0.size());
      std::size_t differ = 0;
      for (std::size_t j = 0; j < g.size(); ++j) differ += g[j] != grads0[j];
      EXPECT_EQ(differ, 0u) << "of " << g.size() << " gradients differ";
    }
  }
}

}  // namespace
}  // namespace recsys
