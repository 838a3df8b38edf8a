// The scalar reference codecs (see lowbit/reference.h). Every value, midpoint and rounding step
// below is exact in double: formats have at most 10 mantissa bits and float32 exponent range.
#include "lowbit/format/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit::ref {
namespace {

float quiet_nan(bool negative) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  return negative ? -nan : nan;
}

[[noreturn]] void not_representable(const Format& f, float value) {
  throw Error("value " + std::to_string(value) + " is not exactly representable in " +
              format_name(f) + "; use round_to_code to round it first");
}

// Whether rounding moves the magnitude up one grid step, given the fraction of the step the
// magnitude lies above the lower neighbour (`frac` in [0, 1)) and whether that neighbour's
// integer significand is odd.
bool round_up(const RoundOptions& opt, double frac, bool lower_is_odd, bool negative,
              uint64_t index) {
  switch (opt.mode) {
    case RoundMode::NearestEven:
      return frac > 0.5 || (frac == 0.5 && lower_is_odd);
    case RoundMode::NearestAway:
      return frac >= 0.5;
    case RoundMode::TowardZero:
      return false;
    case RoundMode::Up:
      return !negative && frac > 0.0;
    case RoundMode::Down:
      return negative && frac > 0.0;
    case RoundMode::Stochastic: {
      const uint32_t u = stochastic_u24(stochastic_key(opt.seed), index);
      return frac > double(u) * 0x1p-24;
    }
  }
  return false;
}

bool rounds_toward_zero(RoundMode mode, bool negative) {
  return mode == RoundMode::TowardZero || (mode == RoundMode::Down && !negative) ||
         (mode == RoundMode::Up && negative);
}

// ---- Float -----------------------------------------------------------------------------------

uint32_t inf_magnitude(const Format& f) {
  return ((uint32_t(1) << f.exp_bits) - 1) << f.man_bits;
}

float decode_float(const Format& f, uint32_t code) {
  const bool negative = (code & sign_bit(f)) != 0;
  const uint32_t mag = code & magnitude_mask(f);
  switch (f.specials) {
    case Specials::IEEE:
      if (mag == inf_magnitude(f)) return negative ? -INFINITY : INFINITY;
      if (mag > inf_magnitude(f)) return quiet_nan(negative);
      break;
    case Specials::FN:
      if (mag == magnitude_mask(f)) return quiet_nan(negative);
      break;
    case Specials::FNUZ:
      if (negative && mag == 0) return quiet_nan(false);
      break;
    case Specials::None:
      break;
  }
  const double v = magnitude_value(f, mag);
  return float(negative ? -v : v);
}

uint32_t encode_float(const Format& f, float value) {
  const bool negative = std::signbit(value);
  if (std::isnan(value)) {
    if (!has_nan(f)) not_representable(f, value);
    return nan_code(f, negative);
  }
  if (std::isinf(value)) {
    if (!has_inf(f)) not_representable(f, value);
    return inf_magnitude(f) | (negative ? sign_bit(f) : 0);
  }
  const double a = std::fabs(double(value));
  if (a == 0.0) {
    if (!has_zero(f)) not_representable(f, value);
    return (negative && has_negative_zero(f)) ? sign_bit(f) : 0;
  }
  if (negative && !f.is_signed) not_representable(f, value);

  const int m = f.man_bits;
  const int emin = min_normal_exponent(f);
  const int L = std::ilogb(a);
  uint32_t mag;
  if (L >= emin) {
    const double significand = std::ldexp(a, -L) - 1.0;  // in [0, 1)
    const double mant = std::ldexp(significand, m);
    if (mant != std::floor(mant)) not_representable(f, value);
    mag = (uint32_t(L + f.bias) << m) | uint32_t(mant);  // E = L + bias
  } else {
    if (f.low != LowBinade::Subnormal) not_representable(f, value);
    const double mant = std::ldexp(a, -(emin - m));
    if (mant != std::floor(mant)) not_representable(f, value);
    mag = uint32_t(mant);
  }
  if (mag > max_magnitude_code(f)) not_representable(f, value);
  return mag | (negative ? sign_bit(f) : 0);
}

