// The bits of a float32 and back (std::bit_cast before C++20).
#pragma once

#include <cstdint>
#include <cstring>

namespace lowbit {

inline uint32_t float_bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

inline float bits_float(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

}  // namespace lowbit
