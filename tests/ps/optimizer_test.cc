#include "ps/optimizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/keys.h"
#include "common/table_spec.h"
#include "ps/embedding_table.h"

namespace recsys {
namespace {

// The expected values below were worked out by hand (and checked in double
// precision); the optimizers compute in float, so compare with a tolerance of
// a few float ulps relative to the value.
void ExpectRowNear(const std::vector<Real>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 1e-6 * std::max(1.0, std::fabs(expected[i]))) << "element " << i;
  }
}

OptimizerConfig Config(const std::string& name, float lr) {
  OptimizerConfig config;
  config.name = name;
  config.lr = lr;
  return config;
}

TableSpec SmallSpec() {
  TableSpec spec;
  spec.id = 0;
  spec.name = "emb";
  spec.width = 4;
  spec.init = InitKind::kNormal;
  spec.init_scale = 0.1f;
  return spec;
}

TEST(OptimizerTest, StateSizes) {
  EXPECT_EQ(MakeOptimizer(Config("sgd", 0.1f))->StateSize(16), 0);
  EXPECT_EQ(MakeOptimizer(Config("adagrad", 0.1f))->StateSize(16), 16);
  EXPECT_EQ(MakeOptimizer(Config("adam", 0.1f))->StateSize(16), 33);
}

TEST(OptimizerTest, SgdMatchesHandComputedSteps) {
  auto opt = MakeOptimizer(Config("sgd", 0.1f));
  std::vector<Real> w = {1.0f, -2.0f};
  const std::vector<std::vector<Real>> grads = {{0.5f, 1.0f}, {-1.0f, 0.25f}, {2.0f, -4.0f}};
  // w -= 0.1 g, three times.
  const std::vector<std::vector<double>> expected = {{0.95, -2.1}, {1.05, -2.125}, {0.85, -1.725}};
  for (std::size_t s = 0; s < grads.size(); ++s) {
    opt->Update(w.data(), nullptr, grads[s].data(), 2, /*step=*/0);
    SCOPED_TRACE(s);
    ExpectRowNear(w, expected[s]);
  }
}

TEST(OptimizerTest, AdaGradMatchesHandComputedSteps) {
  OptimizerConfig config = Config("adagrad", 0.1f);
  config.eps = 0.1f;  // large, so that a misplaced eps shows
  config.initial_accumulator = 0.1f;
  auto opt = MakeOptimizer(config);

  std::vector<Real> w = {1.0f, -0.5f};
  std::vector<Real> acc(2, -1.0f);
  opt->InitState(acc.data(), 2);
  ExpectRowNear(acc, {0.1, 0.1});

  const std::vector<std::vector<Real>> grads = {{1.0f, -2.0f}, {2.0f, 0.5f}, {-1.0f, 0.0f}};
  // acc += g^2; w -= 0.1 g / (sqrt(acc) + 0.1). Step 1, element 0:
  // acc = 1.1, w = 1 - 0.1 / (1.04881 + 0.1) = 0.912953.
  // A zero gradient (step 3, element 1) leaves the weight alone.
  const std::vector<std::vector<double>> expected_w = {
      {0.9129533166816375, -0.40587551720627585},
      {0.8281471100754589, -0.42875184625537055},
      {0.8670603745589679, -0.42875184625537055}};
  const std::vector<std::vector<double>> expected_acc = {{1.1, 4.1}, {5.1, 4.35}, {6.1, 4.35}};
  for (std::size_t s = 0; s < grads.size(); ++s) {
    opt->Update(w.data(), acc.data(), grads[s].data(), 2, /*step=*/0);
    SCOPED_TRACE(s);
    ExpectRowNear(w, expected_w[s]);
    ExpectRowNear(acc, expected_acc[s]);
  }
}

