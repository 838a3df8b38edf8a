// GPTQ against round-to-nearest with the same quantizer: identical when the Hessian is the
// identity (nothing to compensate), and never worse on the layer's calibration outputs otherwise.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "lowbit/ptq/gptq.h"
#include "lowbit/ptq/learned_rounding.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::testing {
namespace {

const char* const kSchemes[] = {"mxfp4",       "nvfp4",         "int4_g128",        "nf4_g64",
                                "fp8_channel", "int8_channel",  "e2m1fn:g32",       "int4:g16:asym",
                                "mxfp6_e2m3",  "e4m3fn:tensor", "e2m1fn:block16x32"};

std::vector<float> random_weight(std::mt19937& rng, int out, int in) {
  std::normal_distribution<float> g(0.f, 0.05f);
  std::vector<float> w(size_t(out) * size_t(in));
  for (float& v : w) v = g(rng);
  return w;
}

// Calibration inputs with correlated channels and a few large outlier channels.
std::vector<float> correlated_inputs(std::mt19937& rng, int rows, int in) {
  std::normal_distribution<float> g;
  std::vector<float> x(size_t(rows) * size_t(in));
  for (int r = 0; r < rows; ++r) {
    const float shared = g(rng);
    for (int c = 0; c < in; ++c) {
      float v = 0.7f * shared + 0.5f * g(rng);
      if (c % 17 == 3) v *= 8;
      x[size_t(r) * size_t(in) + size_t(c)] = v;
    }
  }
  return x;
}

double output_error(const std::vector<float>& x, int rows, const std::vector<float>& w,
                    const std::vector<float>& q, int out, int in) {
  double e = 0;
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double d = 0;
      for (int c = 0; c < in; ++c)
        d +=
            double(x[size_t(r) * size_t(in) + size_t(c)]) *
            (double(q[size_t(o) * size_t(in) + size_t(c)]) - w[size_t(o) * size_t(in) + size_t(c)]);
      e += d * d;
    }
  return e;
}

// RTN and GPTQ of one weight with one scheme.
struct BothQuantized {
  std::vector<float> rtn, gptq;
};
BothQuantized quantize_both(const char* name, const std::vector<float>& w, int out, int in,
                            const std::vector<double>& h, bool act_order, int block) {
  const Scheme s = parse_scheme(name);
  BothQuantized b;
  b.rtn.resize(w.size());
  fake_quant(s, w.data(), {size_t(out), size_t(in)}, b.rtn.data());
  ptq::GptqOptions opt;
  opt.act_order = act_order;
  opt.block = block;
  b.gptq = ptq::gptq_quantize(s, w, out, in, h, opt);
  return b;
}

TEST(Gptq, EqualsRoundToNearestWhenTheHessianIsTheIdentity) {
  std::mt19937 rng(1);
  const int out = 48, in = 160;  // 160: groups of 128 and 32 leave a short last group
  const std::vector<float> w = random_weight(rng, out, in);
  std::vector<double> identity(size_t(in) * size_t(in), 0.0);
  for (int i = 0; i < in; ++i) identity[size_t(i) * size_t(in) + size_t(i)] = 1.0;
  for (const char* name : kSchemes)
    for (const bool act_order : {false, true}) {
      const BothQuantized b = quantize_both(name, w, out, in, identity, act_order, 64);
      EXPECT_EQ(0, std::memcmp(b.gptq.data(), b.rtn.data(), w.size() * 4))
          << name << (act_order ? " act_order" : "");
    }
}

TEST(Gptq, ItsCodesDequantizeToItsWeights) {
  // The QTensor GPTQ hands out (with the group scales it fixed) is its result exactly, for every
  // granularity, asymmetric integers, two-level scales of either kind, and act-order's static
  // scales: what exports and the packed kernels take instead of re-deriving the scales.
  std::mt19937 rng(4);
  const int out = 24, in = 160, rows = 256;
  const std::vector<float> w = random_weight(rng, out, in);
  const std::vector<float> x = correlated_inputs(rng, rows, in);
  ptq::Hessian h(in);
  h.add(x.data(), rows);
  const std::vector<double> hm = h.matrix();
  for (const char* name : {"int4_g128", "int4:g32", "int8:channel", "e4m3fn:channel", "mxfp4",
                           "nvfp4", "nvfp4_ct", "int4:g32:scale=bf16:asym", "fp8_block128",
                           "nf4_g64", "e2m1fn:block16x32", "int4:g8:axis=0"})
    for (const bool act_order : {false, true}) {
      ptq::GptqOptions opt;
      opt.act_order = act_order;
      QTensor codes;
      const std::vector<float> q =
          ptq::gptq_quantize(parse_scheme(name), w, out, in, hm, opt, &codes);
      std::vector<float> back(q.size());
      dequantize(codes, back.data());
      EXPECT_EQ(0, std::memcmp(back.data(), q.data(), q.size() * 4))
          << name << (act_order ? " act_order" : "");
      EXPECT_EQ(codes.scheme, parse_scheme(name)) << name;
    }
}

