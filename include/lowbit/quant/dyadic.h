// lowbit/quant/dyadic.h — dyadic numbers b / 2^c, the multipliers of HAWQ-V3's integer-only
// requantization: an int32 accumulator times a real scale ratio m becomes an integer multiply and
// a right shift, with no floating point at run time.
#pragma once

#include <cstdint>

namespace lowbit {

struct Dyadic {
  int64_t b = 0;         // 0 <= b < 2^31
  int c = 0;             // 0 <= c <= 62
  double value() const;  // b / 2^c, exactly
};

// The dyadic number nearest to m > 0 with the largest shift c whose b still fits in 31 bits (so
// |b / 2^c - m| <= 2^-(c+1), a relative error below 2^-30 for m >= 2^-31). Throws lowbit::Error
// for m not finite or positive, m >= 2^31 − 1/2, or m below 2^-32 (no 31-bit b at c <= 62 holds
// it).
Dyadic dyadic_of(double m);

// round(a · b / 2^c), ties towards +infinity ((a·b + 2^(c−1)) >> c, arithmetic shift), for
// |a| < 2^31: a·b stays below 2^62.
inline int64_t dyadic_multiply(int64_t a, const Dyadic& d) {
  const int64_t half = d.c > 0 ? int64_t(1) << (d.c - 1) : 0;
  return (a * d.b + half) >> d.c;
}

}  // namespace lowbit