TEST(OptimizerTest, AdamMatchesHandComputedStepsWithBiasCorrection) {
  OptimizerConfig config = Config("adam", 0.1f);
  config.beta1 = 0.9f;
  config.beta2 = 0.999f;
  config.eps = 1e-3f;
  auto opt = MakeOptimizer(config);

  std::vector<Real> w = {0.5f, -1.0f};
  std::vector<Real> state(5, -1.0f);  // m[2], v[2], t
  opt->InitState(state.data(), 2);
  ExpectRowNear(state, {0, 0, 0, 0, 0});

  const std::vector<std::vector<Real>> grads = {{1.0f, -2.0f}, {0.5f, 0.5f}, {-1.0f, 3.0f}};
  // Step 1: m = 0.1 g, v = 0.001 g^2; the bias corrections (1 - 0.9, 1 - 0.999)
  // undo that exactly, so w -= 0.1 g / (|g| + 0.001): 0.5 - 0.1 / 1.001.
  // Without the corrections the step would be 0.1 * 0.1 / (0.0316 + 0.001).
  const std::vector<std::vector<double>> expected_w = {
      {0.40009990009990004, -0.9000499750124937},
      {0.306999717347324, -0.853135348165344},
      {0.2959341875875738, -0.8852457634570952}};
  const std::vector<std::vector<double>> expected_state = {
      {0.1, -0.2, 0.001, 0.004, 1},
      {0.14, -0.13, 0.001249, 0.004246, 2},
      {0.026, 0.183, 0.002247751, 0.013241754, 3}};
  // Global step 0 (not known): the bias corrections count the row's steps.
  for (std::size_t s = 0; s < grads.size(); ++s) {
    opt->Update(w.data(), state.data(), grads[s].data(), 2, /*step=*/0);
    SCOPED_TRACE(s);
    ExpectRowNear(w, expected_w[s]);
    ExpectRowNear(state, expected_state[s]);
  }
}

TEST(OptimizerTest, AdamStepCountSaturatesAtTwoToThe24) {
  OptimizerConfig config = Config("adam", 0.1f);
  auto opt = MakeOptimizer(config);
  std::vector<Real> w = {0.0f};
  std::vector<Real> state = {0.0f, 0.0f, 16777216.0f};
  const Real g = 1.0f;
  opt->Update(w.data(), state.data(), &g, 1, /*step=*/0);
  EXPECT_EQ(state[2], 16777216.0f);
  EXPECT_TRUE(std::isfinite(w[0]));
  EXPECT_LT(w[0], 0.0f);
}

// Without a global step (0, not known) Adam counts steps per row: a row
// first updated after another row had five updates takes a first step
// (t = 1), exactly as if it were alone.
TEST(OptimizerTest, WithoutAGlobalStepAdamCountsStepsPerRow) {
  OptimizerConfig config = Config("adam", 0.01f);
  config.eps = 1e-3f;
  auto opt = MakeOptimizer(config);
  const TableSpec spec = SmallSpec();
  EmbeddingTable table(spec, 7, opt.get());
  ASSERT_EQ(table.stride(), 4 + 9);

  const Key a = MakeKey(kFieldUser, 1);
  const Key b = MakeKey(kFieldItem, 2);
  const std::vector<Real> grad = {0.5f, -1.0f, 2.0f, 0.0f};
  for (int i = 0; i < 5; ++i) table.Push(a, grad.data());
  table.Push(b, grad.data());

  EXPECT_EQ(table.FindState(a)[8], 5.0f);
  EXPECT_EQ(table.FindState(b)[8], 1.0f);

  // b's first step, by hand: mhat = g and vhat = g^2, so w -= lr g / (|g| + eps).
  std::vector<Real> init(4);
  InitRow(spec, 7, b, init.data());
  const Real* row_b = table.Find(b);
  for (int i = 0; i < 4; ++i) {
    const double g = grad[i];
    const double expected = init[i] - 0.01 * g / (std::fabs(g) + 1e-3);
    EXPECT_NEAR(row_b[i], expected, 1e-6) << "element " << i;
  }

  // And bit for bit what a table that only ever saw b holds.
  EmbeddingTable alone(spec, 7, opt.get());
  alone.Push(b, grad.data());
  const std::vector<Real> both = table.RowAndState(b), only = alone.RowAndState(b);
  ASSERT_EQ(both.size(), static_cast<std::size_t>(table.stride()));
  for (int i = 0; i < table.stride(); ++i) EXPECT_EQ(both[i], only[i]) << "slot " << i;
}