uint32_t round_float(const Format& f, float x, const RoundOptions& opt, uint64_t index) {
  const bool negative = std::signbit(x);
  const uint32_t max_mag = max_magnitude_code(f);
  const auto with_sign = [&](uint32_t mag) { return negative ? (mag | sign_bit(f)) : mag; };

  if (std::isnan(x)) return has_nan(f) ? nan_code(f, negative) : max_mag;
  if (negative && !f.is_signed && x != 0.0f) return has_nan(f) ? nan_code(f, false) : 0;
  const bool saturate = opt.overflow == Overflow::Saturate;
  if (std::isinf(x)) {
    if (saturate || f.specials == Specials::None) return with_sign(max_mag);
    if (f.specials == Specials::IEEE) return with_sign(inf_magnitude(f));
    return nan_code(f, negative);
  }
  const double a = std::fabs(double(x));
  if (a == 0.0) {
    if (f.low == LowBinade::Normal) return has_nan(f) ? nan_code(f, false) : 0;
    return (negative && has_negative_zero(f)) ? sign_bit(f) : 0;
  }

  // Round the magnitude onto the grid of its binade: quantum 2^qe, integer significand n.
  const int m = f.man_bits;
  const int emin = min_normal_exponent(f);
  const int L = std::ilogb(a);
  double rounded;
  if (L < emin && f.low == LowBinade::Normal) {
    rounded = min_normal(f);  // no zero below the smallest value: every mode lands on it
  } else {
    int qe = L - m;
    if (L < emin) qe = f.low == LowBinade::Subnormal ? emin - m : emin;  // Flush: grid {0, 2^emin}
    const double t = std::ldexp(a, -qe);
    double n = std::floor(t);
    const bool odd = std::fmod(n, 2.0) != 0.0;
    if (round_up(opt, t - n, odd, negative, index)) n += 1.0;
    rounded = std::ldexp(n, qe);
  }

  if (rounded > max_finite(f)) {
    if (saturate || f.specials == Specials::None || rounds_toward_zero(opt.mode, negative))
      return with_sign(max_mag);
    if (f.specials == Specials::IEEE) return with_sign(inf_magnitude(f));
    return nan_code(f, negative);
  }
  if (rounded == 0.0) return (negative && has_negative_zero(f)) ? sign_bit(f) : 0;
  return encode_float(f, float(negative ? -rounded : rounded));
}

// ---- Int ---------------------------------------------------------------------------------------

uint32_t int_code(const Format& f, double v) {
  const uint32_t mask = (uint32_t(1) << f.int_bits) - 1;
  return uint32_t(int64_t(v)) & mask;
}

float decode_int(const Format& f, uint32_t code) {
  if (!f.is_signed) return float(code);
  const uint32_t half = uint32_t(1) << (f.int_bits - 1);
  return code >= half ? float(int64_t(code) - (int64_t(1) << f.int_bits)) : float(code);
}

uint32_t encode_int(const Format& f, float value) {
  const double v = value;
  if (!(v == std::floor(v)) || v < lowest_finite(f) || v > max_finite(f))
    not_representable(f, value);
  return int_code(f, v);
}

uint32_t round_int(const Format& f, float x, const RoundOptions& opt, uint64_t index) {
  const double lo = lowest_finite(f), hi = max_finite(f);
  if (std::isnan(x)) return int_code(f, hi);
  const bool negative = std::signbit(x);
  const double a = std::min(std::fabs(double(x)), hi + 2.0);  // anything beyond saturates
  double n = std::floor(a);
  if (round_up(opt, a - n, std::fmod(n, 2.0) != 0.0, negative, index)) n += 1.0;
  const double v = std::clamp(negative ? -n : n, lo, hi);
  return int_code(f, v);
}

// ---- Lut ---------------------------------------------------------------------------------------

