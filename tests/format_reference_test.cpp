// Exhaustive tests of the scalar reference codecs: every code of every format under test, every
// midpoint between neighbouring values, the special-input table of docs/formats.md, the spec
// values, and stochastic rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "formats_under_test.h"
#include "lowbit/format/format.h"
#include "lowbit/format/reference.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

using testing::formats_under_test;
using testing::sorted_finite_values;

using testing::kAllRoundModes;
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

uint32_t rne(const Format& f, float x) {
  return ref::round_to_code(f, x, {});
}
uint32_t round_with(const Format& f, float x, RoundMode mode, Overflow ov = Overflow::Default) {
  RoundOptions opt;
  opt.mode = mode;
  opt.overflow = ov;
  return ref::round_to_code(f, x, opt);
}

// A code that decodes to ±0 but is not the canonical zero: the M != 0 codes of E = 0 when the
// format flushes subnormals.
bool is_flush_alias(const Format& f, uint32_t code) {
  return f.kind == FormatKind::Float && f.low == LowBinade::Flush &&
         (code & magnitude_mask(f)) >> f.man_bits == 0 && (code & magnitude_mask(f)) != 0;
}

TEST(Reference, EveryCodeRoundTrips) {
  for (const Format& f : formats_under_test()) {
    SCOPED_TRACE(format_name(f));
    for (uint32_t code = 0; code < code_count(f); ++code) {
      const float v = ref::decode(f, code);
      if (std::isnan(v)) {
        if (f.kind == FormatKind::Lut) {
          EXPECT_GE(code, uint32_t(f.lut_size));
          continue;
        }
        ASSERT_TRUE(has_nan(f)) << code;
        EXPECT_TRUE(std::isnan(ref::decode(f, ref::encode_exact(f, v))));
        continue;
      }
      const uint32_t canonical = ref::encode_exact(f, v);
      if (is_flush_alias(f, code)) {
        EXPECT_EQ(v, 0.0f);
        EXPECT_EQ(canonical, code & sign_bit(f)) << code;
      } else {
        EXPECT_EQ(canonical, code) << "value " << v;
      }
      // A representable value is left where it is by every mode and policy.
      for (RoundMode mode : kAllRoundModes) {
        EXPECT_EQ(round_with(f, v, mode), canonical)
            << "mode " << round_mode_name(mode) << " v " << v;
        // ... except that saturation makes ±inf finite.
        const uint32_t saturated =
            std::isinf(v) ? (max_magnitude_code(f) | (v < 0 ? sign_bit(f) : 0)) : canonical;
        EXPECT_EQ(round_with(f, v, mode, Overflow::Saturate), saturated);
      }
    }
  }
}

// The code a rounding to `value` must produce for an input of sign `negative` (zeros keep the
// input's sign where the format has -0).
uint32_t expected_code(const Format& f, double value, bool negative) {
  if (value == 0.0) return ref::encode_exact(f, negative && has_negative_zero(f) ? -0.0f : 0.0f);
  return ref::encode_exact(f, float(value));
}

