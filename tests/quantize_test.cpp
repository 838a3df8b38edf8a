// Quantization schemes end to end: the OCP MX and NVFP4 rules on hand-worked blocks, the
// granularities and scale rules, edge cases, fake_quant == dequantize(quantize), the fast path
// against the reference backend, and MSE clipping never losing to absmax.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "lowbit/format/reference.h"
#include "lowbit/kernels/convert_backend.h"
#include "lowbit/quant/packing.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "quant/engine.h"

namespace lowbit {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

std::vector<uint32_t> unpacked_codes(const QTensor& q) {
  std::vector<uint16_t> c(q.numel());
  unpack_codes(q.codes.data(), q.numel(), q.scheme.element.bits(), c.data());
  return {c.begin(), c.end()};
}

std::vector<float> dequantized(const QTensor& q) {
  std::vector<float> out(q.numel());
  dequantize(q, out.data());
  return out;
}

// A block of 32 for MX tests: the given leading values, zeros after.
std::vector<float> block32(std::initializer_list<float> head) {
  std::vector<float> b(32, 0.0f);
  std::copy(head.begin(), head.end(), b.begin());
  return b;
}

uint32_t e4m3(float v) {
  return ref::encode_exact(formats::e4m3fn, v);
}
uint32_t e2m1(float v) {
  return ref::encode_exact(formats::e2m1fn, v);
}

TEST(MxRules, AmaxAtAPowerOfTwo) {
  // amax = 256 = 2^8 and emax(E4M3) = 8: shared exponent 0, scale 1, elements unchanged.
  const auto x = block32({256.0f, 1.0f, -3.0f, 0.5f});
  const QTensor q = quantize(parse_scheme("mxfp8_e4m3"), x.data(), {32});
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_EQ(q.scales[0], 127u);  // E8M0 2^0
  const auto c = unpacked_codes(q);
  EXPECT_EQ(c[0], e4m3(256));
  EXPECT_EQ(c[1], e4m3(1));
  EXPECT_EQ(c[2], e4m3(-3));
  EXPECT_EQ(c[3], e4m3(0.5f));
  EXPECT_EQ(dequantized(q), x);
  // Just below 2^9 still has floor(log2) = 8: scale 1, and 500 saturates to 448 (clipped).
  const auto y = block32({500.0f, -1.0f});
  const QTensor r = quantize(parse_scheme("mxfp8_e4m3"), y.data(), {32});
  EXPECT_EQ(r.scales[0], 127u);
  EXPECT_EQ(unpacked_codes(r)[0], e4m3(448));
  EXPECT_EQ(dequantized(r)[0], 448.0f);
  // 512 = 2^9: shared exponent 1, scale 2.
  const auto z = block32({512.0f, 3.0f});
  const QTensor t = quantize(parse_scheme("mxfp8_e4m3"), z.data(), {32});
  EXPECT_EQ(t.scales[0], 128u);
  EXPECT_EQ(unpacked_codes(t)[0], e4m3(256));
  EXPECT_EQ(unpacked_codes(t)[1], e4m3(1.5f));
}

TEST(MxRules, Fp4SaturatesAfterScaling) {
  // MXFP4: emax(E2M1) = 2. amax 7: floor(log2 7) = 2, scale 1, 7 clips to 6.
  const auto x = block32({7.0f, 3.1f, -0.26f, 0.2f, -0.25f});
  const QTensor q = quantize(parse_scheme("mxfp4"), x.data(), {32});
  EXPECT_EQ(q.scales[0], 127u);
  const auto c = unpacked_codes(q);
  EXPECT_EQ(c[0], e2m1(6));
  EXPECT_EQ(c[1], e2m1(3));
  EXPECT_EQ(c[2], e2m1(-0.5f));
  EXPECT_EQ(c[3], e2m1(0));
  EXPECT_EQ(c[4], e2m1(-0.0f));  // a tie: to the even code, -0
  // amax 8: scale 2, elements 4 ...
  const auto y = block32({8.0f, 1.0f});
  const QTensor r = quantize(parse_scheme("mxfp4"), y.data(), {32});
  EXPECT_EQ(r.scales[0], 128u);
  EXPECT_EQ(unpacked_codes(r)[0], e2m1(4));
  EXPECT_EQ(unpacked_codes(r)[1], e2m1(0.5f));
  const QuantReport rep = measure(parse_scheme("mxfp4"), x.data(), {32});
  EXPECT_EQ(rep.tensor.clipped, 1u);
}

TEST(MxRules, Int8IsOnePointSixFixedPoint) {
  // MXINT8: scale 2^(floor(log2 amax)), elements in 1/64 steps, symmetric +-127/64.
  const auto x = block32({1.0f, 0.5f, -1.0f, 1.99f, -1.999f, 0.01f});
  const QTensor q = quantize(parse_scheme("mxint8"), x.data(), {32});
  EXPECT_EQ(q.scales[0], 127u - 6u);  // 2^-6
  const auto c = unpacked_codes(q);
  EXPECT_EQ(c[0], 64u);
  EXPECT_EQ(c[1], 32u);
  EXPECT_EQ(c[2], uint32_t(uint8_t(-64)));
  EXPECT_EQ(c[3], 127u);
  EXPECT_EQ(c[4], uint32_t(uint8_t(-127)));  // not -128: symmetric
  EXPECT_EQ(c[5], 1u);
  EXPECT_EQ(dequantized(q)[4], -127.0f / 64.0f);
}

TEST(MxRules, TinyAmaxAndZeroBlocks) {
  // amax a float32 subnormal: floor(log2(1e-40)) = -133, minus 8 is below -127: clamped to -127.
  const auto x = block32({1e-40f, -5e-41f});
  const QTensor q = quantize(parse_scheme("mxfp8_e4m3"), x.data(), {32});
  EXPECT_EQ(q.scales[0], 0u);  // 2^-127
  const auto c = unpacked_codes(q);
  EXPECT_EQ(c[0], ref::round_to_code(formats::e4m3fn, 1e-40f / 0x1p-127f, {}));
  // A block of zeros: the scale is defined (2^-127 after the clamp) and every value is 0.
  const std::vector<float> zeros(32, 0.0f);
  const QTensor z = quantize(parse_scheme("mxfp4"), zeros.data(), {32});
  EXPECT_EQ(z.scales[0], 0u);
  for (float v : dequantized(z)) EXPECT_EQ(v, 0.0f);
}

TEST(MxRules, NonFiniteValuesPoisonOnlyTheirBlock) {
  std::vector<float> x(64, 1.0f);
  x[3] = kNaN;
  x[40] = kInf;
  for (const char* scheme : {"mxfp4", "mxfp8_e4m3", "nvfp4", "int4_g128", "e4m3fn:g32"}) {
    const Scheme s = parse_scheme(scheme);
    std::vector<float> y = x;
    if (s.granularity == Granularity::Group && s.group > 64) y[40] = 1.0f;  // one group only
    const QTensor q = quantize(s, y.data(), {64});
    const auto d = dequantized(q);
    const size_t g = size_t(s.group);
    for (size_t i = 0; i < 64; ++i) {
      const bool poisoned = s.global_scale || i / g == 3 / g || (y[40] != 1.0f && i / g == 40 / g);
      EXPECT_EQ(std::isnan(d[i]), poisoned) << scheme << " element " << i;
    }
  }
}

TEST(Nvfp4, TwoLevelScaleHandWorked) {
  // Tensor amax 2688 = 6 * 448: global scale exactly 1.
  std::vector<float> x(32, 0.0f);
  x[0] = 2688.0f;  // block 0: amax 2688 -> block scale 448, elements /448
  x[1] = 1000.0f;  // 2.23 -> 2
  x[2] = -300.0f;  // -0.67 -> -0.5
  x[16] = 10.0f;   // block 1: 10/6 = 1.667 -> E4M3 1.625; 10/1.625 = 6.15 clips to 6
  x[17] = -3.0f;   // -1.846 -> -2
  x[18] = 1.0f;    // 0.615 -> 0.5
  for (float unit : {1.0f, 0x1p-10f}) {  // and the same tensor scaled by 2^-10: global 2^-10
    std::vector<float> y(x);
    for (float& v : y) v *= unit;
    const QTensor q = quantize(parse_scheme("nvfp4"), y.data(), {32});
    EXPECT_EQ(q.global_scale, unit);
    ASSERT_EQ(q.scales.size(), 2u);
    EXPECT_EQ(q.scales[0], e4m3(448));
    EXPECT_EQ(q.scales[1], e4m3(1.625f));
    const auto c = unpacked_codes(q);
    EXPECT_EQ(c[0], e2m1(6));
    EXPECT_EQ(c[1], e2m1(2));
    EXPECT_EQ(c[2], e2m1(-0.5f));
    EXPECT_EQ(c[16], e2m1(6));
    EXPECT_EQ(c[17], e2m1(-2));
    EXPECT_EQ(c[18], e2m1(0.5f));
    const auto d = dequantized(q);
    EXPECT_EQ(d[0], 2688.0f * unit);
    EXPECT_EQ(d[1], 896.0f * unit);
    EXPECT_EQ(d[2], -224.0f * unit);
    EXPECT_EQ(d[16], 9.75f * unit);
    EXPECT_EQ(d[17], -3.25f * unit);
    EXPECT_EQ(d[18], 0.8125f * unit);
  }
  // A block far below the tensor's amax: its E4M3 scale underflows to the smallest subnormal.
  std::vector<float> z(32, 0.0f);
  z[0] = 2688.0f;
  z[16] = 1e-4f;
  const QTensor q = quantize(parse_scheme("nvfp4"), z.data(), {32});
  EXPECT_EQ(q.scales[1], 1u);  // 2^-9, not 0: no division by zero
}

TEST(Nvfp4, DividingTensorScaleAsCompressedTensorsStoresIt) {
  // nvfp4_ct: the stored tensor scale is gs = 2688 / amax and a block's effective scale is its
  // E4M3 value / gs (compressed-tensors' arithmetic), where nvfp4 multiplies by amax / 2688.
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i) * 0.7f) * float(1 + i % 7);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const QTensor q = quantize(parse_scheme("nvfp4_ct"), x.data(), {64});
  EXPECT_EQ(q.global_scale, 2688.0f / amax);
  const auto c = unpacked_codes(q);
  const auto d = dequantized(q);
  for (size_t g = 0; g < 4; ++g) {
    const float block_scale = ref::decode(formats::e4m3fn, q.scales[g]);
    EXPECT_EQ(q.group_scale(g), block_scale / q.global_scale) << g;
    float block_amax = 0;
    for (size_t i = g * 16; i < g * 16 + 16; ++i)
      block_amax = std::max(block_amax, std::fabs(x[i]));
    EXPECT_EQ(q.scales[g],
              ref::round_to_code(formats::e4m3fn, block_amax / 6.0f * q.global_scale, {}))
        << g;
    for (size_t i = g * 16; i < g * 16 + 16; ++i)
      EXPECT_EQ(d[i], ref::decode(formats::e2m1fn, c[i]) * q.group_scale(g)) << i;
  }
  // Same grid as nvfp4 where both tensor scales are powers of two.
  std::vector<float> y(x);
  y[0] = 2688.0f * 0x1p-10f;
  for (size_t i = 1; i < y.size(); ++i) y[i] = x[i] * 0x1p-12f;
  std::vector<float> a(64), b(64);
  fake_quant(parse_scheme("nvfp4"), y.data(), {64}, a.data());
  fake_quant(parse_scheme("nvfp4_ct"), y.data(), {64}, b.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(parse_scheme("e2m1fn:g16:scale=e4m3fn:global=div"), parse_scheme("nvfp4_ct"));
  EXPECT_EQ(scheme_name(parse_scheme("e2m1fn:g16:scale=e4m3fn:global=div")),
            "e2m1fn:g16:scale=e4m3fn:global=div");
  EXPECT_NE(parse_scheme("nvfp4"), parse_scheme("nvfp4_ct"));
}