// The first update of a row at global step T, by hand (m = 0.1 g, v =
// 0.001 g^2): w - lr (m / (1 - b1^T)) / (sqrt(v / (1 - b2^T)) + eps).
double FirstAdamStep(double w, double g, double lr, double b1, double b2, double eps, double big_t) {
  const double m = (1 - b1) * g, v = (1 - b2) * g * g;
  return w - lr * (m / (1 - std::pow(b1, big_t))) / (std::sqrt(v / (1 - std::pow(b2, big_t))) + eps);
}

// With a global step, Adam's bias corrections count it instead of the
// row's own updates (T = max(t, step)): a row first updated at step 1000
// takes a step ~2.5x the per-row rule's first step, as PyTorch's SparseAdam
// would; past the tabulated steps the corrections are 1 for the default
// betas and computed for betas so close to 1 that they are not.
TEST(OptimizerTest, AdamCorrectsByTheGlobalStep) {
  const Real g = 0.5f;
  for (const double beta2 : {0.999, 0.99999}) {
    for (const std::uint64_t step : {std::uint64_t{1}, std::uint64_t{1000}, std::uint64_t{32767},
                                     std::uint64_t{40000}, std::uint64_t{3000000000}}) {
      OptimizerConfig config = Config("adam", 0.01f);
      config.beta2 = static_cast<float>(beta2);
      auto opt = MakeOptimizer(config);
      std::vector<Real> w = {0.25f};
      std::vector<Real> state(3);
      opt->InitState(state.data(), 1);
      opt->Update(w.data(), state.data(), &g, 1, step);
      const double expected = FirstAdamStep(0.25, g, 0.01, 0.9, static_cast<float>(beta2), 1e-8,
                                            static_cast<double>(step));
      EXPECT_NEAR(w[0], expected, 2e-6) << "beta2 " << beta2 << " step " << step;
      EXPECT_EQ(state[2], 1.0f) << "the row's own count goes on";
    }
  }
  // Step 1000 against the per-row rule: a larger step, by the ratio above.
  OptimizerConfig config = Config("adam", 0.01f);
  auto opt = MakeOptimizer(config);
  std::vector<Real> global = {0.0f}, per_row = {0.0f}, s1(3), s2(3);
  opt->Update(global.data(), s1.data(), &g, 1, 1000);
  opt->Update(per_row.data(), s2.data(), &g, 1, 0);
  EXPECT_NEAR(global[0] / per_row[0], 0.1 / std::sqrt(0.001) * std::sqrt(1 - std::pow(0.999, 1000)) /
                                          (1 - std::pow(0.9, 1000)),
              1e-4);
  EXPECT_GT(global[0] / per_row[0], 2.4);
}

// A row updated more often than the global step says (a step of 0, or a
// worker's estimate behind the row's count) keeps the per-row count.
TEST(OptimizerTest, AdamTakesTheLargerOfRowCountAndGlobalStep) {
  OptimizerConfig config = Config("adam", 0.01f);
  auto opt = MakeOptimizer(config);
  const Real g = -0.5f;
  std::vector<Real> with_step = {0.1f}, without = {0.1f}, s1(3), s2(3);
  for (int i = 0; i < 5; ++i) {
    opt->Update(with_step.data(), s1.data(), &g, 1, 2);  // global step 2 < t from the third update on
    opt->Update(without.data(), s2.data(), &g, 1, 0);
  }
  EXPECT_EQ(s1, s2);
  // Updates 1 and 2 differ (T = 2 for both against t = 1, 2), the rest match t.
  EXPECT_NE(with_step[0], without[0]);
  std::vector<Real> a = {0.1f}, b = {0.1f}, sa(3), sb(3);
  opt->Update(a.data(), sa.data(), &g, 1, 2);
  opt->Update(a.data(), sa.data(), &g, 1, 2);
  opt->Update(b.data(), sb.data(), &g, 1, 2);
  opt->Update(b.data(), sb.data(), &g, 1, 0);
  EXPECT_EQ(a, b) << "the second update: t = 2 = step";
}

