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

#include "kernels/convert_backend.h"
#include "kernels/convert_plan.h"

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

HWY_INLINE VU LoadBits(SrcF32, const float* p) { return hn::BitCast(DU(), hn::LoadU(DF(), p)); }
HWY_INLINE VU LoadBits(SrcBF16, const uint16_t* p) {
  const hn::Rebind<uint16_t, DU> d16;
  return hn::ShiftLeft<16>(hn::PromoteTo(DU(), hn::LoadU(d16, p)));
}
HWY_INLINE VU LoadBits(SrcFP16, const uint16_t* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // F16C: exact, infinities and NaNs included.
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::BitCast(DU(), hn::PromoteTo(DF(), hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p))));
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
HWY_INLINE void StoreCodes(VU code, uint32_t* p) { hn::StoreU(code, DU(), p); }

HWY_INLINE VU LoadCodes(const uint8_t* p) {
  return hn::PromoteTo(DU(), hn::LoadU(hn::Rebind<uint8_t, DU>(), p));
}
HWY_INLINE VU LoadCodes(const uint16_t* p) {
  return hn::PromoteTo(DU(), hn::LoadU(hn::Rebind<uint16_t, DU>(), p));
}
HWY_INLINE VU LoadCodes(const uint32_t* p) { return hn::LoadU(DU(), p); }

// ---- the stochastic stream (lowbit::stochastic_u24, one lane per element) ------------------------

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

// ---- rounding on a uniform grid: t >= 0 in units of the grid step -> integer n -------------------

template <RoundMode M>
HWY_INLINE VI RoundOnGrid(VF t, MF negative, VU u24) {
  const DF df;
  const DI di;
  if constexpr (M == RoundMode::NearestEven) {
    return hn::ConvertTo(di, hn::Round(t));  // Round is ties-to-even
  } else if constexpr (M == RoundMode::TowardZero) {
    return hn::ConvertTo(di, hn::Floor(t));
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
    return hn::ConvertTo(di, hn::IfThenElse(up, hn::Add(floor, hn::Set(df, 1.0f)), floor));
  }
}

// ---- per-kind encoders: float32 bit patterns -> codes --------------------------------------------

