// Choosing one group's scale (and zero point) by the scheme's rule, and storing it in the scale
// format. docs/quantization.md gives the arithmetic; every step is float32 in the order written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "lowbit/kernels/convert_backend.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::quant {

struct GroupScale {
  uint32_t stored = 0;     // the scale-format code, or the float32 bits
  float effective = 1.0f;  // what elements are divided by: decode(stored) * global scale
  uint8_t zero_point = 0;  // asymmetric schemes
};

struct ScaleTables;  // what a scale format needs (scale_picker.cpp)

class ScalePicker {
 public:
  // `error_of` measures a candidate scale's squared error on the group (for the MSE rule).
  using ErrorFn = std::function<double(const GroupScale&)>;

  ScalePicker(const Scheme& s, float global_scale);

  // `x` holds the group's n values; `scratch` has room for n floats.
  GroupScale pick(const float* x, size_t n, float* scratch, const ErrorFn& error_of) const;

  // The absmax and fixed rules need no search: their scales for a whole row of groups come out of
  // one pass, with one bulk conversion (on `backend`) rounding them into the scale format.
  // Identical results to pick() group by group.
  bool batchable() const { return s_.rule == ScaleRule::AbsMax || s_.rule == ScaleRule::Fixed; }
  void pick_batch(const float* x, size_t n, size_t group_len,
                  const kernels::ConvertBackend& backend, GroupScale* out);

  // The scale a largest magnitude `amax` gets (symmetric), or a [lo, hi] range (asymmetric).
  GroupScale from_amax(float amax) const;
  GroupScale from_range(float lo, float hi) const;

  float effective_of(uint32_t stored) const;
  float element_max() const { return element_max_; }

 private:
  // The two-level rule's step each way (Scheme::global_divides): a block's stored scale times (or
  // divided by) the tensor scale is its effective scale, and a raw block scale goes through the
  // inverse before it is rounded into the scale format.
  float with_global(float stored_value) const {
    return s_.global_divides ? stored_value / global_ : stored_value * global_;
  }
  float before_global(float raw) const { return s_.global_divides ? raw * global_ : raw / global_; }
  GroupScale finish(uint32_t stored) const;
  // The sweep rule: `start` (the absmax scale) and every stored scale above and below it until
  // the bounds rule the rest out.
  GroupScale sweep(const float* x, size_t n, GroupScale start, const ErrorFn& error_of) const;
  uint32_t store_pow2(int exponent) const;
  uint32_t store_rounded(float scale) const;  // RNE into the scale format; zero -> smallest
  uint32_t store_not_finite() const;

  uint32_t pow2_exponent_code(int e) const;  // store_pow2 through the tables' pow2 codes
  bool batch_fast_paths(size_t groups, const kernels::ConvertBackend& backend, GroupScale* out);
  void zero_point_for(float lo, GroupScale& g) const;

  Scheme s_;
  float global_;
  float element_max_;
  int element_emax_;
  // A scaled magnitude below this rounds to zero for certain (half the element's smallest
  // positive value; 0 when the grid has no zero).
  float zero_threshold_ = 0;
  const ScaleTables* tables_;  // the scale format's, built once per format (scale_picker.cpp)
  std::vector<float> raw_;     // pick_batch scratch
  std::vector<uint32_t> codes_, tops_;
  std::vector<uint8_t> flags_;
};

// The per-tensor float32 scale of two-level schemes:
//   amax(tensor) / (element max * scale-format max), 1 for an all-zero tensor.
float two_level_global_scale(const Scheme& s, const float* x, size_t n,
                             const kernels::ConvertBackend& backend);

}  // namespace lowbit::quant