// The table hands the step set by SetStep to the optimizer.
TEST(OptimizerTest, TableUpdatesAtItsStep) {
  OptimizerConfig config = Config("adam", 0.01f);
  auto opt = MakeOptimizer(config);
  const TableSpec spec = SmallSpec();
  EmbeddingTable table(spec, 7, opt.get());
  const Key k = MakeKey(kFieldItem, 3);
  const std::vector<Real> grad = {0.5f, -1.0f, 2.0f, 0.25f};
  table.SetStep(1000);
  table.Push(k, grad.data());
  std::vector<Real> expected(static_cast<std::size_t>(table.stride()));
  InitRow(spec, 7, k, expected.data());
  opt->InitState(expected.data() + 4, 4);
  opt->Update(expected.data(), expected.data() + 4, grad.data(), 4, 1000);
  const std::vector<Real> got = table.RowAndState(k);
  ASSERT_EQ(got.size(), expected.size());
  for (int i = 0; i < table.stride(); ++i) EXPECT_EQ(got[i], expected[static_cast<std::size_t>(i)]) << i;
}

// Dense Adam, in double, for one row of one element: gradients[s - 1] at
// step s (zero where the row gets none), every step with its corrections.
double DenseAdamReference(const std::vector<double>& gradients, double w, double lr, double b1, double b2,
                          double eps) {
  double m = 0, v = 0;
  for (std::size_t s = 1; s <= gradients.size(); ++s) {
    const double g = gradients[s - 1];
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double t = static_cast<double>(s);
    w -= lr * (m / (1 - std::pow(b1, t))) / (std::sqrt(v / (1 - std::pow(b2, t))) + eps);
  }
  return w;
}

// --adam-mode dense: a row updated only at some steps ends where dense Adam
// (which moves it at every step) would have put it after its last update.
// Late in a run (bias corrections 1) the closed form is exact but for eps.
// Early it applies step T's corrections to the missed steps: measured
// against dense Adam, the distance moved here is 5.4% too long from step 1,
// 3.5% from step 100, 0.25% from step 1,000 and 0.003% from step 5,000.
// Gaps longer than the table of missed steps (4,096) take the pow() path.
TEST(OptimizerTest, DenseModeCatchesUpAsDenseAdam) {
  OptimizerConfig config = Config("adam", 0.01f);
  config.adam_mode = "dense";
  auto opt = MakeOptimizer(config);
  struct Case {
    std::uint64_t first;     // first step with a gradient
    std::vector<int> gaps;   // steps between later gradients
    double tolerance;        // relative to the distance moved
  };
  for (const Case& c : {Case{20000, {1, 3, 10, 50, 1, 200}, 1e-4}, Case{20000, {6000, 2, 9000}, 1e-4},
                        Case{1, {2, 5, 1, 30, 4}, 0.06}, Case{100, {2, 5, 1, 30, 4}, 0.04},
                        Case{1000, {2, 5, 1, 30, 4}, 0.005}, Case{5000, {2, 5, 1, 30, 4}, 1e-4}}) {
    std::vector<double> gradients(static_cast<std::size_t>(c.first - 1), 0.0);
    std::vector<Real> w = {0.25f};
    std::vector<Real> state(3);
    opt->InitState(state.data(), 1);
    std::uint64_t step = c.first;
    double g = 0.5;
    for (std::size_t i = 0; i <= c.gaps.size(); ++i) {
      if (i > 0) {
        for (int j = 1; j < c.gaps[i - 1]; ++j) gradients.push_back(0.0);
        step += static_cast<std::uint64_t>(c.gaps[i - 1]);
      }
      gradients.push_back(g);
      const Real gf = static_cast<Real>(g);
      opt->Update(w.data(), state.data(), &gf, 1, step);
      EXPECT_EQ(state[2], static_cast<Real>(step)) << "the last slot holds the row's last step";
      g = -0.7 * g + 0.1;  // varied signs and sizes
    }
    ASSERT_EQ(gradients.size(), step);
    const double expected = DenseAdamReference(gradients, 0.25, 0.01, 0.9, static_cast<float>(0.999f), 1e-8);
    EXPECT_NEAR(w[0], expected, c.tolerance * std::fabs(expected - 0.25))
        << "first step " << c.first << ": moved " << w[0] - 0.25 << ", dense Adam " << expected - 0.25;
  }
}

