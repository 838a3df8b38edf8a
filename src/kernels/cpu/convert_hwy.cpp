// Bulk encode / decode / fake-quant with Highway: one generic kernel for every Format, compiled
// for each SIMD target and chosen at run time. The algorithm is described in convert_plan.h; the
// scalar reference (ref::) is the definition these must match bit for bit (tests/kernels_*).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/convert_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below runs once per target.
#include "hwy/highway.h"

#include <cstring>
#include <limits>

#include "lowbit/kernels/convert_backend.h"
#include "lowbit/kernels/convert_plan.h"

// Lambdas in the hot loops must inline (GCC outlines large ones called from several places).
#ifndef HWY_ATTR_ALWAYS_INLINE
#define HWY_ATTR_ALWAYS_INLINE __attribute__((always_inline))
#endif

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;
using VI = hn::Vec<DI>;
using MF = hn::Mask<DF>;

// Element types of the sources; 16-bit floats arrive as their bit patterns.
struct SrcF32 {
  using T = float;
};
struct SrcBF16 {
  using T = uint16_t;
};
struct SrcFP16 {
  using T = uint16_t;
};

// ---- loads and stores ---------------------------------------------------------------------------

HWY_INLINE VU LoadBits(SrcF32, const float* p) {
  return hn::BitCast(DU(), hn::LoadU(DF(), p));
}
HWY_INLINE VU LoadBits(SrcBF16, const uint16_t* p) {
  const hn::Rebind<uint16_t, DU> d16;
  return hn::ShiftLeft<16>(hn::PromoteTo(DU(), hn::LoadU(d16, p)));
}
HWY_INLINE VU LoadBits(SrcFP16, const uint16_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // F16C: exact, infinities and NaNs included.
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::BitCast(
      DU(), hn::PromoteTo(DF(), hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p))));
#else
  // Highway's emulated half -> float turns inf and NaN into finite numbers; do it ourselves.
  const DU du;
  const VU h = hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint16_t, DU>(), p));
  const VU mag = hn::And(h, hn::Set(du, 0x7FFFu));
  const VU sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const VU normal = hn::Add(hn::ShiftLeft<13>(mag), hn::Set(du, (127u - 15u) << 23));
  const VU subnormal = hn::BitCast(
      du, hn::Mul(hn::ConvertTo(DF(), hn::BitCast(DI(), mag)), hn::Set(DF(), 0x1p-24f)));
  const VU special = hn::Or(hn::ShiftLeft<13>(mag), hn::Set(du, 0x7F800000u));  // inf, NaN
  const DI di;
  const VI mag_i = hn::BitCast(di, mag);
  VU v = hn::IfThenElse(hn::RebindMask(du, hn::Lt(mag_i, hn::Set(di, 0x400))), subnormal, normal);
  v = hn::IfThenElse(hn::RebindMask(du, hn::Gt(mag_i, hn::Set(di, 0x7BFF))), special, v);
  return hn::Or(v, sign);
#endif
}

HWY_INLINE void StoreCodes(VU code, uint8_t* p) {
  const hn::Rebind<uint8_t, DI> d8;
  hn::StoreU(hn::DemoteTo(d8, hn::BitCast(DI(), code)), d8, p);
}
HWY_INLINE void StoreCodes(VU code, uint16_t* p) {
  const hn::Rebind<uint16_t, DI> d16;
  hn::StoreU(hn::DemoteTo(d16, hn::BitCast(DI(), code)), d16, p);
}
HWY_INLINE void StoreCodes(VU code, uint32_t* p) {
  hn::StoreU(code, DU(), p);
}

// Four vectors of codes at once: on AVX2 / AVX-512 one narrowing chain for all of them is far
// cheaper than four separate ones (codes are in [0, 255] / [0, 65535], so saturation never bites).
template <class Code>
HWY_INLINE void StoreCodes4(VU c0, VU c1, VU c2, VU c3, Code* p) {
  const size_t lanes = hn::Lanes(DU());
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3)
  if constexpr (sizeof(Code) == 1) {
#if HWY_TARGET == HWY_AVX2
    const __m256i lo = _mm256_packs_epi32(c0.raw, c1.raw);  // i16, interleaved by 128-bit block
    const __m256i hi = _mm256_packs_epi32(c2.raw, c3.raw);
    const __m256i bytes = _mm256_packus_epi16(lo, hi);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_permutevar8x32_epi32(bytes, order));
#else
    const __m512i lo = _mm512_packs_epi32(c0.raw, c1.raw);
    const __m512i hi = _mm512_packs_epi32(c2.raw, c3.raw);
    const __m512i bytes = _mm512_packus_epi16(lo, hi);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512(p, _mm512_permutexvar_epi32(order, bytes));
#endif
    return;
  }
#endif
  StoreCodes(c0, p);
  StoreCodes(c1, p + lanes);
  StoreCodes(c2, p + 2 * lanes);
  StoreCodes(c3, p + 3 * lanes);
}

HWY_INLINE VU LoadCodes(const uint8_t* p) {
  return hn::PromoteTo(DU(), hn::LoadU(hn::Rebind<uint8_t, DU>(), p));
}
HWY_INLINE VU LoadCodes(const uint16_t* p) {
  return hn::PromoteTo(DU(), hn::LoadU(hn::Rebind<uint16_t, DU>(), p));
}
HWY_INLINE VU LoadCodes(const uint32_t* p) {
  return hn::LoadU(DU(), p);
}

// ---- the stochastic stream (lowbit::stochastic_u24, one lane per element)
// ------------------------

HWY_INLINE VU Mix32(VU x) {
  const DU du;
  x = hn::Xor(x, hn::ShiftRight<16>(x));
  x = hn::Mul(x, hn::Set(du, 0x7feb352dU));
  x = hn::Xor(x, hn::ShiftRight<15>(x));
  x = hn::Mul(x, hn::Set(du, 0x846ca68bU));
  return hn::Xor(x, hn::ShiftRight<16>(x));
}

