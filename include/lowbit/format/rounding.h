// lowbit/format/rounding.h — how a real value is mapped onto a format: rounding mode, overflow
// policy, and the counter-based random stream behind stochastic rounding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit {

enum class RoundMode : uint8_t {
  NearestEven,  // nearest; ties to the even significand (IEEE roundTiesToEven)
  NearestAway,  // nearest; ties away from zero
  TowardZero,   // truncate
  Up,           // toward +inf
  Down,         // toward -inf
  Stochastic,   // up with probability (x - lo) / (hi - lo), from a seeded counter-based stream
};

enum class Overflow : uint8_t {
  Default,   // like a numpy / ml_dtypes cast: to inf where the format has it, else to NaN where it
             // has NaN, else saturate. Rounding toward zero never overflows (IEEE 754 7.4).
  Saturate,  // finite results only: overflow and ±inf become ±max (CUDA's satfinite)
};

struct RoundOptions {
  RoundMode mode = RoundMode::NearestEven;
  Overflow overflow = Overflow::Default;
  uint64_t seed = 0;  // only read by RoundMode::Stochastic
};

// "nearest-even" (alias "rne", "nearest"), "nearest-away" ("rna"), "toward-zero" ("rtz",
// "truncate"), "up" ("ceil"), "down" ("floor"), "stochastic" ("sr"). Throws lowbit::Error.
RoundMode parse_round_mode(std::string_view text);
const char* round_mode_name(RoundMode mode);

// ---------------------------------------------------------------------------------------------
// The stochastic-rounding stream. Element i of a call draws stochastic_bits(key, first + i), so
// results do not depend on thread count, chunking or SIMD width. The mixer is a 32-bit
// multiply-xorshift bijection (constants from Wellons' hash-prospector "lowbias32"); three rounds,
// with the counter scrambled before the key enters so that two seeds never give shifted copies
// of the same stream.

constexpr uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

struct StochasticKey {
  uint32_t k0;
  uint32_t k1;
};

constexpr StochasticKey stochastic_key(uint64_t seed) {
  const uint32_t k0 = mix32(uint32_t(seed) ^ 0x9E3779B9U);
  const uint32_t k1 = mix32(uint32_t(seed >> 32) ^ k0 ^ 0x85EBCA6BU);
  return {k0, k1};
}

constexpr uint32_t stochastic_bits(StochasticKey key, uint64_t index) {
  uint32_t x = mix32(uint32_t(index));
  x = mix32(x ^ key.k0);
  return mix32(x ^ key.k1 ^ uint32_t(index >> 32));
}

// The 24-bit uniform integer u that stochastic rounding compares against: round up iff
// (x - lo) / (hi - lo) > u / 2^24. 24 bits keep every step exact in float32.
constexpr uint32_t stochastic_u24(StochasticKey key, uint64_t index) {
  return stochastic_bits(key, index) >> 8;
}

}  // namespace lowbit
