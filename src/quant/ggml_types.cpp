// GGML block formats: sizes and dequantization (layouts as in ggml's ggml-common.h; d and m are
// IEEE fp16 unless said otherwise, all little-endian).
#include "lowbit/quant/ggml_types.h"

#include <cstring>
#include <string>

#include "lowbit/util/error.h"
#include "quant/ggml_scales.h"

namespace lowbit {
namespace {

constexpr int kQK = 32;     // elements per block of the simple quants
constexpr int kQK_K = 256;  // elements per super-block of the K-quants

uint16_t load_u16(const uint8_t* p) {
  return uint16_t(p[0] | p[1] << 8);
}
float load_half(const uint8_t* p) {
  return half_to_float(load_u16(p));
}

// Q4_0 (18 bytes): d, qs[16]. Element j (< 16) is the low nibble of qs[j], element j + 16 the
// high nibble; value = (q - 8) * d.
void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_half(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(int(b[2 + j] & 0xF) - 8) * d;
    y[j + 16] = float(int(b[2 + j] >> 4) - 8) * d;
  }
}

// Q4_1 (20 bytes): d, m, qs[16]; value = q * d + m.
void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_half(b), m = load_half(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(b[4 + j] & 0xF) * d + m;
    y[j + 16] = float(b[4 + j] >> 4) * d + m;
  }
}

// Q5_0 (22 bytes): d, qh (32 fifth bits, little-endian u32), qs[16]; value = (q - 16) * d.
void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = load_half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int j = 0; j < 16; ++j) {
    const int lo = (b[6 + j] & 0xF) | int((qh >> j) & 1) << 4;
    const int hi = (b[6 + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = float(lo - 16) * d;
    y[j + 16] = float(hi - 16) * d;
  }
}

// Q5_1 (24 bytes): d, m, qh, qs[16]; value = q * d + m.
void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = load_half(b), m = load_half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (int j = 0; j < 16; ++j) {
    const int lo = (b[8 + j] & 0xF) | int((qh >> j) & 1) << 4;
    const int hi = (b[8 + j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = float(lo) * d + m;
    y[j + 16] = float(hi) * d + m;
  }
}

// Q8_0 (34 bytes): d, qs[32] int8; value = q * d.
void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_half(b);
  for (int j = 0; j < kQK; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block (12 packed bytes).
void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Eight sub-blocks of 32; sub-block pairs share
// 32 bytes of qs (low nibbles, then high nibbles); value = d * sc * q - dmin * m.
void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = load_half(b), dmin = load_half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, q += 32) {
    uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
  }
}

// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]: Q4_K plus a fifth bit per element from
// qh (bit 2k of qh[l] for the low nibbles of pair k, bit 2k+1 for the high nibbles).
void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = load_half(b), dmin = load_half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
  }
}

