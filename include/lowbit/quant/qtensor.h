// lowbit/quant/qtensor.h — quantized tensors: quantize, dequantize and fake-quantize with a Scheme,
// and the error metrics users judge a scheme by. docs/quantization.md defines every step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "lowbit/kernels/convert.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

// A tensor in a scheme: packed element codes, one scale per group (+ zero points), and shapes.
// Groups are numbered in "group order": the row-major order of scale_shape.
struct QTensor {
  Scheme scheme;
  std::vector<size_t> shape;
  std::vector<size_t> scale_shape;   // one entry per group (see docs/quantization.md)
  std::vector<uint8_t> codes;        // element codes in tensor (C) order, packed LSB-first
  std::vector<uint32_t> scales;      // per group: the scale-format code, or float32 bits if f32
  std::vector<uint8_t> zero_points;  // per group, asymmetric schemes only
  float global_scale = 1.0f;         // two-level schemes: the per-tensor float32 scale

  size_t numel() const;
  size_t group_count() const { return scales.size(); }
  // Storage per element: element bits + (scale bits + zero-point bits) per group + the global
  // scale.
  double bits_per_element() const;
  // A group's effective scale as float32 (the stored scale times the global scale).
  float group_scale(size_t group) const;
};

// Storage cost of a scheme on a tensor of this shape, without quantizing anything.
double scheme_bits_per_element(const Scheme& s, const std::vector<size_t>& shape);

QTensor quantize(const Scheme& s, const float* x, const std::vector<size_t>& shape);
QTensor quantize(const Scheme& s, const BF16* x, const std::vector<size_t>& shape);
// With the two-level (per-tensor) scale given instead of computed from x: for quantizing a part of
// a tensor consistently with the whole (ignored by schemes without a global scale).
QTensor quantize(const Scheme& s, const float* x, const std::vector<size_t>& shape,
                 float global_scale);
// The per-tensor scale quantize() would choose for x (1 for schemes without one).
float tensor_global_scale(const Scheme& s, const float* x, size_t n);
void dequantize(const QTensor& q, float* out);
// The QTensor of `values` as quantize() gives them under the recorded tensor scale
// `global_scale`, when that gives every value back bit for bit (values that round to nearest left
// where they are); nullopt otherwise (a method such as GPTQ chose other scales).
std::optional<QTensor> requantize_exactly(const Scheme& s, const float* values,
                                          const std::vector<size_t>& shape, float global_scale);
// The QTensor of `values` that already lie on the scheme's grid with the given stored group
// scales (and zero points) — what a method that fixes each group's scale first (GPTQ) produced:
// element codes by rounding value / scale (exact on the grid), checked so that dequantize() gives
// `values` back bit for bit; throws lowbit::Error naming the first element that is not on it.
QTensor qtensor_on_grid(const Scheme& s, const float* values, const std::vector<size_t>& shape,
                        std::vector<uint32_t> stored_scales, std::vector<uint8_t> zero_points,
                        float global_scale);
// quantize then dequantize in one pass; bit-identical to dequantize(quantize(x)).
void fake_quant(const Scheme& s, const float* x, const std::vector<size_t>& shape, float* out);
void fake_quant(const Scheme& s, const BF16* x, const std::vector<size_t>& shape, float* out);

// The element step alone: rounds x[i] as quantize() does inside a group whose effective scale
// (stored scale times global scale, as QTensor::group_scale gives it) is scales[i], with zero
// point zero_points[i] for asymmetric schemes (else nullptr). For methods that fix a group's
// scale before its values are final (GPTQ).
void fake_quant_given_scales(const Scheme& s, const float* x, size_t n, const float* scales,
                             const uint8_t* zero_points, float* out);
// The same, with the scheme's conversion plans built once for many calls.
class ScaledElementRounder {
 public:
  explicit ScaledElementRounder(const Scheme& s);
  ~ScaledElementRounder();
  void round(const float* x, size_t n, const float* scales, const uint8_t* zero_points, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- error metrics ----------------------------------------------------------------------------

struct ErrorStats {
  size_t count = 0;       // finite inputs counted
  double sum_sq_x = 0;    // sum of x^2
  double sum_sq_err = 0;  // sum of (x - dequantized)^2
  double max_abs_err = 0;
  size_t clipped = 0;     // |x / scale| beyond the element format's largest magnitude
  size_t flushed = 0;     // x != 0 but dequantized to 0
  size_t non_finite = 0;  // NaN / inf inputs (not in the sums)

  double mse() const { return count ? sum_sq_err / double(count) : 0.0; }
  double sqnr_db() const;  // 10 log10(sum x^2 / sum err^2); +inf when exact
  double clipped_fraction() const { return count ? double(clipped) / double(count) : 0.0; }
  double flushed_fraction() const { return count ? double(flushed) / double(count) : 0.0; }
  void add(const ErrorStats& o);
  // Counts x[0, n) approximated by y[0, n): sums, max error, flushed, non-finite inputs (not
  // `clipped`, which needs the scale).
  void add_values(const float* x, const float* y, size_t n);
};

struct QuantReport {
  ErrorStats tensor;
  std::vector<ErrorStats> groups;              // in group order
  std::map<int, size_t> scale_log2_histogram;  // floor(log2(effective scale)) -> groups
  double bits_per_element = 0;
};

// Quantizes x with s, dequantizes, and measures the error per tensor and per group.
// `quantized`, when given, receives quantize(s, x, shape) from the same pass.
QuantReport measure(const Scheme& s, const float* x, const std::vector<size_t>& shape,
                    std::vector<float>* dequantized = nullptr, QTensor* quantized = nullptr);

}  // namespace lowbit
