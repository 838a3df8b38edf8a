// lowbit/format/format.h — number-format descriptors: what a code means, and the limits derived
// from it.
//
// A Format is a small value type, not a class hierarchy. Three kinds:
//   Float  sign? + exponent field E (exp_bits) + mantissa field M (man_bits), with a bias, a
//          specials policy (what the top codes mean) and a low-binade policy (what E = 0 means);
//   Int    two's-complement or unsigned integers of 2-16 bits;
//   Lut    a codebook of up to 256 strictly increasing float values (NF4 and user codebooks).
// Every limit (max finite, min normal, ...) is computed from the fields; nothing is tabulated.
// The exact meaning of every code, and what rounding does with NaN, inf, -0 and negatives, is
// written down in docs/formats.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

enum class FormatKind : uint8_t { Float, Int, Lut };

// What the top codes of a floating-point format mean.
enum class Specials : uint8_t {
  IEEE,  // E all ones: M = 0 is ±inf, any other M is NaN (IEEE 754, OCP E5M2, ml_dtypes e4m3/e3m4)
  FN,    // finite: only E and M all ones is NaN (OCP E4M3); no inf
  FNUZ,  // finite, unsigned zero: the negative-zero code (sign bit alone) is the one NaN; no inf
  None,  // every code is a finite number (OCP FP6 and FP4)
};

// What the lowest exponent field E = 0 means.
enum class LowBinade : uint8_t {
  Subnormal,  // gradual underflow: value = M * 2^(1 - bias - man_bits)
  Flush,      // no subnormals: every E = 0 code is ±0 (only M = 0 is produced by rounding)
  Normal,     // E = 0 is an ordinary binade 2^(-bias) * 1.M, so there is no zero (E8M0)
};

struct Format {
  FormatKind kind = FormatKind::Float;
  bool is_signed = true;
  // Float
  int exp_bits = 0;
  int man_bits = 0;
  int bias = 0;
  Specials specials = Specials::IEEE;
  LowBinade low = LowBinade::Subnormal;
  // Int
  int int_bits = 0;
  // Lut: strictly increasing finite values; code i means lut[i]. Storage lives for the process
  // (static tables, or interned by make_codebook), so Formats copy and compare cheaply.
  const float* lut = nullptr;
  int lut_size = 0;

  static constexpr Format floating(int exp_bits, int man_bits, int bias, Specials specials,
                                   LowBinade low = LowBinade::Subnormal, bool is_signed = true) {
    Format f;
    f.kind = FormatKind::Float;
    f.exp_bits = exp_bits;
    f.man_bits = man_bits;
    f.bias = bias;
    f.specials = specials;
    f.low = low;
    f.is_signed = is_signed;
    return f;
  }
  static constexpr Format integer(int bits, bool is_signed) {
    Format f;
    f.kind = FormatKind::Int;
    f.int_bits = bits;
    f.is_signed = is_signed;
    return f;
  }
  // `values` must be sorted strictly increasing and outlive every copy; use make_codebook()
  // for values that are not a static table.
  static constexpr Format codebook(const float* values, int count) {
    Format f;
    f.kind = FormatKind::Lut;
    f.lut = values;
    f.lut_size = count;
    f.is_signed = count > 0 && values[0] < 0.0f;
    return f;
  }

  // Width of one code in bits.
  constexpr int bits() const {
    switch (kind) {
      case FormatKind::Float:
        return (is_signed ? 1 : 0) + exp_bits + man_bits;
      case FormatKind::Int:
        return int_bits;
      case FormatKind::Lut: {
        int b = 0;
        while ((1 << b) < lut_size) ++b;
        return b;
      }
    }
    return 0;
  }
};

constexpr bool operator==(const Format& a, const Format& b) {
  if (a.kind != b.kind || a.is_signed != b.is_signed) return false;
  switch (a.kind) {
    case FormatKind::Float:
      return a.exp_bits == b.exp_bits && a.man_bits == b.man_bits && a.bias == b.bias &&
             a.specials == b.specials && a.low == b.low;
    case FormatKind::Int:
      return a.int_bits == b.int_bits;
    case FormatKind::Lut:
      return a.lut == b.lut && a.lut_size == b.lut_size;
  }
  return false;
}
constexpr bool operator!=(const Format& a, const Format& b) {
  return !(a == b);
}

// ---------------------------------------------------------------------------------------------
// Derived limits (constexpr so the spec values can be pinned by static_assert).

// 2^e as a double, exact for |e| <= 1022.
constexpr double exp2i(int e) {
  double r = 1.0;
  for (; e > 0; --e) r *= 2.0;
  for (; e < 0; ++e) r *= 0.5;
  return r;
}

