// The scalar reference of the packed-weight kernels: decode every weight exactly as the layout in
// matmul.h defines it, multiply and sum in float64, round once. The fast paths are tested
// against it (tests/matmul_test.cpp).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/matmul_reference.h"
#include "lowbit/format/reference.h"

namespace lowbit::kernels {

uint32_t packed_code(const PackedMatrix& m, size_t r, size_t c) {
  const uint8_t* row = m.codes.data() + r * m.row_bytes;
  switch (m.coding) {
    case WeightCoding::Lut4: {
      const size_t block = c / PackedMatrix::kBlock, j = c % PackedMatrix::kBlock;
      const uint8_t byte = row[block * 16 + (j % 16)];
      return j < 16 ? byte & 0xFu : byte >> 4;
    }
    case WeightCoding::Lut8:
      return row[c];
    case WeightCoding::Split6: {
      const size_t block = c / PackedMatrix::kBlock, j = c % PackedMatrix::kBlock;
      const uint8_t* b = row + block * PackedMatrix::kSplit6BlockBytes;
      const uint32_t high = j < 16 ? b[j] & 0xFu : b[j - 16] >> 4;
      const size_t k = j % 16, low_byte = 16 + (j / 16) * 4 + k / 4;
      return high << 2 | ((b[low_byte] >> (2 * (k % 4))) & 3u);
    }
    case WeightCoding::BF16:
    case WeightCoding::F16: {
      uint16_t bits;
      std::memcpy(&bits, row + 2 * c, 2);
      return bits;
    }
  }
  return 0;
}

float packed_weight(const PackedMatrix& m, size_t r, size_t c) {
  const uint32_t code = packed_code(m, r, c);
  if (m.coding == WeightCoding::BF16) {
    const uint32_t wide = code << 16;
    float w;
    std::memcpy(&w, &wide, 4);
    return w;
  }
  if (m.coding == WeightCoding::F16) return ref::decode(formats::fp16, code);
  const size_t g = c / m.group;
  const float v = m.lut[code];
  return m.offsets.empty() ? v * m.scale(r, g) : (v - m.offset(r, g)) * m.scale(r, g);
}

namespace {

void reference_decode_rows(const PackedMatrix& m, size_t r0, size_t r1, float* out) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t c = 0; c < m.padded_cols; ++c)
      out[(r - r0) * m.padded_cols + c] = packed_weight(m, r, c);
}

void reference_gemv(const PackedMatrix& m, size_t r0, size_t r1, const float* x, size_t n, float* y,
                    size_t ldy) {
  std::vector<float> w(m.padded_cols);
  for (size_t r = r0; r < r1; ++r) {
    reference_decode_rows(m, r, r + 1, w.data());
    for (size_t j = 0; j < n; ++j) {
      double sum = 0;
      for (size_t c = 0; c < m.cols; ++c) sum += double(w[c]) * double(x[j * m.padded_cols + c]);
      y[j * ldy + r] = float(sum);
    }
  }
}

void reference_gemv_i8(const PackedMatrix& m, size_t r0, size_t r1, const int16_t* x, size_t n,
                       int32_t* acc, size_t ldacc) {
  for (size_t r = r0; r < r1; ++r) {
    const int8_t* w = reinterpret_cast<const int8_t*>(m.codes.data() + r * m.row_bytes);
    for (size_t j = 0; j < n; ++j) {
      int64_t sum = 0;
      for (size_t c = 0; c < m.cols; ++c) sum += int64_t(w[c]) * int64_t(x[j * m.padded_cols + c]);
      acc[j * ldacc + r] = int32_t(sum);  // |sum| <= cols * 127 * 128 fits for cols < 2^17
    }
  }
}

void reference_gemv_w4a8(const PackedMatrix& m, size_t r0, size_t r1, const int8_t* x,
                         const float* x_scales, size_t n, float* y, size_t ldy) {
  const size_t halves = m.padded_cols / 16;
  for (size_t r = r0; r < r1; ++r)
    for (size_t j = 0; j < n; ++j) {
      double sum = 0;
      for (size_t h = 0; h < halves; ++h) {
        int64_t part = 0;
        const size_t end = std::min(m.cols, 16 * h + 16);
        for (size_t c = 16 * h; c < end; ++c)
          part += int64_t(m.lut_int[packed_code(m, r, c)]) * x[j * m.padded_cols + c];
        const double xs = x_scales ? double(x_scales[j * halves + h]) : 1.0;
        sum += double(m.scale(r, 16 * h / m.group)) * double(m.int_unit) * xs * double(part);
      }
      y[j * ldy + r] = float(sum);
    }
}

void reference_gemm_i8(const PackedMatrix& m, size_t r0, size_t r1, const uint8_t* x_biased,
                       size_t n, int32_t* acc, size_t ldacc) {
  for (size_t r = r0; r < r1; ++r) {
    const int8_t* w = reinterpret_cast<const int8_t*>(m.codes.data() + r * m.row_bytes);
    for (size_t j = 0; j < n; ++j) {
      int64_t sum = 0;
      for (size_t c = 0; c < m.cols; ++c)
        sum += int64_t(w[c]) * (int64_t(x_biased[j * m.padded_cols + c]) - 128);
      acc[j * ldacc + r] = int32_t(sum);
    }
  }
}

uint64_t reference_read_bytes(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    sum += w;
  }
  return sum;
}

}  // namespace

MatmulBackend reference_matmul_backend() {
  return {"reference",
          0,
          1,
          &reference_decode_rows,
          &reference_gemv,
          &reference_gemv_i8,
          &reference_gemm_i8,
          &reference_gemv_w4a8,
          &reference_read_bytes};
}

}  // namespace lowbit::kernels
