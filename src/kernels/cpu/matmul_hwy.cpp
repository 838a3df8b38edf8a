// Packed-weight matrix-vector products and row decoding with Highway, compiled for every SIMD
// target and chosen at run time. Each weight is decoded to exactly the float32 the reference
// gives it ((lut[code] - offset) * scale, the same operations in the same order); only the order
// of the float32 sums differs from the reference: every output is the sum of 2 * lanes running
// partial sums (one per lane, for the low and the high half of each 32-element block), each over
// padded_cols / (2 * lanes) products in column order, added up at the end.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below runs once per target.
#include "hwy/highway.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/matmul_reference.h"  // packed_code: the layout's definition
#include "lowbit/kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;
using D8 = hn::Rebind<uint8_t, DU>;
using D16 = hn::Rebind<uint16_t, DU>;

// The weights stream from memory once per product, in small loads the hardware prefetcher does
// not run far enough ahead of (SmolLM2 mxfp4 decode: 37 -> 60 tokens/s with this): ask for the
// bytes kPrefetchAhead ahead of the ones being decoded.
constexpr size_t kPrefetchAhead = 512;
HWY_INLINE void PrefetchAhead(const void* p) {
  __builtin_prefetch(static_cast<const uint8_t*>(p) + kPrefetchAhead);
}

// A 16-entry table of float32 spans 16 / lanes vectors (1 on AVX-512, 4 on 128-bit targets).
constexpr size_t kParts = 16 / HWY_LANES(float);
static_assert(kParts >= 1 && 16 % HWY_LANES(float) == 0, "a table fills whole vectors");

// A 16-entry table of float32 held in kParts vectors, looked up by 4-bit indices.
struct Table16 {
  VF part[kParts];
};

HWY_INLINE VF Lookup(const Table16& t, VU index) {
  const DF d;
  const DU du;
  const DI di;
  if (kParts == 1) return hn::TableLookupLanes(t.part[0], hn::IndicesFromVec(d, index));
  const size_t lanes = hn::Lanes(d);
  const auto within =
      hn::IndicesFromVec(d, hn::BitCast(di, hn::And(index, hn::Set(du, lanes - 1))));
  VF v = hn::TableLookupLanes(t.part[0], within);
  for (size_t p = 1; p < kParts; ++p) {
    const auto in_part =
        hn::RebindMask(d, hn::Gt(hn::BitCast(di, index), hn::Set(di, int(p * lanes) - 1)));
    v = hn::IfThenElse(in_part, hn::TableLookupLanes(t.part[p], within), v);
  }
  return v;
}

// The scales of row r's groups as float32 (m.scale(r, g) for every g), in a per-thread buffer:
// the branches on how scales are stored stay out of the loops.
HWY_INLINE const float* RowScales(const PackedMatrix& m, size_t r) {
  const size_t groups = m.groups_per_row;
  if (!m.scales.empty()) return m.scales.data() + r * groups;
  thread_local std::vector<float> row;
  row.resize(groups);
  const uint8_t* codes = m.scale_codes.data() + r * groups;
  if (m.has_global)
    for (size_t g = 0; g < groups; ++g) row[g] = m.scale_lut[codes[g]] * m.global;
  else
    for (size_t g = 0; g < groups; ++g) row[g] = m.scale_lut[codes[g]];
  return row.data();
}

// The weights of one 32-element Lut4 block, handed to `use(w, column)` one vector at a time: the
// low nibbles (columns e .. e+15) with table `lo`, the high nibbles (e+16 .. e+31) with `hi`.
template <class Use>
HWY_INLINE void Lut4Block(const uint8_t* block, size_t e, const Table16& lo, const Table16& hi,
                          const Use& use) {
  const DU du;
  const D8 d8;
  const size_t lanes = hn::Lanes(du);
  for (size_t k = 0; k < 16; k += lanes) {
    const VU v = hn::PromoteTo(du, hn::LoadU(d8, block + k));
    use(Lookup(lo, hn::And(v, hn::Set(du, 0xFu))), e + k, 0);
    use(Lookup(hi, hn::ShiftRight<4>(v)), e + 16 + k, 1);
  }
}

