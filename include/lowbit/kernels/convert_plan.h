// ConvertPlan: everything a bulk conversion kernel needs to know about one (format, rounding
// options) pair, precomputed once per call so the inner loops are branch-free arithmetic on
// constants. Shared by every fast path (SIMD, and later CUDA).
//
// How a float32 x is rounded onto a Float format without leaving float32 arithmetic:
//  * "normal route", |x| >= 2^low_exponent: the format's grid in that binade is every
//    2^(23 - m)-th float32 bit pattern, so adding a mode-dependent increment to the bit pattern
//    and shifting right by s = 23 - m rounds, and a carry into the exponent is exactly the step to
//    the next binade. Subtracting normal_offset rebiases the exponent field.
//  * "low route", |x| < 2^low_exponent (subnormals, the flush gap, E8M0's lowest binade): the
//    grid is uniform, so t = |x| * 2^-q is rounded to an integer n (Round / Floor on float32,
//    exact because t < 2^11), and the code is (max(n, low_nmin) - low_nsub) << low_shift.
//  * the special cases (NaN, inf, overflow, -0, negatives into unsigned formats, zero into
//    formats without zero) then override the code with precomputed full codes.
// See docs/formats.md for the table these follow; ref:: is the definition they must match.
#pragma once

#include <array>
#include <climits>
#include <cstdint>

#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"

namespace lowbit::kernels {

// What a special input or an overflow becomes, for positive and negative inputs.
struct SpecialResults {
  uint32_t overflow_pos = 0, overflow_neg = 0;  // finite inputs that round past the largest value
  uint32_t inf_pos = 0, inf_neg = 0;
  uint32_t nan_pos = 0, nan_neg = 0;
  uint32_t zero = 0;      // what 0 becomes in a format without zero
  uint32_t negative = 0;  // what a negative becomes in an unsigned format
};

struct ConvertPlan {
  Format format;
  RoundOptions options;
  StochasticKey key{};

  // ---- Float, encode
  int shift = 0;          // s = 23 - man_bits
  uint32_t inc_half = 0;  // 2^(s-1): nearest-away increment
  uint32_t inc_half_minus_one = 0;
  uint32_t inc_away = 0;           // 2^s - 1: round the magnitude up
  bool rne_uses_lsb = false;       // false when man_bits == 0: ties go to the larger magnitude
  int32_t normal_offset = 0;       // (127 - bias) << man_bits
  int32_t low_threshold_bits = 0;  // float32 bits of 2^low_exponent
  float low_scale1 = 1, low_scale2 = 1;  // t = |x| * low_scale1 * low_scale2 (two factors:
                                         // the product may be below float32's normal range)
  int32_t low_nmin = 0, low_nsub = 0;
  int low_shift = 0;
  // When the low grid's quantum exceeds 1 the product |x| * scale can underflow float32 to 0;
  // clamping non-zero inputs to the smallest float keeps "above zero" visible to the directed
  // and stochastic modes (whose decisions are identical for every t below 2^-24).
  bool low_needs_floor = false;
  int32_t max_mag = 0;             // largest finite magnitude code
  uint32_t sign_bit = 0;           // 0 for unsigned formats
  bool fix_negative_zero = false;  // FNUZ: -0 becomes +0
  bool is_unsigned = false;
  bool zero_is_special = false;  // no zero in the format (E8M0)
  // What the special cases become (docs/formats.md), as codes for encode ...
  SpecialResults special_codes;
  // ---- Float, fake-quant: the same rounding, producing float32 values instead of codes.
  uint32_t round_mask = 0;  // ~(2^s - 1): clears the dropped bits on the normal route
  float quantum_scale1 = 1, quantum_scale2 = 1;  // the low grid's step, as two factors
  float low_nmin_value = 0;  // smallest n on the low grid (2^m when there is no zero)
  uint32_t max_value = 0;    // largest finite magnitude (float32 bits)
  // ... and as the float32 bit patterns those codes decode to, for fake-quant.
  SpecialResults special_values;

  // ---- Float, decode
  uint32_t mag_mask = 0;
  uint32_t decode_normal_add = 0;                      // (127 - bias) << 23
  int32_t decode_low_add = 0;                          // 2^m when E = 0 is a normal binade, else 0
  float decode_low_scale1 = 1, decode_low_scale2 = 1;  // 0 when E = 0 flushes to zero
  int32_t decode_low_limit = 0;        // magnitudes below this (2^m) are in the E = 0 binade
  int32_t decode_inf_mag = INT32_MAX;  // magnitude code of inf (INT32_MAX: none)
  int32_t decode_nan_mag = INT32_MAX;  // magnitudes >= this are NaN (INT32_MAX: none)
  int decode_sign_shift = 0;           // moves the code's sign bit to bit 31
  bool decode_fnuz_nan = false;        // the sign-bit-only code is NaN

  // ---- Int
  int32_t int_lo = 0, int_hi = 0;
  float int_clamp = 0;  // |x| is clamped here before rounding; beyond it everything saturates

  // ---- Lut (codebooks): values padded with +inf to lut_search_size, the smallest power of two
  // above the count (so a branch-free binary search can report "at or above the last value").
  int lut_count = 0;
  int lut_search_size = 0;
  std::array<float, 512> lut_sorted{};
  // Deterministic modes: an input in [lut[i], lut[i+1]) takes code i + 1 iff x >= threshold[i].
  std::array<float, 256> lut_threshold{};
  std::array<float, 256> lut_decode{};  // 2^bits entries, NaN past the last value

  uint32_t code_mask = 0;  // 2^bits - 1

  // Float formats whose conversions need none of the rare switches above (mantissa bits > 0,
  // subnormals, signed, no FNUZ, every scale a single float32 factor): the kernels compile a
  // variant for them with those switches removed. True for the OCP formats, fp16, e3m4.
  bool common_float = false;
};

// Builds the plan. The format must be valid (validate_format) — callers check first.
ConvertPlan make_convert_plan(const Format& f, const RoundOptions& options);

}  // namespace lowbit::kernels
