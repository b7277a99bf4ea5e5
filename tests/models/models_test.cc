// Tests of the models: hand-computed logits, the FM sum-square trick against
// the naive double sum, and numerical gradient checks of every parameter of
// every table for every (model, loss, batch shape).
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/keys.h"
#include "models/fm.h"
#include "models/loss.h"
#include "models/mf.h"
#include "models/model.h"
#include "tests/models/model_test_util.h"

namespace recsys {
namespace {

using namespace testing_util;  // NOLINT(build/namespaces): test helpers

// ---- Registry and layout ----

TEST(ModelRegistry, NamesAndUnknownNames) {
  EXPECT_EQ(ModelNames(),
            (std::vector<std::string>{"mf", "fm", "nfm", "deepfm", "wide_deep", "gmf", "mlp", "neumf"}));
  for (const std::string& name : ModelNames()) EXPECT_EQ(MakeModel(Config(name, 4, kUserItem))->name(), name);
  try {
    MakeModel(Config("deepfmx", 4, kUserItem));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("deepfmx"), std::string::npos) << what;
    EXPECT_NE(what.find("mf, fm"), std::string::npos) << what;
  }
}

TEST(ModelRegistry, RejectsNonPositiveDim) {
  for (int dim : {0, -3}) {
    for (const char* name : {"mf", "fm"}) {
      try {
        MakeModel(Config(name, dim, kUserItem));
        FAIL() << "expected InputError";
      } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--dim must be positive"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(ModelRegistry, MfNeedsUserAndItemSlots) {
  EXPECT_THROW(MakeModel(Config("mf", 4, {})), InternalError);
  EXPECT_THROW(MakeModel(Config("mf", 4, {kFieldItem, kFieldUser})), InternalError);
  // FM takes any slots.
  EXPECT_NO_THROW(MakeModel(Config("fm", 4, {})));
}

TEST(ModelTables, EmbeddingAndGlobalBias) {
  for (const char* name : {"mf", "fm"}) {
    ModelConfig config = Config(name, 8, kWithSides);
    config.init_scale = 0.05f;
    const auto model = MakeModel(config);
    const std::vector<TableSpec>& tables = model->Tables();
    ASSERT_EQ(tables.size(), 2u);
    EXPECT_EQ(tables[0].id, 0u);
    EXPECT_EQ(tables[0].name, "emb");
    EXPECT_EQ(tables[0].width, 9);
    EXPECT_FALSE(tables[0].dense());
    EXPECT_EQ(tables[0].init, InitKind::kNormal);
    EXPECT_FLOAT_EQ(tables[0].init_scale, 0.05f);
    EXPECT_EQ(tables[1].id, 1u);
    EXPECT_EQ(tables[1].name, "w0");
    EXPECT_EQ(tables[1].width, 1);
    EXPECT_EQ(tables[1].dense_size, 1);
    EXPECT_EQ(tables[1].dense_rows(), 1);
    EXPECT_EQ(tables[1].init, InitKind::kZeros);
  }
}

// ---- MF ----

TEST(MfModel, HandComputedLogit) {
  const auto model = MakeModel(Config("mf", 2, kUserItem));
  const Batch batch = BuildBatch(kUserItem, {{Slot(kFieldUser, 7), Slot(kFieldItem, 9)}}, {1});
  Params params(model->Tables(), batch);
  params.table(0) = {1.0f, 2.0f, 0.5f,     // user: p = (1, 2), b_u = 0.5
                     3.0f, -1.0f, 0.25f};  // item: q = (3, -1), b_i = 0.25
  params.table(1) = {0.1f};                // w0
  ModelState state;
  model->Forward(batch, params.view(), &state);
  ASSERT_EQ(state.logits.size(), 1);
  // 0.1 + 0.5 + 0.25 + (1*3 + 2*-1)
  EXPECT_NEAR(state.logits[0], 1.85f, 1e-6);
}

TEST(MfModel, IgnoresSideFeaturesAndEmptySlots) {
  const auto model = MakeModel(Config("mf", 2, kWithSides));
  const Batch batch = BuildBatch(
      kWithSides,
      {{Slot(kFieldUser, 7), Slot(kFieldItem, 9), Slot(kFieldAge, 1), Slot(kFieldGenre, 2), kEmpty},
       {Slot(kFieldUser, 7), kEmpty, kEmpty, kEmpty, kEmpty}},
      {1, 0});
  Params params(model->Tables(), batch);
  std::mt19937 rng(3);
  params.Randomize(&rng, 1.0f);
  const Real* u = params.view()[0].Row(0);
  const Real* i = params.view()[0].Row(1);
  const Real w0 = params.table(1)[0];
  ModelState state;
  model->Forward(batch, params.view(), &state);
  EXPECT_NEAR(state.logits[0], w0 + u[2] + i[2] + u[0] * i[0] + u[1] * i[1], 1e-5);
  EXPECT_NEAR(state.logits[1], w0 + u[2], 1e-6);  // a missing item contributes nothing
}

// Forward and Backward against a naive loop in double, at dim 2 (the general
// kernel) and at each dim with a compiled-in kernel, with a user or an item
// missing: a missing row contributes nothing and gets no gradient, and its
// partner gets only its bias gradient.
TEST(MfModel, EveryDimsKernelMatchesANaiveLoopWithEmptySlots) {
  for (const int dim : {2, 16, 32, 64}) {
    const auto model = MakeModel(Config("mf", dim, kUserItem));
    const Batch batch = BuildBatch(kUserItem,
                                   {{Slot(kFieldUser, 7), Slot(kFieldItem, 9)},
                                    {Slot(kFieldUser, 7), kEmpty},
                                    {kEmpty, Slot(kFieldItem, 9)},
                                    {Slot(kFieldUser, 8), Slot(kFieldItem, 9)}},
                                   {1, 0, 1, 0});
    Params params(model->Tables(), batch);
    std::mt19937 rng(static_cast<unsigned>(dim));
    params.Randomize(&rng, 0.5f);
    const TableView& emb = params.view()[0];
    const Real w0 = params.table(1)[0];
    ModelState state;
    model->Forward(batch, params.view(), &state);
    ASSERT_EQ(state.logits.size(), batch.size);
    const std::vector<double> dlogits = {0.5, -0.25, 0.75, -1.5};
    std::vector<double> expected_grads(static_cast<std::size_t>(emb.rows) * (dim + 1), 0.0);
    state.dlogits.resize(batch.size);
    for (int e = 0; e < batch.size; ++e) {
      const int u = batch.Row(e, 0), i = batch.Row(e, 1);
      double logit = w0;
      if (u >= 0) logit += emb.Row(u)[dim];
      if (i >= 0) logit += emb.Row(i)[dim];
      for (int f = 0; f < dim && u >= 0 && i >= 0; ++f) {
        logit += static_cast<double>(emb.Row(u)[f]) * emb.Row(i)[f];
        expected_grads[static_cast<std::size_t>(u) * (dim + 1) + f] += dlogits[e] * emb.Row(i)[f];
        expected_grads[static_cast<std::size_t>(i) * (dim + 1) + f] += dlogits[e] * emb.Row(u)[f];
      }
      if (u >= 0) expected_grads[static_cast<std::size_t>(u) * (dim + 1) + dim] += dlogits[e];
      if (i >= 0) expected_grads[static_cast<std::size_t>(i) * (dim + 1) + dim] += dlogits[e];
      EXPECT_NEAR(state.logits[e], logit, 1e-5) << "dim " << dim << ", example " << e;
      state.dlogits[e] = static_cast<Real>(dlogits[e]);
    }
    Params grads(model->Tables(), batch);  // zeroed
    model->Backward(batch, params.view(), &state, grads.view());
    ASSERT_EQ(grads.table(0).size(), expected_grads.size());
    for (std::size_t j = 0; j < expected_grads.size(); ++j) {
      EXPECT_NEAR(grads.table(0)[j], expected_grads[j], 1e-5) << "dim " << dim << ", value " << j;
    }
    EXPECT_NEAR(grads.table(1)[0], 0.5 - 0.25 + 0.75 - 1.5, 1e-6) << "dim " << dim;
  }
}

// ---- FM ----

// Naive O(k n^2) FM in double: w0 + sum w x + sum_{s<t} <v_s, v_t> x_s x_t.
double NaiveFm(const Batch& batch, const ParamView& params, int dim, int e, double* magnitude) {
  const TableView& emb = params[0];
  double logit = params[1].data[0];
  *magnitude = 0;
  for (int s = 0; s < batch.slots; ++s) {
    const int rs = batch.Row(e, s);
    if (rs < 0) continue;
    const double xs = batch.Value(e, s);
    logit += xs * emb.Row(rs)[dim];
    for (int t = s + 1; t < batch.slots; ++t) {
      const int rt = batch.Row(e, t);
      if (rt < 0) continue;
      double dot = 0;
      for (int f = 0; f < dim; ++f) {
        dot += static_cast<double>(emb.Row(rs)[f]) * emb.Row(rt)[f];
        *magnitude += std::fabs(static_cast<double>(emb.Row(rs)[f]) * emb.Row(rt)[f] * xs * batch.Value(e, t));
      }
      logit += dot * xs * batch.Value(e, t);
    }
  }
  return logit;
}

// Every dim FmModel has a compiled-in kernel for (16, 32, 64) and two that
// take the general one (8, 24).
class FmDims : public ::testing::TestWithParam<int> {};

TEST_P(FmDims, SumSquareTrickEqualsNaiveDoubleSum) {
  const int dim = GetParam();
  const int slots = 6;
  const std::vector<std::uint8_t> fields = {kFieldUser, kFieldItem, kFieldAge, kFieldGender, kFieldGenre, kFieldGenre};
  const auto model = MakeModel(Config("fm", dim, fields));
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_int_distribution<int> id(0, 4);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<std::vector<SlotSpec>> examples;
    for (int e = 0; e < 7; ++e) {
      std::vector<SlotSpec> ex;
      for (int s = 0; s < slots; ++s) {
        // Occasional empty side slots; arbitrary real feature values.
        if (s >= 2 && id(rng) == 0) ex.push_back(kEmpty);
        else ex.push_back(Slot(fields[static_cast<size_t>(s)], static_cast<std::uint64_t>(id(rng) + 10 * s), value(rng)));
      }
      examples.push_back(ex);
    }
    const Batch batch = BuildBatch(fields, examples, std::vector<Real>(7, 1.0f));
    Params params(model->Tables(), batch);
    params.Randomize(&rng, 1.0f);
    ModelState state;
    model->Forward(batch, params.view(), &state);
    for (int e = 0; e < batch.size; ++e) {
      double magnitude = 0;
      const double naive = NaiveFm(batch, params.view(), dim, e, &magnitude);
      // Relative to the size of the summed terms: float rounding scales with
      // them, not with the (possibly cancelling) result.
      EXPECT_NEAR(state.logits[e], naive, 1e-5 * std::max(1.0, magnitude + std::fabs(naive)))
          << "trial " << trial << " example " << e;
    }
  }
}
INSTANTIATE_TEST_SUITE_P(FmModel, FmDims, ::testing::Values(8, 16, 24, 32, 64));

TEST(FmModel, GeneralisesMf) {
  const int dim = 6;
  const auto fm = MakeModel(Config("fm", dim, kUserItem));
  const auto mf = MakeModel(Config("mf", dim, kUserItem));
  const Batch batch = UserItemBatch();
  Params params(fm->Tables(), batch);
  std::mt19937 rng(5);
  params.Randomize(&rng, 0.7f);
  ModelState fm_state, mf_state;
  fm->Forward(batch, params.view(), &fm_state);
  mf->Forward(batch, params.view(), &mf_state);
  ASSERT_EQ(fm_state.logits.size(), batch.size);
  for (int e = 0; e < batch.size; ++e) EXPECT_NEAR(fm_state.logits[e], mf_state.logits[e], 1e-5) << e;
}

TEST(FmModel, StateIsReusedAcrossBatchShapes) {
  const auto model = MakeModel(Config("fm", 4, kWithSides));
  const Batch big = SideFeatureBatch();
  const Batch small = BuildBatch(kUserItem, {{Slot(kFieldUser, 1), Slot(kFieldItem, 2)}}, {1});
  Params big_params(model->Tables(), big), small_params(model->Tables(), small);
  std::mt19937 rng(9);
  big_params.Randomize(&rng, 0.5f);
  small_params.Randomize(&rng, 0.5f);
  ModelState shared, fresh;
  model->Forward(big, big_params.view(), &shared);
  model->Forward(small, small_params.view(), &shared);
  model->Forward(small, small_params.view(), &fresh);
  ASSERT_EQ(shared.logits.size(), 1);
  EXPECT_EQ(shared.logits[0], fresh.logits[0]);
}

// ---- Gradients ----

struct GradCase {
  std::string model;
  std::string loss;
  bool sides;
  int dim = 4;
};

// Readable test output instead of the bytes of the struct.
void PrintTo(const GradCase& c, std::ostream* out) {
  *out << c.model << "/" << c.loss << (c.sides ? "/sides" : "/useritem") << "/dim" << c.dim;
}

class GradCheck : public ::testing::TestWithParam<GradCase> {};

double TotalLoss(const Model& model, const Loss& loss, const Batch& batch, const ParamView& params) {
  ModelState state;
  model.Forward(batch, params, &state);
  Vector dlogits;
  return loss.Compute(batch, state.logits, &dlogits);
}

// The analytic gradient of the total loss (Loss::Compute, then Backward)
// against central differences, for every parameter of every table: factor
// and weight columns of every row (including a key no slot refers to, whose
// gradient must be zero) and w0.
TEST_P(GradCheck, EveryParameterMatchesCentralDifferences) {
  const GradCase& c = GetParam();
  const int dim = c.dim;
  const Batch batch = c.sides ? SideFeatureBatch() : UserItemBatch();
  const auto model = MakeModel(Config(c.model, dim, batch.slot_field));
  const auto loss = MakeLoss(c.loss);
  Params params(model->Tables(), batch);
  std::mt19937 rng(c.sides ? 21 : 17);
  params.Randomize(&rng, 0.6f);

  ModelState state;
  model->Forward(batch, params.view(), &state);
  loss->Compute(batch, state.logits, &state.dlogits);
  Params grads(model->Tables(), batch);  // zeroed
  model->Backward(batch, params.view(), &state, grads.view());

  // Float parameters: a step of 2^-8 keeps p +- eps exact and balances
  // truncation (O(eps^2)) against rounding of the float logits (O(1e-7/eps)).
  const float eps = 1.0f / 256;
  double largest = 0;
  int checked = 0;
  for (size_t t = 0; t < params.storage().size(); ++t) {
    std::vector<Real>& table = params.table(static_cast<TableId>(t));
    for (size_t j = 0; j < table.size(); ++j) {
      const Real saved = table[j];
      table[j] = saved + eps;
      const double plus = TotalLoss(*model, *loss, batch, params.view());
      table[j] = saved - eps;
      const double minus = TotalLoss(*model, *loss, batch, params.view());
      table[j] = saved;
      const double numeric = (plus - minus) / (2.0 * eps);
      const double analytic = grads.table(static_cast<TableId>(t))[j];
      EXPECT_NEAR(analytic, numeric, 1e-3 + 1e-2 * std::fabs(numeric))
          << "table " << t << " param " << j << " (row " << j / static_cast<size_t>(params.view()[t].width)
          << ", column " << j % static_cast<size_t>(params.view()[t].width) << ")";
      largest = std::max(largest, std::fabs(analytic));
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(batch.keys.size()) * (dim + 1) + 1);
  EXPECT_GT(largest, 0.05) << "gradients too small for the check to mean anything";
}

std::vector<GradCase> AllGradCases() {
  std::vector<GradCase> cases;
  for (const char* model : {"mf", "fm"})
    for (const char* loss : {"bce", "bpr"})
      for (bool sides : {false, true}) cases.push_back({model, loss, sides});
  // MF's and FM's compiled-in kernels (dims 16, 32, 64; dim 4 above takes
  // the general one).
  cases.push_back({"mf", "bce", false, 16});
  cases.push_back({"mf", "bpr", false, 32});
  cases.push_back({"mf", "bce", true, 64});
  cases.push_back({"fm", "bce", true, 16});
  cases.push_back({"fm", "bce", true, 32});
  cases.push_back({"fm", "bpr", true, 64});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Grad, GradCheck, ::testing::ValuesIn(AllGradCases()),
                         [](const ::testing::TestParamInfo<GradCase>& case_info) {
                           const GradCase& c = case_info.param;
                           return c.model + "_" + c.loss + (c.sides ? "_sides" : "_useritem") +
                                  (c.dim == 4 ? "" : "_dim" + std::to_string(c.dim));
                         });

TEST(GradAccumulation, BackwardAddsIntoGrads) {
  for (const char* name : {"mf", "fm"}) {
    SCOPED_TRACE(name);
    const Batch batch = SideFeatureBatch();
    const auto model = MakeModel(Config(name, 3, batch.slot_field));
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
        EXPECT_NEAR(twice.storage()[t][j], 2 * once.storage()[t][j], 1e-6);
  }
}

TEST(GradAccumulation, BackwardWithoutForwardIsABug) {
  const Batch batch = UserItemBatch();
  for (const char* name : {"mf", "fm"}) {
    const auto model = MakeModel(Config(name, 3, kUserItem));
    Params params(model->Tables(), batch), grads(model->Tables(), batch);
    ModelState state;
    state.dlogits = Vector::Zero(batch.size);
    EXPECT_THROW(model->Backward(batch, params.view(), &state, grads.view()), InternalError) << name;
  }
}

}  // namespace
}  // namespace recsys
