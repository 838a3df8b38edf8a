// Every registered conversion backend (each compiled SIMD target this CPU runs) against the scalar
// reference, bit for bit: every format under test, every rounding mode and overflow policy, every
// source type and code width, tails, misaligned pointers, and the multi-threaded path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "convert_inputs.h"
#include "formats_under_test.h"
#include "lowbit/format/reference.h"
#include "lowbit/kernels/convert.h"
#include "lowbit/kernels/convert_backend.h"
#include "lowbit/kernels/convert_run.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

using kernels::ConvertBackend;
using kernels::SourceType;

using testing::kAllRoundModes;

std::vector<const ConvertBackend*> simd_backends() {
  std::vector<const ConvertBackend*> out;
  for (const ConvertBackend& b : kernels::convert_backends())
    if (b.hwy_target != 0) out.push_back(&b);
  return out;
}

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Encodes with `b` into codes of `width` bytes, returned widened to uint32.
std::vector<uint32_t> encode_with(const ConvertBackend& b, const kernels::ConvertPlan& p,
                                  const void* in, SourceType type, size_t n, uint64_t first,
                                  int width) {
  std::vector<uint8_t> raw(n * size_t(width) + 1);
  b.encode(p, in, type, n, first, raw.data(), width);
  std::vector<uint32_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t c = 0;
    std::memcpy(&c, raw.data() + i * size_t(width), size_t(width));
    out[i] = c;
  }
  return out;
}

std::vector<uint32_t> fake_quant_bits(const ConvertBackend& b, const kernels::ConvertPlan& p,
                                      const void* in, SourceType type, size_t n, uint64_t first) {
  std::vector<float> out(n);
  b.fake_quant(p, in, type, n, first, out.data());
  std::vector<uint32_t> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = bits_of(out[i]);
  return bits;
}

// First mismatch, as a readable message, or "" when equal.
std::string first_mismatch(const std::vector<uint32_t>& want, const std::vector<uint32_t>& got,
                           const std::vector<float>& inputs) {
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] != got[i]) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %zu input %.9g (0x%08x): want 0x%x got 0x%x", i,
                    double(inputs[i]), bits_of(inputs[i]), want[i], got[i]);
      return buf;
    }
  return "";
}

TEST(KernelTargets, ReportCoverage) {
  const std::vector<std::string> compiled = kernels::compiled_simd_targets();
  std::string runnable;
  for (const ConvertBackend* b : simd_backends()) runnable += " " + b->name;
  std::string skipped;
  for (const std::string& name : compiled)
    if (runnable.find(name) == std::string::npos) skipped += " " + name;
  std::printf("SIMD targets compiled:%s\n",
              [&] {
                std::string s;
                for (const auto& n : compiled) s += " " + n;
                return s;
              }()
                  .c_str());
  std::printf("SIMD targets tested on this CPU:%s\n", runnable.c_str());
  if (!skipped.empty()) std::printf("NOT tested here (CPU lacks them):%s\n", skipped.c_str());
  ASSERT_FALSE(simd_backends().empty()) << "no SIMD backend runs on this CPU";
  EXPECT_EQ(std::string(active_simd_target()), simd_backends().back()->name);
}

TEST(KernelConvert, EveryFormatModeAndPolicyMatchesTheReference) {
  const ConvertBackend ref = kernels::reference_convert_backend();
  for (const Format& f : testing::formats_under_test()) {
    SCOPED_TRACE(format_name(f));
    const std::vector<float> xs = testing::interesting_inputs(f);
    const int width = code_bytes(f);
    for (RoundMode mode : kAllRoundModes) {
      for (Overflow ov : {Overflow::Default, Overflow::Saturate}) {
        SCOPED_TRACE(std::string(round_mode_name(mode)) +
                     (ov == Overflow::Saturate ? " saturate" : ""));
        const kernels::ConvertPlan plan = kernels::make_convert_plan(f, {mode, ov, 42});
        const uint64_t first = 77;
        const auto want = encode_with(ref, plan, xs.data(), SourceType::F32, xs.size(), first, 4);
        const auto want_fq =
            fake_quant_bits(ref, plan, xs.data(), SourceType::F32, xs.size(), first);
        for (const ConvertBackend* b : simd_backends()) {
          SCOPED_TRACE(b->name);
          ASSERT_EQ("", first_mismatch(want,
                                       encode_with(*b, plan, xs.data(), SourceType::F32, xs.size(),
                                                   first, width),
                                       xs));
          ASSERT_EQ(
              "", first_mismatch(
                      want, encode_with(*b, plan, xs.data(), SourceType::F32, xs.size(), first, 4),
                      xs));
          ASSERT_EQ(
              "", first_mismatch(
                      want_fq,
                      fake_quant_bits(*b, plan, xs.data(), SourceType::F32, xs.size(), first), xs));
        }
      }
    }
  }
}

