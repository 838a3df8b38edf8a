// lowbit/model/lmul.h — L-Mul (Luo & Sun 2024, "Addition is All You Need for Energy-efficient
// Language Models"): a product of two floating-point numbers approximated by adding their
// exponents and mantissa fractions, with a constant in place of the fractions' product:
//
//   x = ±(1 + xm)·2^xe, y = ±(1 + ym)·2^ye
//   x·y      = ±(1 + xm + ym + xm·ym)·2^(xe+ye)
//   L-Mul    = ±(1 + xm + ym + 2^-l(m))·2^(xe+ye),  l(m) = m (m <= 3), 3 (m = 4), 4 (m > 4)
//
// with m the operands' mantissa bits (both are rounded to m bits first). In hardware it is one
// integer addition of the two bit patterns; here it is emulated. Writing x = X0 + X1 with X0 =
// ±2^xe (the power of two) and X1 = x − X0, L-Mul(x, y) = x·y − X1·Y1 + 2^-l·X0·Y0 exactly, so a
// matrix product under L-Mul is three float32 products (lmul_gemm), summed in float32.
#pragma once

namespace lowbit::model {

// How the products of a Linear or of attention are computed when not exactly.
struct LMul {
  int mantissa = 3;  // mantissa bits of both operands (1 .. 23)
};
bool operator==(const LMul& a, const LMul& b);

// The paper's offset exponent l(m).
int lmul_offset_bits(int mantissa);
// x rounded to `mantissa` mantissa bits (nearest, ties to even), float32's exponent range.
float lmul_operand(float x, int mantissa);
// The definition, one product: both operands rounded, then (1 + xm + ym + 2^-l)·2^(xe+ye) with
// the product's sign; 0 when either is 0; x·y when either is not finite.
float lmul(float x, float y, int mantissa);
// C[M, N] = alpha · Σ_k L-Mul(A[i, k], B(k, j)), A row-major [M, K] (leading dimension lda); B
// [N, K] when b_transposed (B(k, j) = B[j, k]), else [K, N]. What lmul() gives each product,
// summed in float32 (in another order than a loop would).
void lmul_gemm(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               bool b_transposed, float* C, int ldc, int mantissa);

}  // namespace lowbit::model
