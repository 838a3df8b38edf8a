// L-Mul (lowbit/model/lmul.h): the definition on hand-worked products, the three-product matrix
// emulation against the definition, the Linear and attention product modes, and the `lmul` method
// on a tiny LLaMA.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit/model/linear.h"
#include "lowbit/model/lmul.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/quant/packed_weight.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

using model::lmul;

TEST(LMul, TheDefinitionOnHandWorkedProducts) {
  // l(m) as the paper gives it.
  EXPECT_EQ(model::lmul_offset_bits(1), 1);
  EXPECT_EQ(model::lmul_offset_bits(3), 3);
  EXPECT_EQ(model::lmul_offset_bits(4), 3);
  EXPECT_EQ(model::lmul_offset_bits(7), 4);
  EXPECT_EQ(model::lmul_offset_bits(23), 4);
  // (1 + 0.5 + 0.5 + 2^-3) · 2^0 where the exact product is 2.25.
  EXPECT_EQ(lmul(1.5f, 1.5f, 3), 2.125f);
  // −(1 + 0.25 + 0 + 1/8) · 2^1.
  EXPECT_EQ(lmul(-1.25f, 2.0f, 3), -2.75f);
  // Exponents add: 3 · 0.375 = (1 + 0.5)·2^1 · (1 + 0.5)·2^-2 -> 2.125 · 2^-1.
  EXPECT_EQ(lmul(3.0f, 0.375f, 3), 1.0625f);
  // m = 4: l = 3 as well; (1 + 0.0625 + 0.9375 + 0.125) · 2^(1 + -1).
  EXPECT_EQ(lmul(2.125f, 0.96875f, 4), 2.125f);
  EXPECT_EQ(lmul(0.0f, 5.0f, 3), 0.0f);
  EXPECT_EQ(lmul(5.0f, -0.0f, 3), 0.0f);
  EXPECT_TRUE(std::isinf(lmul(INFINITY, 2.0f, 3)));
  // Operands are rounded to m mantissa bits first, ties to even.
  EXPECT_EQ(model::lmul_operand(1.0625f, 3), 1.0f);   // halfway to 1.125: even is 1.0
  EXPECT_EQ(model::lmul_operand(1.1875f, 3), 1.25f);  // halfway to 1.125 / 1.25: 1.25
  EXPECT_EQ(model::lmul_operand(1.96875f, 3), 2.0f);  // carries into the exponent
  EXPECT_EQ(model::lmul_operand(-0.3f, 23), -0.3f);
  EXPECT_EQ(lmul(1.0625f, 1.0f, 3), lmul(1.0f, 1.0f, 3));
  EXPECT_THROW(lmul(1.0f, 1.0f, 0), Error);
  // Against the exact product: the error is (xm·ym − 2^-l)·2^(xe+ye), and with m = 3 it stays
  // within 1/8 of the operands' power-of-two parts' product.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-8, 8);
  for (int i = 0; i < 10000; ++i) {
    const float x = model::lmul_operand(u(rng), 3), y = model::lmul_operand(u(rng), 3);
    if (x == 0 || y == 0) continue;
    const double p0 = std::exp2(std::floor(std::log2(std::fabs(double(x))))) *
                      std::exp2(std::floor(std::log2(std::fabs(double(y)))));
    const double xm = std::fabs(x) / std::exp2(std::floor(std::log2(std::fabs(double(x))))) - 1;
    const double ym = std::fabs(y) / std::exp2(std::floor(std::log2(std::fabs(double(y))))) - 1;
    const double sign = double(x) * double(y) > 0 ? 1 : -1;
    const double want = double(x) * double(y) - sign * p0 * (xm * ym - 0.125);
    ASSERT_EQ(double(lmul(x, y, 3)), want) << x << " * " << y;
  }
}

