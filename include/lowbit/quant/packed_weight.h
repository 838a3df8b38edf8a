// lowbit/quant/packed_weight.h — a quantized [out, in] weight laid out for the packed-weight
// kernels (lowbit/kernels/matmul.h), and which schemes have such a kernel.
#pragma once

#include <functional>
#include <string>

#include "lowbit/kernels/matmul.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit {

// Why the kernels cannot run a [rows, cols] weight in scheme s, or "" when they can. They take
// elements of up to 8 bits with one scale per output row, per group of 16 or a multiple of 32
// along the input axis, or per 2-D block whose width is such a group.
std::string packed_kernel_gap(const Scheme& s, size_t rows, size_t cols);

// The kernel layout of a quantized 2-D weight; every weight decodes to exactly what dequantize(q)
// gives it. Throws lowbit::Error (with packed_kernel_gap's reason) when there is no kernel.
kernels::PackedMatrix pack_weight(const QTensor& q);

// Reads rows [r0, r1) of a [rows, cols] float32 weight into out ((r1 - r0) * cols values).
using RowReader = std::function<void(size_t r0, size_t r1, float* out)>;

// The packed weight pack_weight(quantize(s, w)) gives, for a weight read a few rows at a time:
// the float32 weight never exists whole (a loader quantizes straight from the file). Schemes whose
// groups lie within rows (per channel, groups along the input axis, 2-D blocks) are quantized in
// chunks of rows; NVFP4's tensor scale comes from a first pass over the rows; per-tensor scales
// read the whole tensor once. `global_scale` receives the tensor scale (1 without one). Throws
// like pack_weight when the kernels cannot take the scheme.
kernels::PackedMatrix pack_weight_rows(const Scheme& s, size_t rows, size_t cols,
                                       const RowReader& read, float* global_scale = nullptr);

// A float32 [rows, cols] weight stored as bfloat16 (rounded to nearest, ties to even).
kernels::PackedMatrix pack_bf16(const float* w, size_t rows, size_t cols);

// A [rows, cols] weight already in bfloat16 or binary16 (coding BF16 or F16), its bits copied
// as they are: a 2-byte model file's weights, never widened.
kernels::PackedMatrix pack_half(const void* bits, size_t rows, size_t cols,
                                kernels::WeightCoding coding);

}  // namespace lowbit