// u24 for elements index_lo, index_lo + 1, ...; hi_key = k1 ^ (index >> 32).
HWY_INLINE VU RandomU24(const ConvertPlan& p, uint32_t index_lo, uint32_t hi_key) {
  const DU du;
  VU x = Mix32(hn::Iota(du, index_lo));
  x = Mix32(hn::Xor(x, hn::Set(du, p.key.k0)));
  x = Mix32(hn::Xor(x, hn::Set(du, hi_key)));
  return hn::ShiftRight<8>(x);
}

// ---- rounding on a uniform grid: t >= 0 in units of the grid step -> integer n
// -------------------

// An integral float in [0, 2^23) to int32 in two cheap ops: adding 2^23 puts the integer in the
// mantissa bits. (Highway's ConvertTo also repairs out-of-range lanes, which we never read.)
HWY_INLINE VI SmallIntegralToInt(VF integral) {
  const DF df;
  const DI di;
  return hn::Sub(hn::BitCast(di, hn::Add(integral, hn::Set(df, 0x1p23f))), hn::Set(di, 0x4B000000));
}

// Rounds t >= 0 (in units of the grid step) to an integral float by the mode. Exact for t < 2^23;
// lanes beyond produce garbage the callers discard.
template <RoundMode M>
HWY_INLINE VF RoundOnGridF(VF t, MF negative, VU u24) {
  const DF df;
  const DI di;
  if constexpr (M == RoundMode::NearestEven) {
    return hn::Round(t);  // ties to even, whatever MXCSR says
  } else if constexpr (M == RoundMode::TowardZero) {
    return hn::Floor(t);
  } else {
    const VF floor = hn::Floor(t);
    const VF frac = hn::Sub(t, floor);  // exact: t < 2^24
    MF up;
    if constexpr (M == RoundMode::NearestAway) {
      up = hn::Ge(frac, hn::Set(df, 0.5f));
    } else if constexpr (M == RoundMode::Up) {
      up = hn::AndNot(negative, hn::Gt(frac, hn::Zero(df)));
    } else if constexpr (M == RoundMode::Down) {
      up = hn::And(negative, hn::Gt(frac, hn::Zero(df)));
    } else {
      const VF u = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, u24)), hn::Set(df, 0x1p-24f));
      up = hn::Gt(frac, u);
    }
    return hn::IfThenElse(up, hn::Add(floor, hn::Set(df, 1.0f)), floor);
  }
}

template <RoundMode M>
HWY_INLINE VI RoundOnGrid(VF t, MF negative, VU u24) {
  return SmallIntegralToInt(RoundOnGridF<M>(t, negative, u24));
}

// The increment that rounds a float32 bit pattern at bit `shift` (the normal route of
// convert_plan.h): adding it and clearing the low `shift` bits rounds by the mode.
template <RoundMode M, bool kCommon>
struct NormalIncrement {
  const VU base, one = hn::Set(DU(), 1u), away, sr_mask = hn::Set(DU(), 0xFFFFFFu);
  const int shift, sr_shift;
  const bool uses_lsb;
  explicit NormalIncrement(const ConvertPlan& p)
      : base(hn::Set(DU(), p.rne_uses_lsb || M != RoundMode::NearestEven ? p.inc_half_minus_one
                                                                         : p.inc_half)),
        away(hn::Set(DU(), p.inc_away)),
        shift(p.shift),
        sr_shift(24 - p.shift),
        uses_lsb(p.rne_uses_lsb) {}
  HWY_INLINE VU operator()(VU abits, hn::Mask<DU> negative, VU u24) const {
    if constexpr (M == RoundMode::NearestEven) {
      return (kCommon || uses_lsb) ? hn::Add(base, hn::And(hn::ShiftRightSame(abits, shift), one))
                                   : base;
    } else if constexpr (M == RoundMode::NearestAway) {
      return hn::Add(base, one);
    } else if constexpr (M == RoundMode::TowardZero) {
      return hn::Zero(DU());
    } else if constexpr (M == RoundMode::Up) {
      return hn::IfThenZeroElse(negative, away);
    } else if constexpr (M == RoundMode::Down) {
      return hn::IfThenElseZero(negative, away);
    } else {
      // Up iff the dropped bits exceed u24's top `shift` bits (the reference's frac > u / 2^24).
      return hn::ShiftRightSame(hn::Xor(u24, sr_mask), sr_shift);
    }
  }
};

// ---- per-kind encoders: float32 bit patterns -> codes
// -------------------------------------------- Each codec copies the plan's constants into vectors
// once, in its constructor, so the loops keep them in registers (the plan is in memory that the
// byte-sized code stores could alias).

// 2^e as one or two float factors (two when 2^e is outside float32's normal range).
struct Pow2Scale {
  VF a, b;
  bool two;
  Pow2Scale(float s1, float s2) : a(hn::Set(DF(), s1 * s2)), b(hn::Set(DF(), s2)), two(false) {
    const float single = s1 * s2;
    if (!(single >= 0x1p-126f && single <= 0x1p127f)) {
      a = hn::Set(DF(), s1);
      two = true;
    }
  }
  // kSingle: the caller knows one factor suffices (ConvertPlan::common_float).
  template <bool kSingle = false>
  HWY_INLINE VF Apply(VF x) const {
    return (!kSingle && two) ? hn::Mul(hn::Mul(x, a), b) : hn::Mul(x, a);
  }
};

// The rounding both Float codecs share (convert_plan.h): the normal route's rounded bit pattern
// and the low route's rounded count of grid steps, for every lane; the caller picks per lane.
template <RoundMode M, bool kCommon>
struct FloatRounding {
  const NormalIncrement<M, kCommon> increment;
  const VU abs_mask = hn::Set(DU(), 0x7FFFFFFFu);
  const VI low_threshold;
  const Pow2Scale low_scale;
  const bool low_needs_floor;