TEST(Nvfp4, UnsignedE4m3ScalesMatchSignedOnes) {
  // The NVFP4 block scale is positive: storing it as UE4M3 (7 bits) gives the same values.
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(float(i)) * float(1 + i % 5);
  std::vector<float> a(64), b(64);
  fake_quant(parse_scheme("nvfp4"), x.data(), {64}, a.data());
  fake_quant(parse_scheme("e2m1fn:g16:scale=ue4m3:global"), x.data(), {64}, b.data());
  EXPECT_EQ(a, b);
  EXPECT_DOUBLE_EQ(
      scheme_bits_per_element(parse_scheme("e2m1fn:g16:scale=ue4m3:global"), {4096, 4096}),
      4.0 + 7.0 / 16 + 32.0 / (4096.0 * 4096.0));
}

TEST(Pow2Rounding, FloorCeilNearest) {
  const auto scale_for = [](const char* scheme, float amax) {
    std::vector<float> x(32, 0.0f);
    x[0] = amax;
    return quantize(parse_scheme(scheme), x.data(), {32}).group_scale(0);
  };
  EXPECT_EQ(scale_for("mxfp4", 7.0f), 1.0f);                                   // floor: clips
  EXPECT_EQ(scale_for("e2m1fn:g32:scale=e8m0fnu:pow2=ceil", 7.0f), 2.0f);      // ceil: never clips
  EXPECT_EQ(scale_for("e2m1fn:g32:scale=e8m0fnu:pow2=nearest", 7.0f), 1.0f);   // 7/6 -> 1
  EXPECT_EQ(scale_for("e2m1fn:g32:scale=e8m0fnu:pow2=nearest", 10.0f), 2.0f);  // 10/6 -> 2
  EXPECT_EQ(scale_for("e2m1fn:g32:scale=e8m0fnu:pow2=ceil", 6.0f), 1.0f);
  EXPECT_EQ(scale_for("e2m1fn:g32:scale=e8m0fnu:pow2=ceil", 12.0f), 2.0f);
  EXPECT_EQ(scale_for("e2m1fn:g32:scale=e8m0fnu:pow2=ceil", 12.5f), 4.0f);
  EXPECT_EQ(scale_for("int4:g32:pow2", 7.0f), 1.0f);      // f32 scale constrained to 2^k: 2^(2-2)
  EXPECT_EQ(scale_for("e2m1fn:g32", 7.0f), 7.0f / 6.0f);  // plain f32 absmax
}

