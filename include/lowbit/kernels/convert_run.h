// Runs one conversion backend over an array: splits it into chunks (in parallel with OpenMP when
// large), keeping each call inside one 2^32 block of the stochastic counter.
#pragma once

#include "lowbit/kernels/convert_backend.h"

namespace lowbit::kernels {

void run_encode(const ConvertBackend& b, const ConvertPlan& p, const void* in, SourceType type,
                size_t n, uint64_t first_index, void* codes, int code_bytes);
void run_decode(const ConvertBackend& b, const ConvertPlan& p, const void* codes, int code_bytes,
                size_t n, float* out);
void run_fake_quant(const ConvertBackend& b, const ConvertPlan& p, const void* in, SourceType type,
                    size_t n, uint64_t first_index, float* out);

// Block-scaled variants; chunks keep their scales and phase aligned to the run.
void run_encode_scaled(const ConvertBackend& b, const ConvertPlan& p, const float* x, size_t n,
                       const ScaleRun& run, uint64_t first_index, void* codes, int code_bytes);
void run_decode_scaled(const ConvertBackend& b, const ConvertPlan& p, const void* codes,
                       int code_bytes, size_t n, const ScaleRun& run, float* out);
void run_fake_quant_scaled(const ConvertBackend& b, const ConvertPlan& p, const float* x, size_t n,
                           const ScaleRun& run, uint64_t first_index, float* out);

// Elements per task; large arrays run in parallel above kParallelMinimum elements.
constexpr size_t kChunkElements = size_t(1) << 15;
constexpr size_t kParallelMinimum = size_t(1) << 17;

}  // namespace lowbit::kernels
