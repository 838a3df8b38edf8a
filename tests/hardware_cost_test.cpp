// The hardware cost model (lowbit/eval/hardware_cost.h): hand-worked MACs and the orderings it
// must give.
#include <gtest/gtest.h>

#include "lowbit/eval/hardware_cost.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/recipe.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

using eval::mac_cost;

std::optional<Scheme> s(const char* name) {
  return parse_scheme(name);
}

TEST(HardwareCost, HandWorkedMacs) {
  // INT8 x INT8 over 4096: a 7 x 7 magnitude multiplier and a 8 + 8 + 12-bit accumulator; the
  // per-channel / per-token float32 scales are applied once per 4096 MACs.
  const eval::MacCost i8 = mac_cost(s("int8_token"), s("int8_channel"), 4096);
  EXPECT_EQ(i8.multiplier, 49);
  EXPECT_EQ(i8.exponents, 0);
  EXPECT_EQ(i8.alignment, 0);
  EXPECT_EQ(i8.accumulator_bits, 28);
  EXPECT_DOUBLE_EQ(i8.scales, 2 * 576.0 / 4096);
  // E4M3 x E4M3: 4 x 4 significands, a 5-bit exponent adder; values span 448 / 2^-9, 18 binades:
  // 19-bit fixed point each, a 19 + 19 + 12 = 50-bit accumulator and a shifter of the 8-bit
  // product over 43 positions (6 levels of 8 muxes, 0.5 FA each).
  const eval::MacCost f8 = mac_cost(s("e4m3fn:tensor"), s("e4m3fn:tensor"), 4096);
  EXPECT_EQ(f8.multiplier, 16);
  EXPECT_EQ(f8.exponents, 5);
  EXPECT_EQ(f8.accumulator_bits, 50);
  EXPECT_EQ(f8.alignment, 24);
  EXPECT_FALSE(f8.float_accumulator);
  // BF16 x BF16: a fixed-point accumulator would need hundreds of bits; float32 accumulation
  // (152 FA) plus the 16-bit product's alignment into 24 bits (5 levels of 16 muxes).
  const eval::MacCost bf = mac_cost(std::nullopt, std::nullopt, 4096);
  EXPECT_EQ(bf.multiplier, 64);
  EXPECT_EQ(bf.exponents, 9);
  EXPECT_TRUE(bf.float_accumulator);
  EXPECT_EQ(bf.alignment, 40);
  EXPECT_EQ(bf.accumulator, 152);
  // MXFP4 x MXFP4: E8M0 scales are exponent adds, one per 32 elements on each operand.
  EXPECT_DOUBLE_EQ(mac_cost(s("mxfp4"), s("mxfp4"), 4096).scales, 2 * 8.0 / 32);
}

TEST(HardwareCost, OrderingsTheModelMustGive) {
  const auto total = [](const char* a, const char* w) {
    return mac_cost(s(a), s(w), 2048).total();
  };
  EXPECT_LT(total("int4:token", "int4:channel"), total("int8_token", "int8_channel"));
  EXPECT_LT(total("int8_token", "int8_channel"), total("fp8_token", "fp8_channel"));
  EXPECT_LT(total("mxfp4", "mxfp4"), total("mxfp8_e4m3", "mxfp8_e4m3"));
  EXPECT_LT(total("e2m1fn:token", "e2m1fn:channel"), total("e2m3fn:token", "e2m3fn:channel"));
  EXPECT_LT(total("fp8_token", "fp8_channel"), mac_cost(std::nullopt, std::nullopt, 2048).total());
  // Weight-only quantization multiplies BF16 activations: cheaper than BF16 x BF16, dearer than
  // FP8 x FP8.
  const double w4a16 = mac_cost(std::nullopt, s("mxfp4"), 2048).total();
  EXPECT_LT(w4a16, mac_cost(std::nullopt, std::nullopt, 2048).total());
  EXPECT_GT(w4a16, total("fp8_token", "fp8_channel"));
  // A longer reduction needs more guard bits.
  EXPECT_LT(mac_cost(s("int8_token"), s("int8_channel"), 64).accumulator,
            mac_cost(s("int8_token"), s("int8_channel"), 65536).accumulator);
}

class HardwareCostModelTest : public TempDirTest {};

TEST_F(HardwareCostModelTest, ARecipeCostsTheMacWeightedMeanOfItsLinears) {
  TinyLlama::random(5).write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  ptq::Recipe r;
  r.weights = parse_scheme("int8_channel");
  r.activations = parse_scheme("int8_token");
  double want = 0, macs = 0;
  model::Llama copy = *m.llama;
  for (const model::LinearSite& site : copy.sites().linears) {
    const double n = double(site.linear->out_features()) * site.linear->in_features();
    want += n * mac_cost(r.activations, r.weights, site.linear->in_features()).total();
    macs += n;
  }
  EXPECT_DOUBLE_EQ(eval::recipe_mac_cost(r, *m.llama), want / macs);
  ptq::Recipe fp8 = r;
  fp8.weights = parse_scheme("fp8_channel");
  fp8.activations = parse_scheme("fp8_token");
  EXPECT_LT(eval::recipe_mac_cost(r, *m.llama), eval::recipe_mac_cost(fp8, *m.llama));
  EXPECT_LT(eval::recipe_mac_cost(fp8, *m.llama), eval::recipe_mac_cost(ptq::Recipe{}, *m.llama));
}

}  // namespace
}  // namespace lowbit::testing