TEST(KernelConvert, DecodeMatchesTheReferenceOnEveryCode) {
  const ConvertBackend ref = kernels::reference_convert_backend();
  for (const Format& f : testing::formats_under_test()) {
    SCOPED_TRACE(format_name(f));
    const kernels::ConvertPlan plan = kernels::make_convert_plan(f, {});
    // Every code, then every code again with junk in the bits above the format's width.
    std::vector<uint32_t> codes;
    for (uint32_t c = 0; c < code_count(f); ++c) codes.push_back(c);
    for (uint32_t c = 0; c < code_count(f); ++c) codes.push_back(c | (0xA5A5A5A5u << f.bits()));
    for (int width : {code_bytes(f), 4}) {
      std::vector<uint8_t> raw(codes.size() * size_t(width));
      for (size_t i = 0; i < codes.size(); ++i)
        std::memcpy(raw.data() + i * size_t(width), &codes[i], size_t(width));
      std::vector<float> want(codes.size()), got(codes.size());
      ref.decode(plan, raw.data(), width, codes.size(), want.data());
      for (const ConvertBackend* b : simd_backends()) {
        b->decode(plan, raw.data(), width, codes.size(), got.data());
        for (size_t i = 0; i < codes.size(); ++i)
          ASSERT_EQ(bits_of(want[i]), bits_of(got[i]))
              << b->name << " code 0x" << std::hex << codes[i];
      }
    }
  }
}

TEST(KernelConvert, SixteenBitSourcesMatchTheReference) {
  const ConvertBackend ref = kernels::reference_convert_backend();
  for (const Format& f : testing::formats_under_test()) {
    SCOPED_TRACE(format_name(f));
    const std::vector<float> xs = testing::interesting_inputs(f, 1u << 20);
    std::vector<uint16_t> as_bf16(xs.size()), as_fp16(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      as_bf16[i] = uint16_t(bits_of(xs[i]) >> 16);  // any bit pattern is a bf16
      as_fp16[i] = uint16_t(ref::round_to_code(formats::fp16, xs[i], {}));
    }
    for (RoundMode mode : {RoundMode::NearestEven, RoundMode::TowardZero, RoundMode::Stochastic}) {
      const kernels::ConvertPlan plan = kernels::make_convert_plan(f, {mode, Overflow::Default, 9});
      for (const auto& [data, type] :
           {std::pair<const void*, SourceType>{as_bf16.data(), SourceType::BF16},
            std::pair<const void*, SourceType>{as_fp16.data(), SourceType::FP16}}) {
        const auto want = encode_with(ref, plan, data, type, xs.size(), 5, 4);
        const auto want_fq = fake_quant_bits(ref, plan, data, type, xs.size(), 5);
        for (const ConvertBackend* b : simd_backends()) {
          SCOPED_TRACE(b->name + (type == SourceType::BF16 ? " bf16" : " fp16"));
          ASSERT_EQ("",
                    first_mismatch(want, encode_with(*b, plan, data, type, xs.size(), 5, 4), xs));
          ASSERT_EQ(
              "", first_mismatch(want_fq, fake_quant_bits(*b, plan, data, type, xs.size(), 5), xs));
        }
      }
    }
  }
}

