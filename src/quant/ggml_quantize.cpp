// ggml's reference quantizers, re-derived from their definitions so that lowbit writes the same
// bytes llama.cpp's `llama_model_quantize` writes without an importance matrix. Every step follows
// the reference's float32 arithmetic in its order (the layer is built with -ffp-contract=off, as
// ggml-base is built without FMA): where the reference rounds with a truncating cast, a
// half-away `roundf` or the "add 1.5 * 2^23" trick (ties to even), so does this file, and it says
// which. tests/ggml_quantize_crosscheck.py compares every type with libggml's own functions.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "lowbit/format/format.h"
#include "lowbit/format/reference.h"
#include "lowbit/quant/ggml_types.h"
#include "lowbit/util/error.h"
#include "quant/ggml_scales.h"

namespace lowbit {
namespace {

constexpr int kQK = 32;     // elements per block of the simple quants and MXFP4
constexpr int kQK_K = 256;  // elements per super-block of the K-quants

// A little-endian 16-bit field (GGML's fp16 scales and F16 / BF16 elements).
void store_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v & 0xFF);
  p[1] = uint8_t(v >> 8);
}

void store_half(uint8_t* p, float v) {
  store_u16(p, float_to_half(v));
}

// ggml's nearest_int: adding 1.5 * 2^23 leaves the integer part in the low mantissa bits, rounded
// to nearest even; valid for |v| < 2^22, which the callers' ranges guarantee.
int nearest_even(float v) {
  return int(std::nearbyint(v));
}

// The element with the largest magnitude, with its sign (the first one on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// Q4_0 / Q5_0: d = (signed max) / -2^(bits-1), so the largest magnitude lands on the most
// negative level; level = trunc(x / d + 2^(bits-1) + 0.5), at most 2^bits - 1.
void quantize_symmetric_block(const float* x, int bits, uint8_t* levels, float& d) {
  const float half_levels = float(1 << (bits - 1));
  d = signed_absmax(x, kQK) / -half_levels;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const int top = (1 << bits) - 1;
  for (int j = 0; j < kQK; ++j)
    levels[j] = uint8_t(std::min(top, int(int8_t(x[j] * id + (half_levels + 0.5f)))));
}

// Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), level = trunc((x - min) / d + 0.5); Q4_1 caps it at
// 15, Q5_1 keeps the low bits of the cast as ggml does (it never exceeds 31 for finite input).
void quantize_affine_block(const float* x, int bits, uint8_t* levels, float& d, float& min) {
  min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < kQK; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  d = (max - min) / float((1 << bits) - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) {
    const float v = (x[j] - min) * id + 0.5f;
    levels[j] = bits == 4 ? uint8_t(std::min(15, int(int8_t(v)))) : uint8_t(v);
  }
}

// 4-bit levels of a run of n elements as ggml packs them: element j in the low nibble of byte j,
// element j + n/2 in the high nibble (n = 32 for the 32-blocks, 16 for NVFP4's sub-blocks).
void pack_nibbles(const uint8_t* levels, uint8_t* qs, int n = kQK) {
  for (int j = 0; j < n / 2; ++j)
    qs[j] = uint8_t((levels[j] & 0xF) | (levels[j + n / 2] & 0xF) << 4);
}

// The fifth bits of a 32-block: element j's at bit j of a little-endian u32.
void pack_fifth_bits(const uint8_t* levels, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < kQK; ++j) bits |= uint32_t((levels[j] >> 4) & 1) << j;
  std::memcpy(qh, &bits, 4);
}

void q4_0(const float* x, uint8_t* b) {
  uint8_t levels[kQK];
  float d;
  quantize_symmetric_block(x, 4, levels, d);
  store_half(b, d);
  pack_nibbles(levels, b + 2);
}

void q5_0(const float* x, uint8_t* b) {
  uint8_t levels[kQK];
  float d;
  quantize_symmetric_block(x, 5, levels, d);
  store_half(b, d);
  pack_fifth_bits(levels, b + 2);
  pack_nibbles(levels, b + 6);
}

void q4_1(const float* x, uint8_t* b) {
  uint8_t levels[kQK];
  float d, min;
  quantize_affine_block(x, 4, levels, d, min);
  store_half(b, d);
  store_half(b + 2, min);
  pack_nibbles(levels, b + 4);
}

void q5_1(const float* x, uint8_t* b) {
  uint8_t levels[kQK];
  float d, min;
  quantize_affine_block(x, 5, levels, d, min);
  store_half(b, d);
  store_half(b + 2, min);
  pack_fifth_bits(levels, b + 4);
  pack_nibbles(levels, b + 8);
}

