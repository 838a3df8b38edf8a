// lowbit/quant/bit_switching.h — one stored integer weight set from which narrower widths derive
// (bit switching: "Nearly Lossless Adaptive Bit Switching", Double Rounding): the weight is stored
// once as symmetric B-bit codes q_B with one float32 scale s_B per group of G along the row, and a
// width k < B is derived from the codes alone, without the float weights:
//   q_k = clamp(round_half_even(q_B / 2^(B−k)), −(2^(k−1) − 1), 2^(k−1) − 1),   s_k = s_B ·
//   2^(B−k).
// The scales nest — every width's scale is the stored one times a power of two, so one scale per
// group serves all widths — and the rounding is double (w → q_B → q_k), which is where a derived
// width can differ from quantizing w to k bits directly.
//
// Which grid the stored scale fits (the anchor): anchor = B gives s_B = amax / (2^(B−1) − 1), exact
// absmax at the stored width (then derived widths saturate: 127 / 16 rounds to 8 > 7 at k = 4);
// anchor = a < B gives s_a = amax / (2^(a−1) − 1) and s_B = s_a / 2^(B−a), exact absmax at width a
// (the stored codes then use ±(2^(a−1) − 1) · 2^(B−a) of their range: ±112 of 127 for B = 8, a =
// 4).
//
// Storage layout: codes as int8 (B ≤ 8), row-major [out, in]; scales float32, row-major
// [out, ceil(in / G)] (G = in for one scale per output channel). A derived width needs nothing
// else.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowbit/quant/qtensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

struct NestedIntWeights {
  int stored_bits = 8, anchor_bits = 8, group = 0;
  size_t rows = 0, cols = 0;
  std::vector<int8_t> codes;  // [rows, cols]
  std::vector<float> scales;  // [rows, cols / group]: s_B
  // Groups run along the row; the last one is shorter when G does not divide the row (as in
  // direct group quantization).
  size_t groups_per_row() const { return (cols + size_t(group) - 1) / size_t(group); }
  int group_extent(size_t g) const {
    return int(std::min(size_t(group), cols - g * size_t(group)));
  }
};

// Stores w [rows, cols] at `stored_bits` (2..8) with groups of `group` along the row, its scale
// anchored at `anchor_bits` (2..stored_bits). Throws lowbit::Error.
NestedIntWeights nest_weights(const float* w, size_t rows, size_t cols, int stored_bits,
                              int anchor_bits, int group);

// The weight at `bits` (2..stored_bits) derived from the stored codes, as float values, and as the
// QTensor they dequantize from, in `scheme` (an equivalent spelling such as int4:channel) or else
// derived_scheme(bits, group).
std::vector<float> derive_weights(const NestedIntWeights& n, int bits, QTensor* codes = nullptr,
                                  const Scheme* scheme = nullptr);

// The scheme a derived width is in: int<bits>, groups of `group` along the row, float32 scales —
// what quantizing directly to that width would use (for the comparison, and bits per weight).
Scheme derived_scheme(int bits, int group);

// The group size a symmetric integer weight scheme with float32 absmax scales uses on a [rows,
// cols] weight (cols for one scale per output channel), or lowbit::Error naming what differs.
int nested_group_of(const Scheme& s, size_t rows, size_t cols);

}  // namespace lowbit
