// L-Mul emulation (lowbit/model/lmul.h).
#include "lowbit/model/lmul.h"

#include <cblas.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "lowbit/util/error.h"
#include "util/float_bits.h"

namespace lowbit::model {
namespace {

void check_mantissa(int m) {
  if (m < 1 || m > 23)
    throw Error("L-Mul: mantissa bits must be 1 .. 23, not " + std::to_string(m));
}

// The power-of-two part ±2^e of a rounded operand (0 for 0). A float32 subnormal is split by its
// own leading bit, as a normal number is.
float power_part(float v) {
  if (v == 0 || !std::isfinite(v)) return v == 0 ? 0.0f : v;
  const uint32_t b = float_bits(v);
  if ((b & 0x7F800000u) != 0) return bits_float(b & 0xFF800000u);
  int e = 0;
  std::frexp(v, &e);
  return std::copysign(std::ldexp(1.0f, e - 1), v);
}

// Rounded operands x, their power-of-two parts X0 and the remainders X1 = x − X0, row-major
// [rows, cols] from a strided source.
struct Split {
  std::vector<float> x, x0, x1;
  Split(const float* src, int rows, int cols, int ld, int mantissa) {
    const size_t n = size_t(rows) * size_t(cols);
    x.resize(n), x0.resize(n), x1.resize(n);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        const size_t i = size_t(r) * size_t(cols) + size_t(c);
        x[i] = lmul_operand(src[size_t(r) * size_t(ld) + size_t(c)], mantissa);
        x0[i] = power_part(x[i]);
        x1[i] = std::isfinite(x[i]) ? x[i] - x0[i] : 0.0f;  // exact: same binade
      }
  }
};

}  // namespace

bool operator==(const LMul& a, const LMul& b) {
  return a.mantissa == b.mantissa;
}

int lmul_offset_bits(int mantissa) {
  check_mantissa(mantissa);
  return mantissa <= 3 ? mantissa : mantissa == 4 ? 3 : 4;
}

float lmul_operand(float x, int mantissa) {
  check_mantissa(mantissa);
  if (mantissa == 23 || !std::isfinite(x)) return x;
  const int drop = 23 - mantissa;
  uint32_t b = float_bits(x);
  const uint32_t half = (uint32_t(1) << (drop - 1)) - 1 + ((b >> drop) & 1u);  // ties to even
  b = (b + half) & ~((uint32_t(1) << drop) - 1);  // a carry moves into the exponent, as it should
  return bits_float(b);
}

float lmul(float x, float y, int mantissa) {
  const float offset = std::ldexp(1.0f, -lmul_offset_bits(mantissa));
  if (!std::isfinite(x) || !std::isfinite(y)) return x * y;
  const float a = lmul_operand(x, mantissa), b = lmul_operand(y, mantissa);
  if (a == 0 || b == 0) return 0.0f * a * b;  // a signed zero
  const double a0 = power_part(a), b0 = power_part(b);
  const double fa = double(a) / a0 - 1, fb = double(b) / b0 - 1;  // mantissa fractions in [0, 1)
  return float(a0 * b0 * (1 + fa + fb + double(offset)));
}

void lmul_gemm(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               bool b_transposed, float* C, int ldc, int mantissa) {
  const float offset = std::ldexp(1.0f, -lmul_offset_bits(mantissa));
  if (M <= 0 || N <= 0) return;
  const Split a(A, M, K, lda, mantissa);
  const Split b = b_transposed ? Split(B, N, K, ldb, mantissa) : Split(B, K, N, ldb, mantissa);
  const CBLAS_TRANSPOSE tb = b_transposed ? CblasTrans : CblasNoTrans;
  const int ld = b_transposed ? K : N;
  // x·y − X1·Y1 + 2^-l·X0·Y0, as three products into C.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, M, N, K, alpha, a.x.data(), K, b.x.data(), ld, 0.0f,
              C, ldc);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, M, N, K, -alpha, a.x1.data(), K, b.x1.data(), ld,
              1.0f, C, ldc);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, M, N, K, alpha * offset, a.x0.data(), K, b.x0.data(),
              ld, 1.0f, C, ldc);
}

}  // namespace lowbit::model