// Walks one row's Lut4 blocks with each half's scaled table.
template <class Use>
HWY_INLINE void Lut4Row(const PackedMatrix& m, size_t r, const Use& use) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const uint8_t* codes = m.codes.data() + r * m.row_bytes;
  const float* scales = RowScales(m, r);
  const float* offsets = m.offsets.empty() ? nullptr : m.offsets.data() + r * m.groups_per_row;
  Table16 base, lo, hi;
  for (size_t p = 0; p < kParts; ++p) base.part[p] = hn::LoadU(d, m.lut.data() + p * lanes);
  // Entry i of group g's table: (lut[i] - offset) * scale, as packed_weight() computes it.
  const auto table_of = [&](size_t g, Table16& t) HWY_ATTR {
    const VF scale = hn::Set(d, scales[g]);
    for (size_t p = 0; p < kParts; ++p)
      t.part[p] =
          hn::Mul(offsets ? hn::Sub(base.part[p], hn::Set(d, offsets[g])) : base.part[p], scale);
  };
  if (m.group == 16) {  // NVFP4: the two halves of a block are two groups
    for (size_t b = 0, e = 0; e < m.padded_cols; ++b, e += PackedMatrix::kBlock) {
      table_of(2 * b, lo);
      table_of(2 * b + 1, hi);
      PrefetchAhead(codes + 16 * b);
      Lut4Block(codes + 16 * b, e, lo, hi, use);
    }
    return;
  }
  for (size_t g = 0; g < m.groups_per_row; ++g) {  // groups are whole blocks
    table_of(g, lo);
    const size_t end = std::min(m.padded_cols, (g + 1) * m.group);
    for (size_t e = g * m.group; e < end; e += PackedMatrix::kBlock) {
      PrefetchAhead(codes + e / 2);
      Lut4Block(codes + e / 2, e, lo, lo, use);
    }
  }
}

// lut[code] for one vector of codes, computed as kDecode (m.byte_decode) says.
template <ByteDecode kDecode>
HWY_INLINE VF CodeValues(const PackedMatrix& m, VU code) {
  const DF d;
  const DU du;
  const DI di;
  switch (kDecode) {
    case ByteDecode::Signed:  // int8: sign-extend the byte
      return hn::ConvertTo(d, hn::ShiftRight<24>(hn::BitCast(di, hn::ShiftLeft<24>(code))));
    case ByteDecode::Unsigned:
      return hn::ConvertTo(d, hn::BitCast(di, code));
    case ByteDecode::Minifloat: {
      // E, M placed as float32 fields with the exponent rebiased (E >= 1), or M converted and
      // scaled (E = 0). Never a float32 subnormal: an operation on one takes a microcode assist
      // of ~100 cycles (FP6 e2m3, whose codes are often subnormal, ran at 0.4 GB/s through it).
      const MinifloatDecode& f = m.minifloat;
      const VU mag = hn::And(code, hn::Set(du, (1u << f.magnitude_bits) - 1));
      const VU sign = hn::ShiftLeftSame(hn::ShiftRightSame(code, f.magnitude_bits), 31);
      const int shift = 23 - f.man_bits;
      const VF normal =
          hn::BitCast(d, hn::Add(hn::ShiftLeftSame(mag, shift), hn::Set(du, f.exponent_offset)));
      const VF subnormal =
          hn::Mul(hn::ConvertTo(d, hn::BitCast(di, mag)), hn::Set(d, f.subnormal_unit));
      const auto is_subnormal =
          hn::RebindMask(d, hn::Lt(hn::BitCast(di, mag), hn::Set(di, 1 << f.man_bits)));
      VF v = hn::Or(hn::IfThenElse(is_subnormal, subnormal, normal), hn::BitCast(d, sign));
      if (f.nan_magnitude >= 0)
        v = hn::IfThenElse(hn::RebindMask(d, hn::Eq(mag, hn::Set(du, uint32_t(f.nan_magnitude)))),
                           hn::NaN(d), v);
      if (f.special_from >= 0) {  // E all ones: inf for M = 0, NaN otherwise
        const VU special =
            hn::Or(hn::Or(sign, hn::Set(du, 0x7F800000u)),
                   hn::ShiftLeftSame(hn::And(mag, hn::Set(du, (1u << f.man_bits) - 1)), shift));
        const auto is_special =
            hn::RebindMask(d, hn::Gt(hn::BitCast(di, mag), hn::Set(di, f.special_from - 1)));
        v = hn::IfThenElse(is_special, hn::BitCast(d, special), v);
      }
      return v;
    }
    case ByteDecode::Table:
      break;
  }
  return hn::GatherIndex(d, m.lut.data(), hn::BitCast(di, code));
}

// lut[code] for one vector of Lut8 codes.
template <ByteDecode kDecode>
HWY_INLINE VF ByteValues(const PackedMatrix& m, const uint8_t* p) {
  if (kDecode == ByteDecode::Signed)  // a sign-extending load
    return hn::ConvertTo(DF(), hn::PromoteTo(DI(), hn::LoadU(hn::Rebind<int8_t, DI>(),
                                                             reinterpret_cast<const int8_t*>(p))));
  return CodeValues<kDecode>(m, hn::PromoteTo(DU(), hn::LoadU(D8(), p)));
}