TEST(Reference, MidpointsAndTheirNeighbours) {
  for (const Format& f : formats_under_test()) {
    SCOPED_TRACE(format_name(f));
    const std::vector<double> values = sorted_finite_values(f);
    for (size_t i = 0; i + 1 < values.size(); ++i) {
      const double lo = values[i], hi = values[i + 1];
      const double mid = 0.5 * (lo + hi);
      const float x = float(mid);
      const bool neg = mid < 0 || (mid == 0 && lo < 0);
      const double small = std::fabs(lo) <= std::fabs(hi) ? lo : hi;
      const double large = std::fabs(lo) <= std::fabs(hi) ? hi : lo;
      const uint32_t lo_code = expected_code(f, lo, neg), hi_code = expected_code(f, hi, neg);
      if (double(x) == mid && x != 0.0f) {
        SCOPED_TRACE("midpoint " + std::to_string(mid));
        // Ties to even: the neighbour with the even integer significand. Zero is even; with no
        // mantissa bits every non-zero significand is 1, so the larger magnitude wins; codebooks
        // and integers use the code's / integer's parity.
        uint32_t even = (lo_code % 2 == 0) ? lo_code : hi_code;
        if (f.kind == FormatKind::Int) {
          even = expected_code(f, std::fmod(lo, 2.0) == 0 ? lo : hi, neg);
        } else if (f.kind == FormatKind::Float) {
          if (lo == 0.0 || hi == 0.0)
            even = expected_code(f, 0.0, neg);
          else if (f.man_bits == 0)
            even = expected_code(f, large, neg);
        }
        if (f.kind != FormatKind::Lut || std::fabs(lo) != std::fabs(hi)) {
          EXPECT_EQ(rne(f, x), even);
          EXPECT_EQ(round_with(f, x, RoundMode::NearestAway), expected_code(f, large, neg));
          EXPECT_EQ(round_with(f, x, RoundMode::TowardZero), expected_code(f, small, neg));
        }
        EXPECT_EQ(round_with(f, x, RoundMode::Up), hi_code);
        EXPECT_EQ(round_with(f, x, RoundMode::Down), lo_code);
      }
      // One float32 ulp either side of the midpoint goes to the nearer neighbour.
      float above = float(mid), below = float(mid);  // the nearest floats strictly either side
      if (double(above) <= mid) above = std::nextafter(above, kInf);
      if (double(below) >= mid) below = std::nextafter(below, -kInf);
      if (above < hi) {
        EXPECT_EQ(rne(f, above), expected_code(f, hi, std::signbit(above))) << "above " << mid;
        EXPECT_EQ(round_with(f, above, RoundMode::NearestAway),
                  expected_code(f, hi, std::signbit(above)));
      }
      if (below > lo) {
        EXPECT_EQ(rne(f, below), expected_code(f, lo, std::signbit(below))) << "below " << mid;
        EXPECT_EQ(round_with(f, below, RoundMode::NearestAway),
                  expected_code(f, lo, std::signbit(below)));
      }
    }
  }
}

// Nearest rounding equals a brute-force search over every value, on random inputs.
TEST(Reference, NearestMatchesBruteForce) {
  std::mt19937 rng(7);
  for (const Format& f : formats_under_test()) {
    if (code_count(f) > 256) continue;
    SCOPED_TRACE(format_name(f));
    const std::vector<double> values = sorted_finite_values(f);
    std::uniform_real_distribution<float> dist(float(values.front()), float(values.back()));
    for (int trial = 0; trial < 20000; ++trial) {
      const float x = dist(rng);
      double best = values[0];
      for (double v : values)
        if (std::fabs(v - x) < std::fabs(best - x)) best = v;
      const double got = ref::round_to_value(f, x, {});
      if (std::fabs(got - x) != std::fabs(best - x))
        FAIL() << "x=" << x << " got " << got << " best " << best;
    }
  }
}

