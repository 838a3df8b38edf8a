// The block scales of ggml's FP4 types, decoded as ggml decodes them (ggml-impl.h): both return
// half the scale, because ggml multiplies them by the E2M1 values doubled (integers -12..12).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lowbit {

// MXFP4's E8M0 scale 2^(e - 127), halved: 2^(e - 128), a float32 subnormal for e < 2.
inline float mxfp4_half_scale(uint8_t e) {
  const uint32_t bits = e < 2 ? 0x00200000u << e : uint32_t(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// NVFP4's UE4M3 scale (E4M3 without its sign: bias 7, subnormals 2^-9 * m, max 448), halved. The
// sign bit is ignored and the NaN code 0x7F reads as 0, as in ggml.
inline float nvfp4_half_scale(uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  const int exp = (x >> 3) & 0xF, man = x & 0x7;
  const float raw =
      exp == 0 ? std::ldexp(float(man), -9) : std::ldexp(1.0f + float(man) / 8.0f, exp - 7);
  return raw * 0.5f;
}

}  // namespace lowbit
