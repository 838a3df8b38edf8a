// HAWQ-V3 integer-only execution: dyadic multipliers are the nearest 31-bit b / 2^c and round as
// defined; the integer-only Linear's sums are exact, its requantized codes lie within the dyadic
// rounding of the exact value and differ from the float emulation only next to a rounding
// midpoint; the dyadic method makes every quantized Linear of a decoder integer-only, close to its
// float emulation, and names what it cannot take.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "error_message.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/integer_linear.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/quant/dyadic.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

TEST(Dyadic, NearestThirtyOneBitFormWithTheLargestShift) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> exponent(-31.5, 30.5);
  for (int i = 0; i < 20000; ++i) {
    const double m = std::exp2(exponent(rng));
    const Dyadic d = dyadic_of(m);
    ASSERT_LT(d.b, int64_t(1) << 31) << m;
    ASSERT_GE(d.c, 0);
    ASSERT_LE(d.c, 62);
    // The largest shift: one more would need a 32-bit b.
    if (d.c < 62) {
      ASSERT_GE(std::llround(std::ldexp(m, d.c + 1)), int64_t(1) << 31) << m;
    }
    ASSERT_LE(std::abs(d.value() - m), std::ldexp(1.0, -(d.c + 1))) << m;
    ASSERT_LE(std::abs(d.value() - m), m * std::ldexp(1.0, -30)) << m;
  }
  EXPECT_EQ(dyadic_of(0.5).value(), 0.5);
  EXPECT_EQ(dyadic_of(3.0).value(), 3.0);
  for (double bad : {0.0, -1.0, std::nan(""), double(INFINITY), std::ldexp(1.0, 31), 1e-12})
    EXPECT_THROW(dyadic_of(bad), Error) << bad;
}

TEST(Dyadic, MultiplyRoundsHalfUp) {
  std::mt19937_64 rng(6);
  std::uniform_int_distribution<int64_t> acc(-(int64_t(1) << 31) + 1, (int64_t(1) << 31) - 1);
  std::uniform_real_distribution<double> exponent(-30, 0);
  for (int i = 0; i < 20000; ++i) {
    const Dyadic d = dyadic_of(std::exp2(exponent(rng)));
    const int64_t a = i < 100 ? i - 50 : acc(rng);
    const int64_t r = dyadic_multiply(a, d);
    // (r − ½)·2^c <= a·b < (r + ½)·2^c, in exact 128-bit integers.
    const __int128 ab = __int128(a) * d.b, two_c = __int128(1) << d.c;
    ASSERT_LE(2 * __int128(r) * two_c - two_c, 2 * ab) << a << " " << d.b << " " << d.c;
    ASSERT_LT(2 * ab, 2 * __int128(r) * two_c + two_c) << a << " " << d.b << " " << d.c;
  }
  const Dyadic half{1, 1};  // 1/2: ties go up
  EXPECT_EQ(dyadic_multiply(1, half), 1);
  EXPECT_EQ(dyadic_multiply(-1, half), 0);
  EXPECT_EQ(dyadic_multiply(3, half), 2);
}

struct LinearCase {
  model::IntegerLinearSpec spec;
  std::vector<float> x;
  int n = 0;
};

LinearCase random_linear(int out, int in, int n, int weight_bits, int output_bits, bool bias,
                         uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  const int wmax = (1 << (weight_bits - 1)) - 1;
  std::uniform_int_distribution<int> code(-wmax, wmax);
  LinearCase c;
  c.n = n;
  model::IntegerLinearSpec& s = c.spec;
  s.out = out;
  s.in = in;
  s.weight_bits = weight_bits;
  s.output_bits = output_bits;
  for (int i = 0; i < out * in; ++i) s.weight_codes.push_back(int8_t(code(rng)));
  for (int r = 0; r < out; ++r) s.weight_scales.push_back(0.01f * (1 + 0.1f * float(r % 7)));
  if (bias)
    for (int r = 0; r < out; ++r) s.bias.push_back(0.3f * normal(rng));
  for (int i = 0; i < n * in; ++i) c.x.push_back(normal(rng));
  float amax = 0;
  for (float v : c.x) amax = std::max(amax, std::abs(v));
  s.input_scale = amax / 127;
  // An output scale that saturates a few of the largest outputs.
  s.output_scale = 0.6f * 0.01f * float(wmax) * std::sqrt(float(in)) * amax / 3 /
                   float((1 << (output_bits - 1)) - 1);
  return c;
}