  explicit FloatRounding(const ConvertPlan& plan)
      : increment(plan),
        low_threshold(hn::Set(DI(), plan.low_threshold_bits)),
        low_scale(plan.low_scale1, plan.low_scale2),
        low_needs_floor(plan.low_needs_floor) {}

  struct Lanes {
    VI abs_bits;            // |x| as an int32 bit pattern
    hn::Mask<DI> negative;  // sign bit set (also -0 and -NaN)
    VU pattern;             // |x| plus the mode's increment: drop the low `shift` bits
    VF low_count;           // |x| rounded to an integral count of low-grid steps
    hn::Mask<DI> is_low;    // the lane is below 2^(1 - bias): take low_count
  };

  HWY_INLINE Lanes operator()(VU bits, VU u24) const {
    const DF df;
    const DU du;
    const DI di;
    Lanes r;
    const VU abits = hn::And(bits, abs_mask);
    r.abs_bits = hn::BitCast(di, abits);
    r.negative = hn::Lt(hn::BitCast(di, bits), hn::Zero(di));
    r.pattern = hn::Add(abits, increment(abits, hn::RebindMask(du, r.negative), u24));
    VF t = low_scale.Apply<kCommon>(hn::BitCast(df, abits));
    if (!kCommon && low_needs_floor) {
      t = hn::IfThenZeroElse(hn::RebindMask(df, hn::Eq(r.abs_bits, hn::Zero(di))),
                             hn::Max(t, hn::Set(df, std::numeric_limits<float>::denorm_min())));
    }
    r.low_count = RoundOnGridF<M>(t, hn::RebindMask(df, r.negative), u24);
    r.is_low = hn::Lt(r.abs_bits, low_threshold);
    return r;
  }
};

// Overrides the lanes that hold a special input or overflowed (docs/formats.md's table) with the
// plan's results — codes or float32 values. `negative_zero` is the pattern of -0 (the code's sign
// bit, or float32's) for formats without -0.
// (It rederives |x| and the sign from `bits` so the fast path need not keep them alive.)
HWY_NOINLINE VU ApplySpecials(const ConvertPlan& p, const SpecialResults& s, VU v, VU bits,
                              hn::Mask<DI> overflow, bool fix_negative_zero,
                              uint32_t negative_zero) {
  const DU du;
  const DI di;
  const VI abs_bits = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu)));
  const auto neg = hn::RebindMask(du, hn::Lt(hn::BitCast(di, bits), hn::Zero(di)));
  const auto pick = [&](uint32_t if_neg, uint32_t if_pos) {
    return hn::IfThenElse(neg, hn::Set(du, if_neg), hn::Set(du, if_pos));
  };
  if (fix_negative_zero) v = hn::IfThenZeroElse(hn::Eq(v, hn::Set(du, negative_zero)), v);
  v = hn::IfThenElse(hn::RebindMask(du, overflow), pick(s.overflow_neg, s.overflow_pos), v);
  const VI inf_bits = hn::Set(di, 0x7F800000);
  v = hn::IfThenElse(hn::RebindMask(du, hn::Eq(abs_bits, inf_bits)), pick(s.inf_neg, s.inf_pos), v);
  const auto is_zero = hn::RebindMask(du, hn::Eq(abs_bits, hn::Zero(di)));
  if (p.is_unsigned) v = hn::IfThenElse(hn::AndNot(is_zero, neg), hn::Set(du, s.negative), v);
  if (p.zero_is_special) v = hn::IfThenElse(is_zero, hn::Set(du, s.zero), v);
  return hn::IfThenElse(hn::RebindMask(du, hn::Gt(abs_bits, inf_bits)), pick(s.nan_neg, s.nan_pos),
                        v);
}

// kCommon: compiled for ConvertPlan::common_float plans, with the rare switches removed.
template <RoundMode M, bool kCommon = false>
struct FloatEncoder {
  static constexpr bool kRandom = M == RoundMode::Stochastic;
  const ConvertPlan& p;
  const FloatRounding<M, kCommon> rounding;
  const VI normal_offset, max_mag, low_nmin, low_nsub;
  const VU sign_bit;
  const int shift, sign_shift, low_shift;
  // Copies of the plan's switches: reading them through `p` inside the loop would be a load per
  // vector, since byte stores may alias the plan.
  const bool low_is_normal, low_is_flush, always_fix;

  explicit FloatEncoder(const ConvertPlan& plan)
      : p(plan),
        rounding(plan),
        normal_offset(hn::Set(DI(), plan.normal_offset)),
        max_mag(hn::Set(DI(), plan.max_mag)),
        low_nmin(hn::Set(DI(), plan.low_nmin)),
        low_nsub(hn::Set(DI(), plan.low_nsub)),
        sign_bit(hn::Set(DU(), plan.sign_bit)),
        shift(plan.shift),
        sign_shift(31 - (plan.format.exp_bits + plan.format.man_bits)),
        low_shift(plan.low_shift),
        low_is_normal(plan.format.low == LowBinade::Normal),
        low_is_flush(plan.format.low == LowBinade::Flush),
        always_fix(plan.fix_negative_zero || plan.is_unsigned || plan.zero_is_special) {}

  HWY_INLINE VU operator()(VU bits, VU u24) const {
    const DU du;
    const DI di;
    const auto r = rounding(bits, u24);
    // Normal route: the dropped bits shifted out; a carry was the step to the next binade.
    const VI normal = hn::Sub(hn::BitCast(di, hn::ShiftRightSame(r.pattern, shift)), normal_offset);
    VI low = SmallIntegralToInt(r.low_count);
    if (!kCommon && low_is_normal) low = hn::Sub(hn::Max(low, low_nmin), low_nsub);
    if (!kCommon && low_is_flush) low = hn::ShiftLeftSame(low, low_shift);
    const VI mag = hn::IfThenElse(r.is_low, low, normal);
    const VU code =
        hn::Or(hn::BitCast(du, mag), hn::And(hn::ShiftRightSame(bits, sign_shift), sign_bit));
    // Overflow, inf and NaN all have mag > max_mag; zero and negatives only matter for FNUZ,
    // unsigned and zero-less formats. Vectors with none of these skip the overrides.
    const auto overflow = hn::Gt(mag, max_mag);
    if (HWY_LIKELY(hn::AllFalse(di, overflow)) && (kCommon || !always_fix)) return code;
    return ApplySpecials(p, p.special_codes, code, bits, overflow, p.fix_negative_zero, p.sign_bit);
  }
};

