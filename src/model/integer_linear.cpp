// HAWQ-V3 integer-only Linear (lowbit/model/integer_linear.h).
#include "lowbit/model/integer_linear.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit::model {
namespace {

int32_t max_code(int bits) {
  return (int32_t(1) << (bits - 1)) - 1;
}

// round-half-even(v) clamped to ±limit; NaN gives 0.
float clamped_round(float v, int32_t limit) {
  const float r = std::nearbyint(v), l = float(limit);
  if (std::isnan(r)) return 0;
  return std::clamp(r, -l, l);
}

}  // namespace

IntegerLinear::IntegerLinear(IntegerLinearSpec spec) : spec_(std::move(spec)) {
  const IntegerLinearSpec& s = spec_;
  const auto fail = [](const std::string& what) { throw Error("integer-only Linear: " + what); };
  if (s.out < 1 || s.in < 1 || s.in > 65536) fail("needs 1 .. 65536 inputs and at least 1 output");
  if (s.weight_bits < 2 || s.weight_bits > 8 || s.input_bits < 2 || s.input_bits > 8 ||
      s.output_bits < 2 || s.output_bits > 16)
    fail("weights and inputs take 2 .. 8 bits, outputs 2 .. 16");
  if (s.weight_codes.size() != size_t(s.out) * size_t(s.in) ||
      s.weight_scales.size() != size_t(s.out))
    fail("the weight codes must be [out, in] and the scales [out]");
  if (!s.bias.empty() && s.bias.size() != size_t(s.out)) fail("the bias must be empty or [out]");
  if (!(s.input_scale > 0) || !(s.output_scale > 0) || !std::isfinite(s.input_scale) ||
      !std::isfinite(s.output_scale))
    fail("the input and output scales must be positive and finite");
  const int32_t wmax = max_code(s.weight_bits);
  input_max_ = max_code(s.input_bits);
  output_max_ = max_code(s.output_bits);
  for (int8_t q : s.weight_codes)
    if (int32_t(q) > wmax || int32_t(q) < -wmax - 1)
      fail("a weight code " + std::to_string(q) + " exceeds " + std::to_string(s.weight_bits) +
           " bits");

  kernels::PackedMatrix& m = weight_;
  m.coding = kernels::WeightCoding::Lut8;
  m.byte_decode = kernels::ByteDecode::Signed;
  m.rows = size_t(s.out);
  m.cols = size_t(s.in);
  m.padded_cols = kernels::PackedMatrix::padded_width(m.cols);
  m.group = m.padded_cols;
  m.groups_per_row = 1;
  m.row_bytes = kernels::PackedMatrix::row_bytes_of(m.coding, m.padded_cols);
  m.codes.assign(m.rows * m.row_bytes, 0);
  for (size_t r = 0; r < m.rows; ++r)
    for (size_t c = 0; c < m.cols; ++c)
      m.codes[r * m.row_bytes + c] = uint8_t(s.weight_codes[r * m.cols + c]);
  for (int c = 0; c < 256; ++c) m.lut[size_t(c)] = float(int8_t(uint8_t(c)));
  m.scales = s.weight_scales;
  m.scheme = "int" + std::to_string(s.weight_bits) + ":channel (integer-only)";
  kernels::validate(m);

  // The largest |sum| the products can reach, plus the bias, must stay inside int32.
  const double product_bound = double(s.in) * double(wmax + 1) * double(input_max_);
  multipliers_.resize(size_t(s.out));
  bias_codes_.assign(size_t(s.out), 0);
  for (size_t r = 0; r < size_t(s.out); ++r) {
    const double sw = double(s.weight_scales[r]);
    if (!(sw > 0) || !std::isfinite(sw))
      fail("weight scale of row " + std::to_string(r) + " is not positive");
    try {
      multipliers_[r] = dyadic_of(multiplier(r));
    } catch (const Error& e) {
      fail("row " + std::to_string(r) + ": " + e.what());
    }
    if (!s.bias.empty()) {
      const double code = std::nearbyint(double(s.bias[r]) / (sw * double(s.input_scale)));
      if (!(std::abs(code) + product_bound < 2147483647.0))
        fail("the bias of row " + std::to_string(r) + " does not fit an int32 code of s_w · s_x");
      bias_codes_[r] = int32_t(code);
    }
  }
  if (product_bound >= 2147483647.0) fail("the int32 sums could overflow");
}

double IntegerLinear::multiplier(size_t r) const {
  return double(spec_.weight_scales[r]) * double(spec_.input_scale) / double(spec_.output_scale);
}

void IntegerLinear::quantize_input(const float* x, size_t count, int8_t* q) const {
  const float s = spec_.input_scale;
  for (size_t i = 0; i < count; ++i) q[i] = int8_t(clamped_round(x[i] / s, input_max_));
}

void IntegerLinear::sums(const int8_t* q_x, int n, int32_t* acc) const {
  kernels::matmul_i8_sums(weight_, q_x, size_t(n), acc);
  const size_t out = size_t(spec_.out);
  if (spec_.bias.empty()) return;
  for (size_t j = 0; j < size_t(n); ++j)
    for (size_t r = 0; r < out; ++r) acc[j * out + r] += bias_codes_[r];
}

void IntegerLinear::requantize(const int32_t* acc, int n, int32_t* q_y) const {
  const size_t out = size_t(spec_.out);
  for (size_t j = 0; j < size_t(n); ++j)
    for (size_t r = 0; r < out; ++r) {
      const int64_t v = dyadic_multiply(acc[j * out + r], multipliers_[r]);
      q_y[j * out + r] = int32_t(std::clamp<int64_t>(v, -output_max_, output_max_));
    }
}

void IntegerLinear::forward(const float* x, int n, float* y) const {
  if (n <= 0) return;
  const size_t in = size_t(spec_.in), out = size_t(spec_.out);
  thread_local std::vector<int8_t> q_x;
  thread_local std::vector<int32_t> acc;
  q_x.resize(size_t(n) * in);
  acc.resize(size_t(n) * out);
  quantize_input(x, q_x.size(), q_x.data());
  sums(q_x.data(), n, acc.data());
  requantize(acc.data(), n, acc.data());  // in place: each sum is read before its code is written
  const float sy = spec_.output_scale;
  for (size_t i = 0; i < acc.size(); ++i) y[i] = sy * float(acc[i]);
}

void IntegerLinear::emulate(const float* x, int n, float* y) const {
  if (n <= 0) return;
  const size_t in = size_t(spec_.in), out = size_t(spec_.out);
  std::vector<float> xq(size_t(n) * in);
  const float sx = spec_.input_scale, sy = spec_.output_scale;
  for (size_t i = 0; i < xq.size(); ++i) xq[i] = sx * clamped_round(x[i] / sx, input_max_);
  kernels::matmul(weight_, xq.data(), size_t(n), y);  // decodes to s_w · q_w exactly
  for (size_t j = 0; j < size_t(n); ++j)
    for (size_t r = 0; r < out; ++r) {
      float& v = y[j * out + r];
      if (!spec_.bias.empty()) v += spec_.bias[r];
      v = sy * clamped_round(v / sy, output_max_);
    }
}

}  // namespace lowbit::model