TEST(Granularity, ScaleShapesAndGroups) {
  std::vector<float> x(5 * 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 11) - 5.0f + 0.1f * float(i);
  const std::vector<size_t> shape = {5, 7};
  struct Case {
    const char* scheme;
    std::vector<size_t> scale_shape;
  } cases[] = {{"e4m3fn:tensor", {1}},      {"e4m3fn:token", {5}},
               {"e4m3fn:channel", {5}},     {"e4m3fn:channel:axis=1", {7}},
               {"e4m3fn:g3", {5, 3}},       {"e4m3fn:g2:axis=0", {3, 7}},
               {"e4m3fn:block2x3", {3, 3}}, {"int4:g4:asym", {5, 2}}};
  for (const Case& c : cases) {
    const Scheme s = parse_scheme(c.scheme);
    const QTensor q = quantize(s, x.data(), shape);
    EXPECT_EQ(q.scale_shape, c.scale_shape) << c.scheme;
    // Each group's absmax scale: recompute by brute force from the group's members.
    if (s.asymmetric) continue;
    for (size_t g = 0; g < q.group_count(); ++g) {
      float amax = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        const size_t r = i / 7, col = i % 7;
        size_t gi = 0;
        switch (s.granularity) {
          case Granularity::Tensor:
            gi = 0;
            break;
          case Granularity::Token:
            gi = r;
            break;
          case Granularity::Channel:
            gi = s.axis == 0 ? r : col;
            break;
          case Granularity::Group:
            gi = s.axis == -1 ? r * 3 + col / 3 : (r / 2) * 7 + col;
            break;
          case Granularity::Block2D:
            gi = (r / 2) * 3 + col / 3;
            break;
        }
        if (gi == g) amax = std::max(amax, std::fabs(x[i]));
      }
      EXPECT_EQ(q.group_scale(g), amax / 448.0f) << c.scheme << " group " << g;
    }
  }
}

