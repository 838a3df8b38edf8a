// Element formats whose values are small integers times one power of two (int4, int8, e2m1 ...):
// what the integer kernels multiply instead of the values.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace lowbit::quant {

// values[c] = levels[c] * unit exactly, min_level <= levels[c] <= max_level, for the smallest
// unit 2^-k (k in 0..3) that works; false (levels untouched) when none does (nf4, NaN codes ...).
inline bool integer_levels(const float* values, size_t count, int min_level, int max_level,
                           int8_t* levels, float& unit) {
  for (int k = 0; k <= 3; ++k) {
    const float u = std::ldexp(1.0f, -k);
    bool ok = true;
    for (size_t c = 0; c < count && ok; ++c) {
      const float v = values[c] / u;
      ok = std::isfinite(v) && v == std::nearbyint(v) && v >= float(min_level) &&
           v <= float(max_level);
    }
    if (!ok) continue;
    for (size_t c = 0; c < count; ++c) levels[c] = int8_t(values[c] / u);
    unit = u;
    return true;
  }
  return false;
}

}  // namespace lowbit::quant