// C = alpha · Σ L-Mul(A, B) by the three-product emulation, against the definition summed in
// double, for both layouts of B, strided operands and several mantissa widths.
TEST(LMul, MatrixProductEqualsTheDefinitionSummed) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0, 1);
  const int M = 5, N = 7, K = 33, lda = 40, ldb = 41, ldc = 9;
  std::vector<float> A(size_t(M) * lda), Bt(size_t(N) * ldb), B(size_t(K) * ldb);
  for (float& v : A) v = g(rng);
  for (float& v : Bt) v = g(rng);
  for (float& v : B) v = g(rng);
  A[3] = 0;  // zeros contribute nothing
  for (const int m : {2, 3, 4, 7, 23})
    for (const bool transposed : {true, false}) {
      std::vector<float> C(size_t(M) * ldc, -1.0f);
      model::lmul_gemm(M, N, K, 0.5f, A.data(), lda, transposed ? Bt.data() : B.data(), ldb,
                       transposed, C.data(), ldc, m);
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double want = 0, size = 0;
          for (int k = 0; k < K; ++k) {
            const float b = transposed ? Bt[size_t(j) * ldb + k] : B[size_t(k) * ldb + j];
            const double p = lmul(A[size_t(i) * lda + k], b, m);
            want += p, size += std::fabs(p);
          }
          ASSERT_NEAR(C[size_t(i) * ldc + j], 0.5 * want, 1e-6 * size)
              << "m " << m << " transposed " << transposed << " at " << i << "," << j;
        }
    }
}

TEST(LMul, LinearProductsAndTheirLimits) {
  std::mt19937 rng(9);
  const auto w = std::make_shared<std::vector<float>>(random_matrix(rng, 6, 20, 1.0f));
  model::Linear lin("l", 6, 20, w, std::vector<float>(6, 0.25f));
  const Matrix x = random_matrix(rng, 3, 20, 2.0f);
  std::vector<float> exact(18), approx(18);
  lin.forward(x.data(), 3, exact.data());
  lin.set_products(model::LMul{3});
  lin.forward(x.data(), 3, approx.data());
  double differ = 0;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 6; ++c) {
      double want = 0.25;
      for (int k = 0; k < 20; ++k) want += lmul(x[size_t(r) * 20 + k], (*w)[size_t(c) * 20 + k], 3);
      EXPECT_NEAR(approx[size_t(r) * 6 + c], want, 1e-5);
      differ += std::fabs(approx[size_t(r) * 6 + c] - exact[size_t(r) * 6 + c]);
    }
  EXPECT_GT(differ, 0.01);  // an approximation, not the exact product
  lin.set_accumulation(model::Accumulation{formats::bf16, 1});
  EXPECT_THROW(lin.forward(x.data(), 3, approx.data()), Error);
  // Packed weights (real execution) would take the kernels' exact products: refused, also on the
  // quantized-activation path a decode step takes.
  lin.set_accumulation(std::nullopt);
  const Scheme s = parse_scheme("mxfp4");
  lin.set_weight_scheme(s);
  lin.set_packed_weight(
      std::make_shared<kernels::PackedMatrix>(pack_weight(quantize(s, w->data(), {6, 20}))));
  lin.set_input_scheme(parse_scheme("mxfp8_e4m3"));
  EXPECT_THROW(lin.forward(x.data(), 1, approx.data()), Error);
}

class LMulMethodTest : public TempDirTest {};

TEST_F(LMulMethodTest, TheMethodApproximatesLinearsAndAttention) {
  TinyLlama::random(61).write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  const std::vector<int32_t> prompt = m.tokenizer->encode("the dog sat on the cat and ran");
  const std::vector<float> fp = all_logits(*m.llama, prompt);
  const auto with = [&](const char* method) {
    ptq::Recipe r;
    r.methods.push_back(ptq::parse_method(method));
    const model::Llama q = ptq::apply_recipe(r, *m.llama);
    return all_logits(q, prompt);
  };
  const auto distance = [&](const std::vector<float>& a) {
    double d = 0, s = 0;
    for (size_t i = 0; i < a.size(); ++i) d += std::fabs(a[i] - fp[i]), s += std::fabs(fp[i]);
    return d / s;
  };
  const double linear = distance(with("lmul")), both = distance(with("lmul:attention"));
  const double attention = distance(with("lmul:attention:no_linear"));
  const double wide = distance(with("lmul:mantissa=7"));
  EXPECT_GT(linear, 1e-4);
  EXPECT_LT(linear, 0.5);  // near, not equal (a random model's logits are small)
  EXPECT_GT(attention, 1e-5);
  EXPECT_NE(both, linear);
  EXPECT_GT(wide, 0);
  EXPECT_THROW(with("lmul:no_linear"), Error);
  EXPECT_THROW(ptq::parse_method("lmul:mantissa=0"), Error);
}

}  // namespace
}  // namespace lowbit::testing