// Calls f(std::integral_constant<ByteDecode, m.byte_decode>()): one loop per decode, chosen once
// per row rather than per vector.
template <class F>
HWY_INLINE void WithByteDecode(const PackedMatrix& m, const F& f) {
  switch (m.byte_decode) {
    case ByteDecode::Signed:
      return f(std::integral_constant<ByteDecode, ByteDecode::Signed>());
    case ByteDecode::Unsigned:
      return f(std::integral_constant<ByteDecode, ByteDecode::Unsigned>());
    case ByteDecode::Minifloat:
      return f(std::integral_constant<ByteDecode, ByteDecode::Minifloat>());
    case ByteDecode::Table:
      return f(std::integral_constant<ByteDecode, ByteDecode::Table>());
  }
}

// Walks one row of Split6 codes (matmul.h) a vector at a time: the top 4 bits from the nibble
// bytes as Lut4 reads them, the low 2 bits shifted out of each half's 32-bit word.
template <class Use>
HWY_INLINE void Split6Row(const PackedMatrix& m, size_t r, const Use& use) {
  const DF d;
  const DU du;
  const D8 d8;
  const size_t lanes = hn::Lanes(du);
  const uint8_t* codes = m.codes.data() + r * m.row_bytes;
  const float* scales = RowScales(m, r);
  const float* offsets = m.offsets.empty() ? nullptr : m.offsets.data() + r * m.groups_per_row;
  // Lane l of the vector starting at element k of a half takes bits 2 (k + l) of the word.
  const VU lane_shift = hn::ShiftLeft<1>(hn::Iota(du, 0));
  WithByteDecode(m, [&](auto decode) HWY_ATTR {
    constexpr ByteDecode kDecode = decltype(decode)::value;
    const auto half = [&](VU high, uint32_t low_word, size_t k, size_t g, size_t e,
                          int h) HWY_ATTR {
      const VU shift = hn::Add(lane_shift, hn::Set(du, uint32_t(2 * k)));
      const VU low = hn::And(hn::Shr(hn::Set(du, low_word), shift), hn::Set(du, 3u));
      VF w = CodeValues<kDecode>(m, hn::Or(hn::ShiftLeft<2>(high), low));
      if (offsets) w = hn::Sub(w, hn::Set(d, offsets[g]));
      use(hn::Mul(w, hn::Set(d, scales[g])), e, h);
    };
    for (size_t b = 0, e = 0; e < m.padded_cols; ++b, e += PackedMatrix::kBlock) {
      const uint8_t* block = codes + b * PackedMatrix::kSplit6BlockBytes;
      PrefetchAhead(block);
      uint32_t low_words[2];
      std::memcpy(low_words, block + 16, 8);
      const size_t g_lo = e / m.group, g_hi = (e + 16) / m.group;
      for (size_t k = 0; k < 16; k += lanes) {
        const VU v = hn::PromoteTo(du, hn::LoadU(d8, block + k));
        half(hn::And(v, hn::Set(du, 0xFu)), low_words[0], k, g_lo, e + k, 0);
        half(hn::ShiftRight<4>(v), low_words[1], k, g_hi, e + 16 + k, 1);
      }
    }
  });
}

// binary16 to float32 for one vector: F16C's conversion on AVX2 / AVX-512; elsewhere the fields
// rebiased (Highway's portable conversion reads exponent 31 as a number, not inf / NaN).
HWY_INLINE VF HalfValues(const uint16_t* p) {
  const DF d;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  return hn::PromoteTo(
      d, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), reinterpret_cast<const hwy::float16_t*>(p)));
#else
  const DU du;
  const DI di;
  const VU h = hn::PromoteTo(du, hn::LoadU(D16(), p));
  const VU sign = hn::ShiftLeft<31>(hn::ShiftRight<15>(h));
  const VU mag = hn::And(h, hn::Set(du, 0x7FFFu));
  const VF normal = hn::BitCast(d, hn::Add(hn::ShiftLeft<13>(mag), hn::Set(du, 112u << 23)));
  const VF subnormal = hn::Mul(hn::ConvertTo(d, hn::BitCast(di, mag)), hn::Set(d, 0x1p-24f));
  const VF special = hn::BitCast(d, hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(mag)));
  VF v = hn::IfThenElse(hn::RebindMask(d, hn::Lt(mag, hn::Set(du, 0x400u))), subnormal, normal);
  v = hn::IfThenElse(hn::RebindMask(d, hn::Gt(mag, hn::Set(du, 0x7BFFu))), special, v);
  return hn::Or(v, hn::BitCast(d, sign));
#endif
}