// Fake-quant for Float formats without going through codes: the normal route clears the dropped
// bits of the rounded pattern, the low route multiplies the count back by the grid step.
template <RoundMode M, bool kCommon = false>
struct FloatRounder {
  static constexpr bool kRandom = M == RoundMode::Stochastic;
  const ConvertPlan& p;
  const FloatRounding<M, kCommon> rounding;
  const VU sign_mask = hn::Set(DU(), 0x80000000u), round_mask, max_half;
  const VF low_nmin;
  const Pow2Scale quantum;
  const bool low_is_normal, always_fix;

  explicit FloatRounder(const ConvertPlan& plan)
      : p(plan),
        rounding(plan),
        round_mask(hn::Set(DU(), plan.round_mask)),
        max_half(hn::Set(DU(), plan.max_value >> 1)),
        low_nmin(hn::Set(DF(), plan.low_nmin_value)),
        quantum(plan.quantum_scale1, plan.quantum_scale2),
        low_is_normal(plan.format.low == LowBinade::Normal),
        always_fix(plan.fix_negative_zero || plan.is_unsigned || plan.zero_is_special) {}

  HWY_INLINE VF operator()(VU bits, VU u24) const {
    const DU du;
    const DI di;
    const auto r = rounding(bits, u24);
    const VU normal = hn::And(r.pattern, round_mask);
    const VF count = (!kCommon && low_is_normal) ? hn::Max(r.low_count, low_nmin) : r.low_count;
    const VU low = hn::BitCast(du, quantum.Apply<kCommon>(count));
    const VU mag = hn::IfThenElse(hn::RebindMask(du, r.is_low), low, normal);
    const VU v = hn::Or(mag, hn::And(bits, sign_mask));
    // Overflow, inf and NaN all land above the largest value. (The rounded pattern of a NaN can
    // carry into bit 31, so compare halves: distinct values differ by far more than one bit.)
    const auto overflow =
        hn::Gt(hn::BitCast(di, hn::ShiftRight<1>(mag)), hn::BitCast(di, max_half));
    if (HWY_LIKELY(hn::AllFalse(di, overflow)) && (kCommon || !always_fix))
      return hn::BitCast(DF(), v);
    // Unsigned formats: the input's sign was copied above, so -0 needs the fix too.
    return hn::BitCast(DF(), ApplySpecials(p, p.special_values, v, bits, overflow,
                                           p.fix_negative_zero || p.is_unsigned, 0x80000000u));
  }
};

// Fake-quant for the other kinds: encode, then decode in registers.
template <class Encoder, class Decoder>
struct EncodeThenDecode {
  static constexpr bool kRandom = Encoder::kRandom;
  const Encoder encode;
  const Decoder decode;
  explicit EncodeThenDecode(const ConvertPlan& p) : encode(p), decode(p) {}
  HWY_INLINE VF operator()(VU bits, VU u24) const { return decode(encode(bits, u24)); }
};

template <RoundMode M>
struct IntEncoder {
  static constexpr bool kRandom = M == RoundMode::Stochastic;
  const VU abs_mask = hn::Set(DU(), 0x7FFFFFFFu);
  const VF clamp;
  const VI lo, hi, inf_bits = hn::Set(DI(), 0x7F800000);
  const VU code_mask;

  explicit IntEncoder(const ConvertPlan& p)
      : clamp(hn::Set(DF(), p.int_clamp)),
        lo(hn::Set(DI(), p.int_lo)),
        hi(hn::Set(DI(), p.int_hi)),
        code_mask(hn::Set(DU(), p.code_mask)) {}

  HWY_INLINE VU operator()(VU bits, VU u24) const {
    const DF df;
    const DI di;
    const VI ai = hn::BitCast(di, hn::And(bits, abs_mask));
    const auto neg_i = hn::Lt(hn::BitCast(di, bits), hn::Zero(di));
    // Beyond int_clamp everything saturates, so clamping first keeps t small and exact.
    const VF a = hn::Min(hn::BitCast(df, ai), clamp);
    const VI n = RoundOnGrid<M>(a, hn::RebindMask(df, neg_i), u24);
    VI v = hn::IfThenElse(neg_i, hn::Neg(n), n);
    v = hn::Min(hn::Max(v, lo), hi);
    v = hn::IfThenElse(hn::Gt(ai, inf_bits), hi, v);  // NaN
    return hn::And(hn::BitCast(DU(), v), code_mask);
  }
};

template <bool kStochastic>
struct LutEncoder {
  static constexpr bool kRandom = kStochastic;
  const ConvertPlan& p;
  explicit LutEncoder(const ConvertPlan& plan) : p(plan) {}