TEST(Granularity, SmallAndRaggedTensors) {
  for (const char* scheme :
       {"mxfp4", "nvfp4", "int4_g128", "nf4_g64", "fp8_block128", "e4m3fn:g2:axis=0"}) {
    for (const std::vector<size_t>& shape :
         std::vector<std::vector<size_t>>{{1}, {3}, {2, 5}, {3, 33}, {2, 3, 17}, {0}, {4, 0}}) {
      size_t n = 1;
      for (size_t d : shape) n *= d;
      std::vector<float> x(n);
      for (size_t i = 0; i < n; ++i) x[i] = std::sin(float(i) * 1.7f) * 3.0f;
      const Scheme s = parse_scheme(scheme);
      const QTensor q = quantize(s, x.data(), shape);
      std::vector<float> a(n), b(n);
      dequantize(q, a.data());
      fake_quant(s, x.data(), shape, b.data());
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float))) << scheme;
      for (size_t i = 0; i < n; ++i) EXPECT_TRUE(std::isfinite(a[i])) << scheme << " " << i;
    }
  }
}

std::vector<float> heavy_tailed(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(2.0f);
  std::vector<float> x(n);
  for (float& v : x) v = t(rng);
  x[n / 3] = 80.0f;  // an outlier channel value
  return x;
}

