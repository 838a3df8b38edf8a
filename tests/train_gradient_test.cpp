// The backward of the trainable LLaMA against float64 central finite differences, on every
// element of every parameter tensor of tiny models (tied and untied heads, both RoPE layouts,
// grouped-query attention), and its forward against the inference runtime's.
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/train/quantized_training.h"
#include "lowbit/train/sharpness.h"
#include "lowbit/train/train_model.h"
#include "lowbit/util/error.h"
#include "tiny_models.h"

namespace lowbit::train {
namespace {

model::LlamaConfig tiny_config(bool tied, model::RopeStyle style) {
  model::LlamaConfig c;
  c.arch = "llama";
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 4;
  c.hidden_dim = 24;
  c.vocab_size = 11;
  c.context_length = 16;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_inv_freq = model::rope_inv_freq(c.head_dim, c.rope_theta);
  c.rope_style = style;
  c.tied_output = tied;
  return c;
}

// Weights large enough that attention is far from uniform and every path carries gradient;
// norms away from 1 so their gradient is tested at a generic point.
template <typename T>
TrainLlama<T> tiny_model(bool tied, model::RopeStyle style) {
  TrainLlama<T> m(tiny_config(tied, style), 7, 0.4);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.6, 1.4);
  for (Parameter<T>& p : m.parameters())
    if (!p.is_matrix)
      for (T& v : p.value) v = T(u(rng));
  return m;
}

struct Batch {
  int batch = 2, seq = 6;
  std::vector<int32_t> tokens, targets;
};

Batch tiny_batch(int vocab) {
  Batch b;
  std::mt19937 rng(11);
  for (int i = 0; i < b.batch * b.seq; ++i) {
    b.tokens.push_back(int32_t(rng() % uint32_t(vocab)));
    b.targets.push_back(int32_t(rng() % uint32_t(vocab)));
  }
  b.tokens[3] = b.tokens[4];  // a repeated token sums two rows into one embedding gradient
  b.targets[5] = -1;          // an unscored position
  return b;
}

class GradientCheck : public ::testing::TestWithParam<std::tuple<bool, model::RopeStyle>> {};

// Central differences with h = 1e-5 in float64: truncation error ~h²·f''' ≈ 1e-10 and rounding
// ~1e-16 / h ≈ 1e-11 against gradients of order 0.1-1, so a correct backward agrees to ~1e-8
// relative to the tensor's largest gradient; the bound is 1e-6.
TEST_P(GradientCheck, EveryElementOfEveryParameterMatchesFiniteDifferences) {
  const auto [tied, style] = GetParam();
  model::set_num_threads(1);  // ~8000 forwards of a few thousand multiply-adds each
  TrainLlama<double> m = tiny_model<double>(tied, style);
  const Batch b = tiny_batch(m.config().vocab_size);
  m.zero_grad();
  const LossSum base =
      m.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true, 1.0);
  ASSERT_EQ(base.scored, b.batch * b.seq - 1);
  const auto loss = [&] {
    return m.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, false).sum;
  };
  constexpr double h = 1e-5;
  int tensors = 0;
  double overall = 0;
  for (Parameter<double>& p : m.parameters()) {
    double largest = 0, worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < p.value.size(); ++i) {
      const double keep = p.value[i];
      p.value[i] = keep + h;
      const double up = loss();
      p.value[i] = keep - h;
      const double down = loss();
      p.value[i] = keep;
      const double fd = (up - down) / (2 * h);
      largest = std::max(largest, std::abs(fd));
      if (std::abs(fd - p.grad[i]) > worst) worst = std::abs(fd - p.grad[i]), worst_at = i;
    }
    ASSERT_GT(largest, 1e-4) << p.name << " carries no gradient: the check would be vacuous";
    EXPECT_LT(worst / largest, 1e-6) << p.name << " element " << worst_at << ": analytic "
                                     << p.grad[worst_at] << ", largest |gradient| " << largest;
    overall = std::max(overall, worst / largest);
    ++tensors;
  }
  std::printf("largest error relative to a tensor's largest gradient: %.2e\n", overall);
  model::set_num_threads(0);
  EXPECT_EQ(tensors, tied ? 2 + 9 * 2 : 3 + 9 * 2);
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, GradientCheck,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(model::RopeStyle::HalfSplit,
                                                              model::RopeStyle::AdjacentPairs)));

// The training forward is the inference runtime's forward: same logits-derived loss on the same
// weights (float32, different summation orders: 1e-5 relative).
TEST(TrainForward, LossEqualsTheRuntimesCrossEntropy) {
  for (bool tied : {false, true}) {
    TrainLlama<float> m = tiny_model<float>(tied, model::RopeStyle::HalfSplit);
    const Batch b = tiny_batch(m.config().vocab_size);
    const LossSum ours =
        m.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, false);
    const model::Llama runtime = m.to_runtime();
    const int V = runtime.config().vocab_size;
    double want = 0;
    for (int s = 0; s < b.batch; ++s) {
      model::LlamaRunState state(runtime.config(), b.seq, b.seq);
      runtime.forward(b.tokens.data() + s * b.seq, b.seq, 0, state);
      std::vector<float> logits(size_t(b.seq) * V);
      runtime.logits(state, 0, b.seq, logits.data());
      for (int i = 0; i < b.seq; ++i) {
        const int32_t t = b.targets[size_t(s * b.seq + i)];
        if (t < 0) continue;
        const float* l = logits.data() + size_t(i) * V;
        double top = l[0], sum = 0;
        for (int j = 0; j < V; ++j) top = std::max(top, double(l[j]));
        for (int j = 0; j < V; ++j) sum += std::exp(double(l[j]) - top);
        want += std::log(sum) + top - l[t];
      }
    }
    EXPECT_NEAR(ours.sum, want, 1e-5 * want) << (tied ? "tied" : "untied");
    // And back: the runtime's weights are the parameters.
    TrainLlama<float> again = TrainLlama<float>::from_runtime(runtime);
    for (size_t i = 0; i < m.parameters().size(); ++i)
      EXPECT_EQ(again.parameters()[i].value, m.parameters()[i].value) << m.parameters()[i].name;
  }
}