TEST(IntegerLinear, SumsAreExactAndCodesWithinTheDyadicRounding) {
  for (const auto& [n, weight_bits, output_bits, bias] :
       std::vector<std::tuple<int, int, int, bool>>{{1, 8, 8, false},
                                                    {3, 8, 8, true},
                                                    {20, 8, 8, true},
                                                    {20, 4, 8, false},
                                                    {9, 8, 16, true}}) {
    const LinearCase c = random_linear(48, 200, n, weight_bits, output_bits, bias, 11 + n);
    const model::IntegerLinear lin(c.spec);
    const size_t in = 200, out = 48;
    std::vector<int8_t> qx(c.x.size());
    lin.quantize_input(c.x.data(), qx.size(), qx.data());
    std::vector<int32_t> acc(size_t(n) * out), qy(acc.size());
    lin.sums(qx.data(), n, acc.data());
    lin.requantize(acc.data(), n, qy.data());
    std::vector<float> y(acc.size()), ye(acc.size());
    lin.forward(c.x.data(), n, y.data());
    lin.emulate(c.x.data(), n, ye.data());
    int differ = 0, saturated = 0;
    double near_midpoint = 0;  // expected disagreements: each error band's width
    for (size_t j = 0; j < size_t(n); ++j)
      for (size_t r = 0; r < out; ++r) {
        int64_t exact = lin.bias_codes()[r];
        double abs_terms = 0;
        for (size_t k = 0; k < in; ++k) {
          const int64_t p = int64_t(qx[j * in + k]) * c.spec.weight_codes[r * in + k];
          exact += p;
          abs_terms += std::abs(double(p));
        }
        const size_t i = j * out + r;
        ASSERT_EQ(acc[i], exact) << "row " << j << " out " << r;
        EXPECT_EQ(y[i], c.spec.output_scale * float(qy[i]));
        // The value the codes stand for, in exact terms of the sums: v = (Σ q_x q_w)·m + bias /
        // s_y.
        const double m = lin.multiplier(r);
        const double bias_exact = bias ? double(c.spec.bias[r]) / c.spec.output_scale : 0;
        const double v = double(exact - lin.bias_codes()[r]) * m + bias_exact;
        const double limit = lin.output_max();
        if (std::abs(v) > limit + 1) {
          ++saturated;
          EXPECT_EQ(std::abs(qy[i]), lin.output_max());
          continue;
        }
        // Integer path: the dyadic error on the sum plus the bias code's rounding.
        const double dyadic_error =
            std::abs(double(exact) * (lin.multipliers()[r].value() - m)) + (bias ? 0.5 * m : 0);
        const double clamped = std::clamp(v, -limit, limit);
        EXPECT_LE(std::abs(double(qy[i]) - clamped), 0.5 + dyadic_error + 1e-12) << v;
        // Float emulation: float32 sums of the fake-quantized products (bounded by γ_n Σ|terms|
        // in units of s_y) and the float32 division by s_y.
        const double emulated_code = std::nearbyint(double(ye[i]) / c.spec.output_scale);
        const double float_error =
            (double(in) + 4) * 6e-8 * (abs_terms * m + std::abs(bias_exact) + std::abs(v));
        EXPECT_LE(std::abs(emulated_code - clamped), 0.5 + float_error) << v;
        near_midpoint += std::min(1.0, 2 * (dyadic_error + float_error));
        if (emulated_code != double(qy[i])) {
          ++differ;
          // Only next to a midpoint between two codes.
          const double to_midpoint = std::abs(v - std::floor(v) - 0.5);
          EXPECT_LE(to_midpoint, dyadic_error + float_error + 1e-12) << v;
          EXPECT_LE(std::abs(emulated_code - double(qy[i])), 1);
        }
      }
    RecordProperty("differ_" + std::to_string(n) + "_" + std::to_string(output_bits) + "_" +
                       std::to_string(bias),
                   std::to_string(differ) + " of " + std::to_string(out * size_t(n)) +
                       ", expected " + std::to_string(near_midpoint));
    // Rare where the error bands are narrow (no bias: the dyadic error alone is ~1e-9 codes).
    EXPECT_LE(differ, 3 * near_midpoint + 3) << "n " << n << ", bias " << bias;
    if (output_bits == 8) {
      EXPECT_GT(saturated, 0) << "the case should reach the clamp";
    }
  }
}