constexpr bool has_nan(const Format& f) {
  return f.kind == FormatKind::Float && f.specials != Specials::None;
}
constexpr bool has_inf(const Format& f) {
  return f.kind == FormatKind::Float && f.specials == Specials::IEEE;
}
constexpr bool has_zero(const Format& f) {
  if (f.kind == FormatKind::Float) return f.low != LowBinade::Normal;
  if (f.kind == FormatKind::Int) return true;
  for (int i = 0; i < f.lut_size; ++i)
    if (f.lut[i] == 0.0f) return true;
  return false;
}
constexpr bool has_negative_zero(const Format& f) {
  return f.kind == FormatKind::Float && f.is_signed && f.specials != Specials::FNUZ &&
         f.low != LowBinade::Normal;
}

// Float: exponent of the smallest normal binade (E = 1, or E = 0 when LowBinade::Normal).
constexpr int min_normal_exponent(const Format& f) {
  return f.low == LowBinade::Normal ? -f.bias : 1 - f.bias;
}

// Float: the sign-less part of a code (E and M fields).
constexpr uint32_t magnitude_mask(const Format& f) {
  return (uint32_t(1) << (f.exp_bits + f.man_bits)) - 1;
}
// Float: the sign bit of a code, or 0 for unsigned formats.
constexpr uint32_t sign_bit(const Format& f) {
  return f.is_signed ? uint32_t(1) << (f.exp_bits + f.man_bits) : 0;
}

// Float: the largest magnitude code that holds a finite value.
constexpr uint32_t max_magnitude_code(const Format& f) {
  const uint32_t all = magnitude_mask(f);
  switch (f.specials) {
    case Specials::IEEE:
      return ((((uint32_t(1) << f.exp_bits) - 1)) << f.man_bits) - 1;  // just below E all ones
    case Specials::FN:
      return all - 1;  // just below the all-ones NaN
    case Specials::FNUZ:
    case Specials::None:
      return all;
  }
  return all;
}

// Float: value of a magnitude code (no sign bit) that holds a finite value.
constexpr double magnitude_value(const Format& f, uint32_t mag) {
  const int m = f.man_bits;
  const uint32_t e_field = mag >> m;
  const double mant = double(mag & ((uint32_t(1) << m) - 1));
  if (e_field == 0) {
    switch (f.low) {
      case LowBinade::Subnormal:
        return mant * exp2i(1 - f.bias - m);
      case LowBinade::Flush:
        return 0.0;
      case LowBinade::Normal:
        return (1.0 + mant * exp2i(-m)) * exp2i(-f.bias);
    }
  }
  return (1.0 + mant * exp2i(-m)) * exp2i(int(e_field) - f.bias);
}

// Largest finite value.
constexpr double max_finite(const Format& f) {
  switch (f.kind) {
    case FormatKind::Float:
      return magnitude_value(f, max_magnitude_code(f));
    case FormatKind::Int:
      return f.is_signed ? exp2i(f.int_bits - 1) - 1 : exp2i(f.int_bits) - 1;
    case FormatKind::Lut:
      return f.lut_size > 0 ? double(f.lut[f.lut_size - 1]) : 0.0;
  }
  return 0.0;
}

// Most negative finite value (0 for unsigned formats that hold zero).
constexpr double lowest_finite(const Format& f) {
  switch (f.kind) {
    case FormatKind::Float:
      if (f.is_signed) return -max_finite(f);
      return magnitude_value(f, 0);
    case FormatKind::Int:
      return f.is_signed ? -exp2i(f.int_bits - 1) : 0.0;
    case FormatKind::Lut:
      return f.lut_size > 0 ? double(f.lut[0]) : 0.0;
  }
  return 0.0;
}

// Float: smallest positive normal value, 2^min_normal_exponent.
constexpr double min_normal(const Format& f) {
  return exp2i(min_normal_exponent(f));
}

// Float: smallest positive subnormal, or 0 when the format has none.
constexpr double min_subnormal(const Format& f) {
  return (f.low == LowBinade::Subnormal && f.man_bits > 0) ? exp2i(1 - f.bias - f.man_bits) : 0.0;
}

// Smallest positive value of any kind.
constexpr double min_positive(const Format& f) {
  switch (f.kind) {
    case FormatKind::Float:
      return min_subnormal(f) > 0.0 ? min_subnormal(f) : min_normal(f);
    case FormatKind::Int:
      return 1.0;
    case FormatKind::Lut:
      for (int i = 0; i < f.lut_size; ++i)
        if (f.lut[i] > 0.0f) return double(f.lut[i]);
      return 0.0;
  }
  return 0.0;
}

