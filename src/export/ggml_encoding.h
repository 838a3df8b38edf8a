// One weight matrix in the GGML type that stores its quantized values exactly: the rules that map a
// lowbit scheme onto a GGML block layout, and the error (with the nearest types) where none does.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/quant/ggml_types.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::exports {

struct EncodedWeight {
  GgmlType type = GgmlType::F32;
  std::vector<uint8_t> bytes;
  float tensor_scale = 1.0f;  // NVFP4's second level, written as a separate ".scale" tensor
};

// The weight `values` [rows, cols] (what lowbit computes with) in `scheme` (nullopt: kept in full
// precision, stored as `kept`). `codes`, when given, is its quantization (dequantize(codes) ==
// values). Without it (a method such as GPTQ chose the scales and kept the values), each group's
// scale is recovered from its values, which must lie on the scheme's grid (for ggml_* schemes the
// values are quantized again and must come back unchanged). `global` is the recorded per-tensor
// scale of a two-level scheme. `name` is for messages.
EncodedWeight encode_weight(const std::string& name, const std::vector<float>& values, size_t rows,
                            size_t cols, const std::optional<Scheme>& scheme, const QTensor* codes,
                            float global, GgmlType kept);

}  // namespace lowbit::exports