uint32_t encode_lut(const Format& f, float value) {
  const float* end = f.lut + f.lut_size;
  const float* it = std::lower_bound(f.lut, end, value);
  if (it == end || *it != value) not_representable(f, value);
  return uint32_t(it - f.lut);
}

uint32_t round_lut(const Format& f, float x, const RoundOptions& opt, uint64_t index) {
  const int last = f.lut_size - 1;
  if (std::isnan(x)) return uint32_t(last);
  if (x <= f.lut[0]) return 0;  // below the codebook: saturate (there are no specials)
  if (x >= f.lut[last]) return uint32_t(last);
  // lo = lut[i] <= x < lut[i + 1] = hi
  const int i = int(std::upper_bound(f.lut, f.lut + f.lut_size, x) - f.lut) - 1;
  const float lo = f.lut[i], hi = f.lut[i + 1];
  if (x == lo) return uint32_t(i);
  const auto lower = uint32_t(i), upper = uint32_t(i + 1);
  switch (opt.mode) {
    case RoundMode::NearestEven:
    case RoundMode::NearestAway: {
      // 2x and lo + hi are exact in double (format_problem bounds the codebook's spread).
      const double d = 2.0 * double(x) - (double(lo) + double(hi));
      if (d != 0.0) return d > 0.0 ? upper : lower;
      if (opt.mode == RoundMode::NearestEven) return (lower % 2 == 0) ? lower : upper;
      if (std::fabs(hi) != std::fabs(lo)) return std::fabs(hi) > std::fabs(lo) ? upper : lower;
      return upper;
    }
    case RoundMode::TowardZero:
      if (std::fabs(lo) != std::fabs(hi)) return std::fabs(lo) < std::fabs(hi) ? lower : upper;
      return x > 0.0f ? upper : lower;
    case RoundMode::Up:
      return upper;
    case RoundMode::Down:
      return lower;
    case RoundMode::Stochastic: {
      // Defined in float32 arithmetic, step by step, so SIMD paths reproduce it exactly.
      const float frac = (x - lo) / (hi - lo);
      const uint32_t u = stochastic_u24(stochastic_key(opt.seed), index);
      return frac > float(u) * 0x1p-24f ? upper : lower;
    }
  }
  return lower;
}

}  // namespace

uint32_t nan_code(const Format& f, bool negative) {
  LOWBIT_ASSERT(has_nan(f));
  const uint32_t sign = negative ? sign_bit(f) : 0;
  switch (f.specials) {
    case Specials::IEEE:  // quiet NaN: E all ones, top mantissa bit set
      return inf_magnitude(f) | (uint32_t(1) << (f.man_bits - 1)) | sign;
    case Specials::FN:
      return magnitude_mask(f) | sign;
    case Specials::FNUZ:
      return sign_bit(f);
    case Specials::None:
      break;
  }
  return 0;
}

float decode(const Format& f, uint32_t code) {
  code &= code_count(f) - 1;
  switch (f.kind) {
    case FormatKind::Float:
      return decode_float(f, code);
    case FormatKind::Int:
      return decode_int(f, code);
    case FormatKind::Lut:
      return code < uint32_t(f.lut_size) ? f.lut[code] : quiet_nan(false);
  }
  return 0.0f;
}

uint32_t encode_exact(const Format& f, float value) {
  switch (f.kind) {
    case FormatKind::Float:
      return encode_float(f, value);
    case FormatKind::Int:
      return encode_int(f, value);
    case FormatKind::Lut:
      return encode_lut(f, value);
  }
  return 0;
}

uint32_t round_to_code(const Format& f, float x, const RoundOptions& opt, uint64_t index) {
  switch (f.kind) {
    case FormatKind::Float:
      return round_float(f, x, opt, index);
    case FormatKind::Int:
      return round_int(f, x, opt, index);
    case FormatKind::Lut:
      return round_lut(f, x, opt, index);
  }
  return 0;
}

}  // namespace lowbit::ref