// Walks one row of Lut8, BF16 or F16 codes a vector at a time. kUnscaled: the codes' values
// without the group scale (for a caller that applies a row's one scale to its sums).
template <bool kUnscaled = false, class Use>
HWY_INLINE void ByteRow(const PackedMatrix& m, size_t r, const Use& use) {
  const auto scaled = [](VF w, VF scale) HWY_ATTR { return kUnscaled ? w : hn::Mul(w, scale); };
  const DF d;
  const DU du;
  const size_t lanes = hn::Lanes(d);
  const uint8_t* codes = m.codes.data() + r * m.row_bytes;
  if (m.coding == WeightCoding::BF16) {
    const D16 d16;
    const uint16_t* bits = reinterpret_cast<const uint16_t*>(codes);
    for (size_t e = 0; e < m.padded_cols; e += lanes) {
      PrefetchAhead(bits + e);
      use(hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, bits + e)))), e,
          (e / lanes) & 1);
    }
    return;
  }
  if (m.coding == WeightCoding::F16) {
    const uint16_t* bits = reinterpret_cast<const uint16_t*>(codes);
    for (size_t e = 0; e < m.padded_cols; e += lanes) {
      PrefetchAhead(bits + e);
      use(HalfValues(bits + e), e, (e / lanes) & 1);
    }
    return;
  }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if (m.has_bf16_magnitudes && m.offsets.empty() && m.group % 32 == 0) {
    // 32 codes at a time: the magnitude's bf16 from two 64-entry tables (vpermt2w), the sign
    // bit moved over, widened to float32 by a shift (groups of 16 take the field decode).
    const __m512i* t = reinterpret_cast<const __m512i*>(m.bf16_magnitudes.data());
    const __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 1);
    const __m512i t2 = _mm512_loadu_si512(t + 2), t3 = _mm512_loadu_si512(t + 3);
    const float* scales = RowScales(m, r);
    for (size_t g = 0; g < m.groups_per_row; ++g) {
      const VF scale = hn::Set(d, scales[g]);
      const size_t end = std::min(m.padded_cols, (g + 1) * m.group);
      for (size_t e = g * m.group; e < end; e += 32) {
        PrefetchAhead(codes + e);
        const __m512i c =
            _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + e)));
        const __m512i mag = _mm512_and_si512(c, _mm512_set1_epi16(0x7F));
        const __m512i low = _mm512_permutex2var_epi16(t0, mag, t1);   // magnitudes 0..63
        const __m512i high = _mm512_permutex2var_epi16(t2, mag, t3);  // 64..127
        __m512i bf =
            _mm512_mask_blend_epi16(_mm512_test_epi16_mask(c, _mm512_set1_epi16(0x40)), low, high);
        bf = _mm512_or_si512(bf, _mm512_slli_epi16(_mm512_srli_epi16(c, 7), 15));
        const VF lo{_mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bf)), 16))};
        const VF hi{_mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(bf, 1)), 16))};
        use(scaled(lo, scale), e, 0);
        use(scaled(hi, scale), e + 16, 1);
      }
    }
    return;
  }
#endif
  WithByteDecode(m, [&](auto decode) HWY_ATTR {
    const float* scales = RowScales(m, r);
    const float* offsets = m.offsets.empty() ? nullptr : m.offsets.data() + r * m.groups_per_row;
    for (size_t g = 0; g < m.groups_per_row; ++g) {
      const VF scale = hn::Set(d, scales[g]);
      const size_t end = std::min(m.padded_cols, (g + 1) * m.group);
      for (size_t e = g * m.group; e < end; e += lanes) {
        PrefetchAhead(codes + e);
        VF w = ByteValues<decltype(decode)::value>(m, codes + e);
        if (offsets) w = hn::Sub(w, hn::Set(d, offsets[g]));
        use(scaled(w, scale), e, (e / lanes) & 1);
      }
    }
  });
}

template <class Use>
HWY_INLINE void ForEachWeight(const PackedMatrix& m, size_t r, const Use& use) {
  if (m.coding == WeightCoding::Lut4)
    Lut4Row(m, r, use);
  else if (m.coding == WeightCoding::Split6)
    Split6Row(m, r, use);
  else
    ByteRow(m, r, use);
}

void DecodeRows(const PackedMatrix& m, size_t r0, size_t r1, float* out) {
  const DF d;
  for (size_t r = r0; r < r1; ++r) {
    float* row = out + (r - r0) * m.padded_cols;
    ForEachWeight(m, r, [&](VF w, size_t e, int) HWY_ATTR { hn::StoreU(w, d, row + e); });
  }
}

template <size_t N>
void GemvN(const PackedMatrix& m, size_t r0, size_t r1, const float* x, float* y, size_t ldy) {
  const DF d;
  const size_t pc = m.padded_cols;
  // Byte codes with one scale per row (int8 / fp8 per channel): the codes' products summed, the
  // row's scale applied once to each sum instead of to every weight (two roundings more in the
  // summation bound, one multiply less per vector).
  const bool scale_after =
      m.coding == WeightCoding::Lut8 && m.groups_per_row == 1 && m.offsets.empty();
  for (size_t r = r0; r < r1; ++r) {
    VF acc[2][N];
    for (size_t j = 0; j < N; ++j) acc[0][j] = acc[1][j] = hn::Zero(d);
    const auto fma = [&](VF w, size_t e, int half) HWY_ATTR {
      for (size_t j = 0; j < N; ++j)
        acc[half][j] = hn::MulAdd(w, hn::LoadU(d, x + j * pc + e), acc[half][j]);
    };
    if (scale_after)
      ByteRow<true>(m, r, fma);
    else
      ForEachWeight(m, r, fma);
    const float scale = scale_after ? RowScales(m, r)[0] : 1.0f;
    for (size_t j = 0; j < N; ++j) {
      const float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc[0][j], acc[1][j])));
      y[j * ldy + r] = scale_after ? sum * scale : sum;
    }
  }
}

