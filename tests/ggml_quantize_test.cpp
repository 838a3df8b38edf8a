// ggml's reference quantizers as lowbit re-derives them (quantize_ggml, the ggml_* schemes): the
// bytes equal ggml's own on a committed fixture (tests/data/ggml_quantize_golden.gguf, written by
// tests/ggml_quantize_crosscheck.py --golden from libggml; the crosscheck itself runs against
// libggml live where llama-cpp-python is installed), and the schemes behave like schemes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/io/qtensor_file.h"
#include "lowbit/model/gguf.h"
#include "lowbit/quant/ggml_types.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"

namespace lowbit {
namespace {

const char* kGolden = LOWBIT_TESTS_DIR "/data/ggml_quantize_golden.gguf";

TEST(GgmlQuantize, EqualsGgmlBytesOnTheFixture) {
  model::GgufFile file(kGolden);
  const model::TensorStore& store = file.store();
  const std::vector<float> x = store.to_f32(store.get("input"));
  const int64_t cols = store.get("input").shape.back();
  int checked = 0;
  for (const model::TensorView& t : store.tensors()) {
    if (t.name == "input") continue;
    ASSERT_TRUE(t.type.has_value()) << t.name;
    std::vector<uint8_t> ours(ggml_bytes(*t.type, x.size()));
    quantize_ggml(*t.type, x.data(), x.size(), ours.data());
    ASSERT_EQ(ours.size(), t.nbytes) << t.name;
    const GgmlTypeInfo* info = ggml_type_info(uint32_t(*t.type));
    size_t differing = 0;
    for (size_t b = 0; b < ours.size() / info->block_bytes; ++b)
      differing += std::memcmp(ours.data() + b * info->block_bytes, t.data + b * info->block_bytes,
                               info->block_bytes) != 0;
    EXPECT_EQ(differing, 0u) << t.name << ": blocks differing from ggml's";
    // The scheme path writes the same blocks.
    const Scheme s = parse_scheme(ggml_preset_name(*t.type));
    const QTensor q = quantize(s, x.data(), {x.size() / size_t(cols), size_t(cols)});
    EXPECT_EQ(q.codes, ours) << t.name;
    ++checked;
  }
  EXPECT_EQ(checked, 9);  // Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q6_K MXFP4 NVFP4
}

// A changed rounding rule must show: Q8_0 rounds ties away from zero, which nearest-even would not.
TEST(GgmlQuantize, Q8TiesGoAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1
  x[1] = 2.5f;
  x[2] = -3.5f;
  std::vector<uint8_t> b(34);
  quantize_ggml(GgmlType::Q8_0, x.data(), 32, b.data());
  EXPECT_EQ(int8_t(b[2 + 1]), 3);
  EXPECT_EQ(int8_t(b[2 + 2]), -4);
}

TEST(GgmlQuantize, SchemesRoundTripAndCountBits) {
  for (const char* name : {"ggml_q8_0", "ggml_q4_0", "ggml_q4_1", "ggml_q5_0", "ggml_q5_1",
                           "ggml_q4_k", "ggml_q6_k", "ggml_mxfp4", "ggml_nvfp4"}) {
    const Scheme s = parse_scheme(name);
    ASSERT_TRUE(s.ggml) << name;
    EXPECT_EQ(scheme_name(s), name);
    EXPECT_EQ(parse_scheme(scheme_name(s)), s);
    EXPECT_NE(s, parse_scheme("mxfp4"));  // the description alone does not make them equal
  }
  EXPECT_DOUBLE_EQ(scheme_bits_per_element(parse_scheme("ggml_q4_0"), {8, 64}), 4.5);
  EXPECT_DOUBLE_EQ(scheme_bits_per_element(parse_scheme("ggml_q6_k"), {8, 512}), 6.5625);
  EXPECT_THROW(parse_scheme("ggml_q4_0:round=sr"), Error);
}

// Rows that are not whole 256-blocks take llama.cpp's fallback types (SmolLM2's 576-wide rows).
TEST(GgmlQuantize, KQuantsFallBackLikeLlamaCpp) {
  EXPECT_EQ(ggml_storage_type(parse_scheme("ggml_q4_k"), 576), GgmlType::Q5_0);
  EXPECT_EQ(ggml_storage_type(parse_scheme("ggml_q6_k"), 576), GgmlType::Q8_0);
  EXPECT_EQ(ggml_storage_type(parse_scheme("ggml_q4_k"), 1536), GgmlType::Q4_K);
  EXPECT_EQ(ggml_storage_type(parse_scheme("ggml_q4_0"), 48), GgmlType::F16);
  EXPECT_DOUBLE_EQ(scheme_bits_per_element(parse_scheme("ggml_q4_k"), {4, 576}), 5.5);

  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(4 * 576);
  for (float& v : x) v = normal(rng);
  std::vector<float> via_k(x.size()), via_q5(x.size());
  fake_quant(parse_scheme("ggml_q4_k"), x.data(), {4, 576}, via_k.data());
  fake_quant(parse_scheme("ggml_q5_0"), x.data(), {4, 576}, via_q5.data());
  EXPECT_EQ(via_k, via_q5);
}

class GgmlSchemeFiles : public testing::TempDirTest {};

TEST_F(GgmlSchemeFiles, QuantizeDequantizeMeasureAndLbq) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> x(6 * 256);
  for (float& v : x) v = normal(rng);
  for (const char* name : {"ggml_q4_k", "ggml_mxfp4", "ggml_nvfp4", "ggml_q5_1"}) {
    const Scheme s = parse_scheme(name);
    const QTensor q = quantize(s, x.data(), {6, 256});
    std::vector<float> dq(x.size()), fq(x.size());
    dequantize(q, dq.data());
    fake_quant(s, x.data(), {6, 256}, fq.data());
    EXPECT_EQ(dq, fq) << name;
    std::vector<float> measured;
    const QuantReport r = measure(s, x.data(), {6, 256}, &measured);
    EXPECT_EQ(measured, fq) << name;
    EXPECT_GT(r.tensor.sqnr_db(), 15.0) << name;  // 4-bit blocks on a Gaussian: ~18-20 dB
    write_qtensor(path("q.lbq"), q);
    const QTensor back = read_qtensor(path("q.lbq"));
    EXPECT_EQ(back.codes, q.codes) << name;
    EXPECT_EQ(back.scheme, s) << name;
  }
  // Methods that fix scales first round on ggml_lowbit_grid instead; the rounder says so.
  EXPECT_THROW(ScaledElementRounder(parse_scheme("ggml_q4_0")), Error);
  EXPECT_EQ(*ggml_lowbit_grid(parse_scheme("ggml_q4_0"), 64), parse_scheme("int4:g32:scale=fp16"));
  EXPECT_EQ(*ggml_lowbit_grid(parse_scheme("ggml_q4_k"), 576), parse_scheme("int5:g32:scale=fp16"));
  EXPECT_FALSE(ggml_lowbit_grid(parse_scheme("ggml_q4_k"), 1536));
  std::vector<float> nan_row(32, 0.0f);
  nan_row[3] = NAN;
  std::vector<float> out(32);
  EXPECT_THROW(fake_quant(parse_scheme("ggml_q8_0"), nan_row.data(), {1, 32}, out.data()), Error);
}

}  // namespace
}  // namespace lowbit