TEST(KernelConvert, TailsAndMisalignedPointers) {
  const ConvertBackend ref = kernels::reference_convert_backend();
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 50.0f);
  std::vector<float> xs(300);
  for (float& x : xs) x = normal(rng);
  for (const Format& f :
       {formats::e4m3fn, formats::e2m1fn, formats::bf16, formats::int4, formats::nf4}) {
    SCOPED_TRACE(format_name(f));
    const kernels::ConvertPlan plan =
        kernels::make_convert_plan(f, {RoundMode::Stochastic, Overflow::Default, 3});
    for (size_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255}) {
      for (size_t offset : {0, 1, 3}) {
        const float* in = xs.data() + offset;
        const std::vector<float> window(in, in + n);
        const auto want = encode_with(ref, plan, in, SourceType::F32, n, 1000 + offset, 4);
        const auto want_fq = fake_quant_bits(ref, plan, in, SourceType::F32, n, 1000 + offset);
        for (const ConvertBackend* b : simd_backends()) {
          // Codes written at an odd address too.
          std::vector<uint8_t> raw(n * 2 + 1);
          b->encode(plan, in, SourceType::F32, n, 1000 + offset, raw.data() + 1, 1);
          if (code_bytes(f) == 1) {
            for (size_t i = 0; i < n; ++i) ASSERT_EQ(want[i], raw[i + 1]) << b->name << " n=" << n;
          }
          ASSERT_EQ("", first_mismatch(
                            want, encode_with(*b, plan, in, SourceType::F32, n, 1000 + offset, 4),
                            window));
          ASSERT_EQ("",
                    first_mismatch(want_fq,
                                   fake_quant_bits(*b, plan, in, SourceType::F32, n, 1000 + offset),
                                   window));
        }
      }
    }
  }
}

TEST(KernelConvert, ThreadedChunkingGivesTheSameResult) {
  // Large enough to run in parallel chunks; stochastic rounding must not notice.
  const size_t n = kernels::kParallelMinimum * 3 + 123;
  std::vector<float> xs(n);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& x : xs) x = normal(rng);
  const Format f = formats::e2m3fn;
  const RoundOptions opt{RoundMode::Stochastic, Overflow::Default, 8};
  std::vector<uint8_t> threaded(n);
  encode(f, xs.data(), n, threaded.data(), opt, 500);
  for (size_t i = 0; i < n; i += 97)
    ASSERT_EQ(threaded[i], ref::round_to_code(f, xs[i], opt, 500 + i)) << i;
  // Same stream when the array is converted in two pieces.
  std::vector<uint8_t> pieces(n);
  encode(f, xs.data(), 1000, pieces.data(), opt, 500);
  encode(f, xs.data() + 1000, n - 1000, pieces.data() + 1000, opt, 1500);
  EXPECT_EQ(threaded, pieces);
  std::vector<float> fq(n), decoded(n);
  fake_quant(f, xs.data(), n, fq.data(), opt, 500);
  decode(f, threaded.data(), n, decoded.data());
  EXPECT_EQ(0, std::memcmp(fq.data(), decoded.data(), n * sizeof(float)));
}

TEST(KernelConvert, StreamCounterCrossesTwoToThe32) {
  const Format f = formats::e4m3fn;
  const RoundOptions opt{RoundMode::Stochastic, Overflow::Default, 1};
  std::vector<float> xs(100, 1.03f);
  std::vector<uint8_t> codes(xs.size());
  const uint64_t first = (uint64_t(1) << 32) - 50;
  encode(f, xs.data(), xs.size(), codes.data(), opt, first);
  for (size_t i = 0; i < xs.size(); ++i)
    ASSERT_EQ(codes[i], ref::round_to_code(f, xs[i], opt, first + i)) << i;
}

