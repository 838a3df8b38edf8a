// Inputs that exercise every branch of a conversion kernel for a given format: every value of the
// format and its float32 neighbours, every midpoint and its neighbours, the specials, values far
// outside the range, float32 subnormals, and a stride through all 2^32 bit patterns.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "formats_under_test.h"

namespace lowbit::testing {

inline float from_bits(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

inline std::vector<float> interesting_inputs(const Format& f, uint32_t stride = 65521) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> xs = {0.0f,
                           -0.0f,
                           inf,
                           -inf,
                           std::numeric_limits<float>::quiet_NaN(),
                           -std::numeric_limits<float>::quiet_NaN(),
                           from_bits(0x7F800001u),
                           from_bits(0xFFBFFFFFu),
                           std::numeric_limits<float>::denorm_min(),
                           -std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::min(),
                           std::numeric_limits<float>::max(),
                           -std::numeric_limits<float>::max(),
                           1e30f,
                           -1e30f,
                           0.5f,
                           -0.5f,
                           1.0f,
                           -1.0f};
  const auto add_with_neighbours = [&](float v) {
    xs.push_back(v);
    xs.push_back(std::nextafter(v, inf));
    xs.push_back(std::nextafter(v, -inf));
  };
  const std::vector<double> values = sorted_finite_values(f);
  for (size_t i = 0; i < values.size(); ++i) {
    add_with_neighbours(float(values[i]));
    if (i + 1 < values.size()) add_with_neighbours(float(0.5 * (values[i] + values[i + 1])));
  }
  // Around the largest value: half a step above it, twice it.
  const double top = values.back();
  add_with_neighbours(float(top * 1.03125));
  add_with_neighbours(float(top * 2));
  add_with_neighbours(float(-top * 2));
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += stride) xs.push_back(from_bits(uint32_t(b)));
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, float(top) / 4);
  for (int i = 0; i < 4096; ++i) xs.push_back(normal(rng));
  return xs;
}

}  // namespace lowbit::testing
