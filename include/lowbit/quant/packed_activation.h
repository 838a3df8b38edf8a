// lowbit/quant/packed_activation.h — activations quantized on the fly, laid out for the
// weight-and-activation kernels (lowbit/kernels/matmul.h): what a Linear hands them in place of
// float32 inputs. Every activation is exactly its dequantized value:
//   IntRows:   levels[j, c] * row_scales[j]
//   IntBlocks: levels[j, c] * block_scales[j * blocks_per_row + c / 16]
//   FloatRows: values[j, c] * row_scales[j]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/quant/qtensor.h"

namespace lowbit {

enum class ActivationCoding : uint8_t {
  IntRows,    // integer levels, one scale per row (int8:token, int8:tensor): W8A8 int8, W4A8
  IntBlocks,  // integer levels, one scale per 16 elements (mxfp4, nvfp4, int4:g32 ...): W4A4
  FloatRows,  // the elements' unscaled values, one scale per row (e4m3fn:token ...): FP8
};

struct PackedActivations {
  ActivationCoding coding = ActivationCoding::IntRows;
  size_t rows = 0, cols = 0;
  std::vector<int8_t> levels;       // IntRows, IntBlocks: rows x cols
  std::vector<float> values;        // FloatRows: rows x cols
  std::vector<float> row_scales;    // IntRows, FloatRows: one per row (the level unit folded in)
  std::vector<float> block_scales;  // IntBlocks: rows x blocks_per_row (the unit folded in)
  size_t blocks_per_row() const { return (cols + 15) / 16; }
};

// Why activations [rows, cols] in scheme `a` cannot be packed, or "" when they can: symmetric
// elements of up to 8 bits (integer levels for the Int codings, any float format for FloatRows)
// with one scale per token or for the tensor, or integer levels with groups of a multiple of 16
// along the last axis.
std::string activation_kernel_gap(const Scheme& a);
// The coding pack_activations gives (activation_kernel_gap(a) must be "").
ActivationCoding activation_coding(const Scheme& a);

// q: activations quantized with a scheme activation_kernel_gap takes, shape [rows, cols].
PackedActivations pack_activations(const QTensor& q);

}  // namespace lowbit