template <RoundMode M>
struct FloatEncoder {
  static constexpr bool kRandom = M == RoundMode::Stochastic;
  HWY_INLINE VU operator()(const ConvertPlan& p, VU bits, VU u24) const {
    const DF df;
    const DU du;
    const DI di;
    const VU abits = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
    const VI ai = hn::BitCast(di, abits);
    const auto neg_i = hn::Lt(hn::BitCast(di, bits), hn::Zero(di));
    const MF neg_f = hn::RebindMask(df, neg_i);
    const auto neg_u = hn::RebindMask(du, neg_i);

    // Normal route: round inside the float32 bit pattern; a carry is the step to the next binade.
    VU inc;
    if constexpr (M == RoundMode::NearestEven) {
      inc = p.rne_uses_lsb ? hn::Add(hn::Set(du, p.inc_half_minus_one),
                                     hn::And(hn::ShiftRightSame(abits, p.shift), hn::Set(du, 1u)))
                           : hn::Set(du, p.inc_half);
    } else if constexpr (M == RoundMode::NearestAway) {
      inc = hn::Set(du, p.inc_half);
    } else if constexpr (M == RoundMode::TowardZero) {
      inc = hn::Zero(du);
    } else if constexpr (M == RoundMode::Up) {
      inc = hn::IfThenZeroElse(neg_u, hn::Set(du, p.inc_away));
    } else if constexpr (M == RoundMode::Down) {
      inc = hn::IfThenElseZero(neg_u, hn::Set(du, p.inc_away));
    } else {
      // Up iff the dropped bits exceed u24's top `shift` bits (the reference's frac > u / 2^24).
      inc = hn::ShiftRightSame(hn::Xor(u24, hn::Set(du, 0xFFFFFFu)), 24 - p.shift);
    }
    const VI normal = hn::Sub(hn::BitCast(di, hn::ShiftRightSame(hn::Add(abits, inc), p.shift)),
                              hn::Set(di, p.normal_offset));

    // Low route: a uniform grid below 2^(1 - bias).
    VF t = hn::Mul(hn::Mul(hn::BitCast(df, abits), hn::Set(df, p.low_scale1)), hn::Set(df, p.low_scale2));
    if (p.low_needs_floor) {
      t = hn::IfThenZeroElse(hn::RebindMask(df, hn::Eq(ai, hn::Zero(di))),
                             hn::Max(t, hn::Set(df, std::numeric_limits<float>::denorm_min())));
    }
    const VI n = RoundOnGrid<M>(t, neg_f, u24);
    const VI low = hn::ShiftLeftSame(hn::Sub(hn::Max(n, hn::Set(di, p.low_nmin)), hn::Set(di, p.low_nsub)),
                                     p.low_shift);
    const VI mag = hn::IfThenElse(hn::Lt(ai, hn::Set(di, p.low_threshold_bits)), low, normal);

    // Sign, then the special cases, each overriding what came before.
    VU code = hn::Or(hn::BitCast(du, mag), hn::IfThenElseZero(neg_u, hn::Set(du, p.sign_bit)));
    if (p.fix_negative_zero) code = hn::IfThenZeroElse(hn::Eq(code, hn::Set(du, p.sign_bit)), code);
    const auto pick = [&](uint32_t if_neg, uint32_t if_pos) {
      return hn::IfThenElse(neg_u, hn::Set(du, if_neg), hn::Set(du, if_pos));
    };
    code = hn::IfThenElse(hn::RebindMask(du, hn::Gt(mag, hn::Set(di, p.max_mag))),
                          pick(p.overflow_neg, p.overflow_pos), code);
    code = hn::IfThenElse(hn::RebindMask(du, hn::Eq(ai, hn::Set(di, 0x7F800000))), pick(p.inf_neg, p.inf_pos),
                          code);
    const auto is_zero = hn::RebindMask(du, hn::Eq(ai, hn::Zero(di)));
    if (p.is_unsigned) code = hn::IfThenElse(hn::AndNot(is_zero, neg_u), hn::Set(du, p.negative_code), code);
    if (p.zero_is_special) code = hn::IfThenElse(is_zero, hn::Set(du, p.zero_code), code);
    return hn::IfThenElse(hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x7F800000))), pick(p.nan_neg, p.nan_pos),
                          code);
  }
};

template <RoundMode M>
struct IntEncoder {
  static constexpr bool kRandom = M == RoundMode::Stochastic;
  HWY_INLINE VU operator()(const ConvertPlan& p, VU bits, VU u24) const {
    const DF df;
    const DU du;
    const DI di;
    const VI ai = hn::BitCast(di, hn::And(bits, hn::Set(du, 0x7FFFFFFFu)));
    const auto neg_i = hn::Lt(hn::BitCast(di, bits), hn::Zero(di));
    // Beyond int_clamp everything saturates, so clamping first keeps t small and exact.
    const VF a = hn::Min(hn::BitCast(df, ai), hn::Set(df, p.int_clamp));
    const VI n = RoundOnGrid<M>(a, hn::RebindMask(df, neg_i), u24);
    VI v = hn::IfThenElse(neg_i, hn::Neg(n), n);
    v = hn::Min(hn::Max(v, hn::Set(di, p.int_lo)), hn::Set(di, p.int_hi));
    v = hn::IfThenElse(hn::Gt(ai, hn::Set(di, 0x7F800000)), hn::Set(di, p.int_hi), v);  // NaN
    return hn::And(hn::BitCast(du, v), hn::Set(du, p.code_mask));
  }
};

