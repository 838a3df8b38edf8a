// Bit switching: widths derived from one stored set of integer codes. At the anchor width the
// derived weight is bit-identical to direct quantization; below it the only difference is the
// double rounding (one step, on few elements); the scales nest; the bitswitch method gives a
// recipe those weights at the same storage cost as the direct scheme.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "error_message.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/quant/bit_switching.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 0.05f);
  std::vector<float> w(n);
  for (float& x : w) x = g(rng);
  w[5] = 0.9f;  // an outlier: its group's scale is set by it
  return w;
}

std::vector<float> direct(const std::string& scheme, const std::vector<float>& w, size_t rows,
                          size_t cols) {
  std::vector<float> q(w.size());
  fake_quant(parse_scheme(scheme), w.data(), {rows, cols}, q.data());
  return q;
}

TEST(BitSwitching, AtTheAnchorWidthTheDerivedWeightIsDirectQuantization) {
  const size_t rows = 24, cols = 256;
  const std::vector<float> w = gaussian(rows * cols, 1);
  for (int bits : {8, 6, 4, 3}) {
    const NestedIntWeights n = nest_weights(w.data(), rows, cols, bits, bits, 64);
    QTensor codes;
    const std::vector<float> got = derive_weights(n, bits, &codes);
    EXPECT_EQ(got, direct("int" + std::to_string(bits) + ":g64", w, rows, cols)) << bits;
    // Groups that do not divide the row (SmolLM2: 576 = 4.5 · 128): the last one is shorter.
    const NestedIntWeights partial = nest_weights(w.data(), rows, cols, bits, bits, 96);
    EXPECT_EQ(derive_weights(partial, bits),
              direct("int" + std::to_string(bits) + ":g96", w, rows, cols))
        << bits;
    std::vector<float> back(got.size());
    dequantize(codes, back.data());
    EXPECT_EQ(back, got);
  }
}

TEST(BitSwitching, BelowTheAnchorOnlyTheDoubleRoundingDiffers) {
  const size_t rows = 32, cols = 128;
  const std::vector<float> w = gaussian(rows * cols, 2);
  const NestedIntWeights n = nest_weights(w.data(), rows, cols, 8, 4, 128);  // anchored at 4
  EXPECT_EQ(*std::max_element(n.codes.begin(), n.codes.end()), 112);         // ±7 · 16
  const std::vector<float> want = direct("int4:channel", w, rows, cols);
  const std::vector<float> got = derive_weights(n, 4);
  size_t differ = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float s4 = n.scales[r] * 16;  // the nested scale
    for (size_t c = 0; c < cols; ++c) {
      const size_t e = r * cols + c;
      if (got[e] == want[e]) continue;
      ++differ;
      EXPECT_NEAR(std::fabs(got[e] - want[e]), s4, 1e-6 * s4) << e;  // one step, never more
    }
  }
  EXPECT_GT(differ, 0u);                // double rounding does happen ...
  EXPECT_LT(differ, rows * cols / 10);  // ... on few elements
  // Anchored at the stored width instead, the derived 4-bit scale is 16 · amax / 127 and codes
  // saturate at ±7: the grid is finer and clips the outlier's group.
  const NestedIntWeights top = nest_weights(w.data(), rows, cols, 8, 8, 128);
  float amax0 = 0;
  for (size_t c = 0; c < cols; ++c) amax0 = std::max(amax0, std::fabs(w[c]));
  EXPECT_FLOAT_EQ(top.scales[0] * 127, amax0);
  const std::vector<float> top4 = derive_weights(top, 4);
  EXPECT_LT(top4[5], w[5] * 0.9f);  // 7 · 16/127 · 0.9 = 0.79
}

TEST(BitSwitching, ErrorsNameWhatIsWrong) {
  const std::vector<float> w = gaussian(64, 3);
  EXPECT_THROW(nest_weights(w.data(), 1, 64, 9, 4, 64), Error);
  EXPECT_THROW(nest_weights(w.data(), 1, 64, 8, 4, 0), Error);
  const NestedIntWeights n = nest_weights(w.data(), 1, 64, 6, 6, 32);
  EXPECT_THROW(derive_weights(n, 8), Error);
  EXPECT_NE(
      error_of([] { nested_group_of(parse_scheme("int4:g128:asym"), 4, 256); }).find("zero point"),
      std::string::npos);
  EXPECT_NE(error_of([] { nested_group_of(parse_scheme("mxfp4"), 4, 256); }).find("not signed int"),
            std::string::npos);
  EXPECT_EQ(nested_group_of(parse_scheme("int4:channel"), 4, 256), 256);
}

class BitSwitchMethodTest : public TempDirTest {};

TEST_F(BitSwitchMethodTest, RecipeUsesTheDerivedWeightsAtTheDirectSchemesCost) {
  TinyLlama::random(8).write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  const auto apply = [&](const std::string& methods, ptq::ApplyReport& rep) {
    ptq::Recipe r;
    r.weights = ptq::parse_maybe_scheme("int4:g16");
    if (!methods.empty()) r.methods.push_back(ptq::parse_method(methods));
    return ptq::apply_recipe(r, *m.llama, &rep);
  };
  ptq::ApplyReport direct_rep, same_rep, nested_rep;
  const model::Llama d = apply("", direct_rep), same = apply("bitswitch:from=4", same_rep),
                     nested = apply("bitswitch:from=8:anchor=8", nested_rep);
  EXPECT_EQ(same_rep.bits_per_linear_weight, direct_rep.bits_per_linear_weight);
  EXPECT_EQ(nested_rep.bits_per_linear_weight, direct_rep.bits_per_linear_weight);
  model::Llama dc = d, sc = same, nc = nested;
  const model::Sites ds = dc.sites(), ss = sc.sites(), ns = nc.sites();
  bool any_differs = false;
  for (size_t i = 0; i < ds.linears.size(); ++i) {
    EXPECT_EQ(ss.linears[i].linear->weight(), ds.linears[i].linear->weight());  // from = anchor = 4
    any_differs |= ns.linears[i].linear->weight() != ds.linears[i].linear->weight();
  }
  EXPECT_TRUE(any_differs);
  ptq::ApplyReport rep;
  ptq::Recipe wide;
  wide.weights = ptq::parse_maybe_scheme("int8:g16");
  wide.methods.push_back(ptq::parse_method("bitswitch:from=6"));
  EXPECT_NE(
      error_of([&] { ptq::apply_recipe(wide, *m.llama, &rep); }).find("wider than the stored 6"),
      std::string::npos);
}

}  // namespace
}  // namespace lowbit::testing
