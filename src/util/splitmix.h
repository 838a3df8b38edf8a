// SplitMix64 (Steele, Lea & Flood 2014): the small seeded stream lowbit uses where results must be
// the same on every standard library (data order, initial weights) — std::mt19937's
// distributions are not specified bit for bit.
#pragma once

#include <cstdint>

namespace lowbit::util {

// The next 64 random bits; advances `state`.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace lowbit::util