TEST(IntegerLinear, RefusesWhatItCannotRunExactly) {
  LinearCase c = random_linear(4, 32, 1, 4, 8, true, 3);
  model::IntegerLinearSpec wide = c.spec;
  wide.weight_codes[5] = 9;  // beyond 4 bits
  EXPECT_NE(error_of([&] { model::IntegerLinear l(wide); }).find("exceeds 4 bits"),
            std::string::npos);
  model::IntegerLinearSpec huge_bias = c.spec;
  huge_bias.bias[0] = 1e30f;
  EXPECT_NE(error_of([&] { model::IntegerLinear l(huge_bias); }).find("bias of row 0"),
            std::string::npos);
  model::IntegerLinearSpec no_scale = c.spec;
  no_scale.output_scale = 0;
  EXPECT_THROW(model::IntegerLinear l(no_scale), Error);
  model::IntegerLinearSpec tiny_ratio = c.spec;
  tiny_ratio.output_scale = 1e30f;  // m below 2^-32: no 31-bit dyadic form
  EXPECT_NE(error_of([&] { model::IntegerLinear l(tiny_ratio); }).find("dyadic"),
            std::string::npos);
}

class DyadicMethodTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama::random(21).write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    for (int i = 0; i < 80; ++i)
      text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
    calibration_ = ptq::make_calibration(*model_.tokenizer, text_, "text", 4, 32);
  }
  ptq::Recipe recipe(const std::string& weights, const std::string& method) const {
    ptq::Recipe r;
    r.weights = ptq::parse_maybe_scheme(weights);
    r.activations = parse_scheme("int8:tensor");
    if (!method.empty()) r.methods.push_back(ptq::parse_method(method));
    return r;
  }
  double ln_ppl(const model::Llama& m) const {
    eval::PerplexityOptions o;
    o.n_ctx = 32;
    return std::log(eval::perplexity(m, model_.tokenizer->encode(text_), -1, "", o).ppl);
  }
  model::Model model_;
  std::string text_;
  ptq::Calibration calibration_;
};

TEST_F(DyadicMethodTest, EveryQuantizedLinearRunsIntegerOnlyCloseToItsEmulation) {
  const model::Llama integer =
      ptq::apply_recipe(recipe("int8:channel", "dyadic"), *model_.llama, nullptr, &calibration_);
  const model::Llama emulated = ptq::apply_recipe(recipe("int8:channel", "dyadic:emulate"),
                                                  *model_.llama, nullptr, &calibration_);
  const model::Llama wide = ptq::apply_recipe(recipe("int8:channel", "dyadic:out=16"),
                                              *model_.llama, nullptr, &calibration_);
  const model::Llama dynamic = ptq::apply_recipe(recipe("int8:channel", ""), *model_.llama);
  model::Llama copy = integer;
  for (const model::LinearSite& s : copy.sites().linears) {
    ASSERT_TRUE(s.linear->integer_only()) << s.linear->name();
    EXPECT_FALSE(s.linear->integer_only_emulated());
    // Static scales: the calibrated input range over 127 codes.
    EXPECT_GT(s.linear->integer_only()->spec().input_scale, 0);
  }
  // Linear::forward runs the integer path.
  const model::Linear& q0 = *copy.sites().linears.front().linear;
  std::vector<float> x(size_t(3) * size_t(q0.in_features())),
      y(size_t(3) * size_t(q0.out_features())), z(y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(0.7 * double(i)));
  q0.forward(x.data(), 3, y.data());
  q0.integer_only()->forward(x.data(), 3, z.data());
  EXPECT_EQ(y, z);

  const double fp = ln_ppl(*model_.llama), i8 = ln_ppl(integer), e8 = ln_ppl(emulated),
               i16 = ln_ppl(wide), dyn = ln_ppl(dynamic);
  EXPECT_NE(i8, e8);            // the two arithmetics differ somewhere ...
  EXPECT_NEAR(i8, e8, 0.01);    // ... only by the roundings next to midpoints
  EXPECT_NEAR(i16, dyn, 0.05);  // 16-bit output codes lose little against float outputs
  EXPECT_NEAR(i8, fp, 0.3);
}

TEST_F(DyadicMethodTest, ErrorsNameTheSiteAndTheFix) {
  EXPECT_NE(error_of([&] {
              ptq::apply_recipe(recipe("int4:g16", "dyadic"), *model_.llama, nullptr,
                                &calibration_);
            }).find("layers.0.q_proj cannot run integer-only"),
            std::string::npos);
  ptq::Recipe float_inputs = recipe("int8:channel", "dyadic");
  float_inputs.activations.reset();
  EXPECT_NE(error_of([&] {
              ptq::apply_recipe(float_inputs, *model_.llama, nullptr, &calibration_);
            }).find("--a int8:tensor"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              ptq::apply_recipe(recipe("int8:channel", "dyadic"), *model_.llama);
            }).find("needs calibration"),
            std::string::npos);
}

}  // namespace
}  // namespace lowbit::testing
