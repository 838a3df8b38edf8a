// lowbit/quant/ggml_types.h — the tensor types of GGUF files (GGML block formats) and their
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
  MXFP4 = 39,  // OCP MXFP4: an E8M0 scale per 32 E2M1 elements
  NVFP4 = 40,  // 4 x (a UE4M3 scale per 16 E2M1 elements) in a block of 64
};

struct GgmlTypeInfo {
  const char* name;
  uint32_t block_elements;  // elements per block (1 for plain types)
  uint32_t block_bytes;     // bytes per block
  bool dequantizable;       // dequantize_ggml supports it
  bool quantizable;         // quantize_ggml supports it
};

// nullptr for a type id lowbit does not know.
const GgmlTypeInfo* ggml_type_info(uint32_t type);

// Dequantizes n elements (a multiple of the type's block size). Throws lowbit::Error for types
// that are not dequantizable.
void dequantize_ggml(GgmlType type, const uint8_t* data, size_t n, float* out);

// Quantizes n elements (a whole number of blocks) exactly as ggml's reference quantizer of the
// type (quantize_row_<type>_ref; F16 and BF16 as ggml converts rows), so the bytes equal what
// llama.cpp writes for the same float32 input. Inputs must be finite. Throws lowbit::Error for
// types that are not quantizable (ggml_type_info(t)->quantizable).
void quantize_ggml(GgmlType type, const float* x, size_t n, uint8_t* out);

// GGML blocks from values quantized elsewhere (a lowbit scheme whose grid is the type's): per
// element `levels` holds the integer level (Q8_0: -128..127, Q4_0: -8..7, Q5_0: -16..15) or the
// E2M1 code (MXFP4, NVFP4: sign in bit 3); `scale_codes` one code per scale group of the type:
// fp16 bits per 32 (Q8_0, Q4_0, Q5_0), the E8M0 byte per 32 (MXFP4), the UE4M3 byte per 16
// (NVFP4). n is a whole number of blocks. Throws for other types and out-of-range levels.
void pack_ggml_blocks(GgmlType type, const int8_t* levels, const uint16_t* scale_codes, size_t n,
                      uint8_t* out);

// Bytes of n elements of the type (n a whole number of blocks; throws otherwise).
size_t ggml_bytes(GgmlType type, size_t n);

// IEEE binary16 -> float32, exact.
float half_to_float(uint16_t h);
// float32 -> IEEE binary16, round to nearest even, overflow to inf (the F16C conversion).
uint16_t float_to_half(float f);

}  // namespace lowbit
