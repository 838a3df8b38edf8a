// lowbit/model/ggml_types.h — the tensor types of GGUF files (GGML block formats) and their
// dequantization to float32. Block layouts follow ggml (ggml-common.h); each is documented beside
// its decoder in src/model/ggml_types.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;
  uint32_t block_elements;  // elements per block (1 for plain types)
  uint32_t block_bytes;     // bytes per block
  bool dequantizable;       // dequantize_ggml supports it
};

// nullptr for a type id lowbit does not know.
const GgmlTypeInfo* ggml_type_info(uint32_t type);

// Dequantizes n elements (a multiple of the type's block size). Throws lowbit::Error for types
// that are not dequantizable.
void dequantize_ggml(GgmlType type, const uint8_t* data, size_t n, float* out);

// IEEE binary16 -> float32, exact.
float half_to_float(uint16_t h);

}  // namespace lowbit