TEST(Gptq, NeverWorseThanRoundToNearestOnItsCalibrationData) {
  std::mt19937 rng(2);
  const int out = 32, in = 128, rows = 512;
  const std::vector<float> w = random_weight(rng, out, in);
  const std::vector<float> x = correlated_inputs(rng, rows, in);
  ptq::Hessian h(in);
  h.add(x.data(), 200);
  h.add(x.data() + size_t(200) * size_t(in), rows - 200);  // in two batches
  EXPECT_EQ(h.samples(), rows);
  const std::vector<double> hm = h.matrix();
  for (const char* name : kSchemes)
    for (const bool act_order : {false, true}) {
      const BothQuantized b = quantize_both(name, w, out, in, hm, act_order, 128);
      const double e_rtn = output_error(x, rows, w, b.rtn, out, in),
                   e_gptq = output_error(x, rows, w, b.gptq, out, in);
      EXPECT_LE(e_gptq, e_rtn) << name << (act_order ? " act_order" : "");
      if (std::string(name) == "int4_g128" || std::string(name) == "mxfp4") {
        EXPECT_LT(e_gptq, 0.8 * e_rtn) << name << ": GPTQ should clearly help on correlated inputs";
      }
    }
}

TEST(Gptq, HessianIsTwiceTheMeanOuterProduct) {
  const float x[6] = {1, 2, 3, -1, 0, 2};  // two rows of three
  ptq::Hessian h(3);
  h.add(x, 2);
  const std::vector<double> m = h.matrix();
  EXPECT_DOUBLE_EQ(m[0], 2.0 / 2 * (1 + 1));
  EXPECT_DOUBLE_EQ(m[1], 2.0 / 2 * (2 + 0));
  EXPECT_DOUBLE_EQ(m[2 * 3 + 0], 2.0 / 2 * (3 - 2));
  EXPECT_DOUBLE_EQ(m[2 * 3 + 2], 2.0 / 2 * (9 + 4));
}

// Learned rounding: with H = I round to nearest is already optimal and nothing moves; on
// correlated inputs it lowers the objective for every scheme (never raises it), the objective
// equals the output error it reports, and its codes dequantize to its values.
TEST(LearnedRounding, NeverWorseThanNearestOnItsObjective) {
  std::mt19937 rng(4);
  const int out = 24, in = 96, rows = 400;
  const std::vector<float> w = random_weight(rng, out, in);
  const std::vector<float> x = correlated_inputs(rng, rows, in);
  ptq::Hessian hx(in);
  hx.add(x.data(), rows);
  const std::vector<double> h = hx.matrix();
  std::vector<double> identity(size_t(in) * size_t(in), 0.0);
  for (int i = 0; i < in; ++i) identity[size_t(i) * size_t(in) + size_t(i)] = 1;
  for (const char* name : {"mxfp4", "nvfp4", "int4:g32:asym", "nf4_g64", "e4m3fn:channel",
                           "int4:g32", "e2m1fn:g16:scale=e4m3fn:sweep:global"}) {
    const Scheme s = parse_scheme(name);
    std::vector<float> rtn(w.size());
    fake_quant(s, w.data(), {size_t(out), size_t(in)}, rtn.data());
    const ptq::LearnedRounding same = ptq::learned_rounding(s, w, out, in, identity, 8);
    EXPECT_EQ(same.values, rtn) << name << ": H = I leaves round to nearest";
    EXPECT_EQ(same.flipped, 0u) << name;
    const ptq::LearnedRounding lr = ptq::learned_rounding(s, w, out, in, h, 8);
    EXPECT_LT(lr.objective, lr.objective_nearest) << name;
    EXPECT_GT(lr.flipped, 0u) << name;
    const double e_rtn = output_error(x, rows, w, rtn, out, in);
    const double e_lr = output_error(x, rows, w, lr.values, out, in);
    EXPECT_NEAR(lr.objective_nearest, 2.0 / rows * e_rtn, 1e-6 * e_rtn) << name;
    EXPECT_NEAR(lr.objective, 2.0 / rows * e_lr, 1e-6 * e_rtn) << name;
    std::vector<float> decoded(w.size());
    dequantize(*lr.codes, decoded.data());
    EXPECT_EQ(decoded, lr.values) << name;
  }
}

}  // namespace
}  // namespace lowbit::testing
