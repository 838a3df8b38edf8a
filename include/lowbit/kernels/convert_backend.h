// The bulk-conversion backends: the scalar reference and every fast path, registered side by
// side so tests and benchmarks can run each one against the reference (see DESIGN.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/kernels/convert_plan.h"

namespace lowbit::kernels {

enum class SourceType : uint8_t { F32, BF16, FP16 };

// How a run of elements maps to per-group scales (see the *_scaled operations).
struct ScaleRun {
  const float* scales;  // scales[0] is the group of element 0
  size_t group_len;
  size_t phase;  // element 0's position within its group
  float clamp;   // |x / scale| is clamped to this before rounding
};

// One backend's three operations on a contiguous run of elements. `first_index` is the position of
// element 0 in the stochastic stream; the caller guarantees (first_index mod 2^32) + n <= 2^32 so
// the counter's high half is constant within a call. code_bytes is 1, 2 or 4.
struct ConvertBackend {
  std::string name;        // "reference", "hwy:AVX2", ...
  int64_t hwy_target = 0;  // the Highway target bit, 0 for the reference
  void (*encode)(const ConvertPlan&, const void* in, SourceType, size_t n, uint64_t first_index,
                 void* codes, int code_bytes);
  void (*decode)(const ConvertPlan&, const void* codes, int code_bytes, size_t n, float* out);
  void (*fake_quant)(const ConvertPlan&, const void* in, SourceType, size_t n, uint64_t first_index,
                     float* out);

  // Block-scaled variants (quantization schemes). Element i lies in group (phase + i) / group_len,
  // whose scale is scales[(phase + i) / group_len]; encode rounds x / scale clamped to
  // [-clamp, clamp] (NaN stays NaN), decode multiplies the decoded value by the scale, and
  // fake_quant_scaled does both. All in float32, element by element, as written.
  void (*encode_scaled)(const ConvertPlan&, const float* x, size_t n, const ScaleRun& run,
                        uint64_t first_index, void* codes, int code_bytes);
  void (*decode_scaled)(const ConvertPlan&, const void* codes, int code_bytes, size_t n,
                        const ScaleRun& run, float* out);
  void (*fake_quant_scaled)(const ConvertPlan&, const float* x, size_t n, const ScaleRun& run,
                            uint64_t first_index, float* out);

  // The largest magnitude of each run of group_len consecutive values (the last may be short), as
  // a float32 bit pattern: out[g] = max over the group of (bits & 0x7FFFFFFF). A NaN or inf in
  // the group makes it 0x7F800000 or more.
  void (*max_abs_bits)(const float* x, size_t n, size_t group_len, uint32_t* out);
};

// The scalar reference as a backend: ref:: applied element by element (slow; the definition).
ConvertBackend reference_convert_backend();

// The reference first, then every Highway target compiled in and supported by this CPU, best last.
const std::vector<ConvertBackend>& convert_backends();

// The backend the public API uses: the best supported Highway target.
const ConvertBackend& default_convert_backend();

// Highway targets compiled into this build (supported here or not), for reporting what a test
// could not run on this CPU.
std::vector<std::string> compiled_simd_targets();

// Registers a backend (called once per compiled Highway target, from its own translation unit).
void register_simd_backend(const ConvertBackend& backend);

}  // namespace lowbit::kernels
