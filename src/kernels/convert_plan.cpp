// Builds a ConvertPlan from a format and rounding options (see convert_plan.h).
#include "lowbit/kernels/convert_plan.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "lowbit/format/reference.h"
#include "lowbit/util/error.h"
#include "util/float_bits.h"

namespace lowbit::kernels {
namespace {

float pow2f(int e) {
  return std::ldexp(1.0f, e);
}

// 2^e as two float factors whose product is exact for every operand the kernels feed them.
void split_pow2(int e, float& a, float& b) {
  a = pow2f(e / 2);
  b = pow2f(e - e / 2);
}

// Whether a * b is a normal float32, so one multiply by it is exact where two were.
bool single_factor(float a, float b) {
  const float product = a * b;
  return product >= 0x1p-126f && product <= 0x1p127f;
}

bool rounds_toward_zero(RoundMode mode, bool negative) {
  return mode == RoundMode::TowardZero || (mode == RoundMode::Down && !negative) ||
         (mode == RoundMode::Up && negative);
}

void plan_float(const Format& f, ConvertPlan& p) {
  const int m = f.man_bits;
  const uint32_t inf_mag = ((uint32_t(1) << f.exp_bits) - 1) << m;
  p.shift = 23 - m;
  p.inc_half = uint32_t(1) << (p.shift - 1);
  p.inc_half_minus_one = p.inc_half - 1;
  p.inc_away = (uint32_t(1) << p.shift) - 1;
  p.rne_uses_lsb = m > 0;
  p.normal_offset = (127 - f.bias) * (1 << m);

  // The low route covers everything below 2^(1 - bias): the E = 0 binade of every kind.
  const int low_exponent = 1 - f.bias;
  p.low_threshold_bits = (low_exponent + 127) << 23;
  int quantum_exp = 0;
  switch (f.low) {
    case LowBinade::Subnormal:
      quantum_exp = 1 - f.bias - m;
      break;
    case LowBinade::Flush:
      quantum_exp = 1 - f.bias;
      p.low_shift = m;
      break;
    case LowBinade::Normal:
      quantum_exp = -f.bias - m;
      p.low_nmin = p.low_nsub = 1 << m;
      break;
  }
  split_pow2(-quantum_exp, p.low_scale1, p.low_scale2);
  p.low_needs_floor = quantum_exp > 0;

  p.max_mag = int32_t(max_magnitude_code(f));
  p.sign_bit = sign_bit(f);
  p.fix_negative_zero = f.specials == Specials::FNUZ;
  p.is_unsigned = !f.is_signed;
  p.zero_is_special = f.low == LowBinade::Normal;

  const bool nan = has_nan(f);
  const auto with_sign = [&](uint32_t mag, bool negative) {
    return negative ? mag | p.sign_bit : mag;
  };
  SpecialResults& codes = p.special_codes;
  codes.zero = nan ? ref::nan_code(f, false) : 0;
  codes.negative = nan ? ref::nan_code(f, false) : 0;
  codes.nan_pos = nan ? ref::nan_code(f, false) : uint32_t(p.max_mag);
  codes.nan_neg = nan ? ref::nan_code(f, true) : uint32_t(p.max_mag);
  const bool saturate = p.options.overflow == Overflow::Saturate;
  for (bool negative : {false, true}) {
    uint32_t inf_code, over_code;
    if (saturate || f.specials == Specials::None) {
      inf_code = over_code = with_sign(uint32_t(p.max_mag), negative);
    } else {
      inf_code =
          f.specials == Specials::IEEE ? with_sign(inf_mag, negative) : ref::nan_code(f, negative);
      over_code = rounds_toward_zero(p.options.mode, negative)
                      ? with_sign(uint32_t(p.max_mag), negative)
                      : inf_code;
    }
    (negative ? codes.inf_neg : codes.inf_pos) = inf_code;
    (negative ? codes.overflow_neg : codes.overflow_pos) = over_code;
  }

  // Fake-quant: the values the codes above stand for.
  const auto value_of = [&](uint32_t code) { return float_bits(ref::decode(f, code)); };
  p.round_mask = ~p.inc_away;
  split_pow2(quantum_exp, p.quantum_scale1, p.quantum_scale2);
  p.low_nmin_value = float(p.low_nmin);
  p.max_value = value_of(uint32_t(p.max_mag));
  p.special_values = {value_of(codes.overflow_pos), value_of(codes.overflow_neg),
                      value_of(codes.inf_pos),      value_of(codes.inf_neg),
                      value_of(codes.nan_pos),      value_of(codes.nan_neg),
                      value_of(codes.zero),         value_of(codes.negative)};

  p.mag_mask = magnitude_mask(f);
  p.decode_normal_add = uint32_t(127 - f.bias) << 23;
  switch (f.low) {
    case LowBinade::Subnormal:
      split_pow2(1 - f.bias - m, p.decode_low_scale1, p.decode_low_scale2);
      break;
    case LowBinade::Flush:
      p.decode_low_scale1 = p.decode_low_scale2 = 0.0f;
      break;
    case LowBinade::Normal:
      p.decode_low_add = 1 << m;
      split_pow2(-f.bias - m, p.decode_low_scale1, p.decode_low_scale2);
      break;
  }
  p.decode_low_limit = 1 << m;
  p.decode_sign_shift = 31 - (f.exp_bits + m);
  if (f.specials == Specials::IEEE) {
    p.decode_inf_mag = int32_t(inf_mag);
    p.decode_nan_mag = int32_t(inf_mag + 1);
  } else if (f.specials == Specials::FN) {
    p.decode_nan_mag = int32_t(p.mag_mask);
  }
  p.decode_fnuz_nan = f.specials == Specials::FNUZ;

  p.common_float = m > 0 && f.low == LowBinade::Subnormal && f.is_signed &&
                   f.specials != Specials::FNUZ && !p.low_needs_floor &&
                   single_factor(p.low_scale1, p.low_scale2) &&
                   single_factor(p.quantum_scale1, p.quantum_scale2) &&
                   single_factor(p.decode_low_scale1, p.decode_low_scale2);
}

// The smallest float32 that is >= the exact double `v`.
float float_at_or_above(double v) {
  float f = float(v);
  if (double(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

void plan_lut(const Format& f, ConvertPlan& p) {
  const float inf = std::numeric_limits<float>::infinity();
  const int n = f.lut_size;
  p.lut_count = n;
  p.lut_search_size = 1;
  while (p.lut_search_size <= n) p.lut_search_size *= 2;
  p.lut_sorted.fill(inf);
  for (int i = 0; i < n; ++i) p.lut_sorted[size_t(i)] = f.lut[i];
  p.lut_threshold.fill(inf);
  for (int i = 0; i + 1 < n; ++i) {
    const float lo = f.lut[i], hi = f.lut[i + 1];
    const float above_lo = std::nextafter(lo, inf);
    float thr = inf;
    switch (p.options.mode) {
      case RoundMode::NearestEven:
      case RoundMode::NearestAway: {
        const double mid = 0.5 * (double(lo) + double(hi));  // exact: format_problem checks
        bool tie_up;
        if (p.options.mode == RoundMode::NearestEven)
          tie_up = (i + 1) % 2 == 0;
        else
          tie_up = std::fabs(hi) >= std::fabs(lo);
        thr = float_at_or_above(mid);
        if (double(thr) == mid && !tie_up) thr = std::nextafter(thr, inf);
        break;
      }
      case RoundMode::TowardZero:
        if (std::fabs(hi) < std::fabs(lo))
          thr = above_lo;
        else if (std::fabs(hi) == std::fabs(lo))
          thr = std::numeric_limits<float>::denorm_min();
        break;
      case RoundMode::Up:
        thr = above_lo;
        break;
      case RoundMode::Down:
      case RoundMode::Stochastic:
        break;
    }
    p.lut_threshold[size_t(i)] = thr;
  }
  p.lut_decode.fill(std::numeric_limits<float>::quiet_NaN());
  for (int i = 0; i < n; ++i) p.lut_decode[size_t(i)] = f.lut[i];
}

}  // namespace

ConvertPlan make_convert_plan(const Format& f, const RoundOptions& options) {
  LOWBIT_ASSERT(format_problem(f) == nullptr);
  ConvertPlan p;
  p.format = f;
  p.options = options;
  p.key = stochastic_key(options.seed);
  p.code_mask = code_count(f) - 1;
  switch (f.kind) {
    case FormatKind::Float:
      plan_float(f, p);
      break;
    case FormatKind::Int:
      p.int_lo = int32_t(lowest_finite(f));
      p.int_hi = int32_t(max_finite(f));
      p.int_clamp = float(p.int_hi) + 2.0f;
      break;
    case FormatKind::Lut:
      plan_lut(f, p);
      break;
  }
  return p;
}

}  // namespace lowbit::kernels