// Q6_K (210 bytes): ql[128], qh[64], scales[16] int8, d. Two halves of 128; value = d * sc * (q -
// 32).
void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_half(b + 208);
  for (int n = 0; n < kQK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * float(sc[is]) * float(q1);
      y[l + 32] = d * float(sc[is + 2]) * float(q2);
      y[l + 64] = d * float(sc[is + 4]) * float(q3);
      y[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

// The E2M1 values doubled (ggml's kvalues_mxfp4, shared by MXFP4 and NVFP4): code c is
// sign(c & 8) * {0, 0.5, 1, 1.5, 2, 3, 4, 6}[c & 7], times two so that they are integers.
constexpr int8_t kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// MXFP4 (17 bytes): e (E8M0), qs[16]; element j (< 16) is the low nibble of qs[j], j + 16 the high
// one; value = 2^(e - 127) * e2m1 = 2^(e - 128) * doubled e2m1.
void dequant_mxfp4(const uint8_t* b, float* y) {
  const float d = mxfp4_half_scale(b[0]);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(kE2M1Doubled[b[1 + j] & 0xF]);
    y[j + 16] = d * float(kE2M1Doubled[b[1 + j] >> 4]);
  }
}

// NVFP4 (36 bytes): d[4] (UE4M3, one per 16 elements), qs[32]; sub-block s takes qs[8s, 8s + 8):
// element 16s + j (j < 8) is the low nibble of qs[8s + j], 16s + 8 + j the high one; value =
// ue4m3(d[s]) * e2m1. ggml reads the NaN code 0x7F as 0. A per-tensor scale, when the file has one,
// is the separate tensor "<weight name without .weight>.scale" (llama.cpp's scale2).
void dequant_nvfp4(const uint8_t* b, float* y) {
  for (int s = 0; s < 4; ++s, y += 16) {
    const float d = nvfp4_half_scale(b[s]);
    const uint8_t* q = b + 4 + 8 * s;
    for (int j = 0; j < 8; ++j) {
      y[j] = d * float(kE2M1Doubled[q[j] & 0xF]);
      y[j + 8] = d * float(kE2M1Doubled[q[j] >> 4]);
    }
  }
}

struct TypeEntry {
  uint32_t id;
  GgmlTypeInfo info;
  void (*block)(const uint8_t*, float*);
};

// {id, {name, block elements, block bytes, dequantizable, quantizable}, block decoder}
const TypeEntry kTypes[] = {
    {0, {"F32", 1, 4, true, true}, nullptr},
    {1, {"F16", 1, 2, true, true}, nullptr},
    {2, {"Q4_0", 32, 18, true, true}, dequant_q4_0},
    {3, {"Q4_1", 32, 20, true, true}, dequant_q4_1},
    {6, {"Q5_0", 32, 22, true, true}, dequant_q5_0},
    {7, {"Q5_1", 32, 24, true, true}, dequant_q5_1},
    {8, {"Q8_0", 32, 34, true, true}, dequant_q8_0},
    {9, {"Q8_1", 32, 36, false, false}, nullptr},
    {10, {"Q2_K", 256, 84, false, false}, nullptr},
    {11, {"Q3_K", 256, 110, false, false}, nullptr},
    {12, {"Q4_K", 256, 144, true, true}, dequant_q4_k},
    {13, {"Q5_K", 256, 176, true, false}, dequant_q5_k},
    {14, {"Q6_K", 256, 210, true, true}, dequant_q6_k},
    {15, {"Q8_K", 256, 292, false, false}, nullptr},
    {24, {"I8", 1, 1, false, false}, nullptr},
    {25, {"I16", 1, 2, false, false}, nullptr},
    {26, {"I32", 1, 4, false, false}, nullptr},
    {27, {"I64", 1, 8, false, false}, nullptr},
    {28, {"F64", 1, 8, false, false}, nullptr},
    {30, {"BF16", 1, 2, true, true}, nullptr},
    {39, {"MXFP4", 32, 17, true, true}, dequant_mxfp4},
    {40, {"NVFP4", 64, 36, true, true}, dequant_nvfp4},
};

const TypeEntry* find(uint32_t id) {
  for (const TypeEntry& e : kTypes)
    if (e.id == id) return &e;
  return nullptr;
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf, NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else {
    const float v = float(mant) * 0x1p-24f;  // subnormal (exact)
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

size_t ggml_bytes(GgmlType type, size_t n) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  if (!info) throw Error("unknown GGML type " + std::to_string(uint32_t(type)));
  if (n % info->block_elements != 0)
    throw Error(std::string(info->name) + " takes whole blocks of " +
                std::to_string(info->block_elements) + " elements, not " + std::to_string(n));
  return n / info->block_elements * info->block_bytes;
}

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  const TypeEntry* e = find(type);
  return e ? &e->info : nullptr;
}

void dequantize_ggml(GgmlType type, const uint8_t* data, size_t n, float* out) {
  const TypeEntry* e = find(uint32_t(type));
  if (!e || !e->info.dequantizable)
    throw Error(std::string("tensor type ") + (e ? e->info.name : std::to_string(uint32_t(type))) +
                " cannot be dequantized by lowbit yet (supported: F32, F16, BF16, Q4_0, Q4_1, "
                "Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, MXFP4, NVFP4)");
  if (n % e->info.block_elements != 0) throw Error("element count is not a whole number of blocks");
  if (n == 0) return;  // an empty tensor: nothing to read (and memcpy must not see null pointers)
  switch (type) {
    case GgmlType::F32:
      std::memcpy(out, data, n * 4);
      return;
    case GgmlType::F16:
      for (size_t i = 0; i < n; ++i) out[i] = half_to_float(load_u16(data + 2 * i));
      return;
    case GgmlType::BF16:
      for (size_t i = 0; i < n; ++i) {
        const uint32_t bits = uint32_t(load_u16(data + 2 * i)) << 16;
        std::memcpy(out + i, &bits, 4);
      }
      return;
    default:
      break;
  }
  const size_t blocks = n / e->info.block_elements;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t k = 0; k < int64_t(blocks); ++k)
    e->block(data + size_t(k) * e->info.block_bytes, out + size_t(k) * e->info.block_elements);
}

}  // namespace lowbit