std::vector<std::string> schemes_under_test() {
  std::vector<std::string> names;
  for (const NamedScheme& ns : named_schemes()) names.push_back(ns.name);
  for (const char* s :
       {"e2m1fn:g32:scale=e8m0fnu:pow2=ceil", "e2m1fn:g32:scale=e8m0fnu:pow2=nearest",
        "int4:g32:pow2", "e4m3fn:g32:mse", "int4:g128:mse:asym", "e4m3fn:channel:percentile=99.5",
        "e4m3fn:tensor:fixed=0.25", "e2m1fn:g32:scale=bf16", "e2m1fn:g16:scale=fp16",
        "e4m3fn:g32:round=stochastic:seed=7", "int8:channel:axis=1", "e3m2fn:g7:axis=0",
        "e4m3fn:block8x16", "uint4:g32:asym", "int3:g16:asym"})
    names.push_back(s);
  return names;
}

TEST(Schemes, FakeQuantEqualsDequantizeOfQuantize) {
  const std::vector<size_t> shape = {6, 200};
  const std::vector<float> x = heavy_tailed(1200, 1);
  for (const std::string& name : schemes_under_test()) {
    const Scheme s = parse_scheme(name);
    std::vector<float> a(x.size()), b(x.size());
    dequantize(quantize(s, x.data(), shape), a.data());
    fake_quant(s, x.data(), shape, b.data());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << name;
  }
}

TEST(Schemes, FastPathMatchesTheReferenceBackend) {
  const std::vector<size_t> shape = {4, 96};
  const std::vector<float> x = heavy_tailed(384, 2);
  for (const std::string& name : schemes_under_test()) {
    const Scheme s = parse_scheme(name);
    const quant::GroupLayout layout = quant::make_group_layout(s, shape);
    const float global = quantize(s, x.data(), shape).global_scale;
    std::vector<float> fast(x.size()), slow(x.size());
    std::vector<uint8_t> codes_fast(x.size() * 2), codes_slow(x.size() * 2);
    std::vector<uint32_t> scales_fast(layout.group_count), scales_slow(layout.group_count);
    quant::EngineOutputs f{codes_fast.data(), fast.data(), scales_fast.data(), nullptr, nullptr};
    quant::EngineOutputs r{codes_slow.data(), slow.data(), scales_slow.data(), nullptr, nullptr};
    std::vector<uint8_t> zf(layout.group_count), zs(layout.group_count);
    if (s.asymmetric) {
      f.zero_points = zf.data();
      r.zero_points = zs.data();
    }
    quant::run_engine(kernels::default_convert_backend(), s, layout, x.data(), global, f);
    quant::run_engine(kernels::reference_convert_backend(), s, layout, x.data(), global, r);
    EXPECT_EQ(codes_fast, codes_slow) << name;
    EXPECT_EQ(scales_fast, scales_slow) << name;
    EXPECT_EQ(zf, zs) << name;
    EXPECT_EQ(0, std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float))) << name;
  }
}