// float32 gradients agree with float64 ones on the same weights (the float path runs the same
// code; this catches a precision bug, e.g. a sum that should be in double).
TEST(TrainBackward, Float32GradientsAgreeWithFloat64) {
  TrainLlama<double> m64 = tiny_model<double>(false, model::RopeStyle::HalfSplit);
  TrainLlama<float> m32 = tiny_model<float>(false, model::RopeStyle::HalfSplit);
  for (size_t i = 0; i < m32.parameters().size(); ++i)
    for (size_t j = 0; j < m32.parameters()[i].value.size(); ++j)
      m64.parameters()[i].value[j] = m32.parameters()[i].value[j];
  const Batch b = tiny_batch(m32.config().vocab_size);
  m64.zero_grad();
  m32.zero_grad();
  m64.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true, 1.0);
  m32.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true, 1.0f);
  for (size_t i = 0; i < m32.parameters().size(); ++i) {
    const auto& g32 = m32.parameters()[i].grad;
    const auto& g64 = m64.parameters()[i].grad;
    EXPECT_LT(testing::max_relative_error(g32, g64), 1e-4) << m32.parameters()[i].name;
  }
}

// The sharpness measure (Lanczos on finite-difference Hessian-vector products) against the
// largest eigenvalue of the explicit Hessian of a model small enough to build it column by column.
TEST(Sharpness, LanczosFindsTheLargestHessianEigenvalue) {
  model::LlamaConfig c = tiny_config(false, model::RopeStyle::HalfSplit);
  c.dim = 8, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.hidden_dim = 8, c.vocab_size = 7;
  TrainLlama<float> m(c, 5, 0.5);
  const Batch b = tiny_batch(c.vocab_size);
  int64_t scored = 0;
  for (int32_t t : b.targets) scored += t >= 0;
  TrainLlama<double> d = TrainLlama<double>::from_runtime(m.to_runtime());
  const auto gradient = [&] {
    d.zero_grad();
    d.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true,
                       1.0 / double(scored));
    std::vector<double> g;
    for (const Parameter<double>& p : d.parameters())
      g.insert(g.end(), p.grad.begin(), p.grad.end());
    return g;
  };
  std::vector<double*> values;
  for (Parameter<double>& p : d.parameters())
    for (double& v : p.value) values.push_back(&v);
  const int n = int(values.size());
  Eigen::MatrixXd H(n, n);
  constexpr double eps = 1e-5;
  for (int i = 0; i < n; ++i) {
    const double keep = *values[size_t(i)];
    *values[size_t(i)] = keep + eps;
    const std::vector<double> up = gradient();
    *values[size_t(i)] = keep - eps;
    const std::vector<double> down = gradient();
    *values[size_t(i)] = keep;
    for (int j = 0; j < n; ++j) H(j, i) = (up[size_t(j)] - down[size_t(j)]) / (2 * eps);
  }
  const Eigen::MatrixXd sym = (H + H.transpose()) / 2;
  const double want = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(sym).eigenvalues().maxCoeff();
  const double got = loss_sharpness(m, b.tokens, b.targets, b.batch, b.seq, 60, 1);
  EXPECT_NEAR(got, want, 1e-4 * std::abs(want)) << n << " parameters";
  EXPECT_GT(want, 0);
}

// The quantized products' layout (each operand transposed to its reduction, rotated, rounded,
// multiplied) is the exact products' when nothing is lost: a Hadamard rotation alone leaves every
// gradient as it was up to float32 rounding, and a fine format (E5M10 per tensor) close to it.
TEST(QuantizedProducts, LosslessRecipesGiveTheExactGradients) {
  const Batch b = tiny_batch(11);
  TrainLlama<float> exact = tiny_model<float>(false, model::RopeStyle::HalfSplit);
  exact.zero_grad();
  exact.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true, 1.0f);
  for (const auto& [spelling, bound] : std::vector<std::pair<std::string, double>>{
           {"hadamard=4", 1e-5}, {"fwd=e5m10:tensor;grad=e5m10:tensor", 1e-2}}) {
    TrainLlama<float> m = tiny_model<float>(false, model::RopeStyle::HalfSplit);
    TrainingRecipe recipe(parse_training_recipe(spelling + ";head"), m.config(), 1);
    ASSERT_NE(recipe.products(), nullptr);
    m.set_products(recipe.products());
    m.zero_grad();
    recipe.begin_step(0);
    m.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true, 1.0f);
    for (size_t i = 0; i < m.parameters().size(); ++i) {
      const auto& want = exact.parameters()[i].grad;
      const auto& got = m.parameters()[i].grad;
      EXPECT_LT(testing::max_relative_error(got, std::vector<double>(want.begin(), want.end())),
                bound)
          << spelling << ": " << m.parameters()[i].name;
    }
  }
}

TEST(TrainModel, RefusesWhatTheBackwardDoesNotCover) {
  model::LlamaConfig c = tiny_config(true, model::RopeStyle::HalfSplit);
  c.qkv_bias = true;
  try {
    TrainLlama<float> m(c, 1);
    FAIL() << "a model with biases was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("biases"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit::train