// Q8_0: d = amax / 127, q = roundf(x / d) (ties away from zero).
void q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_half(b, d);
  for (int j = 0; j < kQK; ++j) b[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
}

// The E2M1 code whose doubled value times `half_scale` is nearest x, the first of equals in code
// order (0, +0.5 ... +6, -0, -0.5 ... -6): ties go to the smaller magnitude.
constexpr int8_t kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
uint8_t nearest_e2m1(float x, float half_scale) {
  uint8_t best = 0;
  float best_err = std::fabs(float(kE2M1Doubled[0]) * half_scale - x);
  for (uint8_t c = 1; c < 16; ++c) {
    const float err = std::fabs(float(kE2M1Doubled[c]) * half_scale - x);
    if (err < best_err) {
      best = c;
      best_err = err;
    }
  }
  return best;
}

// MXFP4: e = floor(log2 amax) - 2 + 127 (OCP's shared exponent for E2M1, emax 2), 0 for an all-zero
// block. For amax < 2^-125 the reference's cast of a negative float is undefined; lowbit clamps to
// 0 there (no trained weight is that small).
void mxfp4(const float* x, uint8_t* b) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const int e = amax > 0.0f ? std::max(0, int(std::floor(std::log2(amax))) - 2 + 127) : 0;
  b[0] = uint8_t(e);
  const float d = mxfp4_half_scale(b[0]);
  uint8_t levels[kQK];
  for (int j = 0; j < kQK; ++j) levels[j] = nearest_e2m1(x[j], d);
  pack_nibbles(levels, b + 1);
}

// ggml's float -> UE4M3 for NVFP4 scales: round half up on the first dropped mantissa bit (not to
// even), subnormals by trunc(x * 512 + 0.5), and every value with exponent >= 8 (256 and above) to
// the largest code 0x7E (448).
uint8_t ue4m3_for_nvfp4(float x) {
  if (!(x > 0.0f)) return 0;
  x = std::min(x, 448.0f);
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  int exp = int((bits >> 23) & 0xFF) - 127 + 7;
  if (exp <= 0) {
    const int man = std::min(7, int(x * 512.0f + 0.5f));
    return man < 1 ? 0 : uint8_t(man);
  }
  if (exp >= 15) return 0x7E;
  int man = int((bits >> 20) & 0x7) + int((bits >> 19) & 1);
  if (man > 7) {
    man = 0;
    if (++exp >= 15) return 0x7E;
  }
  return uint8_t(exp << 3 | man);
}

// NVFP4 (ggml's, one level): per 16 elements the scale ue4m3(amax / 6), elements to the nearest
// E2M1 multiple of it. (lowbit's two-level nvfp4 scheme writes its own scales; see export.)
void nvfp4(const float* x, uint8_t* b) {
  for (int s = 0; s < 4; ++s) {
    const float* xs = x + 16 * s;
    float amax = 0;
    for (int j = 0; j < 16; ++j) amax = std::max(amax, std::fabs(xs[j]));
    b[s] = ue4m3_for_nvfp4(amax / 6.0f);
    const float d = nvfp4_half_scale(b[s]);
    uint8_t codes[16];
    for (int j = 0; j < 16; ++j) codes[j] = nearest_e2m1(xs[j], d);
    pack_nibbles(codes, b + 4 + 8 * s, 16);
  }
}

// ---- K-quants --------------------------------------------------------------------------------

// Q4_K's sub-block fit (ggml's make_qkx2_quants with nmax 15, rmin -1, rdelta 0.1, 20 steps,
// squared error): levels L in [0, 15] and value = scale * L - min_out, chosen among the absmax fit
// and 21 weighted least-squares refits whose step trial scales are (nmax - 1 + 0.1 * is) / (max -
// min).
float fit_scale_and_min(const float* x, const float* w, uint8_t* levels, float& min_out) {
  constexpr int n = 32, nmax = 15, nstep = 20;
  constexpr float rmin = -1.0f, rdelta = 0.1f;
  float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(levels, levels + n, uint8_t(0));
    min_out = -min;
    return 0.0f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(0, std::min(nmax, nearest_even(iscale * (x[i] - min))));
    levels[i] = uint8_t(l);
    const float diff = scale * float(l) + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t trial[n];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_even(iscale * (x[i] - min))));
      trial[i] = uint8_t(l);
      sum_l += w[i] * float(l);
      sum_l2 += w[i] * float(l) * float(l);
      sum_xl += w[i] * float(l) * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * float(trial[i]) + this_min - x[i];
        error += w[i] * (diff * diff);
      }
      if (error < best_error) {
        std::copy(trial, trial + n, levels);
        best_error = error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  min_out = -min;
  return scale;
}