template <bool kStochastic>
struct LutEncoder {
  static constexpr bool kRandom = kStochastic;
  HWY_INLINE VU operator()(const ConvertPlan& p, VU bits, VU u24) const {
    const DF df;
    const DI di;
    const VF x = hn::BitCast(df, bits);
    // pos = how many codebook values are <= x (branch-free binary search; NaN gives 0).
    VI pos = hn::Zero(di);
    for (int step = p.lut_search_size / 2; step >= 1; step /= 2) {
      const VF probe = hn::GatherIndex(df, p.lut_sorted.data(), hn::Add(pos, hn::Set(di, step - 1)));
      pos = hn::IfThenElse(hn::RebindMask(di, hn::Le(probe, x)), hn::Add(pos, hn::Set(di, step)), pos);
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
    code = hn::IfThenElse(hn::Gt(pos, hn::Set(di, p.lut_count - 1)), last, code);  // at or past the last
    code = hn::IfThenElse(hn::RebindMask(di, hn::IsNaN(x)), last, code);
    return hn::BitCast(DU(), code);
  }
};

// ---- per-kind decoders: codes (already masked to the format's width) -> float32 ----------------

struct FloatDecoder {
  HWY_INLINE VF operator()(const ConvertPlan& p, VU code) const {
    const DF df;
    const DU du;
    const DI di;
    const VU mag = hn::And(code, hn::Set(du, p.mag_mask));
    const VI mag_i = hn::BitCast(di, mag);
    const VU normal = hn::Add(hn::ShiftLeftSame(mag, p.shift), hn::Set(du, p.decode_normal_add));
    const VF low = hn::Mul(hn::Mul(hn::ConvertTo(df, hn::Add(mag_i, hn::Set(di, p.decode_low_add))),
                                   hn::Set(df, p.decode_low_scale1)),
                           hn::Set(df, p.decode_low_scale2));
    VU v = hn::IfThenElse(hn::RebindMask(du, hn::Lt(mag_i, hn::Set(di, p.decode_low_limit))),
                          hn::BitCast(du, low), normal);
    v = hn::IfThenElse(hn::RebindMask(du, hn::Eq(mag_i, hn::Set(di, p.decode_inf_mag))),
                       hn::Set(du, 0x7F800000u), v);
    v = hn::IfThenElse(hn::RebindMask(du, hn::Gt(mag_i, hn::Set(di, p.decode_nan_mag - 1))),
                       hn::Set(du, 0x7FC00000u), v);
    v = hn::Or(v, hn::ShiftLeftSame(hn::And(code, hn::Set(du, p.sign_bit)), p.decode_sign_shift));
    if (p.decode_fnuz_nan) v = hn::IfThenElse(hn::Eq(code, hn::Set(du, p.sign_bit)), hn::Set(du, 0x7FC00000u), v);
    return hn::BitCast(df, v);
  }
};

struct IntDecoder {
  HWY_INLINE VF operator()(const ConvertPlan& p, VU code) const {
    const DI di;
    VI v = hn::BitCast(di, code);
    if (p.int_lo < 0) {
      const int pad = 32 - p.format.int_bits;  // sign-extend from int_bits
      v = hn::ShiftRightSame(hn::ShiftLeftSame(v, pad), pad);
    }
    return hn::ConvertTo(DF(), v);
  }
};

struct LutDecoder {
  HWY_INLINE VF operator()(const ConvertPlan& p, VU code) const {
    return hn::GatherIndex(DF(), p.lut_decode.data(), hn::BitCast(DI(), code));
  }
};

// ---- loops: full vectors, then the tail staged through small buffers ---------------------------

constexpr size_t kMaxLanes = 64;  // >= lanes of float32 on every target

template <class Src, class Code, class Encoder>
void EncodeLoop(const ConvertPlan& p, const typename Src::T* in, size_t n, uint64_t first, Code* out) {
  const DU du;
  const size_t lanes = hn::Lanes(du);
  const Encoder encode;
  const auto lo = uint32_t(first);
  const uint32_t hi_key = p.key.k1 ^ uint32_t(first >> 32);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(i), hi_key) : hn::Zero(du);
    StoreCodes(encode(p, LoadBits(Src(), in + i), u24), out + i);
  }
  if (i < n) {
    typename Src::T in_tail[kMaxLanes] = {};
    Code out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(in[0]));
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(i), hi_key) : hn::Zero(du);
    StoreCodes(encode(p, LoadBits(Src(), in_tail), u24), out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(out[0]));
  }
}

