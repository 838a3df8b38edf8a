// The formats every exhaustive test walks: all named formats plus generic descriptors chosen to
// reach each corner of the descriptor (flush-to-zero, no zero, unsigned, 0 and 10 mantissa bits,
// 1 and 8 exponent bits, odd biases, FNUZ, integers of odd widths, user codebooks).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/format/reference.h"

namespace lowbit::testing {

inline constexpr RoundMode kAllRoundModes[] = {RoundMode::NearestEven, RoundMode::NearestAway,
                                               RoundMode::TowardZero,  RoundMode::Up,
                                               RoundMode::Down,        RoundMode::Stochastic};

inline std::vector<Format> formats_under_test() {
  std::vector<Format> out;
  for (const NamedFormat& nf : named_formats()) out.push_back(nf.format);
  for (const char* name : {"e5m2:subnormals=off",
                           "e4m3fn:subnormals=off",
                           "e3m3:specials=none",
                           "e2m0:specials=none",
                           "e5m0:specials=fn",
                           "e4m0:specials=fn:zero=off:unsigned",
                           "e4m3:zero=off:specials=fn",
                           "e6m1:specials=fnuz",
                           "e1m2:specials=none",
                           "e1m1",
                           "e5m2:bias=10",
                           "e8m1",
                           "e3m2:unsigned:specials=none",
                           "e7m8",
                           "e8m7:subnormals=off",
                           "e5m10:specials=fn",
                           "e4m3:specials=fn:bias=4",
                           "e3m4:specials=none:subnormals=off",
                           "int3",
                           "uint2",
                           "int16",
                           "uint16",
                           "lut:-2,-1,-0.25,0,0.5,1.5,3",
                           "lut:0,1,2,4"}) {
    out.push_back(parse_format(name));
  }
  return out;
}

// Distinct finite values of a format in increasing order (+0 and -0 once).
inline std::vector<double> sorted_finite_values(const Format& f) {
  std::vector<double> v;
  for (uint32_t c = 0; c < code_count(f); ++c) {
    const float x = ref::decode(f, c);
    if (std::isfinite(x)) v.push_back(x == 0.0f ? 0.0 : double(x));
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace lowbit::testing