// Distance from 1 to the next larger value of the same binade (2^-man_bits); 1 for integers.
constexpr double epsilon(const Format& f) {
  return f.kind == FormatKind::Float ? exp2i(-f.man_bits) : 1.0;
}

constexpr uint32_t code_count(const Format& f) {
  return uint32_t(1) << f.bits();
}

// Why a descriptor is not a usable format, or nullptr when it is. The constraints keep every
// value, midpoint and rounding step exact in float32 arithmetic (see docs/formats.md).
constexpr const char* format_problem(const Format& f) {
  switch (f.kind) {
    case FormatKind::Float: {
      if (f.exp_bits < 1 || f.exp_bits > 8) return "exponent bits must be 1..8";
      if (f.man_bits < 0 || f.man_bits > 10) return "mantissa bits must be 0..10";
      if (f.specials == Specials::IEEE && f.man_bits == 0)
        return "IEEE specials need at least one mantissa bit to encode NaN; use specials=fn "
               "or specials=none";
      if (f.specials == Specials::FNUZ && !f.is_signed)
        return "FNUZ puts NaN at the negative-zero code, so the format must be signed";
      if (f.specials == Specials::FNUZ && f.low == LowBinade::Normal)
        return "FNUZ needs a zero (its NaN is the negative-zero code)";
      // Normal binades must be float32-normal so the rounding arithmetic stays exact.
      if (min_normal_exponent(f) + (f.low == LowBinade::Normal ? 1 : 0) < -126)
        return "bias too large: the smallest normal value would be below float32's (2^-126)";
      if (f.low == LowBinade::Subnormal && 1 - f.bias - f.man_bits < -149)
        return "bias too large: subnormals would be below float32's smallest (2^-149)";
      if (max_magnitude_code(f) < (f.low == LowBinade::Normal ? 0u : 1u))
        return "the format has no non-zero finite value";
      if (magnitude_value(f, max_magnitude_code(f)) >= exp2i(128))
        return "bias too small: the largest value would overflow float32";
      return nullptr;
    }
    case FormatKind::Int:
      if (f.int_bits < 2 || f.int_bits > 16) return "integer formats have 2..16 bits";
      return nullptr;
    case FormatKind::Lut: {
      if (f.lut == nullptr || f.lut_size < 2 || f.lut_size > 256)
        return "a codebook has 2..256 values";
      for (int i = 0; i < f.lut_size; ++i) {
        const float v = f.lut[i];
        if (!(v == v) || v > 1e30f || v < -1e30f)
          return "codebook values must be finite (|v| <= 1e30)";
        if (i > 0 && !(f.lut[i - 1] < v)) return "codebook values must be strictly increasing";
        // Midpoints must be exact in double (the reference compares 2x with lo + hi).
        if (i > 0) {
          const double a = f.lut[i - 1], b = v, s = a + b, bb = s - a;
          if ((a - (s - bb)) + (b - bb) != 0.0)
            return "neighbouring codebook values differ too much in magnitude (ratio over 2^29)";
        }
      }
      return nullptr;
    }
  }
  return "unknown format kind";
}

// ---------------------------------------------------------------------------------------------
// The named formats (semantics as ml_dtypes and the OCP 8-bit / MX specs).