// Calls f(std::integral_constant<size_t, n>) for n in 1 .. kMaxGemvRows: the kernels keep one
// accumulator per input row in registers, so the row count is a template parameter.
template <class F>
HWY_INLINE void WithRowCount(size_t n, const F& f) {
  static_assert(kMaxGemvRows == 8, "one case per row count");
  switch (n) {
    case 1:
      return f(std::integral_constant<size_t, 1>());
    case 2:
      return f(std::integral_constant<size_t, 2>());
    case 3:
      return f(std::integral_constant<size_t, 3>());
    case 4:
      return f(std::integral_constant<size_t, 4>());
    case 5:
      return f(std::integral_constant<size_t, 5>());
    case 6:
      return f(std::integral_constant<size_t, 6>());
    case 7:
      return f(std::integral_constant<size_t, 7>());
    default:
      return f(std::integral_constant<size_t, 8>());
  }
}

void Gemv(const PackedMatrix& m, size_t r0, size_t r1, const float* x, size_t n, float* y,
          size_t ldy) {
  WithRowCount(n, [&](auto rows) HWY_ATTR { GemvN<decltype(rows)::value>(m, r0, r1, x, y, ldy); });
}

// The integer kernels below use AVX-512 VNNI on the AVX3_DL target (Highway 1.0.3's target string
// names only the 256-bit AVX-VNNI, so the 512-bit one is added here).
#if HWY_TARGET == HWY_AVX3_DL
HWY_PUSH_ATTRIBUTES(HWY_TARGET_STR ",avx512vnni")
#endif

// Exact int8 x int8 dot products: both widened to int16, pairs multiplied and summed into int32
// lanes (pmaddwd, or VNNI's vpdpwssd, which fuses the accumulation), in int32 (no rounding
// anywhere).
template <size_t N>
void GemvI8N(const PackedMatrix& m, size_t r0, size_t r1, const int16_t* x, int32_t* acc,
             size_t ldacc) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const size_t lanes = hn::Lanes(d16), pc = m.padded_cols;
  for (size_t r = r0; r < r1; ++r) {
    const int8_t* w = reinterpret_cast<const int8_t*>(m.codes.data() + r * m.row_bytes);
    hn::Vec<decltype(d32)> sum[N], unused = hn::Zero(d32);
    for (size_t j = 0; j < N; ++j) sum[j] = hn::Zero(d32);
    for (size_t e = 0; e < pc; e += lanes) {
      PrefetchAhead(w + e);
      const auto wv = hn::PromoteTo(d16, hn::LoadU(d8, w + e));
      for (size_t j = 0; j < N; ++j) {
#if HWY_TARGET == HWY_AVX3_DL
        sum[j].raw = _mm512_dpwssd_epi32(sum[j].raw, wv.raw, hn::LoadU(d16, x + j * pc + e).raw);
#else
        sum[j] =
            hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, x + j * pc + e), sum[j], unused);
#endif
      }
    }
    for (size_t j = 0; j < N; ++j)
      acc[j * ldacc + r] = hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum[j], unused)));
  }
}

void GemvI8(const PackedMatrix& m, size_t r0, size_t r1, const int16_t* x, size_t n, int32_t* acc,
            size_t ldacc) {
  WithRowCount(
      n, [&](auto rows) HWY_ATTR { GemvI8N<decltype(rows)::value>(m, r0, r1, x, acc, ldacc); });
}

#if HWY_TARGET == HWY_AVX3_DL
// W8A8 prefill: a tile of up to 16 weight rows repacked as panels of 4 columns (64 bytes: row i's
// 4 bytes at 4i), so one vpdpbusd multiplies 4 consecutive biased activation bytes (broadcast to
// every lane) with 16 rows at once: 64 exact products into 16 int32 sums. J input rows share each
// panel load; the bias (128 per activation) is taken back with the rows' weight sums.
template <size_t J>
HWY_INLINE void GemmI8Rows(const int8_t* panel, size_t quads, const uint8_t* x, size_t pc,
                           const int32_t* bias, size_t rows, int32_t* acc, size_t ldacc) {
  __m512i a[J];
  for (size_t j = 0; j < J; ++j) a[j] = _mm512_setzero_si512();
  for (size_t q = 0; q < quads; ++q) {
    const __m512i w = _mm512_load_si512(panel + 64 * q);
    for (size_t j = 0; j < J; ++j) {
      int32_t four;
      std::memcpy(&four, x + j * pc + 4 * q, 4);
      a[j] = _mm512_dpbusd_epi32(a[j], _mm512_set1_epi32(four), w);
    }
  }
  const __m512i b = _mm512_loadu_si512(bias);
  const __mmask16 keep = __mmask16((1u << rows) - 1);
  for (size_t j = 0; j < J; ++j)
    _mm512_mask_storeu_epi32(acc + j * ldacc, keep, _mm512_sub_epi32(a[j], b));
}

