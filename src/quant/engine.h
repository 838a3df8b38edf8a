// The quantization engine: runs a scheme over a tensor with one conversion backend, writing any of
// codes, dequantized values, scales, zero points and per-group error statistics. quantize(),
// dequantize(), fake_quant() and measure() are thin wrappers; tests run it with the scalar
// reference backend and compare bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/kernels/convert_backend.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::quant {

struct EngineOutputs {
  uint8_t* codes = nullptr;           // unpacked, code_bytes(element) per element, tensor order
  float* dequantized = nullptr;       // tensor order
  uint32_t* scales = nullptr;         // group order
  uint8_t* zero_points = nullptr;     // group order (asymmetric)
  ErrorStats* group_stats = nullptr;  // group order
};

// Runs `s` over x (already validated). `global_scale` is the two-level scale (1 otherwise).
void run_engine(const kernels::ConvertBackend& backend, const Scheme& s, const GroupLayout& layout,
                const float* x, float global_scale, const EngineOutputs& out);

// Rounds each x[i] as run_engine would inside a group with effective scale scales[i] (and zero
// point zero_points[i], asymmetric schemes). Built once, run many times (GPTQ's columns).
class GivenScaleQuantizer {
 public:
  GivenScaleQuantizer(const kernels::ConvertBackend& backend, const Scheme& s);
  ~GivenScaleQuantizer();
  void run(const float* x, size_t n, const float* scales, const uint8_t* zero_points, float* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Dequantizes codes (unpacked, tensor order) with the stored scales: the same arithmetic
// run_engine uses for `dequantized`.
void dequantize_codes(const kernels::ConvertBackend& backend, const Scheme& s,
                      const GroupLayout& layout, const uint8_t* codes, const uint32_t* scales,
                      const uint8_t* zero_points, float global_scale, float* out);

}  // namespace lowbit::quant
