#include "models/loss.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"

namespace recsys {
namespace {

// A batch that carries only labels: losses look at nothing else.
Batch LabelBatch(const std::vector<Real>& labels) {
  Batch batch;
  batch.size = static_cast<int>(labels.size());
  batch.label = labels;
  return batch;
}

Vector Logits(const std::vector<Real>& values) {
  Vector v(static_cast<Eigen::Index>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) v[static_cast<Eigen::Index>(i)] = values[i];
  return v;
}

TEST(LossBce, HandComputedValues) {
  const Batch batch = LabelBatch({1, 0, 1});
  const Vector z = Logits({0.0f, 2.0f, -1.0f});
  Vector d;
  const double loss = BceLoss().Compute(batch, z, &d);
  // log 2 + softplus(2) + softplus(1)
  EXPECT_NEAR(loss, std::log(2.0) + std::log1p(std::exp(2.0)) + std::log1p(std::exp(1.0)), 1e-6);
  ASSERT_EQ(d.size(), 3);
  EXPECT_NEAR(d[0], -0.5, 1e-7);
  EXPECT_NEAR(d[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(d[2], 1.0 / (1.0 + std::exp(1.0)) - 1.0, 1e-6);  // sigmoid(-1) - 1
}

TEST(LossBce, LargeLogitsStayFinite) {
  const Batch batch = LabelBatch({1, 0, 1, 0});
  const Vector z = Logits({1000.0f, 1000.0f, -1000.0f, -1000.0f});
  Vector d;
  const double loss = BceLoss().Compute(batch, z, &d);
  ASSERT_TRUE(std::isfinite(loss));
  // Right with confidence costs nothing; wrong with confidence costs |z|.
  EXPECT_NEAR(loss, 2000.0, 1e-6);
  EXPECT_NEAR(d[0], 0.0, 1e-7);
  EXPECT_NEAR(d[1], 1.0, 1e-7);
  EXPECT_NEAR(d[2], -1.0, 1e-7);
  EXPECT_NEAR(d[3], 0.0, 1e-7);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(d[i]));
}

// The softplus logs are summed as the log of their product, 256 examples at
// a time: over no example, one, several such groups and a partial one, with
// logits near zero (every factor near 2, the largest products) and far from
// it (factors near 1), the total matches the sum of log1p's to 1e-12
// relative, and the gradients are unchanged.
TEST(LossBce, LongBatchesSumEachExamplesSoftplus) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-40.0f, 40.0f), narrow(-0.01f, 0.01f);
  for (const int n : {0, 1, 255, 256, 257, 1000, 5000}) {
    std::vector<Real> labels(static_cast<std::size_t>(n)), values(static_cast<std::size_t>(n));
    for (int e = 0; e < n; ++e) {
      labels[static_cast<std::size_t>(e)] = static_cast<Real>(e % 3 == 0);
      values[static_cast<std::size_t>(e)] = e % 2 == 0 ? narrow(rng) : wide(rng);
    }
    const Batch batch = LabelBatch(labels);
    const Vector z = Logits(values);
    Vector d;
    const double loss = BceLoss().Compute(batch, z, &d);
    double expected = 0;
    for (int e = 0; e < n; ++e) {
      const double x = z[e], y = labels[static_cast<std::size_t>(e)];
      expected += (x > 0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x))) - y * x;
      const double sigmoid = 1.0 / (1.0 + std::exp(-x));
      ASSERT_NEAR(d[e], sigmoid - y, 1e-6) << "example " << e << " of " << n;
    }
    EXPECT_NEAR(loss, expected, 1e-12 * expected) << n << " examples";
    if (n == 0) {
      EXPECT_EQ(loss, 0.0);
    }
  }
}

TEST(LossBpr, HandComputedValues) {
  const Batch batch = LabelBatch({1, 0, 1, 0});
  const Vector z = Logits({2.0f, 1.0f, 0.5f, 0.5f});
  Vector d;
  const double loss = BprLoss().Compute(batch, z, &d);
  // -log s(1) - log s(0)
  EXPECT_NEAR(loss, std::log1p(std::exp(-1.0)) + std::log(2.0), 1e-6);
  const double s = 1.0 / (1.0 + std::exp(1.0));  // sigmoid(-1)
  EXPECT_NEAR(d[0], -s, 1e-6);
  EXPECT_NEAR(d[1], s, 1e-6);
  EXPECT_NEAR(d[2], -0.5, 1e-7);
  EXPECT_NEAR(d[3], 0.5, 1e-7);
}

TEST(LossBpr, LargeLogitsStayFinite) {
  const Batch batch = LabelBatch({1, 0, 1, 0});
  const Vector z = Logits({-500.0f, 500.0f, 500.0f, -500.0f});
  Vector d;
  const double loss = BprLoss().Compute(batch, z, &d);
  ASSERT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, 1000.0, 1e-6);  // the misordered pair costs its margin
  EXPECT_NEAR(d[0], -1.0, 1e-7);
  EXPECT_NEAR(d[1], 1.0, 1e-7);
  EXPECT_NEAR(d[2], 0.0, 1e-7);
  EXPECT_NEAR(d[3], 0.0, 1e-7);
}

TEST(LossBpr, RejectsOddBatch) {
  const Batch batch = LabelBatch({1, 0, 1});
  Vector d;
  EXPECT_THROW(BprLoss().Compute(batch, Logits({1, 2, 3}), &d), InternalError);
}

TEST(LossShapes, RejectsMismatchedLogits) {
  const Batch batch = LabelBatch({1, 0});
  Vector d;
  EXPECT_THROW(BceLoss().Compute(batch, Logits({1, 2, 3}), &d), InternalError);
  EXPECT_THROW(BprLoss().Compute(batch, Logits({1}), &d), InternalError);
}

// dlogits is the derivative of the summed loss, checked by central
// differences (in double: the losses compute in double from float logits,
// so perturb by a float-representable step).
TEST(LossGradient, MatchesFiniteDifferences) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const Batch batch = LabelBatch({1, 0, 1, 0, 1, 0, 0, 1});
  for (const char* name : {"bce", "bpr"}) {
    SCOPED_TRACE(name);
    const auto loss = MakeLoss(name);
    Vector z(batch.size);
    for (int i = 0; i < batch.size; ++i) z[i] = normal(rng);
    Vector d;
    loss->Compute(batch, z, &d);
    const float eps = 1.0f / 256;  // exact in float, so z +- eps is exact too
    for (int i = 0; i < batch.size; ++i) {
      Vector plus = z, minus = z, scratch;
      plus[i] += eps;
      minus[i] -= eps;
      const double numeric = (loss->Compute(batch, plus, &scratch) - loss->Compute(batch, minus, &scratch)) / (2 * eps);
      EXPECT_NEAR(d[i], numeric, 1e-4) << "logit " << i;
    }
  }
}

TEST(LossRegistry, MakesKnownLossesAndRejectsOthers) {
  EXPECT_FALSE(MakeLoss("bce")->pairwise());
  EXPECT_TRUE(MakeLoss("bpr")->pairwise());
  try {
    MakeLoss("hinge");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hinge"), std::string::npos) << what;
    EXPECT_NE(what.find("bce"), std::string::npos) << what;
    EXPECT_NE(what.find("bpr"), std::string::npos) << what;
  }
  EXPECT_THROW(MakeLoss(""), InputError);
}

}  // namespace
}  // namespace recsys