void GemmI8(const PackedMatrix& m, size_t r0, size_t r1, const uint8_t* x_biased, size_t n,
            int32_t* acc, size_t ldacc) {
  const size_t pc = m.padded_cols, quads = pc / 4;
  thread_local std::vector<int8_t> panel_bytes;
  panel_bytes.resize(quads * 64 + 64);
  int8_t* const panel = reinterpret_cast<int8_t*>(  // 64-byte aligned: the loads are aligned
      (reinterpret_cast<uintptr_t>(panel_bytes.data()) + 63) / 64 * 64);
  alignas(64) int32_t bias[16];
  for (size_t rb = r0; rb < r1; rb += 16) {
    const size_t rows = std::min<size_t>(16, r1 - rb);
    std::fill_n(panel, quads * 64, int8_t(0));
    for (size_t i = 0; i < 16; ++i) {
      bias[i] = 0;
      if (i >= rows) continue;
      const int8_t* w = reinterpret_cast<const int8_t*>(m.codes.data() + (rb + i) * m.row_bytes);
      int32_t sum = 0;
      for (size_t c = 0; c < pc; ++c) sum += w[c];
      bias[i] = 128 * sum;
      for (size_t q = 0; q < quads; ++q) std::memcpy(panel + 64 * q + 4 * i, w + 4 * q, 4);
    }
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
      GemmI8Rows<8>(panel, quads, x_biased + j * pc, pc, bias, rows, acc + j * ldacc + rb, ldacc);
    for (; j + 4 <= n; j += 4)
      GemmI8Rows<4>(panel, quads, x_biased + j * pc, pc, bias, rows, acc + j * ldacc + rb, ldacc);
    for (; j < n; ++j)
      GemmI8Rows<1>(panel, quads, x_biased + j * pc, pc, bias, rows, acc + j * ldacc + rb, ldacc);
  }
}
constexpr auto kGemmI8 = &GemmI8;
#else
constexpr void (*kGemmI8)(const PackedMatrix&, size_t, size_t, const uint8_t*, size_t, int32_t*,
                          size_t) = nullptr;  // prefill through decoded tiles instead
#endif

// ---- W4A8 / W4A4: 4-bit weights with an integer table times int8 activation levels ------------
//
// The table values v = lut_int[code] are shifted to u = v + o >= 0 (o = -min v) so that the
// x86 unsigned-by-signed byte multiply (pmaddubsw) applies; sum u x - o sum x = sum v x, the
// correction o * sum x taken per run of 4 elements, so every int32 lane is an exact sum of 4
// products. Each lane is then scaled by its group's scale in float32 (W4A4: times the activation
// block's scale, the two multiplied first).

// Scales of row r per half-block (16 elements): scale(r, g) * int_unit.
HWY_INLINE const float* HalfBlockScales(const PackedMatrix& m, size_t r) {
  thread_local std::vector<float> half;
  const float* scales = RowScales(m, r);
  half.resize(m.padded_cols / 16);
  const size_t per_group = m.group / 16;
  for (size_t g = 0, h = 0; g < m.groups_per_row; ++g)
    for (size_t k = 0; k < per_group && h < half.size(); ++k) half[h++] = scales[g] * m.int_unit;
  return half.data();
}

