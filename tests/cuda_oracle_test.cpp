// An independent oracle: the CUDA toolkit's host-side conversions (cuda_fp8.h, cuda_fp6.h,
// cuda_fp4.h, cuda_fp16.h, cuda_bf16.h — plain C++ on the CPU, no GPU needed) against lowbit's
// reference and fast path, on every float32 bit pattern on a stride plus every midpoint between
// neighbouring values and one float32 ulp either side. Built only where the headers exist.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp4.h>
#include <cuda_fp6.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "convert_inputs.h"
#include "lowbit/format/reference.h"
#include "lowbit/kernels/convert.h"

namespace lowbit {
namespace {

uint16_t bits16(__half h) {
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
uint16_t bits16(__nv_bfloat16 h) {
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}

// Inputs: a stride through all 2^32 patterns, and the format's values and midpoints +- 1 ulp.
std::vector<float> oracle_inputs(const Format& f) {
  return testing::interesting_inputs(f, 4099);
}

// A code is "the same" as CUDA's if equal, or, for a NaN input, if both are NaN codes: CUDA
// returns its positive canonical NaN (or carries payload bits, for e5m2), while lowbit keeps the
// input's sign, as ml_dtypes does (docs/formats.md).
bool same_code(const Format& f, float x, uint32_t ours, uint32_t cuda) {
  if (ours == cuda) return true;
  if (!std::isnan(x) || !has_nan(f)) return false;
  return std::isnan(ref::decode(f, ours)) && std::isnan(ref::decode(f, cuda));
}

// Checks the reference and the fast path against `oracle` for one format and rounding.
void check(const Format& f, const RoundOptions& opt, const std::function<uint32_t(float)>& oracle,
           const std::string& what) {
  SCOPED_TRACE(what);
  const std::vector<float> xs = oracle_inputs(f);
  std::vector<uint16_t> fast(xs.size());
  encode(f, xs.data(), xs.size(), fast.data(), opt);
  size_t checked = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const uint32_t want = oracle(xs[i]);
    const uint32_t got = ref::round_to_code(f, xs[i], opt);
    uint32_t input_bits;
    std::memcpy(&input_bits, &xs[i], 4);
    ASSERT_TRUE(same_code(f, xs[i], got, want))
        << "input " << xs[i] << " (0x" << std::hex << input_bits << ") reference 0x" << got
        << " cuda 0x" << want;
    ASSERT_EQ(fast[i], got) << "fast path differs from the reference at input " << xs[i];
    ++checked;
  }
  std::printf("%s: %zu inputs agree with CUDA\n", what.c_str(), checked);
}

TEST(CudaOracle, Fp8) {
  for (const auto& [f, interp, name] : {std::tuple{formats::e4m3fn, __NV_E4M3, "e4m3fn"},
                                        std::tuple{formats::e5m2, __NV_E5M2, "e5m2"}}) {
    check(
        f, {RoundMode::NearestEven, Overflow::Default},
        [&](float x) { return __nv_cvt_float_to_fp8(x, __NV_NOSAT, interp); },
        std::string(name) + " nosat");
    check(
        f, {RoundMode::NearestEven, Overflow::Saturate},
        [&](float x) { return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, interp); },
        std::string(name) + " satfinite");
    for (uint32_t c = 0; c < 256; ++c) {  // decode: fp8 -> half -> float
      const float cuda = __half2float(__half(__nv_cvt_fp8_to_halfraw(uint8_t(c), interp)));
      const float ours = ref::decode(f, c);
      ASSERT_TRUE(cuda == ours || (std::isnan(cuda) && std::isnan(ours))) << name << " code " << c;
    }
  }
}

TEST(CudaOracle, Fp6AndFp4) {
  // CUDA's FP6/FP4 conversions always saturate (the formats have no inf or NaN) and support
  // round-to-nearest-even and round-toward-zero.
  for (const auto& [mode, cuda_mode, mode_name] :
       {std::tuple{RoundMode::NearestEven, cudaRoundNearest, "rne"},
        std::tuple{RoundMode::TowardZero, cudaRoundZero, "rtz"}}) {
    for (Overflow ov : {Overflow::Default, Overflow::Saturate}) {
      const std::string suffix =
          std::string(" ") + mode_name + (ov == Overflow::Saturate ? " saturate" : "");
      check(
          formats::e2m3fn, {mode, ov},
          [&](float x) { return __nv_cvt_float_to_fp6(x, __NV_E2M3, cuda_mode); },
          "e2m3fn" + suffix);
      check(
          formats::e3m2fn, {mode, ov},
          [&](float x) { return __nv_cvt_float_to_fp6(x, __NV_E3M2, cuda_mode); },
          "e3m2fn" + suffix);
      check(
          formats::e2m1fn, {mode, ov},
          [&](float x) { return __nv_cvt_float_to_fp4(x, __NV_E2M1, cuda_mode); },
          "e2m1fn" + suffix);
    }
  }
  for (uint32_t c = 0; c < 64; ++c) {
    EXPECT_EQ(__half2float(__half(__nv_cvt_fp6_to_halfraw(uint8_t(c), __NV_E2M3))),
              ref::decode(formats::e2m3fn, c));
    EXPECT_EQ(__half2float(__half(__nv_cvt_fp6_to_halfraw(uint8_t(c), __NV_E3M2))),
              ref::decode(formats::e3m2fn, c));
  }
  for (uint32_t c = 0; c < 16; ++c)
    EXPECT_EQ(__half2float(__half(__nv_cvt_fp4_to_halfraw(uint8_t(c), __NV_E2M1))),
              ref::decode(formats::e2m1fn, c));
}

TEST(CudaOracle, HalfAndBfloat16AllRoundingModes) {
  const auto fp16 = [](__half (*fn)(float)) {
    return [fn](float x) -> uint32_t { return bits16(fn(x)); };
  };
  check(formats::fp16, {RoundMode::NearestEven}, fp16(__float2half_rn), "fp16 rn");
  check(formats::fp16, {RoundMode::TowardZero}, fp16(__float2half_rz), "fp16 rz");
  check(formats::fp16, {RoundMode::Down}, fp16(__float2half_rd), "fp16 rd");
  check(formats::fp16, {RoundMode::Up}, fp16(__float2half_ru), "fp16 ru");
  const auto bf16 = [](__nv_bfloat16 (*fn)(float)) {
    return [fn](float x) -> uint32_t { return bits16(fn(x)); };
  };
  check(formats::bf16, {RoundMode::NearestEven}, bf16(__float2bfloat16_rn), "bf16 rn");
  check(formats::bf16, {RoundMode::TowardZero}, bf16(__float2bfloat16_rz), "bf16 rz");
  check(formats::bf16, {RoundMode::Down}, bf16(__float2bfloat16_rd), "bf16 rd");
  check(formats::bf16, {RoundMode::Up}, bf16(__float2bfloat16_ru), "bf16 ru");
}

}  // namespace
}  // namespace lowbit