TEST(ScaleRules, MseNeverLosesToAbsmax) {
  const std::vector<size_t> shape = {16, 256};
  const std::vector<float> x = heavy_tailed(16 * 256, 3);
  for (const auto& [absmax, mse] : {std::pair{"e2m1fn:g32", "e2m1fn:g32:mse"},
                                    std::pair{"mxfp4", "e2m1fn:g32:scale=e8m0fnu:mse"},
                                    std::pair{"int4:g128:asym", "int4:g128:mse:asym"},
                                    std::pair{"e4m3fn:channel", "e4m3fn:channel:mse"},
                                    std::pair{"nvfp4", "e2m1fn:g16:scale=e4m3fn:global:mse"}}) {
    const QuantReport a = measure(parse_scheme(absmax), x.data(), shape);
    const QuantReport m = measure(parse_scheme(mse), x.data(), shape);
    ASSERT_EQ(a.groups.size(), m.groups.size());
    for (size_t g = 0; g < a.groups.size(); ++g)
      ASSERT_LE(m.groups[g].sum_sq_err, a.groups[g].sum_sq_err) << mse << " group " << g;
    EXPECT_LT(m.tensor.sum_sq_err, a.tensor.sum_sq_err)
        << mse;  // and wins somewhere on heavy tails
  }
}

TEST(Nvfp4, FourOverSixPicksTheBetterOfSixAndFour) {
  // Tensor amax 2688 (block 0): tensor scale 1. Block 1 = {4, 3, 1, -2}: mapped to 6 its scale is
  // E4M3(4/6) = 0.6875 and 3 / 0.6875 = 4.36 rounds to 4 (2.75, an error of 0.25); mapped to 4
  // the scale is 1 and every value is on the grid.
  std::vector<float> x(32, 0.0f);
  x[0] = 2688.0f;
  x[16] = 4.0f;
  x[17] = 3.0f;
  x[18] = 1.0f;
  x[19] = -2.0f;
  const QTensor q = quantize(parse_scheme("nvfp4_4over6"), x.data(), {32});
  EXPECT_EQ(q.scales[1], e4m3(1.0f));
  const auto d = dequantized(q);
  for (int i : {16, 17, 18, 19}) EXPECT_EQ(d[size_t(i)], x[size_t(i)]) << i;
  EXPECT_EQ(quantize(parse_scheme("nvfp4"), x.data(), {32}).scales[1], e4m3(0.6875f));
  // Never worse than absmax (6) on any block, and better on some; MXFP4 takes it too.
  for (const auto& [base, name] : {std::pair{"nvfp4", "e2m1fn:g16:scale=e4m3fn:4over6:global"},
                                   std::pair{"mxfp4", "e2m1fn:g32:scale=e8m0fnu:4over6"}}) {
    const std::vector<float> y = heavy_tailed(16 * 512, 9);
    std::vector<float> a(y.size()), b(y.size());
    fake_quant(parse_scheme(base), y.data(), {y.size()}, a.data());
    fake_quant(parse_scheme(name), y.data(), {y.size()}, b.data());
    int better = 0;
    const size_t block = std::string(base) == "nvfp4" ? 16 : 32;
    for (size_t g = 0; g < y.size() / block; ++g) {
      double ea = 0, eb = 0;
      for (size_t i = g * block; i < (g + 1) * block; ++i)
        ea += double(y[i] - a[i]) * (y[i] - a[i]), eb += double(y[i] - b[i]) * (y[i] - b[i]);
      EXPECT_LE(eb, ea) << name << " block " << g;
      better += eb < ea;
    }
    EXPECT_GT(better, 0) << name;
    EXPECT_EQ(scheme_name(parse_scheme(name)), name);
  }
  EXPECT_EQ(parse_scheme("nvfp4_4over6"), parse_scheme("e2m1fn:g16:scale=e4m3fn:4over6:global"));
  EXPECT_THROW(validate_scheme(parse_scheme("int4:g32:4over6")), Error);
}