int TableOffset(const PackedMatrix& m) {
  int lowest = 0;
  for (int8_t v : m.lut_int) lowest = std::min(lowest, int(v));
  return -lowest;
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
// Activations laid out as the kernel reads them, with the per-4-element corrections.
struct W4A8Inputs {
  std::vector<int8_t> x;      // n rows of padded_cols codes, in the kernel's order
  std::vector<int32_t> corr;  // n rows of padded_cols / 4: o * (sum of 4 codes)
};

// AVX-512 reads two blocks at a time and sees their elements in the order [block 0: 0..15,
// block 1: 0..15, block 0: 16..31, block 1: 16..31]; a last lone block (and AVX2, always) in
// order.
HWY_INLINE void PrepareW4A8(const PackedMatrix& m, const int8_t* x, size_t n, int o, bool pairs,
                            W4A8Inputs& in) {
  const size_t pc = m.padded_cols, blocks = pc / 32;
  in.x.resize(n * pc);
  in.corr.resize(n * pc / 4);
  for (size_t j = 0; j < n; ++j) {
    const int8_t* src = x + j * pc;
    int8_t* dst = in.x.data() + j * pc;
    size_t b = 0;
    if (pairs)
      for (; b + 2 <= blocks; b += 2) {
        const int8_t* b0 = src + 32 * b;
        int8_t* d = dst + 32 * b;
        std::copy_n(b0, 16, d);
        std::copy_n(b0 + 32, 16, d + 16);
        std::copy_n(b0 + 16, 16, d + 32);
        std::copy_n(b0 + 48, 16, d + 48);
      }
    std::copy(src + 32 * b, src + pc, dst + 32 * b);
    for (size_t k = 0; k < pc / 4; ++k)
      in.corr[j * pc / 4 + k] = o * (dst[4 * k] + dst[4 * k + 1] + dst[4 * k + 2] + dst[4 * k + 3]);
  }
}

// Sums of 4 products of unsigned (u) and signed (x) bytes in each int32 lane, exact for the
// kernels' ranges (no int16 pair saturates): pmaddubsw + pmaddwd, or one VNNI vpdpbusd.
HWY_INLINE __m256i UnsignedSignedQuads(__m256i u, __m256i x, __m256i ones16) {
#if HWY_TARGET == HWY_AVX3_DL
  // Through the 512-bit instruction: Highway's AVX3_DL target string names AVX-VNNI, so the
  // compiler gives the 256-bit vpdpbusd its VEX encoding, which AVX-512 VNNI CPUs without AVX-VNNI
  // (AMD Zen 4) do not decode (SIGILL). The zmm form is EVEX-encoded; the lanes are independent,
  // so the undefined upper half of the widened operands never reaches the low half.
  (void)ones16;
  return _mm512_castsi512_si256(_mm512_dpbusd_epi32(
      _mm512_setzero_si512(), _mm512_castsi256_si512(u), _mm512_castsi256_si512(x)));
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), ones16);
#endif
}
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
HWY_INLINE __m512i UnsignedSignedQuads(__m512i u, __m512i x, __m512i ones16) {
#if HWY_TARGET == HWY_AVX3_DL
  (void)ones16;
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), ones16);
#endif
}
#endif

// One block (32 weights, natural order) against N activation rows, 256 bits wide.
template <size_t N>
HWY_INLINE void W4A8Block256(const uint8_t* codes, __m256i table, const float* half_scales,
                             const float* x_scales, const W4A8Inputs& in, size_t pc, size_t e,
                             __m256* acc) {
  PrefetchAhead(codes);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes));
  const __m128i nibble = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(v, nibble), hi = _mm_and_si128(_mm_srli_epi16(v, 4), nibble);
  const __m256i u = _mm256_shuffle_epi8(table, _mm256_set_m128i(hi, lo));
  const __m256 scale =
      _mm256_set_m128(_mm_set1_ps(half_scales[e / 16 + 1]), _mm_set1_ps(half_scales[e / 16]));
  const __m256i ones = _mm256_set1_epi16(1);
  const size_t halves = pc / 16, h = e / 16;
  for (size_t j = 0; j < N; ++j) {
    const __m256 scale_j =
        x_scales ? _mm256_mul_ps(scale, _mm256_set_m128(_mm_set1_ps(x_scales[j * halves + h + 1]),
                                                        _mm_set1_ps(x_scales[j * halves + h])))
                 : scale;
    const __m256i xv =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in.x.data() + j * pc + e));
    __m256i p = UnsignedSignedQuads(u, xv, ones);
    p = _mm256_sub_epi32(
        p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in.corr.data() + (j * pc + e) / 4)));
    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale_j, acc[j]);
  }
}

template <size_t N>
void GemvW4A8N(const PackedMatrix& m, size_t r0, size_t r1, const int8_t* x, const float* x_scales,
               float* y, size_t ldy) {
  const size_t pc = m.padded_cols, blocks = pc / 32, halves = pc / 16;
  const int o = TableOffset(m);
  alignas(16) uint8_t shifted[16];
  for (size_t c = 0; c < 16; ++c) shifted[c] = uint8_t(m.lut_int[c] + o);
  const __m128i table128 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(shifted));
  const __m256i table256 = _mm256_broadcastsi128_si256(table128);
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  constexpr bool kPairs = true;
  const __m512i table512 = _mm512_broadcast_i32x4(table128);
  const __m512i ones512 = _mm512_set1_epi16(1);
  const __m512i select = _mm512_set_epi32(3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0);
#else
  constexpr bool kPairs = false;
