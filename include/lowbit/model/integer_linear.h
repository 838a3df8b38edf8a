// lowbit/model/integer_linear.h — HAWQ-V3's integer-only Linear: int8 input codes times symmetric
// integer weight codes summed exactly in int32, the bias added as int32, and the sums requantized
// to the output's integer codes by one dyadic multiplier per output channel,
//   q_y = clamp(round(acc · b_r / 2^c_r)),   b_r / 2^c_r ≈ m_r = s_w[r] · s_x / s_y,
// with static (calibrated) input and output scales s_x, s_y: no floating point between the input
// codes and the output codes. The float32 ops around a Linear (norms, RoPE, softmax, SwiGLU, the
// residual adds) stay float32 here, so forward() quantizes its float input at the boundary and
// returns s_y · q_y.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/kernels/matmul.h"
#include "lowbit/quant/dyadic.h"

namespace lowbit::model {

struct IntegerLinearSpec {
  int out = 0, in = 0;
  std::vector<int8_t>
      weight_codes;  // [out, in] codes in −2^(weight_bits−1) .. 2^(weight_bits−1) − 1
  std::vector<float> weight_scales;  // [out]: weight (r, c) = weight_scales[r] · q
  int weight_bits = 8;               // 2 .. 8
  std::vector<float> bias;           // empty or [out], float; stored as int32 codes of s_w · s_x
  float input_scale = 1;             // s_x, static
  int input_bits = 8;                // 2 .. 8
  float output_scale = 1;            // s_y, static
  int output_bits = 8;               // 2 .. 16
};

class IntegerLinear {
 public:
  // Throws lowbit::Error when a field is out of range, a code exceeds its width, a requantization
  // multiplier has no 31-bit dyadic form, or the int32 sums could overflow.
  explicit IntegerLinear(IntegerLinearSpec spec);

  // y[n, out] = s_y · q_y from float x[n, in], through the integer path below.
  void forward(const float* x, int n, float* y) const;
  // The float emulation of the same Linear: float32 products of the fake-quantized input and
  // weight (s_x q_x, s_w q_w) plus the float bias, then rounded to the output grid
  // (round-half-even of y / s_y, clamped). It differs from forward() only where a value lies within
  // the float32 sums' rounding and the dyadic approximation of a rounding midpoint.
  void emulate(const float* x, int n, float* y) const;

  // The steps of forward():
  // q_x = clamp(round-half-even(x / s_x)) in float32; NaN gives 0.
  void quantize_input(const float* x, size_t count, int8_t* q) const;
  // acc[j, r] = sum_c q_x[j, c] · q_w[r, c] + bias_codes[r], exact.
  void sums(const int8_t* q_x, int n, int32_t* acc) const;
  // q_y = clamp(dyadic_multiply(acc, multipliers[r])).
  void requantize(const int32_t* acc, int n, int32_t* q_y) const;

  const IntegerLinearSpec& spec() const { return spec_; }
  const std::vector<Dyadic>& multipliers() const { return multipliers_; }
  double multiplier(size_t r) const;  // the exact ratio m_r the dyadic number stands for
  const std::vector<int32_t>& bias_codes() const { return bias_codes_; }
  int32_t output_max() const { return output_max_; }

 private:
  IntegerLinearSpec spec_;
  kernels::PackedMatrix weight_;  // the codes as the int8 kernels take them
  std::vector<Dyadic> multipliers_;
  std::vector<int32_t> bias_codes_;
  int32_t input_max_ = 127, output_max_ = 127;
};

}  // namespace lowbit::model