// With no missed step (consecutive steps) dense is lazy with the global
// step, bit for bit, except for what the last slot holds.
TEST(OptimizerTest, DenseModeWithoutMissedStepsIsLazy) {
  OptimizerConfig lazy = Config("adam", 0.01f);
  OptimizerConfig dense = lazy;
  dense.adam_mode = "dense";
  auto a = MakeOptimizer(lazy);
  auto b = MakeOptimizer(dense);
  std::vector<Real> wa = {0.1f, -0.2f, 0.3f}, wb = wa, sa(7), sb(7);
  for (std::uint64_t step = 1; step <= 50; ++step) {
    const std::vector<Real> g = {0.5f, -1.0f, 0.25f * static_cast<Real>(step % 3)};
    a->Update(wa.data(), sa.data(), g.data(), 3, step);
    b->Update(wb.data(), sb.data(), g.data(), 3, step);
  }
  EXPECT_EQ(wa, wb);
  EXPECT_EQ(std::vector<Real>(sa.begin(), sa.begin() + 6), std::vector<Real>(sb.begin(), sb.begin() + 6));
  EXPECT_EQ(sa[6], 50.0f);  // updates
  EXPECT_EQ(sb[6], 50.0f);  // last step
  // Without a step (0) a dense update is the one at the row's last step,
  // with no catch-up, and the slot keeps that step.
  std::vector<Real> wc = {0.1f}, sc(3), wd = {0.1f}, sd(3);
  const Real g = 0.5f;
  b->Update(wc.data(), sc.data(), &g, 1, 100);
  b->Update(wc.data(), sc.data(), &g, 1, 0);
  b->Update(wd.data(), sd.data(), &g, 1, 100);
  b->Update(wd.data(), sd.data(), &g, 1, 100);
  EXPECT_EQ(wc, wd);
  EXPECT_EQ(sc, sd);
  EXPECT_EQ(sc[2], 100.0f);
}

TEST(OptimizerTest, AdamModeMustBeLazyOrDense) {
  OptimizerConfig config = Config("adam", 0.01f);
  config.adam_mode = "eager";
  try {
    MakeOptimizer(config);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown mode 'eager'; valid modes: lazy, dense"), std::string::npos) << e.what();
  }
}

