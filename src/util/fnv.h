// FNV-1a, 64 bit: the one hash lowbit uses to identify things it caches or compares (token
// sequences, recipes, sweep setups, calibration data). Not for security.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace lowbit::util {

struct Fnv1a {
  uint64_t h = 1469598103934665603ull;
  // Standard FNV-1a over bytes.
  void bytes(const std::string& s) {
    for (const unsigned char c : s) step(c);
  }
  // The 8 bytes of v, least significant first.
  void u64_bytes(uint64_t v) {
    for (int b = 0; b < 8; ++b) step((v >> (8 * b)) & 0xFF);
  }
  // One xor-multiply step with a whole value (a cheaper mix of word streams).
  void step(uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  }
};

// 16 lowercase hex digits.
inline std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace lowbit::util