  HWY_INLINE VU operator()(VU bits, VU u24) const {
    const DF df;
    const DI di;
    const VF x = hn::BitCast(df, bits);
    // pos = how many codebook values are <= x (branch-free binary search; NaN gives 0).
    VI pos = hn::Zero(di);
    for (int step = p.lut_search_size / 2; step >= 1; step /= 2) {
      const VF probe =
          hn::GatherIndex(df, p.lut_sorted.data(), hn::Add(pos, hn::Set(di, step - 1)));
      pos = hn::IfThenElse(hn::RebindMask(di, hn::Le(probe, x)), hn::Add(pos, hn::Set(di, step)),
                           pos);
    }
    const VI one = hn::Set(di, 1);
    const VI i = hn::Max(hn::Sub(pos, one), hn::Zero(di));  // x in [lut[i], lut[i+1])
    MF up;
    if constexpr (kStochastic) {
      const VF lo = hn::GatherIndex(df, p.lut_sorted.data(), i);
      const VF hi = hn::GatherIndex(df, p.lut_sorted.data(), hn::Add(i, one));
      const VF frac = hn::Div(hn::Sub(x, lo), hn::Sub(hi, lo));
      up = hn::Gt(frac, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, u24)), hn::Set(df, 0x1p-24f)));
    } else {
      up = hn::Ge(x, hn::GatherIndex(df, p.lut_threshold.data(), i));
    }
    VI code = hn::IfThenElse(hn::RebindMask(di, up), hn::Add(i, one), i);
    code = hn::IfThenZeroElse(hn::Eq(pos, hn::Zero(di)), code);  // below the first value
    const VI last = hn::Set(di, p.lut_count - 1);
    code = hn::IfThenElse(hn::Gt(pos, hn::Set(di, p.lut_count - 1)), last,
                          code);  // at or past the last
    code = hn::IfThenElse(hn::RebindMask(di, hn::IsNaN(x)), last, code);
    return hn::BitCast(DU(), code);
  }
};

// ---- per-kind decoders: codes (already masked to the format's width) -> float32 ----------------

template <bool kCommon = false>
struct FloatDecoder {
  const ConvertPlan& p;
  const VU code_mask, mag_mask, normal_add, sign_bit;
  const VI low_add, low_limit, special_min;
  const Pow2Scale low_scale;
  const int shift, sign_shift;
  const bool fnuz;

  explicit FloatDecoder(const ConvertPlan& plan)
      : p(plan),
        code_mask(hn::Set(DU(), plan.code_mask)),
        mag_mask(hn::Set(DU(), plan.mag_mask)),
        normal_add(hn::Set(DU(), plan.decode_normal_add)),
        sign_bit(hn::Set(DU(), plan.sign_bit)),
        low_add(hn::Set(DI(), plan.decode_low_add)),
        low_limit(hn::Set(DI(), plan.decode_low_limit)),
        special_min(hn::Set(DI(), std::min(plan.decode_inf_mag, plan.decode_nan_mag) - 1)),
        low_scale(plan.decode_low_scale1, plan.decode_low_scale2),
        shift(plan.shift),
        sign_shift(plan.decode_sign_shift),
        fnuz(plan.decode_fnuz_nan) {}

  // `code` may carry junk above the format's width: only masked fields are read.
  HWY_INLINE VF operator()(VU code) const {
    const DF df;
    const DU du;
    const DI di;
    const VU mag = hn::And(code, mag_mask);
    const VI mag_i = hn::BitCast(di, mag);
    const VU normal = hn::Add(hn::ShiftLeftSame(mag, shift), normal_add);
    const VF low =
        low_scale.Apply<kCommon>(hn::ConvertTo(df, kCommon ? mag_i : hn::Add(mag_i, low_add)));
    VU v =
        hn::IfThenElse(hn::RebindMask(du, hn::Lt(mag_i, low_limit)), hn::BitCast(du, low), normal);
    v = hn::Or(v, hn::ShiftLeftSame(hn::And(code, sign_bit), sign_shift));
    // inf and NaN codes are the largest magnitudes; FNUZ's NaN is the sign bit alone.
    if (HWY_UNLIKELY(!hn::AllFalse(di, hn::Gt(mag_i, special_min))) || (!kCommon && fnuz)) {
      v = FixSpecials(v, hn::And(code, code_mask), mag_i);
    }
    return hn::BitCast(df, v);
  }

  HWY_NOINLINE VU FixSpecials(VU v, VU code, VI mag_i) const {
    const DU du;
    const DI di;
    const VU sign = hn::ShiftLeftSame(hn::And(code, sign_bit), sign_shift);
    v = hn::IfThenElse(hn::RebindMask(du, hn::Eq(mag_i, hn::Set(di, p.decode_inf_mag))),
                       hn::Or(sign, hn::Set(du, 0x7F800000u)), v);
    v = hn::IfThenElse(hn::RebindMask(du, hn::Gt(mag_i, hn::Set(di, p.decode_nan_mag - 1))),
                       hn::Or(sign, hn::Set(du, 0x7FC00000u)), v);
    if (fnuz) v = hn::IfThenElse(hn::Eq(code, sign_bit), hn::Set(du, 0x7FC00000u), v);
    return v;
  }
};

struct IntDecoder {
  const int pad;  // sign-extend from int_bits (0: unsigned)
  const VU code_mask;
  explicit IntDecoder(const ConvertPlan& p)
      : pad(p.int_lo < 0 ? 32 - p.format.int_bits : 0), code_mask(hn::Set(DU(), p.code_mask)) {}
  HWY_INLINE VF operator()(VU code) const {
    const VI v = hn::BitCast(DI(), hn::And(code, code_mask));
    return hn::ConvertTo(DF(), hn::ShiftRightSame(hn::ShiftLeftSame(v, pad), pad));
  }
};

struct LutDecoder {
  const float* table;
  const VU code_mask;
  explicit LutDecoder(const ConvertPlan& p)
      : table(p.lut_decode.data()), code_mask(hn::Set(DU(), p.code_mask)) {}
  HWY_INLINE VF operator()(VU code) const {
    return hn::GatherIndex(DF(), table, hn::BitCast(DI(), hn::And(code, code_mask)));
  }
};

// ---- loops: full vectors, then the tail staged through small buffers ---------------------------

constexpr size_t kMaxLanes = 64;  // >= lanes of float32 on every target

