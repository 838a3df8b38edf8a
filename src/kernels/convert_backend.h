// The bulk-conversion backends: the scalar reference and every fast path, registered side by
// side so tests and benchmarks can run each one against the reference (see DESIGN.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/convert_plan.h"

namespace lowbit::kernels {

enum class SourceType : uint8_t { F32, BF16, FP16 };

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