template <class Src, class Encoder, class Decoder>
void FakeQuantLoop(const ConvertPlan& p, const typename Src::T* in, size_t n, uint64_t first, float* out) {
  const DU du;
  const DF df;
  const size_t lanes = hn::Lanes(du);
  const Encoder encode;
  const Decoder decode;
  const auto lo = uint32_t(first);
  const uint32_t hi_key = p.key.k1 ^ uint32_t(first >> 32);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(i), hi_key) : hn::Zero(du);
    hn::StoreU(decode(p, encode(p, LoadBits(Src(), in + i), u24)), df, out + i);
  }
  if (i < n) {
    typename Src::T in_tail[kMaxLanes] = {};
    float out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(in[0]));
    const VU u24 = Encoder::kRandom ? RandomU24(p, lo + uint32_t(i), hi_key) : hn::Zero(du);
    hn::StoreU(decode(p, encode(p, LoadBits(Src(), in_tail), u24)), df, out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(float));
  }
}

template <class Code, class Decoder>
void DecodeLoop(const ConvertPlan& p, const Code* in, size_t n, float* out) {
  const DU du;
  const DF df;
  const size_t lanes = hn::Lanes(du);
  const Decoder decode;
  const VU mask = hn::Set(du, p.code_mask);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(decode(p, hn::And(LoadCodes(in + i), mask)), df, out + i);
  if (i < n) {
    Code in_tail[kMaxLanes] = {};
    float out_tail[kMaxLanes];
    std::memcpy(in_tail, in + i, (n - i) * sizeof(Code));
    hn::StoreU(decode(p, hn::And(LoadCodes(in_tail), mask)), df, out_tail);
    std::memcpy(out + i, out_tail, (n - i) * sizeof(float));
  }
}

// ---- dispatch on the run-time parameters (outside every loop) ------------------------------------

template <class Encoder>
void EncodeTyped(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first, void* codes,
                 int code_bytes) {
  const auto run = [&](auto src) {
    using Src = decltype(src);
    const auto* x = static_cast<const typename Src::T*>(in);
    if (code_bytes == 1) EncodeLoop<Src, uint8_t, Encoder>(p, x, n, first, static_cast<uint8_t*>(codes));
    else if (code_bytes == 2) EncodeLoop<Src, uint16_t, Encoder>(p, x, n, first, static_cast<uint16_t*>(codes));
    else EncodeLoop<Src, uint32_t, Encoder>(p, x, n, first, static_cast<uint32_t*>(codes));
  };
  if (type == SourceType::F32) run(SrcF32());
  else if (type == SourceType::BF16) run(SrcBF16());
  else run(SrcFP16());
}

template <class Encoder, class Decoder>
void FakeQuantTyped(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first, float* out) {
  if (type == SourceType::F32) FakeQuantLoop<SrcF32, Encoder, Decoder>(p, static_cast<const float*>(in), n, first, out);
  else if (type == SourceType::BF16) FakeQuantLoop<SrcBF16, Encoder, Decoder>(p, static_cast<const uint16_t*>(in), n, first, out);
  else FakeQuantLoop<SrcFP16, Encoder, Decoder>(p, static_cast<const uint16_t*>(in), n, first, out);
}

// Calls fn.template operator()<Encoder, Decoder>() for the plan's kind and mode.
template <class Fn>
void WithCodec(const ConvertPlan& p, Fn&& fn) {
  const RoundMode mode = p.options.mode;
  switch (p.format.kind) {
    case FormatKind::Float:
      switch (mode) {
        case RoundMode::NearestEven: return fn(FloatEncoder<RoundMode::NearestEven>(), FloatDecoder());
        case RoundMode::NearestAway: return fn(FloatEncoder<RoundMode::NearestAway>(), FloatDecoder());
        case RoundMode::TowardZero: return fn(FloatEncoder<RoundMode::TowardZero>(), FloatDecoder());
        case RoundMode::Up: return fn(FloatEncoder<RoundMode::Up>(), FloatDecoder());
        case RoundMode::Down: return fn(FloatEncoder<RoundMode::Down>(), FloatDecoder());
        case RoundMode::Stochastic: return fn(FloatEncoder<RoundMode::Stochastic>(), FloatDecoder());
      }
      break;
    case FormatKind::Int:
      switch (mode) {
        case RoundMode::NearestEven: return fn(IntEncoder<RoundMode::NearestEven>(), IntDecoder());
        case RoundMode::NearestAway: return fn(IntEncoder<RoundMode::NearestAway>(), IntDecoder());
        case RoundMode::TowardZero: return fn(IntEncoder<RoundMode::TowardZero>(), IntDecoder());
        case RoundMode::Up: return fn(IntEncoder<RoundMode::Up>(), IntDecoder());
        case RoundMode::Down: return fn(IntEncoder<RoundMode::Down>(), IntDecoder());
        case RoundMode::Stochastic: return fn(IntEncoder<RoundMode::Stochastic>(), IntDecoder());
      }
      break;
    case FormatKind::Lut:
      if (mode == RoundMode::Stochastic) return fn(LutEncoder<true>(), LutDecoder());
      return fn(LutEncoder<false>(), LutDecoder());
  }
}