// Q4_K (144 bytes): eight sub-blocks of 32, each fitted with weights sqrt(mean x^2) + |x|; their
// scales and mins quantized to 6 bits against the largest (d = max scale / 63, dmin = max min / 63,
// both fp16), then the elements re-rounded to the stored grid.
void q4_k(const float* x, uint8_t* b) {
  uint8_t levels[kQK_K];
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_and_min(xs, w, levels + 32 * j, mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t* sc = b + 4;
  std::memset(sc, 0, 12);
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    // ggml stores nearest_int's result in a uint8_t before capping at 63.
    ls[j] = std::min<uint8_t>(63, uint8_t(nearest_even(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, uint8_t(nearest_even(inv_min * mins[j])));
    // The 12-byte layout scale_min_k4 reads (src/quant/ggml_types.cpp): sub-blocks 0-3 in the low 6
    // bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 split into nibbles in bytes 8-11 with their
    // top two bits in the high bits of bytes 0-7.
    if (j < 4) {
      sc[j] = ls[j];
      sc[j + 4] = lm[j];
    } else {
      sc[j + 4] = uint8_t((ls[j] & 0xF) | (lm[j] & 0xF) << 4);
      sc[j - 4] |= uint8_t((ls[j] >> 4) << 6);
      sc[j] |= uint8_t((lm[j] >> 4) << 6);
    }
  }
  store_half(b, max_scale / 63.0f);
  store_half(b + 2, max_min / 63.0f);
  const float d_all = half_to_float(uint16_t(b[0] | b[1] << 8));
  const float dmin_all = half_to_float(uint16_t(b[2] | b[3] << 8));
  for (int j = 0; j < 8; ++j) {
    const float d = d_all * float(ls[j]);
    if (d == 0.0f) continue;  // the fit's levels stay
    const float dm = dmin_all * float(lm[j]);
    for (int i = 0; i < 32; ++i)
      levels[32 * j + i] =
          uint8_t(std::max(0, std::min(15, nearest_even((x[32 * j + i] + dm) / d))));
  }
  uint8_t* q = b + 16;
  for (int j = 0; j < kQK_K; j += 64, q += 32)
    for (int l = 0; l < 32; ++l) q[l] = uint8_t(levels[j + l] | levels[j + l + 32] << 4);
}

// Q6_K's sub-block fit (ggml's make_qx_quants with nmax 32, weights x^2): levels in [-32, 31] for
// the scale -(32 + 0.1 is) / max with is in -9..9 that maximises (sum w x l)^2 / sum w l^2.
float fit_symmetric_scale(const float* x, int8_t* levels) {
  constexpr int n = 16, nmax = 32;
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < 1e-15f) {  // ggml's GROUP_MAX_EPS: an all-zero sub-block
    std::fill(levels, levels + n, int8_t(0));
    return 0.0f;
  }
  const auto level = [&](float iscale, int i) {
    return std::max(-nmax, std::min(nmax - 1, nearest_even(iscale * x[i])));
  };
  float iscale = -float(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale, i);
    levels[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale, i);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) levels[i] = int8_t(level(iscale, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q6_K (210 bytes): sixteen sub-blocks of 16 fitted as above; their scales as int8 against the one
// of largest magnitude (d = -max / 128 in fp16), then the elements re-rounded to the stored grid.
void q6_k(const float* x, uint8_t* b) {
  int8_t levels[kQK_K];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = fit_symmetric_scale(x + 16 * ib, levels + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  std::memset(b, 0, 210);
  if (max_abs_scale < 1e-15f) return;  // all zero: d = +0 too
  const float iscale = -128.0f / max_scale;
  store_half(b + 208, 1 / iscale);
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int ib = 0; ib < 16; ++ib) sc[ib] = int8_t(std::min(127, nearest_even(iscale * scales[ib])));
  const float d_all = half_to_float(uint16_t(b[208] | b[209] << 8));
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * float(sc[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      levels[16 * j + i] =
          int8_t(std::max(-32, std::min(31, nearest_even(x[16 * j + i] / d))) + 32);
  }
  // Two halves of 128: ql holds the low nibbles (elements l and l + 64 share byte l, l + 32 and
  // l + 96 byte l + 32), qh the top two bits of l, l + 32, l + 64, l + 96 in bits 0-1 .. 6-7.
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const auto q = [&](int at) { return uint8_t(levels[j + l + at]); };
      ql[l] = uint8_t((q(0) & 0xF) | (q(64) & 0xF) << 4);
      ql[l + 32] = uint8_t((q(32) & 0xF) | (q(96) & 0xF) << 4);
      qh[l] = uint8_t((q(0) >> 4) | (q(32) >> 4) << 2 | (q(64) >> 4) << 4 | (q(96) >> 4) << 6);
    }
  }
}

// ggml's float32 -> bfloat16: round to nearest even, NaN made quiet by setting bit 6.
uint16_t float_to_bf16_ggml(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 64);
  return uint16_t((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

}  // namespace

void pack_ggml_blocks(GgmlType type, const int8_t* levels, const uint16_t* scale_codes, size_t n,
                      uint8_t* out) {
  int lo = 0, hi = 0, offset = 0;  // the range of a level and what ggml adds to store it
  switch (type) {
    case GgmlType::Q8_0:
      lo = -128, hi = 127;
      break;
    case GgmlType::Q4_0:
      lo = -8, hi = 7, offset = 8;
      break;
    case GgmlType::Q5_0:
      lo = -16, hi = 15, offset = 16;
      break;
    case GgmlType::MXFP4:
    case GgmlType::NVFP4:
      lo = 0, hi = 15;
      break;
    default:
      throw Error(std::string("pack_ggml_blocks: not for ") + ggml_type_info(uint32_t(type))->name);
  }
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  const size_t bytes = ggml_bytes(type, n);
  for (size_t i = 0; i < n; ++i)
    if (levels[i] < lo || levels[i] > hi)
      throw Error(std::string(info->name) + ": level " + std::to_string(levels[i]) +
                  " of element " + std::to_string(i) + " is outside " + std::to_string(lo) + ".." +
                  std::to_string(hi));
  uint8_t stored[64];
  for (size_t b = 0; b < bytes / info->block_bytes; ++b) {
    const int8_t* l = levels + b * info->block_elements;
    uint8_t* o = out + b * info->block_bytes;
    for (uint32_t j = 0; j < info->block_elements; ++j) stored[j] = uint8_t(l[j] + offset);
    switch (type) {
      case GgmlType::Q8_0:
        store_u16(o, scale_codes[b]);
        std::memcpy(o + 2, l, kQK);
        break;
      case GgmlType::Q4_0:
        store_u16(o, scale_codes[b]);
        pack_nibbles(stored, o + 2);
        break;
      case GgmlType::Q5_0:
        store_u16(o, scale_codes[b]);
        pack_fifth_bits(stored, o + 2);
        pack_nibbles(stored, o + 6);
        break;
      case GgmlType::MXFP4:
        o[0] = uint8_t(scale_codes[b]);
        pack_nibbles(stored, o + 1);
        break;
      default:  // NVFP4: four 16-element sub-blocks, each its own nibble halves
        for (int s = 0; s < 4; ++s) {
          o[s] = uint8_t(scale_codes[4 * b + size_t(s)]);
          pack_nibbles(stored + 16 * s, o + 4 + 8 * s, 16);
        }
        break;
    }
  }
}

uint16_t float_to_half(float f) {
  return uint16_t(ref::round_to_code(formats::fp16, f,
                                     RoundOptions{RoundMode::NearestEven, Overflow::Default, 0}));
}

void quantize_ggml(GgmlType type, const float* x, size_t n, uint8_t* out) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  if (!info || !info->quantizable)
    throw Error(
        std::string("lowbit cannot write GGML type ") +
        (info ? info->name : std::to_string(uint32_t(type))) +
        " (it writes F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K, MXFP4, NVFP4)");
  const size_t bytes = ggml_bytes(type, n);  // throws for a partial block
  if (n == 0) return;
  void (*block)(const float*, uint8_t*) = nullptr;
  switch (type) {
    case GgmlType::F32:
      std::memcpy(out, x, bytes);
      return;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (size_t i = 0; i < n; ++i)
        store_u16(out + 2 * i,
                  type == GgmlType::F16 ? float_to_half(x[i]) : float_to_bf16_ggml(x[i]));
      return;
    case GgmlType::Q4_0:
      block = q4_0;
      break;
    case GgmlType::Q4_1:
      block = q4_1;
      break;
    case GgmlType::Q5_0:
      block = q5_0;
      break;
    case GgmlType::Q5_1:
      block = q5_1;
      break;
    case GgmlType::Q8_0:
      block = q8_0;
      break;
    case GgmlType::Q4_K:
      block = q4_k;
      break;
    case GgmlType::Q6_K:
      block = q6_k;
      break;
    case GgmlType::MXFP4:
      block = mxfp4;
      break;
    case GgmlType::NVFP4:
      block = nvfp4;
      break;
    default:
      throw Error(std::string("no quantizer for GGML type ") + info->name);
  }
  const size_t blocks = n / info->block_elements;
#pragma omp parallel for schedule(static) if (blocks > 1024)
  for (int64_t k = 0; k < int64_t(blocks); ++k)
    block(x + size_t(k) * info->block_elements, out + size_t(k) * info->block_bytes);
}

}  // namespace lowbit