// The sqrt loops run as AVX clones where the CPU has AVX (OptimizerConfig::
// baseline_loops). Both must give the same bits, at every width (vector body
// and scalar tail) over many steps of varied gradients, or a job's result
// would depend on the CPU of its servers. (On a CPU without AVX both
// optimizers run the baseline loops and the test holds trivially.)
TEST(OptimizerTest, AvxAndBaselineLoopsGiveTheSameBits) {
  for (const std::string name : {"adagrad", "adam", "adam-dense"}) {
    OptimizerConfig fast = Config(name == "adam-dense" ? "adam" : name, 0.01f);
    if (name == "adam-dense") fast.adam_mode = "dense";
    OptimizerConfig base = fast;
    base.baseline_loops = true;
    const auto a = MakeOptimizer(fast);
    const auto b = MakeOptimizer(base);
    for (const int width : {1, 3, 8, 9, 16, 33, 65}) {
      std::vector<Real> row_a(static_cast<std::size_t>(width)), state_a(static_cast<std::size_t>(a->StateSize(width)));
      for (int i = 0; i < width; ++i) row_a[static_cast<std::size_t>(i)] = 0.1f * static_cast<float>(i % 7) - 0.3f;
      a->InitState(state_a.data(), width);
      std::vector<Real> row_b = row_a, state_b = state_a;
      std::vector<Real> grad(static_cast<std::size_t>(width));
      std::uint64_t x = 12345;
      for (int step = 0; step < 200; ++step) {
        for (auto& g : grad) {
          x = x * 6364136223846793005ULL + 1442695040888963407ULL;
          // Gradients from 1e-6 to 10 in magnitude, either sign, some zero.
          const int e = static_cast<int>((x >> 33) % 8) - 6;
          g = (x >> 63 ? -1.0f : 1.0f) * std::ldexp(static_cast<float>((x >> 40) & 0xffff) / 65536.0f, e * 2);
        }
        // Global steps from none through the tabulated ones to past them
        // (dense: 299 missed steps between updates after the first).
        const std::uint64_t global = static_cast<std::uint64_t>(step) * 300;
        a->Update(row_a.data(), state_a.data(), grad.data(), width, global);
        b->Update(row_b.data(), state_b.data(), grad.data(), width, global);
      }
      for (int i = 0; i < width; ++i) {
        ASSERT_EQ(row_a[static_cast<std::size_t>(i)], row_b[static_cast<std::size_t>(i)])
            << name << " width " << width << " element " << i;
      }
      ASSERT_EQ(state_a, state_b) << name << " width " << width;
    }
  }
}

TEST(OptimizerTest, MakeOptimizerRejectsUnknownNames) {
  for (const char* name : {"", "momentum", "Adam", "SGD", "adam "}) {
    try {
      MakeOptimizer(Config(name, 0.1f));
      ADD_FAILURE() << "accepted '" << name << "'";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("sgd, adagrad, adam"), std::string::npos) << what;
    }
  }
}

TEST(OptimizerTest, MakeOptimizerRejectsBadLearningRates) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const char* name : {"sgd", "adagrad", "adam"}) {
    for (float lr : {0.0f, -0.1f, inf, -inf, nan}) {
      EXPECT_THROW(MakeOptimizer(Config(name, lr)), InputError) << name << " lr=" << lr;
    }
    EXPECT_NE(MakeOptimizer(Config(name, 1e-4f)), nullptr) << name;
  }
}

TEST(OptimizerTest, MakeOptimizerRejectsBadBetasAndEps) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float beta : {1.0f, -0.1f, 1.5f, nan}) {
    OptimizerConfig c1 = Config("adam", 0.1f);
    c1.beta1 = beta;
    EXPECT_THROW(MakeOptimizer(c1), InputError) << "beta1=" << beta;
    OptimizerConfig c2 = Config("adam", 0.1f);
    c2.beta2 = beta;
    EXPECT_THROW(MakeOptimizer(c2), InputError) << "beta2=" << beta;
  }
  OptimizerConfig zero_beta = Config("adam", 0.1f);
  zero_beta.beta1 = 0.0f;  // [0, 1): plain RMSProp-like steps are allowed
  EXPECT_NE(MakeOptimizer(zero_beta), nullptr);

  for (const char* name : {"adagrad", "adam"}) {
    for (float eps : {0.0f, -1e-8f, nan}) {
      OptimizerConfig c = Config(name, 0.1f);
      c.eps = eps;
      EXPECT_THROW(MakeOptimizer(c), InputError) << name << " eps=" << eps;
    }
  }
  OptimizerConfig acc = Config("adagrad", 0.1f);
  acc.initial_accumulator = -1.0f;
  EXPECT_THROW(MakeOptimizer(acc), InputError);

  // SGD ignores the fields it does not use.
  OptimizerConfig sgd = Config("sgd", 0.1f);
  sgd.beta1 = 2.0f;
  sgd.eps = 0.0f;
  EXPECT_NE(MakeOptimizer(sgd), nullptr);
}

}  // namespace
}  // namespace recsys