void Encode(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first, void* codes,
            int code_bytes) {
  WithCodec(p, [&](auto encoder, auto) {
    EncodeTyped<decltype(encoder)>(p, in, type, n, first, codes, code_bytes);
  });
}

void FakeQuant(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first, float* out) {
  WithCodec(p, [&](auto encoder, auto decoder) {
    FakeQuantTyped<decltype(encoder), decltype(decoder)>(p, in, type, n, first, out);
  });
}

template <class Decoder>
void DecodeTyped(const ConvertPlan& p, const void* codes, int code_bytes, size_t n, float* out) {
  if (code_bytes == 1) DecodeLoop<uint8_t, Decoder>(p, static_cast<const uint8_t*>(codes), n, out);
  else if (code_bytes == 2) DecodeLoop<uint16_t, Decoder>(p, static_cast<const uint16_t*>(codes), n, out);
  else DecodeLoop<uint32_t, Decoder>(p, static_cast<const uint32_t*>(codes), n, out);
}

void Decode(const ConvertPlan& p, const void* codes, int code_bytes, size_t n, float* out) {
  switch (p.format.kind) {
    case FormatKind::Float:
      return DecodeTyped<FloatDecoder>(p, codes, code_bytes, n, out);
    case FormatKind::Int:
      return DecodeTyped<IntDecoder>(p, codes, code_bytes, n, out);
    case FormatKind::Lut:
      return DecodeTyped<LutDecoder>(p, codes, code_bytes, n, out);
  }
}

// Registers this target's kernels at start-up.
const bool kRegistered = (register_simd_backend({std::string("hwy:") + hwy::TargetName(HWY_TARGET),
                                                 HWY_TARGET, &Encode, &Decode, &FakeQuant}),
                          true);

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <mutex>

#include "lowbit/error.h"

namespace lowbit::kernels {
namespace {
std::vector<ConvertBackend>& simd_registry() {
  static std::vector<ConvertBackend> backends;
  return backends;
}
}  // namespace

void register_simd_backend(const ConvertBackend& backend) { simd_registry().push_back(backend); }

std::vector<std::string> compiled_simd_targets() {
  std::vector<std::string> names;
  for (const ConvertBackend& b : simd_registry()) names.push_back(b.name);
  return names;
}

// Defined here (not beside the reference) so that linking the registry links the registrations.
const std::vector<ConvertBackend>& convert_backends() {
  static const std::vector<ConvertBackend> backends = [] {
    std::vector<ConvertBackend> list = {reference_convert_backend()};
    std::vector<ConvertBackend> simd;
    for (const ConvertBackend& b : simd_registry())
      if ((hwy::SupportedTargets() & b.hwy_target) != 0) simd.push_back(b);
    // Highway target bits: a smaller bit is a better target. Best last.
    std::sort(simd.begin(), simd.end(),
              [](const ConvertBackend& a, const ConvertBackend& b) { return a.hwy_target > b.hwy_target; });
    list.insert(list.end(), simd.begin(), simd.end());
    return list;
  }();
  return backends;
}

const ConvertBackend& default_convert_backend() { return convert_backends().back(); }

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