#endif
  thread_local W4A8Inputs in;
  PrepareW4A8(m, x, N, o, kPairs, in);
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* codes = m.codes.data() + r * m.row_bytes;
    const float* half_scales = HalfBlockScales(m, r);
    __m256 acc[N];
    for (size_t j = 0; j < N; ++j) acc[j] = _mm256_setzero_ps();
    size_t b = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    __m512 acc512[N];
    for (size_t j = 0; j < N; ++j) acc512[j] = _mm512_setzero_ps();
    for (; b + 2 <= blocks; b += 2) {
      PrefetchAhead(codes + 16 * b);
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 16 * b));
      const __m256i nibble = _mm256_set1_epi8(0x0F);
      const __m256i lo = _mm256_and_si256(v, nibble);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
      const __m512i u =
          _mm512_shuffle_epi8(table512, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
      // Lanes 0-3: block b's first half, 4-7: block b+1's first half, 8-11, 12-15: second halves.
      const __m512 scale =
          _mm512_permutexvar_ps(select, _mm512_castps128_ps512(_mm_loadu_ps(half_scales + 2 * b)));
      const size_t e = 32 * b;
      for (size_t j = 0; j < N; ++j) {
        const __m512i xv = _mm512_loadu_si512(in.x.data() + j * pc + e);
        __m512i p = UnsignedSignedQuads(u, xv, ones512);
        p = _mm512_sub_epi32(p, _mm512_loadu_si512(in.corr.data() + (j * pc + e) / 4));
        const __m512 scale_j =
            x_scales ? _mm512_mul_ps(scale, _mm512_permutexvar_ps(
                                                select, _mm512_castps128_ps512(_mm_loadu_ps(
                                                            x_scales + j * halves + 2 * b))))
                     : scale;
        acc512[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale_j, acc512[j]);
      }
    }
#endif
    for (; b < blocks; ++b)
      W4A8Block256<N>(codes + 16 * b, table256, half_scales, x_scales, in, pc, 32 * b, acc);
    for (size_t j = 0; j < N; ++j) {
      const __m128 a = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
      float sum = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(a, a), _mm_hadd_ps(a, a)));
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
      sum += _mm512_reduce_add_ps(acc512[j]);
#endif
      y[j * ldy + r] = sum;
    }
  }
}
#else
// Other targets: the same sums, one element at a time.
template <size_t N>
void GemvW4A8N(const PackedMatrix& m, size_t r0, size_t r1, const int8_t* x, const float* x_scales,
               float* y, size_t ldy) {
  const size_t pc = m.padded_cols, halves = pc / 16;
  for (size_t r = r0; r < r1; ++r) {
    const float* half_scales = HalfBlockScales(m, r);
    for (size_t j = 0; j < N; ++j) {
      float sum = 0;
      for (size_t h = 0; h < pc / 16; ++h) {
        int32_t part = 0;
        for (size_t c = 16 * h; c < 16 * h + 16; ++c)
          part += int32_t(m.lut_int[packed_code(m, r, c)]) * x[j * pc + c];
        const float scale = x_scales ? half_scales[h] * x_scales[j * halves + h] : half_scales[h];
        sum += float(part) * scale;
      }
      y[j * ldy + r] = sum;
    }
  }
}
#endif

void GemvW4A8(const PackedMatrix& m, size_t r0, size_t r1, const int8_t* x, const float* x_scales,
              size_t n, float* y, size_t ldy) {
  WithRowCount(n, [&](auto rows) HWY_ATTR {
    GemvW4A8N<decltype(rows)::value>(m, r0, r1, x, x_scales, y, ldy);
  });
}

#if HWY_TARGET == HWY_AVX3_DL
HWY_POP_ATTRIBUTES
#endif

// The read-bandwidth probe: sums bytes [0, n) as 64-bit words (n a multiple of 8), vectors wide.
uint64_t ReadBytes(const uint8_t* p, size_t n) {
  const hn::ScalableTag<uint64_t> d;
  const size_t lanes = hn::Lanes(d);
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  const size_t words = n / 8;
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * lanes <= words; i += 4 * lanes) {
    a0 = hn::Add(a0, hn::LoadU(d, w + i));
    a1 = hn::Add(a1, hn::LoadU(d, w + i + lanes));
    a2 = hn::Add(a2, hn::LoadU(d, w + i + 2 * lanes));
    a3 = hn::Add(a3, hn::LoadU(d, w + i + 3 * lanes));
  }
  uint64_t sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < words; ++i) sum += w[i];
  return sum;
}

const bool kRegistered =
    (register_matmul_backend({std::string("hwy:") + hwy::TargetName(HWY_TARGET), HWY_TARGET,
                              HWY_LANES(float), &DecodeRows, &Gemv, &GemvI8, kGemmI8, &GemvW4A8,
                              &ReadBytes}),
     true);

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {
// matmul.cpp calls this, so that linking the registry links every target's registration above.
void link_hwy_matmul_backends() {}
}  // namespace lowbit::kernels
#endif  // HWY_ONCE