// NF4 (QLoRA, Dettmers et al. 2023, appendix E): quantiles of N(0,1) scaled to [-1, 1],
// with an exact zero. Code i is the i-th value, as in bitsandbytes.
inline constexpr float kNF4Values[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

namespace formats {
inline constexpr Format e4m3fn = Format::floating(4, 3, 7, Specials::FN);
inline constexpr Format e4m3 = Format::floating(4, 3, 7, Specials::IEEE);
inline constexpr Format e5m2 = Format::floating(5, 2, 15, Specials::IEEE);
inline constexpr Format e4m3fnuz = Format::floating(4, 3, 8, Specials::FNUZ);
inline constexpr Format e5m2fnuz = Format::floating(5, 2, 16, Specials::FNUZ);
inline constexpr Format e4m3b11fnuz = Format::floating(4, 3, 11, Specials::FNUZ);
inline constexpr Format e3m4 = Format::floating(3, 4, 3, Specials::IEEE);
inline constexpr Format e8m0fnu =
    Format::floating(8, 0, 127, Specials::FN, LowBinade::Normal, /*is_signed=*/false);
inline constexpr Format ue4m3 =
    Format::floating(4, 3, 7, Specials::FN, LowBinade::Subnormal, /*is_signed=*/false);
inline constexpr Format e2m3fn = Format::floating(2, 3, 1, Specials::None);
inline constexpr Format e3m2fn = Format::floating(3, 2, 3, Specials::None);
inline constexpr Format e2m1fn = Format::floating(2, 1, 1, Specials::None);
inline constexpr Format bf16 = Format::floating(8, 7, 127, Specials::IEEE);
inline constexpr Format fp16 = Format::floating(5, 10, 15, Specials::IEEE);
inline constexpr Format int2 = Format::integer(2, true);
inline constexpr Format int4 = Format::integer(4, true);
inline constexpr Format int8 = Format::integer(8, true);
inline constexpr Format uint4 = Format::integer(4, false);
inline constexpr Format uint8 = Format::integer(8, false);
inline constexpr Format nf4 = Format::codebook(kNF4Values, 16);
}  // namespace formats

// The spec values, pinned.
static_assert(max_finite(formats::e4m3fn) == 448.0, "OCP E4M3 max is 448");
static_assert(max_finite(formats::e5m2) == 57344.0, "OCP E5M2 max is 57344");
static_assert(max_finite(formats::e2m3fn) == 7.5, "OCP FP6 E2M3 max is 7.5");
static_assert(max_finite(formats::e3m2fn) == 28.0, "OCP FP6 E3M2 max is 28");
static_assert(max_finite(formats::e2m1fn) == 6.0, "OCP FP4 E2M1 max is 6");
static_assert(max_finite(formats::e4m3) == 240.0, "IEEE-like E4M3 max is 240");
static_assert(max_finite(formats::e4m3fnuz) == 240.0, "E4M3FNUZ max is 240");
static_assert(max_finite(formats::e5m2fnuz) == 57344.0, "E5M2FNUZ max is 57344");
static_assert(max_finite(formats::e4m3b11fnuz) == 30.0, "E4M3B11FNUZ max is 30");
static_assert(max_finite(formats::e3m4) == 15.5, "E3M4 max is 15.5");
static_assert(max_finite(formats::e8m0fnu) == exp2i(127), "E8M0 max is 2^127");
static_assert(max_finite(formats::ue4m3) == 448.0 && formats::ue4m3.bits() == 7,
              "UE4M3: E4M3 without a sign");
static_assert(lowest_finite(formats::e8m0fnu) == exp2i(-127), "E8M0 min is 2^-127");
static_assert(max_finite(formats::fp16) == 65504.0, "fp16 max is 65504");
static_assert(min_subnormal(formats::e4m3fn) == exp2i(-9), "E4M3 min subnormal is 2^-9");
static_assert(min_subnormal(formats::e5m2) == exp2i(-16), "E5M2 min subnormal is 2^-16");
static_assert(min_normal(formats::e2m1fn) == 1.0 && min_subnormal(formats::e2m1fn) == 0.5,
              "FP4 E2M1 min normal 1, min subnormal 0.5");
static_assert(format_problem(formats::e4m3fn) == nullptr &&
                  format_problem(formats::bf16) == nullptr &&
                  format_problem(formats::e8m0fnu) == nullptr &&
                  format_problem(formats::nf4) == nullptr,
              "the named formats are valid");

// ---------------------------------------------------------------------------------------------
// Names.

struct NamedFormat {
  std::string name;  // canonical name, as printed
  Format format;
  std::vector<std::string> aliases;  // ml_dtypes / torch / CUDA spellings that mean the same
  std::string description;
};

// Every named format, in the order `lowbit formats` prints them.
const std::vector<NamedFormat>& named_formats();

// Parses a format name: a named format or alias, `intN` / `uintN` (N = 2..16), `nf4`,
// `lut:v0,v1,...` (a codebook), or the generic float spelling
//   eXmY[:bias=B][:specials=ieee|fn|fnuz|none][:subnormals=on|off][:zero=off][:unsigned]
// Options may follow a named float format too (`e4m3fn:subnormals=off`). Throws lowbit::Error
// listing the known names and the generic syntax when the text is not a valid format.
Format parse_format(std::string_view text);

// The canonical spelling: parse_format(format_name(f)) == f for every valid f.
std::string format_name(const Format& f);

// A codebook format from arbitrary values (sorted ascending if needed is NOT done: the order
// is the code order and must be strictly increasing). The values are interned for the process.
Format make_codebook(const std::vector<float>& values);

// Throws lowbit::Error naming `what` when f is not a valid format.
void validate_format(const Format& f, std::string_view what = "format");

// Number of distinct finite values (+0 and -0 count once).
uint32_t finite_value_count(const Format& f);

}  // namespace lowbit
