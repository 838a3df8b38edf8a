// Hadamard matrices and transforms: orthogonality, the fast form against the dense matrix, and the
// rotated model computing the same function as the original.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit/model/model.h"
#include "lowbit/ptq/hadamard.h"
#include "lowbit/ptq/rotate.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

using ptq::HadamardTransform;

TEST(Hadamard, MatricesOfEveryConstructedOrderAreHadamard) {
  int constructed = 0;
  for (int m = 1; m <= 64; ++m) {
    const std::vector<double> h = ptq::hadamard_matrix(m);
    if (h.empty()) continue;
    ++constructed;
    for (int a = 0; a < m; ++a)
      for (int b = 0; b < m; ++b) {
        double dot = 0;
        for (int k = 0; k < m; ++k) dot += h[size_t(a * m + k)] * h[size_t(b * m + k)];
        ASSERT_EQ(dot, a == b ? m : 0) << "order " << m;
      }
  }
  // 1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 44, 48, 60, 64 (Sylvester, Paley I, Paley II)
  EXPECT_GE(constructed, 14);
  EXPECT_FALSE(ptq::hadamard_matrix(12).empty());  // Paley I, q = 11
  EXPECT_FALSE(ptq::hadamard_matrix(36).empty());  // Paley II, q = 17
}

TEST(Hadamard, TransformIsOrthogonalAndTheFastFormIsTheDenseProduct) {
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (const int n : {1, 2, 8, 12, 48, 36, 576, 1536}) {
    for (const uint64_t seed : {uint64_t(0), uint64_t(7)}) {
      const HadamardTransform t(n, seed);
      EXPECT_EQ(t.power_of_two_part() * t.small_order(), n);
      const std::vector<double> q = t.dense();
      if (n <= 576) {  // Q Qᵀ = I
        double worst = 0;
        for (int a = 0; a < n; ++a)
          for (int b = 0; b < n; ++b) {
            double dot = 0;
            for (int k = 0; k < n; ++k)
              dot += q[size_t(a) * size_t(n) + size_t(k)] * q[size_t(b) * size_t(n) + size_t(k)];
            worst = std::max(worst, std::fabs(dot - (a == b ? 1 : 0)));
          }
        EXPECT_LT(worst, 1e-12) << n;
      }
      const int rows = 3;
      std::vector<float> x(size_t(rows) * size_t(n));
      for (float& v : x) v = g(rng);
      std::vector<float> y = x;
      t.apply(y.data(), rows);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < n; ++c) {
          double want = 0;
          for (int k = 0; k < n; ++k)
            want += double(x[size_t(r * n + k)]) * q[size_t(k) * size_t(n) + size_t(c)];
          ASSERT_NEAR(y[size_t(r * n + c)], want, 1e-5) << "n " << n << " seed " << seed;
        }
      t.apply_inverse(y.data(), rows);
      for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(y[i], x[i], 1e-5);
    }
  }
  // Different seeds give different sign patterns.
  EXPECT_NE(HadamardTransform(64, 1).dense(), HadamardTransform(64, 2).dense());
  EXPECT_THROW(HadamardTransform(9), Error);
  EXPECT_THROW(HadamardTransform(18), Error);
  EXPECT_FALSE(HadamardTransform::supported(0));
}

TEST(Hadamard, BlockTransformIsOrthogonalAndBlockDiagonal) {
  for (const int block : {2, 4, 16, 32}) {
    const ptq::BlockHadamardTransform t(96, block, 5);
    const std::vector<double> q = t.dense();
    for (int i = 0; i < 96; ++i)
      for (int j = 0; j < 96; ++j) {
        double dot = 0;
        for (int k = 0; k < 96; ++k) dot += q[size_t(i * 96 + k)] * q[size_t(j * 96 + k)];
        ASSERT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-6) << block;
        // Entries only inside the diagonal blocks, each of magnitude 1 / sqrt(block).
        const double v = std::fabs(q[size_t(i * 96 + j)]);
        if (i / block == j / block)
          ASSERT_NEAR(v, 1.0 / std::sqrt(double(block)), 1e-6);
        else
          ASSERT_EQ(v, 0.0);
      }
    std::vector<float> x(96 * 3);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i));
    std::vector<float> y = x;
    t.apply(y.data(), 3);
    t.apply_inverse(y.data(), 3);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(y[i], x[i], 1e-5);
  }
  EXPECT_THROW(ptq::BlockHadamardTransform(96, 64), Error);
}

class RotationTest : public TempDirTest {};

TEST_F(RotationTest, RotatedModelComputesTheSameFunction) {
  for (const bool tied : {true, false}) {
    TinyLlama::random(51, tied, /*bias=*/!tied).write_gguf(path("tiny.gguf"));
    const model::Model m = model::load_model(path("tiny.gguf"));
    for (const int block : {0, 16}) {
      ptq::RotationOptions o;
      o.seed = 3;
      o.block = block;
      const model::Llama rotated = ptq::rotate_model(*m.llama, o);
      const std::vector<int32_t> tokens =
          m.tokenizer->encode("the cat sat on the mat and the dog ran after it");
      const int n = int(tokens.size());
      const int vocab = m.llama->config().vocab_size;
      model::LlamaRunState a(m.llama->config(), n, n), b(rotated.config(), n, n);
      m.llama->forward(tokens.data(), n, 0, a);
      rotated.forward(tokens.data(), n, 0, b);
      std::vector<float> la(size_t(n) * size_t(vocab)), lb(la.size());
      m.llama->logits(a, 0, n, la.data());
      rotated.logits(b, 0, n, lb.data());
      double worst = 0, scale = 0;
      for (size_t i = 0; i < la.size(); ++i) {
        worst = std::max(worst, double(std::fabs(la[i] - lb[i])));
        scale = std::max(scale, double(std::fabs(la[i])));
      }
      EXPECT_LT(worst / scale, 1e-5) << (tied ? "tied" : "untied") << " block " << block;
      // The rotation really changed the weights, and the norms are folded.
      EXPECT_NE(rotated.weights().layers[0].wq.weight(), m.llama->weights().layers[0].wq.weight());
      for (float g : rotated.weights().layers[1].ffn_norm) EXPECT_EQ(g, 1.0f);
      EXPECT_NE(rotated.weights().layers[0].w_down.input_transform(), nullptr);
    }
  }
}

}  // namespace
}  // namespace lowbit::testing
