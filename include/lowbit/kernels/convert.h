// lowbit/kernels/convert.h — bulk conversion of arrays: round onto a format and encode, decode
// codes, and fake-quantize (round, stay float32). Runs the fastest SIMD path this CPU supports
// (Highway runtime dispatch: AVX-512, AVX2, SSE4 or scalar), multi-threaded for large arrays.
// Results are bit-identical to the scalar reference (lowbit/reference.h) on every path, thread
// count and chunking, stochastic rounding included: element i draws the stream at first_index + i.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"

namespace lowbit {

// 16-bit float inputs, passed as their bit patterns.
struct BF16 {
  uint16_t bits;
};
struct FP16 {
  uint16_t bits;
};

// Bytes per code a format needs in memory: 1 up to 8 bits, 2 up to 16, 4 above.
int code_bytes(const Format& f);

// Rounds in[0..n) onto `f` and writes one code per element. Source: float, BF16 or FP16.
// Code: uint8_t, uint16_t or uint32_t, at least code_bytes(f) wide (else lowbit::Error).
template <class Source, class Code>
void encode(const Format& f, const Source* in, size_t n, Code* codes, const RoundOptions& opt = {},
            uint64_t first_index = 0);

// Codes -> float32. Bits above the format's width are ignored.
template <class Code>
void decode(const Format& f, const Code* codes, size_t n, float* out);

// Rounds onto `f` and writes the rounded values as float32 (quantize-dequantize in one pass).
template <class Source>
void fake_quant(const Format& f, const Source* in, size_t n, float* out,
                const RoundOptions& opt = {}, uint64_t first_index = 0);

// The SIMD target the bulk functions run on ("hwy:AVX2", ...).
const char* active_simd_target();

}  // namespace lowbit
