// Dyadic multipliers (lowbit/quant/dyadic.h).
#include "lowbit/quant/dyadic.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit {

double Dyadic::value() const {
  return std::ldexp(double(b), -c);
}

Dyadic dyadic_of(double m) {
  constexpr int64_t kLimit = int64_t(1) << 31;
  if (!std::isfinite(m) || m <= 0 || m >= double(kLimit) - 0.5 || m < std::ldexp(1.0, -32))
    throw Error(
        "dyadic: the multiplier " + std::to_string(m) +
        " has no 31-bit dyadic form b / 2^c with c <= 62 (it must lie in [2^-32, 2^31 - 1/2))");
  // m = f · 2^e with f in [0.5, 1): b = round(m · 2^c) < 2^31 for c = 31 − e, unless f rounds up
  // to 2^31 itself, then one step less.
  int e = 0;
  std::frexp(m, &e);
  Dyadic d;
  d.c = std::min(62, 31 - e);
  d.b = std::llround(std::ldexp(m, d.c));
  if (d.b >= kLimit) {
    --d.c;
    d.b = std::llround(std::ldexp(m, d.c));
  }
  if (d.c < 0) throw Error("internal: dyadic shift below zero for " + std::to_string(m));
  return d;
}

}  // namespace lowbit