TEST(Reference, SpecValues) {
  using namespace formats;
  EXPECT_EQ(ref::decode(e4m3fn, 0x7E), 448.0f);
  EXPECT_EQ(ref::decode(e4m3fn, 0x08), 0x1p-6f);
  EXPECT_EQ(ref::decode(e4m3fn, 0x01), 0x1p-9f);
  EXPECT_TRUE(std::isnan(ref::decode(e4m3fn, 0x7F)) && std::isnan(ref::decode(e4m3fn, 0xFF)));
  EXPECT_EQ(ref::decode(e4m3fn, 0x78), 256.0f);  // E4M3 has no inf: 0x78 is a normal number
  EXPECT_EQ(ref::decode(e5m2, 0x7B), 57344.0f);
  EXPECT_EQ(ref::decode(e5m2, 0x04), 0x1p-14f);
  EXPECT_EQ(ref::decode(e5m2, 0x01), 0x1p-16f);
  EXPECT_EQ(ref::decode(e5m2, 0x7C), kInf);
  EXPECT_EQ(ref::decode(e5m2, 0xFC), -kInf);
  EXPECT_TRUE(std::isnan(ref::decode(e5m2, 0x7D)));
  const float fp4[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (uint32_t c = 0; c < 8; ++c) {
    EXPECT_EQ(ref::decode(e2m1fn, c), fp4[c]);
    EXPECT_EQ(ref::decode(e2m1fn, c | 8), -fp4[c]);
  }
  EXPECT_EQ(ref::decode(e2m3fn, 0x1F), 7.5f);
  EXPECT_EQ(ref::decode(e2m3fn, 0x01), 0.125f);
  EXPECT_EQ(ref::decode(e3m2fn, 0x1F), 28.0f);
  EXPECT_EQ(ref::decode(e3m2fn, 0x01), 0.0625f);
  EXPECT_EQ(ref::decode(e8m0fnu, 0x7F), 1.0f);
  EXPECT_EQ(ref::decode(e8m0fnu, 0x00), 0x1p-127f);
  EXPECT_EQ(ref::decode(e8m0fnu, 0xFE), 0x1p127f);
  EXPECT_TRUE(std::isnan(ref::decode(e8m0fnu, 0xFF)));
  EXPECT_TRUE(std::isnan(ref::decode(e4m3fnuz, 0x80)));
  EXPECT_EQ(ref::decode(e4m3fnuz, 0x7F), 240.0f);
  EXPECT_EQ(ref::decode(e4m3b11fnuz, 0x7F), 30.0f);
  EXPECT_EQ(ref::decode(fp16, 0x7BFF), 65504.0f);
  EXPECT_EQ(ref::decode(bf16, 0x3F80), 1.0f);
  EXPECT_EQ(ref::decode(int4, 0x8), -8.0f);
  EXPECT_EQ(ref::decode(int4, 0xF), -1.0f);
  EXPECT_EQ(ref::decode(uint4, 0xF), 15.0f);
  EXPECT_EQ(ref::decode(nf4, 7), 0.0f);
  EXPECT_EQ(ref::decode(nf4, 0), -1.0f);
  // Bits above the format's width are ignored.
  EXPECT_EQ(ref::decode(e2m1fn, 0xF7), 6.0f);
  // Canonical NaNs, as ml_dtypes writes them.
  EXPECT_EQ(ref::nan_code(e5m2, false), 0x7Eu);
  EXPECT_EQ(ref::nan_code(e4m3, false), 0x7Cu);
  EXPECT_EQ(ref::nan_code(e3m4, false), 0x78u);
  EXPECT_EQ(ref::nan_code(e4m3fn, true), 0xFFu);
  EXPECT_EQ(ref::nan_code(fp16, false), 0x7E00u);
  EXPECT_EQ(ref::nan_code(bf16, false), 0x7FC0u);
  EXPECT_EQ(ref::nan_code(e4m3fnuz, true), 0x80u);
}

TEST(Reference, OverflowFollowsTheTable) {
  using namespace formats;
  // RNE overflow thresholds: max + half an ulp ties to the even neighbour.
  EXPECT_EQ(rne(e4m3fn, 464.0f), 0x7Eu);                        // tie: 448 (M=110) is even
  EXPECT_EQ(rne(e4m3fn, std::nextafter(464.0f, kInf)), 0x7Fu);  // beyond: NaN
  EXPECT_EQ(rne(e4m3fn, -1e9f), 0xFFu);
  EXPECT_EQ(round_with(e4m3fn, 1e9f, RoundMode::NearestEven, Overflow::Saturate), 0x7Eu);
  EXPECT_EQ(round_with(e4m3fn, kInf, RoundMode::NearestEven, Overflow::Saturate), 0x7Eu);
  EXPECT_EQ(round_with(e4m3fn, -kInf, RoundMode::NearestEven, Overflow::Saturate), 0xFEu);
  EXPECT_EQ(rne(e5m2, 61440.0f), 0x7Cu);  // tie between 57344 (odd M) and 65536: inf
  EXPECT_EQ(rne(e5m2, std::nextafter(61440.0f, 0.0f)), 0x7Bu);
  EXPECT_EQ(rne(e5m2, -kInf), 0xFCu);
  EXPECT_EQ(round_with(e5m2, kInf, RoundMode::NearestEven, Overflow::Saturate), 0x7Bu);
  // Rounding toward zero never overflows a finite input (IEEE 754 7.4) ...
  EXPECT_EQ(round_with(e5m2, 1e9f, RoundMode::TowardZero), 0x7Bu);
  EXPECT_EQ(round_with(e5m2, 1e9f, RoundMode::Down), 0x7Bu);
  EXPECT_EQ(round_with(e5m2, -1e9f, RoundMode::Down), 0xFCu);
  EXPECT_EQ(round_with(e5m2, -1e9f, RoundMode::Up), 0xFBu);
  // ... but an infinite input stays infinite.
  EXPECT_EQ(round_with(e5m2, kInf, RoundMode::TowardZero), 0x7Cu);
  // Formats without inf or NaN saturate.
  EXPECT_EQ(rne(e2m1fn, 100.0f), 0x7u);
  EXPECT_EQ(rne(e2m1fn, -kInf), 0xFu);
  EXPECT_EQ(rne(e3m2fn, 1e30f), 0x1Fu);
  EXPECT_EQ(rne(e4m3fnuz, 1e9f), 0x80u);
  EXPECT_EQ(rne(e4m3fnuz, -kInf), 0x80u);
  EXPECT_EQ(rne(e8m0fnu, 0x1.8p127f), 0xFFu);  // tie rounds up past 2^127: NaN
  EXPECT_EQ(rne(int4, 100.0f), 0x7u);
  EXPECT_EQ(rne(int4, -100.0f), 0x8u);
  EXPECT_EQ(rne(int4, -kInf), 0x8u);
  EXPECT_EQ(rne(uint4, -3.0f), 0x0u);
  EXPECT_EQ(rne(nf4, 7.0f), 15u);
  EXPECT_EQ(rne(nf4, -kInf), 0u);
}

TEST(Reference, SpecialInputsFollowTheTable) {
  using namespace formats;
  // NaN keeps its sign where NaNs are signed, becomes the one NaN of FNUZ formats, and becomes
  // +max in formats without NaN (as CUDA's satfinite conversions do).
  EXPECT_EQ(rne(e4m3fn, kNaN), 0x7Fu);
  EXPECT_EQ(rne(e4m3fn, -kNaN), 0xFFu);
  EXPECT_EQ(rne(e5m2, -kNaN), 0xFEu);
  EXPECT_EQ(rne(e4m3fnuz, -kNaN), 0x80u);
  EXPECT_EQ(rne(e2m1fn, kNaN), 0x7u);
  EXPECT_EQ(rne(e2m1fn, -kNaN), 0x7u);
  EXPECT_EQ(rne(int8, kNaN), 0x7Fu);
  EXPECT_EQ(rne(uint8, kNaN), 0xFFu);
  EXPECT_EQ(rne(nf4, kNaN), 15u);
  EXPECT_EQ(round_with(e4m3fn, kNaN, RoundMode::NearestEven, Overflow::Saturate), 0x7Fu);
  // -0 is kept where the format has it; FNUZ and unsigned formats give +0.
  EXPECT_EQ(rne(e4m3fn, -0.0f), 0x80u);
  EXPECT_EQ(rne(e2m1fn, -0.0f), 0x8u);
  EXPECT_EQ(rne(e4m3fnuz, -0.0f), 0x00u);
  EXPECT_EQ(rne(int8, -0.0f), 0x00u);
  // Underflow keeps the sign; FNUZ cannot.
  EXPECT_EQ(rne(e4m3fn, -1e-30f), 0x80u);
  EXPECT_EQ(rne(e4m3fnuz, -1e-30f), 0x00u);
  EXPECT_EQ(round_with(e4m3fn, 1e-30f, RoundMode::Up), 0x01u);
  EXPECT_EQ(round_with(e4m3fn, -1e-30f, RoundMode::Up), 0x80u);
  EXPECT_EQ(round_with(e4m3fn, -1e-30f, RoundMode::Down), 0x81u);
  // E8M0 has no zero and no sign: 0 and negatives are NaN, tiny positives the smallest value.
  EXPECT_EQ(rne(e8m0fnu, 0.0f), 0xFFu);
  EXPECT_EQ(rne(e8m0fnu, -0.0f), 0xFFu);
  EXPECT_EQ(rne(e8m0fnu, -1.0f), 0xFFu);
  EXPECT_EQ(rne(e8m0fnu, 1e-45f), 0x00u);
  EXPECT_EQ(round_with(e8m0fnu, 1e-45f, RoundMode::TowardZero), 0x00u);
  EXPECT_EQ(rne(e8m0fnu, 3.0f), 0x81u);  // tie; no mantissa bits: the larger magnitude
  EXPECT_EQ(rne(e8m0fnu, 1.5f), 0x80u);
  EXPECT_EQ(round_with(e8m0fnu, 3.0f, RoundMode::TowardZero), 0x80u);
  // Unsigned formats without NaN clamp negatives to their lowest value.
  const Format u = parse_format("e3m2:unsigned:specials=none");
  EXPECT_EQ(rne(u, -5.0f), 0x00u);
  EXPECT_EQ(rne(u, -kInf), 0x00u);
  // Subnormal float32 inputs round like any other value.
  EXPECT_EQ(rne(bf16, 0x1p-133f), 0x0001u);       // bf16's smallest subnormal
  EXPECT_EQ(rne(bf16, 0x1p-134f), 0x0000u);       // exactly half of it: to even (0)
  EXPECT_EQ(rne(bf16, 0x1.0002p-134f), 0x0001u);  // one float32 subnormal ulp above half
  EXPECT_EQ(rne(bf16, 0x1.8p-133f), 0x0002u);     // 1.5 ulp: to even (2)
  EXPECT_EQ(rne(bf16, 0x1p-149f), 0x0000u);
  EXPECT_EQ(round_with(bf16, 0x1p-149f, RoundMode::Up), 0x0001u);
  EXPECT_EQ(ref::decode(bf16, 0x0001), 0x1p-133f);
}

TEST(Reference, EncodeExactRejectsWhatIsNotRepresentable) {
  using namespace formats;
  EXPECT_THROW(ref::encode_exact(e4m3fn, 1.1f), Error);
  EXPECT_THROW(ref::encode_exact(e4m3fn, 480.0f), Error);  // the NaN code's place
  EXPECT_THROW(ref::encode_exact(e4m3fn, kInf), Error);
  EXPECT_THROW(ref::encode_exact(e2m1fn, kNaN), Error);
  EXPECT_THROW(ref::encode_exact(e8m0fnu, 0.0f), Error);
  EXPECT_THROW(ref::encode_exact(e8m0fnu, -2.0f), Error);
  EXPECT_THROW(ref::encode_exact(int4, 8.0f), Error);
  EXPECT_THROW(ref::encode_exact(int4, 0.5f), Error);
  EXPECT_THROW(ref::encode_exact(nf4, 0.5f), Error);
  EXPECT_THROW(ref::encode_exact(parse_format("e5m2:subnormals=off"), 0x1p-16f), Error);
  EXPECT_EQ(ref::encode_exact(e8m0fnu, 0x1p-127f), 0x00u);
}

TEST(Reference, DirectedModesBracketTheInput) {
  std::mt19937 rng(3);
  for (const Format& f : formats_under_test()) {
    SCOPED_TRACE(format_name(f));
    const std::vector<double> values = sorted_finite_values(f);
    std::uniform_real_distribution<float> dist(float(values.front()), float(values.back()));
    for (int trial = 0; trial < 5000; ++trial) {
      const float x = dist(rng);
      const float up = ref::round_to_value(f, x, {RoundMode::Up});
      const float down = ref::round_to_value(f, x, {RoundMode::Down});
      const float rtz = ref::round_to_value(f, x, {RoundMode::TowardZero});
      const float sr =
          ref::round_to_value(f, x, {RoundMode::Stochastic, Overflow::Default, 5}, trial);
      if (f.kind == FormatKind::Float && f.low == LowBinade::Normal && std::fabs(x) < min_normal(f))
        continue;  // no zero: everything below the smallest value lands on it
      ASSERT_GE(up, x);
      ASSERT_LE(down, x);
      ASSERT_TRUE(sr == up || sr == down) << x;
      if (f.kind == FormatKind::Float) {
        ASSERT_LE(std::fabs(rtz), std::fabs(x));
      }
    }
  }
}

TEST(Stochastic, IsUnbiasedAndReproducible) {
  using namespace formats;
  for (const Format& f : {e4m3fn, e2m1fn, int4, nf4, bf16}) {
    SCOPED_TRACE(format_name(f));
    const float x = f.kind == FormatKind::Lut ? 0.3f : 1.3f;  // strictly between two values
    RoundOptions opt{RoundMode::Stochastic, Overflow::Default, 1234};
    const float lo = ref::round_to_value(f, x, {RoundMode::Down});
    const float hi = ref::round_to_value(f, x, {RoundMode::Up});
    ASSERT_LT(lo, hi);
    const int n = 200000;
    double sum = 0;
    int ups = 0;
    for (int i = 0; i < n; ++i) {
      const float v = ref::round_to_value(f, x, opt, i);
      sum += v;
      ups += v == hi;
    }
    // Binomial: the mean error is within 5 standard deviations of zero.
    const double p = (double(x) - lo) / (double(hi) - lo);
    const double sigma = (hi - lo) * std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(sum / n, double(x), 5 * sigma);
    EXPECT_GT(ups, 0);
    EXPECT_LT(ups, n);
    // Same seed and index: same result. Another seed: a different stream.
    int differ = 0;
    for (int i = 0; i < 1000; ++i) {
      EXPECT_EQ(ref::round_to_code(f, x, opt, i), ref::round_to_code(f, x, opt, i));
      RoundOptions other = opt;
      other.seed = 99;
      differ += ref::round_to_code(f, x, opt, i) != ref::round_to_code(f, x, other, i);
    }
    EXPECT_GT(differ, 100);
  }
}

TEST(Stochastic, StreamHasNoObviousStructure) {
  // Bits of consecutive counters are balanced and seeds do not produce shifted copies.
  const StochasticKey a = stochastic_key(1), b = stochastic_key(2);
  int ones[32] = {};
  const int n = 1 << 16;
  for (int i = 0; i < n; ++i) {
    const uint32_t r = stochastic_bits(a, uint64_t(i));
    for (int bit = 0; bit < 32; ++bit) ones[bit] += (r >> bit) & 1;
  }
  for (int bit = 0; bit < 32; ++bit) EXPECT_NEAR(ones[bit], n / 2, 5 * std::sqrt(n / 4.0)) << bit;
  for (int shift = 0; shift < 64; ++shift) {
    int same = 0;
    for (int i = 0; i < 256; ++i) same += stochastic_bits(a, i) == stochastic_bits(b, i + shift);
    EXPECT_LT(same, 3) << shift;
  }
  // The high half of the counter matters.
  EXPECT_NE(stochastic_bits(a, 5), stochastic_bits(a, 5 + (uint64_t(1) << 32)));
}

}  // namespace
}  // namespace lowbit