// The sweep's result is the best stored scale there is: checked against trying every positive
// code of the scale format on every block (the bounds that stop the sweep early must never skip
// the optimum), and never worse than absmax, Four Over Six or the MSE clip search.
TEST(ScaleRules, SweepFindsTheBestStoredScaleOfEveryBlock) {
  const RoundOptions nearest{RoundMode::NearestEven, Overflow::Saturate, 0};
  for (const auto& [name, absmax] :
       {std::pair{"nvfp4_sweep", "nvfp4"}, std::pair{"e2m1fn:g32:scale=e8m0fnu:sweep", "mxfp4"},
        std::pair{"int4:g32:scale=e4m3fn:sweep", "int4:g32:scale=e4m3fn"},
        std::pair{"e4m3fn:g16:scale=e5m2:sweep", "e4m3fn:g16:scale=e5m2"}}) {
    const Scheme s = parse_scheme(name);
    const size_t block = size_t(s.group);
    const std::vector<float> y = heavy_tailed(block * 256, 11);
    const QTensor q = quantize(s, y.data(), {y.size()});
    const QTensor plain = quantize(parse_scheme(absmax), y.data(), {y.size()});
    const auto d = dequantized(q);
    // Symmetric schemes clamp x / scale to ± the largest magnitude both signs reach (7 for int4).
    const auto m = float(element_max(s));
    const auto block_error = [&](size_t g, float scale) {
      double e = 0;
      for (size_t i = g * block; i < (g + 1) * block; ++i) {
        const float r = std::clamp(y[i] / scale, -m, m);
        const float v = scale * ref::decode(s.element, ref::round_to_code(s.element, r, nearest));
        e += double(y[i] - v) * double(y[i] - v);
      }
      return e;
    };
    int beats_absmax = 0;
    for (size_t g = 0; g < q.group_count(); ++g) {
      double chosen = 0;
      for (size_t i = g * block; i < (g + 1) * block; ++i)
        chosen += double(y[i] - d[i]) * double(y[i] - d[i]);
      double best = std::numeric_limits<double>::infinity();
      for (uint32_t c = 0; c <= max_magnitude_code(s.scale_format); ++c) {
        const float base = ref::decode(s.scale_format, c);
        if (!(base > 0)) continue;
        best = std::min(best, block_error(g, s.global_scale ? base * q.global_scale : base));
      }
      ASSERT_EQ(chosen, best) << name << " block " << g;
      beats_absmax += chosen < block_error(g, plain.group_scale(g));
    }
    EXPECT_GT(beats_absmax, 0) << name;
    EXPECT_EQ(scheme_name(s), name);
  }
  const std::vector<float> y = heavy_tailed(16 * 512, 12);
  const QuantReport sweep = measure(parse_scheme("nvfp4_sweep"), y.data(), {y.size()});
  for (const char* other : {"nvfp4", "nvfp4_4over6", "e2m1fn:g16:scale=e4m3fn:global:mse"}) {
    const QuantReport o = measure(parse_scheme(other), y.data(), {y.size()});
    for (size_t g = 0; g < o.groups.size(); ++g)
      ASSERT_LE(sweep.groups[g].sum_sq_err, o.groups[g].sum_sq_err) << other << " block " << g;
  }
  EXPECT_THROW(validate_scheme(parse_scheme("int4:g32:sweep")), Error);  // f32 scales
  EXPECT_THROW(validate_scheme(parse_scheme("int4:g32:scale=e4m3fn:sweep:asym")), Error);
  EXPECT_THROW(
      validate_scheme(parse_scheme("e2m1fn:g16:scale=e4m3fn:sweep:global:round=stochastic")),
      Error);
}

TEST(ScaleRules, AsymmetricIntegers) {
  std::vector<float> x(256);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-0.3f, 2.0f);  // skewed: asym helps
  for (float& v : x) v = u(rng);
  const QTensor q = quantize(parse_scheme("int4:g128:asym"), x.data(), {256});
  ASSERT_EQ(q.zero_points.size(), 2u);
  const auto d = dequantized(q);
  for (size_t i = 0; i < x.size(); ++i) {
    const float scale = q.group_scale(i / 128);
    EXPECT_LE(std::fabs(x[i] - d[i]), scale) << i;
  }
  for (uint32_t c : unpacked_codes(q)) EXPECT_LE(c, 15u);
  const QuantReport sym = measure(parse_scheme("int4:g128"), x.data(), {256});
  const QuantReport asym = measure(parse_scheme("int4:g128:asym"), x.data(), {256});
  EXPECT_LT(asym.tensor.mse(), sym.tensor.mse());
}

