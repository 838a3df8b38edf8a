// fp16 and bf16 against the machine's own conversions on float32 inputs: fp16 against the F16C
// instruction (all four IEEE rounding modes) and the compiler's _Float16 cast, bf16 against the
// CUDA toolkit's host conversion (no x86 CPU here has a bf16 conversion instruction).
//   HalfsStrided.*  every 251st float32 bit pattern (default suite, seconds)
//   HalfsAll.*      all 2^32 float32 bit patterns (ctest label "long", minutes)
#include <gtest/gtest.h>
#include <immintrin.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>

#include "lowbit/format/format.h"
#include "lowbit/format/reference.h"
#include "lowbit/kernels/convert_backend.h"

#if LOWBIT_HAVE_CUDA_HEADERS
#include <cuda_bf16.h>
#endif

namespace lowbit {
namespace {

using Oracle = std::function<uint16_t(float)>;

// F16C: the rounding mode is an immediate, so one function per mode.
__attribute__((target("f16c"))) uint16_t f16c_rne(float x) {
  return uint16_t(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) uint16_t f16c_rtz(float x) {
  return uint16_t(_cvtss_sh(x, _MM_FROUND_TO_ZERO));
}
__attribute__((target("f16c"))) uint16_t f16c_down(float x) {
  return uint16_t(_cvtss_sh(x, _MM_FROUND_TO_NEG_INF));
}
__attribute__((target("f16c"))) uint16_t f16c_up(float x) {
  return uint16_t(_cvtss_sh(x, _MM_FROUND_TO_POS_INF));
}

uint16_t compiler_fp16(float x) {
  const _Float16 h = static_cast<_Float16>(x);  // GCC's own conversion (libgcc, no F16C)
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}

// Runs the fast path and `oracle` over every `stride`-th float32 bit pattern; returns the number of
// disagreements (NaN inputs agree when both results are NaN: NaN payloads are not compared).
uint64_t count_mismatches(const Format& f, const RoundOptions& opt, uint64_t stride,
                          const Oracle& oracle, std::string& first_problem) {
  const kernels::ConvertBackend& fast = kernels::default_convert_backend();
  const kernels::ConvertPlan plan = kernels::make_convert_plan(f, opt);
  const uint64_t chunk = uint64_t(1) << 20;
  const int64_t chunks = int64_t((uint64_t(1) << 32) / chunk);
  std::atomic<uint64_t> mismatches{0};
#pragma omp parallel
  {
    std::vector<float> xs;
    std::vector<uint16_t> codes;
#pragma omp for schedule(dynamic)
    for (int64_t c = 0; c < chunks; ++c) {
      xs.clear();
      const uint64_t begin = uint64_t(c) * chunk;
      for (uint64_t b = (begin + stride - 1) / stride * stride; b < begin + chunk; b += stride) {
        float x;
        const auto bits = uint32_t(b);
        std::memcpy(&x, &bits, 4);
        xs.push_back(x);
      }
      codes.resize(xs.size());
      fast.encode(plan, xs.data(), kernels::SourceType::F32, xs.size(), 0, codes.data(), 2);
      for (size_t i = 0; i < xs.size(); ++i) {
        const uint16_t want = oracle(xs[i]);
        if (codes[i] == want) continue;
        if (std::isnan(xs[i]) && std::isnan(ref::decode(f, codes[i])) &&
            std::isnan(ref::decode(f, want)))
          continue;
        if (mismatches++ == 0) {
#pragma omp critical
          first_problem = "input " + std::to_string(xs[i]) + ": lowbit " +
                          std::to_string(codes[i]) + ", oracle " + std::to_string(want);
        }
      }
    }
  }
  return mismatches;
}

struct OracleCase {
  RoundMode mode;
  Oracle oracle;
  const char* name;
};

void run_cases(const Format& f, const std::vector<OracleCase>& cases, uint64_t stride) {
  for (const OracleCase& c : cases) {
    std::string problem;
    const uint64_t bad = count_mismatches(f, {c.mode}, stride, c.oracle, problem);
    EXPECT_EQ(bad, 0u) << c.name << ": " << problem;
    std::printf("%s vs %s: every float32 bit pattern on a stride of %llu agrees: %s\n",
                format_name(f).c_str(), c.name, static_cast<unsigned long long>(stride),
                bad == 0 ? "yes" : "NO");
  }
}

void run_fp16(uint64_t stride) {
  if (!__builtin_cpu_supports("f16c")) {
    GTEST_SKIP() << "this CPU lacks F16C: hardware fp16 conversions not checked";
  }
  run_cases(formats::fp16,
            {{RoundMode::NearestEven, f16c_rne, "F16C nearest-even"},
             {RoundMode::TowardZero, f16c_rtz, "F16C toward-zero"},
             {RoundMode::Down, f16c_down, "F16C down"},
             {RoundMode::Up, f16c_up, "F16C up"},
             {RoundMode::NearestEven, compiler_fp16, "_Float16 cast"}},
            stride);
}

void run_bf16(uint64_t stride) {
#if LOWBIT_HAVE_CUDA_HEADERS
  const auto to_bits = [](__nv_bfloat16 h) {
    uint16_t b;
    std::memcpy(&b, &h, 2);
    return b;
  };
  run_cases(formats::bf16,
            {{RoundMode::NearestEven, [&](float x) { return to_bits(__float2bfloat16_rn(x)); },
              "CUDA rn"},
             {RoundMode::TowardZero, [&](float x) { return to_bits(__float2bfloat16_rz(x)); },
              "CUDA rz"}},
            stride);
#else
  (void)stride;
  GTEST_SKIP() << "CUDA toolkit headers not found: no bf16 oracle on this machine";
#endif
}

TEST(HalfsStrided, Fp16AgreesWithHardware) {
  run_fp16(251);
}
TEST(HalfsStrided, Bf16AgreesWithCuda) {
  run_bf16(251);
}
TEST(HalfsAll, Fp16AgreesWithHardware) {
  run_fp16(1);
}
TEST(HalfsAll, Bf16AgreesWithCuda) {
  run_bf16(1);
}

}  // namespace
}  // namespace lowbit