template <class Src, class Code, class Encoder>
void EncodeLoop(const ConvertPlan& p, const typename Src::T* in, size_t n, uint64_t first,
                Code* out) {
  const DU du;
  const size_t lanes = hn::Lanes(du);
  const Encoder encode(p);
  const auto lo = uint32_t(first);
  const uint32_t hi_key = p.key.k1 ^ uint32_t(first >> 32);
  const auto code_at = [&](size_t k) HWY_ATTR_ALWAYS_INLINE {
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(k), hi_key) : hn::Zero(du);
    return encode(LoadBits(Src(), in + k), u24);
  };
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes)
    StoreCodes4(code_at(i), code_at(i + lanes), code_at(i + 2 * lanes), code_at(i + 3 * lanes),
                out + i);
  for (; i + lanes <= n; i += lanes) StoreCodes(code_at(i), out + i);
  if (i < n) {
    typename Src::T in_tail[kMaxLanes] = {};
    Code out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(in[0]));
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(i), hi_key) : hn::Zero(du);
    StoreCodes(encode(LoadBits(Src(), in_tail), u24), out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(out[0]));
  }
}

template <class Src, class Quantizer>
void FakeQuantLoop(const ConvertPlan& p, const typename Src::T* in, size_t n, uint64_t first,
                   float* out) {
  const DU du;
  const DF df;
  const size_t lanes = hn::Lanes(du);
  const Quantizer quantize(p);
  const auto lo = uint32_t(first);
  const uint32_t hi_key = p.key.k1 ^ uint32_t(first >> 32);
  const auto value_at = [&](const typename Src::T* src, size_t k) HWY_ATTR_ALWAYS_INLINE {
    const VU u24 = Quantizer::kRandom ? RandomU24(p, lo + uint32_t(k), hi_key) : hn::Zero(du);
    return quantize(LoadBits(Src(), src), u24);
  };
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(value_at(in + i, i), df, out + i);
  if (i < n) {
    typename Src::T in_tail[kMaxLanes] = {};
    float out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(in[0]));
    hn::StoreU(value_at(in_tail, i), df, out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(float));
  }
}

template <class Code, class Decoder>
void DecodeLoop(const ConvertPlan& p, const Code* in, size_t n, float* out) {
  const DU du;
  const DF df;
  const size_t lanes = hn::Lanes(du);
  const Decoder decode(p);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {  // two at a time: more independent work in flight
    const VF a = decode(LoadCodes(in + i));
    const VF b = decode(LoadCodes(in + i + lanes));
    hn::StoreU(a, df, out + i);
    hn::StoreU(b, df, out + i + lanes);
  }
  for (; i + lanes <= n; i += lanes) hn::StoreU(decode(LoadCodes(in + i)), df, out + i);
  if (i < n) {
    Code in_tail[kMaxLanes] = {};
    float out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(Code));
    hn::StoreU(decode(LoadCodes(in_tail)), df, out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(float));
  }
}

// ---- block-scaled loops (quantization schemes) ------------------------------------------------

// The scale vector of elements [i, i + lanes) of a ScaleRun: a broadcast when every vector lies
// inside one group (group length and phase multiples of the vector length), else gathered lane by
// lane (never reading past the run's last group).
class ScaleStream {
 public:
  ScaleStream(const ScaleRun& r, size_t n) : r_(r), n_(n), lanes_(hn::Lanes(DF())) {
    while ((size_t(1) << lane_shift_) < lanes_) ++lane_shift_;  // lanes are a power of two
    uniform_ = r.group_len % lanes_ == 0 && r.phase % lanes_ == 0;
    if (uniform_) {
      vectors_per_group_ = r.group_len / lanes_;
      first_vector_ = r.phase / lanes_;
      for (int b = 0; b < 31; ++b)
        if ((size_t(1) << b) == vectors_per_group_) shift_ = b;
    }
  }
  HWY_INLINE VF at(size_t i) const {
    const DF df;
    if (uniform_) {
      const size_t v = first_vector_ + (i >> lane_shift_);  // no division in the hot loop
      return hn::Set(df, r_.scales[shift_ >= 0 ? v >> shift_ : v / vectors_per_group_]);
    }
    HWY_ALIGN float buf[kMaxLanes];
    for (size_t k = 0; k < lanes_; ++k)
      buf[k] = r_.scales[(r_.phase + std::min(i + k, n_ - 1)) / r_.group_len];
    return hn::Load(df, buf);
  }

 private:
  const ScaleRun& r_;
  size_t n_, lanes_, vectors_per_group_ = 1, first_vector_ = 0;
  int shift_ = -1, lane_shift_ = 0;
  bool uniform_ = false;
};

// x / scale, clamped to [-clamp, clamp]; comparisons are false for NaN, so NaN passes through.
HWY_INLINE VF ScaleAndClamp(VF x, VF scale, VF top, VF bottom) {
  VF v = hn::Div(x, scale);
  v = hn::IfThenElse(hn::Gt(v, top), top, v);
  return hn::IfThenElse(hn::Lt(v, bottom), bottom, v);
}

template <class Code, class Encoder>
void EncodeScaledLoop(const ConvertPlan& p, const float* in, size_t n, const ScaleRun& run,
                      uint64_t first, Code* out) {
  const DU du;
  const DF df;
  const size_t lanes = hn::Lanes(du);
  const Encoder encode(p);
  const ScaleStream scales(run, n);
  const VF top = hn::Set(df, run.clamp), bottom = hn::Set(df, -run.clamp);
  const auto lo = uint32_t(first);
  const uint32_t hi_key = p.key.k1 ^ uint32_t(first >> 32);
  const auto code_at = [&](const float* src, size_t k) HWY_ATTR_ALWAYS_INLINE {
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(k), hi_key) : hn::Zero(du);
    return encode(hn::BitCast(du, ScaleAndClamp(hn::LoadU(df, src), scales.at(k), top, bottom)),
                  u24);
  };
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes)
    StoreCodes4(code_at(in + i, i), code_at(in + i + lanes, i + lanes),
                code_at(in + i + 2 * lanes, i + 2 * lanes),
                code_at(in + i + 3 * lanes, i + 3 * lanes), out + i);
  for (; i + lanes <= n; i += lanes) StoreCodes(code_at(in + i, i), out + i);
  if (i < n) {
    float in_tail[kMaxLanes] = {};
    Code out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(float));
    StoreCodes(code_at(in_tail, i), out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(Code));
  }
}