TEST(KernelConvert, BlockScaledOperationsMatchTheReference) {
  const ConvertBackend ref = kernels::reference_convert_backend();
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> xs(777);
  for (float& x : xs) x = normal(rng);
  xs[5] = std::numeric_limits<float>::quiet_NaN();
  xs[77] = std::numeric_limits<float>::infinity();
  xs[100] = -1e30f;
  xs[200] = 0.0f;
  std::vector<float> scales(800);
  for (size_t i = 0; i < scales.size(); ++i)
    scales[i] = std::ldexp(1.0f, int(i % 9) - 4) * (1.0f + float(i % 3) * 0.3f);
  scales[3] = std::numeric_limits<float>::quiet_NaN();
  scales[4] = 1e-30f;
  for (const Format& f : {formats::e4m3fn, formats::e2m1fn, formats::e5m2, formats::int8,
                          formats::nf4, parse_format("e3m2:specials=none:subnormals=off")}) {
    for (RoundMode mode : {RoundMode::NearestEven, RoundMode::Stochastic}) {
      const kernels::ConvertPlan plan =
          kernels::make_convert_plan(f, {mode, Overflow::Saturate, 4});
      for (size_t group : {1, 3, 8, 16, 32, 33, 100}) {
        for (size_t phase : {size_t(0), size_t(1), group - 1}) {
          if (phase >= group) continue;
          const kernels::ScaleRun run{scales.data(), group, phase, float(max_finite(f))};
          const size_t n = xs.size();
          std::vector<uint32_t> want(n), got(n);
          ref.encode_scaled(plan, xs.data(), n, run, 3, want.data(), 4);
          std::vector<float> want_fq(n), got_fq(n), want_dq(n), got_dq(n);
          ref.fake_quant_scaled(plan, xs.data(), n, run, 3, want_fq.data());
          ref.decode_scaled(plan, want.data(), 4, n, run, want_dq.data());
          for (const ConvertBackend* b : simd_backends()) {
            SCOPED_TRACE(b->name + " " + format_name(f) + " group " + std::to_string(group) +
                         " phase " + std::to_string(phase));
            b->encode_scaled(plan, xs.data(), n, run, 3, got.data(), 4);
            ASSERT_EQ(want, got);
            std::vector<uint8_t> narrow(n);
            if (code_bytes(f) == 1) {
              b->encode_scaled(plan, xs.data(), n, run, 3, narrow.data(), 1);
              for (size_t i = 0; i < n; ++i) ASSERT_EQ(want[i], narrow[i]) << i;
            }
            b->fake_quant_scaled(plan, xs.data(), n, run, 3, got_fq.data());
            b->decode_scaled(plan, want.data(), 4, n, run, got_dq.data());
            ASSERT_EQ(0, std::memcmp(want_fq.data(), got_fq.data(), n * 4));
            ASSERT_EQ(0, std::memcmp(want_dq.data(), got_dq.data(), n * 4));
          }
        }
      }
    }
  }
}

TEST(KernelConvert, GroupMaxMagnitudeMatchesTheReference) {
  const ConvertBackend ref = kernels::reference_convert_backend();
  std::vector<float> xs(1000);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(float(i)) * float(i % 17);
  xs[10] = -std::numeric_limits<float>::infinity();
  xs[500] = std::numeric_limits<float>::quiet_NaN();
  xs[600] = -0x1p-140f;
  for (size_t group : {1, 7, 8, 16, 32, 100, 1000, 5000}) {
    const size_t groups = (xs.size() + group - 1) / group;
    std::vector<uint32_t> want(groups), got(groups);
    ref.max_abs_bits(xs.data(), xs.size(), group, want.data());
    for (const ConvertBackend* b : simd_backends()) {
      b->max_abs_bits(xs.data(), xs.size(), group, got.data());
      ASSERT_EQ(want, got) << b->name << " group " << group;
    }
    if (group == 1000) {
      ASSERT_GE(want[0], 0x7F800000u);  // the NaN and the inf show
    }
  }
}

TEST(KernelConvert, PublicApiChecksCodeWidth) {
  std::vector<float> xs(4, 1.0f);
  std::vector<uint8_t> narrow(4);
  EXPECT_THROW(encode(formats::bf16, xs.data(), xs.size(), narrow.data()), Error);
  EXPECT_THROW(decode(formats::fp16, narrow.data(), narrow.size(), xs.data()), Error);
  std::vector<uint16_t> wide(4);
  EXPECT_NO_THROW(encode(formats::bf16, xs.data(), xs.size(), wide.data()));
  EXPECT_EQ(wide[0], 0x3F80);
  const Format tf32 = parse_format("e8m10");
  std::vector<uint32_t> codes(4);
  encode(tf32, xs.data(), xs.size(), codes.data());
  EXPECT_EQ(codes[0], 0x1FC00u);
  EXPECT_THROW(encode(tf32, xs.data(), xs.size(), wide.data()), Error);
}

}  // namespace
}  // namespace lowbit