TEST(Metrics, SqnrClippedFlushedAndHistogram) {
  std::vector<float> x = {1.0f, 2.0f, 1e-6f, -3.0f, 0.0f, 7.0f, 0.25f, 0.5f};
  const QuantReport r = measure(parse_scheme("e2m1fn:tensor:fixed=1"), x.data(), {8});
  EXPECT_EQ(r.tensor.count, 8u);
  EXPECT_EQ(r.tensor.clipped, 1u);  // 7 > 6
  EXPECT_EQ(r.tensor.flushed, 2u);  // 1e-6 and 0.25 (a tie: to 0)
  EXPECT_NEAR(r.tensor.sum_sq_err, 1.0 + 1e-12 + 0.0625, 1e-9);
  EXPECT_NEAR(r.tensor.sqnr_db(), 10 * std::log10(r.tensor.sum_sq_x / r.tensor.sum_sq_err), 1e-9);
  EXPECT_EQ(r.scale_log2_histogram.at(0), 1u);
  EXPECT_DOUBLE_EQ(r.bits_per_element, 4.0 + 32.0 / 8.0);
  EXPECT_DOUBLE_EQ(scheme_bits_per_element(parse_scheme("mxfp4"), {4096, 4096}), 4.25);
  EXPECT_DOUBLE_EQ(scheme_bits_per_element(parse_scheme("nvfp4"), {4096, 4096}),
                   4.5 + 32.0 / (4096.0 * 4096.0));
  EXPECT_DOUBLE_EQ(scheme_bits_per_element(parse_scheme("int4_g128"), {4096, 4096}),
                   4.0 + 36.0 / 128.0);
}

TEST(Quantize, Bf16InputsAndShapeErrors) {
  std::vector<BF16> xb(64);
  std::vector<float> xf(64);
  for (size_t i = 0; i < 64; ++i) {
    xf[i] = float(int(i) - 30) * 0.125f;  // exact in bf16
    uint32_t bits;
    std::memcpy(&bits, &xf[i], 4);
    xb[i].bits = uint16_t(bits >> 16);
  }
  std::vector<float> a(64), b(64);
  fake_quant(parse_scheme("mxfp4"), xb.data(), {64}, a.data());
  fake_quant(parse_scheme("mxfp4"), xf.data(), {64}, b.data());
  EXPECT_EQ(a, b);
  EXPECT_THROW(quantize(parse_scheme("e4m3fn:channel:axis=2"), xf.data(), {8, 8}), Error);
  QTensor q = quantize(parse_scheme("mxfp4"), xf.data(), {64});
  q.scales.pop_back();
  EXPECT_THROW(dequantize(q, a.data()), Error);
}

// measure() can hand back the quantized tensor of the same pass: the very codes, scales, zero
// points and tensor scale quantize() gives, and values that dequantize() reproduces.
TEST(Measure, ItsQuantizedTensorIsQuantizes) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(24 * 100);
  for (float& v : x) v = normal(rng);
  x[5] = 40.0f;
  for (const char* name : {"mxfp4", "nvfp4", "int4_g128", "e4m3fn:channel", "mxfp6_e3m2",
                           "int8:tensor", "e4m3fn:block16x32", "e5m2:g7"}) {
    const Scheme s = parse_scheme(name);
    QTensor from_measure;
    std::vector<float> values;
    measure(s, x.data(), {24, 100}, &values, &from_measure);
    const QTensor q = quantize(s, x.data(), {24, 100});
    EXPECT_EQ(from_measure.codes, q.codes) << name;
    EXPECT_EQ(from_measure.scales, q.scales) << name;
    EXPECT_EQ(from_measure.zero_points, q.zero_points) << name;
    EXPECT_EQ(from_measure.scale_shape, q.scale_shape) << name;
    EXPECT_EQ(from_measure.shape, q.shape) << name;
    EXPECT_EQ(from_measure.global_scale, q.global_scale) << name;
    std::vector<float> back(x.size());
    dequantize(from_measure, back.data());
    EXPECT_EQ(std::memcmp(back.data(), values.data(), x.size() * sizeof(float)), 0) << name;
  }
}

}  // namespace
}  // namespace lowbit