template <class Quantizer>
void FakeQuantScaledLoop(const ConvertPlan& p, const float* in, size_t n, const ScaleRun& run,
                         uint64_t first, float* out) {
  const DU du;
  const DF df;
  const size_t lanes = hn::Lanes(du);
  const Quantizer quantize(p);
  const ScaleStream scales(run, n);
  const VF top = hn::Set(df, run.clamp), bottom = hn::Set(df, -run.clamp);
  const auto lo = uint32_t(first);
  const uint32_t hi_key = p.key.k1 ^ uint32_t(first >> 32);
  const auto value_at = [&](const float* src, size_t k) HWY_ATTR_ALWAYS_INLINE {
    const VU u24 = Quantizer::kRandom ? RandomU24(p, lo + uint32_t(k), hi_key) : hn::Zero(du);
    const VF scale = scales.at(k);
    return hn::Mul(
        quantize(hn::BitCast(du, ScaleAndClamp(hn::LoadU(df, src), scale, top, bottom)), u24),
        scale);
  };
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(value_at(in + i, i), df, out + i);
  if (i < n) {
    float in_tail[kMaxLanes] = {};
    float out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(float));
    hn::StoreU(value_at(in_tail, i), df, out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(float));
  }
}

template <class Code, class Decoder>
void DecodeScaledLoop(const ConvertPlan& p, const Code* in, size_t n, const ScaleRun& run,
                      float* out) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const Decoder decode(p);
  const ScaleStream scales(run, n);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Mul(decode(LoadCodes(in + i)), scales.at(i)), df, out + i);
  if (i < n) {
    Code in_tail[kMaxLanes] = {};
    float out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(Code));
    hn::StoreU(hn::Mul(decode(LoadCodes(in_tail)), scales.at(i)), df, out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(float));
  }
}

// ---- dispatch on the run-time parameters (outside every loop)
// ------------------------------------

template <class Encoder>
void EncodeTyped(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first,
                 void* codes, int code_bytes) {
  const auto run = [&](auto src) {
    using Src = decltype(src);
    const auto* x = static_cast<const typename Src::T*>(in);
    if (code_bytes == 1)
      EncodeLoop<Src, uint8_t, Encoder>(p, x, n, first, static_cast<uint8_t*>(codes));
    else if (code_bytes == 2)
      EncodeLoop<Src, uint16_t, Encoder>(p, x, n, first, static_cast<uint16_t*>(codes));
    else
      EncodeLoop<Src, uint32_t, Encoder>(p, x, n, first, static_cast<uint32_t*>(codes));
  };
  if (type == SourceType::F32)
    run(SrcF32());
  else if (type == SourceType::BF16)
    run(SrcBF16());
  else
    run(SrcFP16());
}

template <class Quantizer>
void FakeQuantTyped(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first,
                    float* out) {
  if (type == SourceType::F32)
    FakeQuantLoop<SrcF32, Quantizer>(p, static_cast<const float*>(in), n, first, out);
  else if (type == SourceType::BF16)
    FakeQuantLoop<SrcBF16, Quantizer>(p, static_cast<const uint16_t*>(in), n, first, out);
  else
    FakeQuantLoop<SrcFP16, Quantizer>(p, static_cast<const uint16_t*>(in), n, first, out);
}

// A type tag naming an encoder and the decoder of the same kind.
template <class E, class D, class Q = EncodeThenDecode<E, D>>
struct Codec {
  using Encoder = E;
  using Decoder = D;
  using Quantizer = Q;  // fake-quant
};

// Calls fn(Codec<Encoder, Decoder>()) for the plan's kind and mode.
template <class Fn>
void WithCodec(const ConvertPlan& p, Fn&& fn) {
  const RoundMode mode = p.options.mode;
  switch (p.format.kind) {
    case FormatKind::Float:
      switch (mode) {
        case RoundMode::NearestEven:
          if (p.common_float) {
            return fn(Codec<FloatEncoder<RoundMode::NearestEven, true>, FloatDecoder<true>,
                            FloatRounder<RoundMode::NearestEven, true>>());
          }
          return fn(Codec<FloatEncoder<RoundMode::NearestEven>, FloatDecoder<>,
                          FloatRounder<RoundMode::NearestEven>>());
        case RoundMode::NearestAway:
          return fn(Codec<FloatEncoder<RoundMode::NearestAway>, FloatDecoder<>,
                          FloatRounder<RoundMode::NearestAway>>());
        case RoundMode::TowardZero:
          return fn(Codec<FloatEncoder<RoundMode::TowardZero>, FloatDecoder<>,
                          FloatRounder<RoundMode::TowardZero>>());
        case RoundMode::Up:
          return fn(
              Codec<FloatEncoder<RoundMode::Up>, FloatDecoder<>, FloatRounder<RoundMode::Up>>());
        case RoundMode::Down:
          return fn(Codec<FloatEncoder<RoundMode::Down>, FloatDecoder<>,
                          FloatRounder<RoundMode::Down>>());
        case RoundMode::Stochastic:
          return fn(Codec<FloatEncoder<RoundMode::Stochastic>, FloatDecoder<>,
                          FloatRounder<RoundMode::Stochastic>>());
      }
      break;
    case FormatKind::Int:
      switch (mode) {
        case RoundMode::NearestEven:
          return fn(Codec<IntEncoder<RoundMode::NearestEven>, IntDecoder>());
        case RoundMode::NearestAway:
          return fn(Codec<IntEncoder<RoundMode::NearestAway>, IntDecoder>());
        case RoundMode::TowardZero:
          return fn(Codec<IntEncoder<RoundMode::TowardZero>, IntDecoder>());
        case RoundMode::Up:
          return fn(Codec<IntEncoder<RoundMode::Up>, IntDecoder>());
        case RoundMode::Down:
          return fn(Codec<IntEncoder<RoundMode::Down>, IntDecoder>());
        case RoundMode::Stochastic:
          return fn(Codec<IntEncoder<RoundMode::Stochastic>, IntDecoder>());
      }
      break;
    case FormatKind::Lut:
      if (mode == RoundMode::Stochastic) return fn(Codec<LutEncoder<true>, LutDecoder>());
      return fn(Codec<LutEncoder<false>, LutDecoder>());
  }
}

