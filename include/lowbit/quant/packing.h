// lowbit/quant/packing.h — packing element codes of 1..16 bits into bytes.
//
// Dense packing is an LSB-first bit stream: code i occupies bits [b*i, b*i + b) of the stream,
// where bit k of the stream is bit (k mod 8) of byte k / 8. So 4-bit codes go two per byte, even
// index in the low nibble (as OCP MX, NVIDIA and PyTorch pack FP4); 6-bit codes go four per three
// bytes; 2-bit codes four per byte. The "4+2" layout of FP6 inference kernels (FP6-LLM) splits
// each 6-bit code into a 2-bit plane (its top two bits, dense) and a 4-bit plane (its low four
// bits, dense), so both planes load with aligned, power-of-two strides.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit {

// Bytes needed for n codes of `bits` bits, densely packed.
constexpr size_t packed_bytes(size_t n, int bits) {
  return (n * size_t(bits) + 7) / 8;
}

// The byte groups dense packing repeats, with their sizes fixed at compile time.
template <int kBits, int kCodes>
struct PackedCodes {
  static_assert((kBits * kCodes) % 8 == 0, "a packed group fills whole bytes");
  uint8_t bytes[kBits * kCodes / 8];
};
using Packed4x2 = PackedCodes<4, 2>;  // two FP4 / INT4 codes
using Packed6x4 = PackedCodes<6, 4>;  // four FP6 codes
using Packed3x8 = PackedCodes<3, 8>;
using Packed5x8 = PackedCodes<5, 8>;
using Packed7x8 = PackedCodes<7, 8>;
static_assert(sizeof(Packed4x2) == 1 && sizeof(Packed6x4) == 3 && sizeof(Packed3x8) == 3 &&
              sizeof(Packed5x8) == 5 && sizeof(Packed7x8) == 7);

// Dense LSB-first packing of n codes (bits above `bits` in each code are ignored). `out` holds
// packed_bytes(n, bits) bytes; the unused high bits of the last byte are zero.
void pack_codes(const uint16_t* codes, size_t n, int bits, uint8_t* out);
void pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* out);
void unpack_codes(const uint8_t* packed, size_t n, int bits, uint16_t* codes);
void unpack_codes(const uint8_t* packed, size_t n, int bits, uint8_t* codes);

// FP6 "4+2" split planes: high2 holds packed_bytes(n, 2) bytes, low4 packed_bytes(n, 4).
void pack_fp6_split(const uint8_t* codes, size_t n, uint8_t* high2, uint8_t* low4);
void unpack_fp6_split(const uint8_t* high2, const uint8_t* low4, size_t n, uint8_t* codes);

}  // namespace lowbit