void Encode(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first,
            void* codes, int code_bytes) {
  WithCodec(p, [&](auto codec) {
    EncodeTyped<typename decltype(codec)::Encoder>(p, in, type, n, first, codes, code_bytes);
  });
}

void FakeQuant(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first,
               float* out) {
  WithCodec(p, [&](auto codec) {
    FakeQuantTyped<typename decltype(codec)::Quantizer>(p, in, type, n, first, out);
  });
}

template <class Decoder>
void DecodeTyped(const ConvertPlan& p, const void* codes, int code_bytes, size_t n, float* out) {
  if (code_bytes == 1)
    DecodeLoop<uint8_t, Decoder>(p, static_cast<const uint8_t*>(codes), n, out);
  else if (code_bytes == 2)
    DecodeLoop<uint16_t, Decoder>(p, static_cast<const uint16_t*>(codes), n, out);
  else
    DecodeLoop<uint32_t, Decoder>(p, static_cast<const uint32_t*>(codes), n, out);
}

void Decode(const ConvertPlan& p, const void* codes, int code_bytes, size_t n, float* out) {
  switch (p.format.kind) {
    case FormatKind::Float:
      if (p.common_float) return DecodeTyped<FloatDecoder<true>>(p, codes, code_bytes, n, out);
      return DecodeTyped<FloatDecoder<>>(p, codes, code_bytes, n, out);
    case FormatKind::Int:
      return DecodeTyped<IntDecoder>(p, codes, code_bytes, n, out);
    case FormatKind::Lut:
      return DecodeTyped<LutDecoder>(p, codes, code_bytes, n, out);
  }
}

void EncodeScaled(const ConvertPlan& p, const float* x, size_t n, const ScaleRun& run,
                  uint64_t first, void* codes, int code_bytes) {
  WithCodec(p, [&](auto codec) {
    using E = typename decltype(codec)::Encoder;
    if (code_bytes == 1)
      EncodeScaledLoop<uint8_t, E>(p, x, n, run, first, static_cast<uint8_t*>(codes));
    else if (code_bytes == 2)
      EncodeScaledLoop<uint16_t, E>(p, x, n, run, first, static_cast<uint16_t*>(codes));
    else
      EncodeScaledLoop<uint32_t, E>(p, x, n, run, first, static_cast<uint32_t*>(codes));
  });
}

void FakeQuantScaled(const ConvertPlan& p, const float* x, size_t n, const ScaleRun& run,
                     uint64_t first, float* out) {
  WithCodec(p, [&](auto codec) {
    FakeQuantScaledLoop<typename decltype(codec)::Quantizer>(p, x, n, run, first, out);
  });
}

template <class Decoder>
void DecodeScaledTyped(const ConvertPlan& p, const void* codes, int code_bytes, size_t n,
                       const ScaleRun& run, float* out) {
  if (code_bytes == 1)
    DecodeScaledLoop<uint8_t, Decoder>(p, static_cast<const uint8_t*>(codes), n, run, out);
  else if (code_bytes == 2)
    DecodeScaledLoop<uint16_t, Decoder>(p, static_cast<const uint16_t*>(codes), n, run, out);
  else
    DecodeScaledLoop<uint32_t, Decoder>(p, static_cast<const uint32_t*>(codes), n, run, out);
}

void DecodeScaled(const ConvertPlan& p, const void* codes, int code_bytes, size_t n,
                  const ScaleRun& run, float* out) {
  switch (p.format.kind) {
    case FormatKind::Float:
      if (p.common_float)
        return DecodeScaledTyped<FloatDecoder<true>>(p, codes, code_bytes, n, run, out);
      return DecodeScaledTyped<FloatDecoder<>>(p, codes, code_bytes, n, run, out);
    case FormatKind::Int:
      return DecodeScaledTyped<IntDecoder>(p, codes, code_bytes, n, run, out);
    case FormatKind::Lut:
      return DecodeScaledTyped<LutDecoder>(p, codes, code_bytes, n, run, out);
  }
}

void MaxAbsBits(const float* x, size_t n, size_t group_len, uint32_t* out) {
  const DF df;
  const DU du;
  const size_t lanes = hn::Lanes(du);
  const VU magnitude = hn::Set(du, 0x7FFFFFFFu);
  for (size_t begin = 0, g = 0; begin < n; begin += group_len, ++g) {
    const size_t end = std::min(n, begin + group_len);
    VU top = hn::Zero(du);
    size_t i = begin;
    for (; i + lanes <= end; i += lanes)
      top = hn::Max(top, hn::And(hn::BitCast(du, hn::LoadU(df, x + i)), magnitude));
    uint32_t result = hn::GetLane(hn::MaxOfLanes(du, top));
    for (; i < end; ++i) {
      uint32_t b;
      std::memcpy(&b, x + i, 4);
      result = std::max(result, b & 0x7FFFFFFFu);
    }
    out[g] = result;
  }
}

// Registers this target's kernels at start-up.
const bool kRegistered =
    (register_simd_backend({std::string("hwy:") + hwy::TargetName(HWY_TARGET), HWY_TARGET, &Encode,
                            &Decode, &FakeQuant, &EncodeScaled, &DecodeScaled, &FakeQuantScaled,
                            &MaxAbsBits}),
     true);

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {
// The registry (kernels/registry.cpp) calls this, so that linking the registry links this file and
// with it every target's registration above.
void link_hwy_convert_backends() {}
}  // namespace lowbit::kernels
#endif  // HWY_ONCE
