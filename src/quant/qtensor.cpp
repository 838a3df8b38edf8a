// The public quantization API (lowbit/qtensor.h) on top of the engine.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "lowbit/format/reference.h"
#include "lowbit/kernels/convert_backend.h"
#include "lowbit/quant/packing.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "quant/engine.h"
#include "quant/scale_picker.h"

namespace lowbit {
namespace {

size_t product(const std::vector<size_t>& shape) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  return n;
}

int scale_bits(const Scheme& s) {
  return s.scale_is_f32 ? 32 : s.scale_format.bits();
}

std::vector<float> widen(const BF16* x, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = uint32_t(x[i].bits) << 16;
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

float global_scale_of(const Scheme& s, const float* x, size_t n) {
  return s.global_scale ? quant::two_level_global_scale(s, x, n, kernels::default_convert_backend())
                        : 1.0f;
}

const kernels::ConvertBackend& fast() {
  return kernels::default_convert_backend();
}

// ---- ggml_* schemes: rows quantized by ggml's reference quantizers (src/quant/ggml_quantize.cpp);
// a QTensor of one holds the GGML blocks themselves as its codes, and no scales.

// The GGML type the rows of `shape` are stored in (its last axis is the row).
GgmlType ggml_rows_type(const Scheme& s, const std::vector<size_t>& shape) {
  if (shape.empty()) throw Error(scheme_name(s) + " quantizes rows; a scalar has none");
  return ggml_storage_type(s, shape.back());
}

QTensor quantize_ggml_rows(const Scheme& s, const float* x, const std::vector<size_t>& shape) {
  const GgmlType t = ggml_rows_type(s, shape);
  const size_t n = product(shape);
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw Error(scheme_name(s) + ": element " + std::to_string(i) +
                  " is not finite; ggml's quantizers take finite values only");
  QTensor q;
  q.scheme = s;
  q.shape = shape;
  q.codes.resize(ggml_bytes(t, n));
  quantize_ggml(t, x, n, q.codes.data());
  return q;
}

}  // namespace

size_t QTensor::numel() const {
  return product(shape);
}

double scheme_bits_per_element(const Scheme& s, const std::vector<size_t>& shape) {
  if (s.ggml) {
    const GgmlTypeInfo* t = ggml_type_info(uint32_t(ggml_rows_type(s, shape)));
    return 8.0 * double(t->block_bytes) / double(t->block_elements);
  }
  const quant::GroupLayout layout = quant::make_group_layout(s, shape);
  if (layout.numel == 0) return double(s.element.bits());
  double overhead =
      double(layout.group_count) * (scale_bits(s) + (s.asymmetric ? s.element.int_bits : 0));
  if (s.global_scale) overhead += 32;
  return double(s.element.bits()) + overhead / double(layout.numel);
}

double QTensor::bits_per_element() const {
  return scheme_bits_per_element(scheme, shape);
}

float QTensor::group_scale(size_t group) const {
  if (scheme.ggml) throw Error(scheme_name(scheme) + " keeps its scales inside GGML blocks");
  return quant::ScalePicker(scheme, global_scale).effective_of(scales.at(group));
}

float tensor_global_scale(const Scheme& s, const float* x, size_t n) {
  return global_scale_of(s, x, n);
}

QTensor quantize(const Scheme& s, const float* x, const std::vector<size_t>& shape) {
  return quantize(s, x, shape, global_scale_of(s, x, product(shape)));
}

namespace {

// A QTensor of s on `layout`: every field but the codes, its scales (and zero points) sized.
QTensor empty_qtensor(const Scheme& s, const quant::GroupLayout& layout,
                      const std::vector<size_t>& shape, float global_scale) {
  QTensor q;
  q.scheme = s;
  q.shape = shape;
  q.scale_shape = layout.scale_shape;
  q.global_scale = s.global_scale ? global_scale : 1.0f;
  q.scales.resize(layout.group_count);
  if (s.asymmetric) q.zero_points.resize(layout.group_count);
  return q;
}

// Runs the engine over x with `out` plus q's codes, scales and zero points, and packs the codes.
void run_into(const Scheme& s, const quant::GroupLayout& layout, const float* x, QTensor& q,
              quant::EngineOutputs out) {
  const int cb = code_bytes(s.element);
  const int bits = s.element.bits();
  out.scales = q.scales.data();
  out.zero_points = s.asymmetric ? q.zero_points.data() : nullptr;
  if (bits == 8 * cb) {  // whole bytes (little-endian 16-bit codes): written packed already
    q.codes.resize(layout.numel * size_t(cb));
    out.codes = q.codes.data();
    quant::run_engine(fast(), s, layout, x, q.global_scale, out);
    return;
  }
  const std::unique_ptr<uint8_t[]> codes(new uint8_t[layout.numel * size_t(cb)]);  // no zero fill
  out.codes = codes.get();
  quant::run_engine(fast(), s, layout, x, q.global_scale, out);
  q.codes.resize(packed_bytes(layout.numel, bits));
  if (cb == 1)
    pack_codes(codes.get(), layout.numel, bits, q.codes.data());
  else
    pack_codes(reinterpret_cast<const uint16_t*>(codes.get()), layout.numel, bits, q.codes.data());
}

}  // namespace

QTensor quantize(const Scheme& s, const float* x, const std::vector<size_t>& shape,
                 float global_scale) {
  validate_scheme(s);
  if (s.ggml) return quantize_ggml_rows(s, x, shape);
  const quant::GroupLayout layout = quant::make_group_layout(s, shape);
  QTensor q = empty_qtensor(s, layout, shape, global_scale);
  run_into(s, layout, x, q, {});
  return q;
}

QTensor quantize(const Scheme& s, const BF16* x, const std::vector<size_t>& shape) {
  const std::vector<float> wide = widen(x, product(shape));
  return quantize(s, wide.data(), shape);
}

void dequantize(const QTensor& q, float* out) {
  validate_scheme(q.scheme);
  if (q.scheme.ggml) {
    const GgmlType t = ggml_rows_type(q.scheme, q.shape);
    if (q.codes.size() != ggml_bytes(t, q.numel()))
      throw Error("quantized tensor is inconsistent: " + std::to_string(q.codes.size()) +
                  " bytes of " + ggml_type_info(uint32_t(t))->name + " blocks, expected " +
                  std::to_string(ggml_bytes(t, q.numel())));
    dequantize_ggml(t, q.codes.data(), q.numel(), out);
    return;
  }
  const quant::GroupLayout layout = quant::make_group_layout(q.scheme, q.shape);
  if (q.scales.size() != layout.group_count || q.scale_shape != layout.scale_shape)
    throw Error("quantized tensor is inconsistent: " + std::to_string(q.scales.size()) +
                " scales for " + std::to_string(layout.group_count) + " groups of scheme " +
                scheme_name(q.scheme));
  const int bits = q.scheme.element.bits();
  if (q.codes.size() != packed_bytes(layout.numel, bits))
    throw Error("quantized tensor is inconsistent: " + std::to_string(q.codes.size()) +
                " code bytes, expected " + std::to_string(packed_bytes(layout.numel, bits)));
  if (q.scheme.asymmetric && q.zero_points.size() != layout.group_count)
    throw Error("quantized tensor is inconsistent: zero points do not match the groups");
  const int cb = code_bytes(q.scheme.element);
  std::unique_ptr<uint8_t[]> unpacked;
  const uint8_t* codes = q.codes.data();
  if (bits != 8 * cb) {  // whole-byte codes are used in place
    unpacked.reset(new uint8_t[layout.numel * size_t(cb)]);
    if (cb == 1)
      unpack_codes(q.codes.data(), layout.numel, bits, unpacked.get());
    else
      unpack_codes(q.codes.data(), layout.numel, bits, reinterpret_cast<uint16_t*>(unpacked.get()));
    codes = unpacked.get();
  }
  quant::dequantize_codes(fast(), q.scheme, layout, codes, q.scales.data(),
                          q.scheme.asymmetric ? q.zero_points.data() : nullptr, q.global_scale,
                          out);
}

std::optional<QTensor> requantize_exactly(const Scheme& s, const float* values,
                                          const std::vector<size_t>& shape, float global_scale) {
  QTensor q = quantize(s, values, shape, global_scale);
  std::vector<float> back(q.numel());
  dequantize(q, back.data());
  if (std::memcmp(back.data(), values, back.size() * sizeof(float)) != 0) return std::nullopt;
  return q;
}

QTensor qtensor_on_grid(const Scheme& s, const float* values, const std::vector<size_t>& shape,
                        std::vector<uint32_t> stored_scales, std::vector<uint8_t> zero_points,
                        float global_scale) {
  validate_scheme(s);
  if (s.ggml) throw Error(scheme_name(s) + ": ggml block types have no separate group scales");
  const quant::GroupLayout layout = quant::make_group_layout(s, shape);
  QTensor q = empty_qtensor(s, layout, shape, global_scale);
  if (stored_scales.size() != layout.group_count ||
      (s.asymmetric && zero_points.size() != layout.group_count))
    throw Error("qtensor_on_grid: " + std::to_string(stored_scales.size()) + " scales for " +
                std::to_string(layout.group_count) + " groups of " + scheme_name(s));
  q.scales = std::move(stored_scales);
  if (s.asymmetric) q.zero_points = std::move(zero_points);
  // Each element's group, in the layout's order.
  std::vector<uint32_t> group_of(layout.numel);
  if (layout.contiguous) {
    for (size_t i = 0; i < layout.numel; ++i) group_of[i] = uint32_t(layout.contiguous_group_of(i));
  } else {
    for (size_t g = 0; g < layout.group_count; ++g) {
      const quant::Box b = layout.box(g);
      for (size_t run = 0; run < b.run_count; ++run)
        for (size_t j = 0; j < b.run_length; ++j)
          group_of[b.offset + run * b.stride + j] = uint32_t(g);
    }
  }
  std::vector<float> effective(layout.group_count);
  for (size_t g = 0; g < effective.size(); ++g) effective[g] = q.group_scale(g);
  const int cb = code_bytes(s.element);
  std::vector<uint16_t> codes(layout.numel);
  const RoundOptions nearest{RoundMode::NearestEven, Overflow::Saturate, 0};
  const float top = float(element_max(s));
  for (size_t i = 0; i < layout.numel; ++i) {
    const uint32_t g = group_of[i];
    const float v = values[i] / effective[g];
    codes[i] = s.asymmetric
                   ? uint16_t(std::clamp(std::nearbyint(v) + float(q.zero_points[g]), 0.0f, top))
                   : uint16_t(ref::round_to_code(s.element, v, nearest));
  }
  const int bits = s.element.bits();
  q.codes.resize(packed_bytes(layout.numel, bits));
  if (bits == 16) {
    std::memcpy(q.codes.data(), codes.data(), codes.size() * 2);
  } else if (cb == 2) {
    pack_codes(codes.data(), layout.numel, bits, q.codes.data());
  } else {
    std::vector<uint8_t> narrow(codes.begin(), codes.end());
    pack_codes(narrow.data(), layout.numel, bits, q.codes.data());
  }
  std::vector<float> back(layout.numel);
  dequantize(q, back.data());
  for (size_t i = 0; i < layout.numel; ++i)
    if (std::memcmp(&back[i], &values[i], 4) != 0)
      throw Error("element " + std::to_string(i) + " (" + std::to_string(values[i]) +
                  ") is not on the grid of " + scheme_name(s) + " with its group's scale " +
                  std::to_string(effective[group_of[i]]) + " (nearest: " + std::to_string(back[i]) +
                  ")");
  return q;
}

void fake_quant(const Scheme& s, const float* x, const std::vector<size_t>& shape, float* out) {
  validate_scheme(s);
  if (s.ggml) return dequantize(quantize_ggml_rows(s, x, shape), out);
  const quant::GroupLayout layout = quant::make_group_layout(s, shape);
  quant::EngineOutputs o;
  o.dequantized = out;
  quant::run_engine(fast(), s, layout, x, global_scale_of(s, x, layout.numel), o);
}

struct ScaledElementRounder::Impl {
  Scheme scheme;
  quant::GivenScaleQuantizer q;
};

ScaledElementRounder::ScaledElementRounder(const Scheme& s) {
  validate_scheme(s);
  if (s.ggml)
    throw Error(scheme_name(s) +
                ": ggml's block types choose their scales inside the quantizer; a method that "
                "fixes scales first rounds on ggml_lowbit_grid(scheme) instead (as GPTQ does)");
  impl_.reset(new Impl{s, quant::GivenScaleQuantizer(fast(), s)});
}
ScaledElementRounder::~ScaledElementRounder() = default;

void ScaledElementRounder::round(const float* x, size_t n, const float* scales,
                                 const uint8_t* zero_points, float* out) {
  if (impl_->scheme.asymmetric && !zero_points)
    throw Error("ScaledElementRounder: an asymmetric scheme needs zero points");
  impl_->q.run(x, n, scales, zero_points, out);
}

void fake_quant_given_scales(const Scheme& s, const float* x, size_t n, const float* scales,
                             const uint8_t* zero_points, float* out) {
  ScaledElementRounder(s).round(x, n, scales, zero_points, out);
}

void fake_quant(const Scheme& s, const BF16* x, const std::vector<size_t>& shape, float* out) {
  const std::vector<float> wide = widen(x, product(shape));
  fake_quant(s, wide.data(), shape, out);
}

// ---- metrics
// -------------------------------------------------------------------------------------

void ErrorStats::add_values(const float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      ++non_finite;
      continue;
    }
    const double err = double(x[i]) - double(y[i]);
    ++count;
    sum_sq_x += double(x[i]) * double(x[i]);
    sum_sq_err += err * err;
    max_abs_err = std::max(max_abs_err, std::fabs(err));
    flushed += x[i] != 0.0f && y[i] == 0.0f;
  }
}

double ErrorStats::sqnr_db() const {
  if (sum_sq_err == 0) return std::numeric_limits<double>::infinity();
  if (sum_sq_x == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(sum_sq_x / sum_sq_err);
}

void ErrorStats::add(const ErrorStats& o) {
  count += o.count;
  sum_sq_x += o.sum_sq_x;
  sum_sq_err += o.sum_sq_err;
  max_abs_err = std::max(max_abs_err, o.max_abs_err);
  clipped += o.clipped;
  flushed += o.flushed;
  non_finite += o.non_finite;
}

QuantReport measure(const Scheme& s, const float* x, const std::vector<size_t>& shape,
                    std::vector<float>* dequantized, QTensor* quantized) {
  validate_scheme(s);
  if (s.ggml) {  // tensor statistics only: the blocks' scales are not lowbit groups
    QTensor q = quantize_ggml_rows(s, x, shape);
    std::vector<float> dq_local;
    std::vector<float>& dq = dequantized ? *dequantized : dq_local;
    dq.resize(q.numel());
    dequantize(q, dq.data());
    QuantReport report;
    report.tensor.add_values(x, dq.data(), dq.size());
    report.bits_per_element = scheme_bits_per_element(s, shape);
    if (quantized) *quantized = std::move(q);
    return report;
  }
  const quant::GroupLayout layout = quant::make_group_layout(s, shape);
  QuantReport report;
  report.groups.resize(layout.group_count);
  std::vector<float> dq_local;
  std::vector<float>& dq = dequantized ? *dequantized : dq_local;
  dq.resize(layout.numel);
  quant::EngineOutputs o;
  o.dequantized = dq.data();
  o.group_stats = report.groups.data();
  const float global = global_scale_of(s, x, layout.numel);
  QTensor q_local;
  QTensor& q = quantized ? *quantized : q_local;
  if (quantized) {  // the codes too, from the same pass
    q = empty_qtensor(s, layout, shape, global);
    run_into(s, layout, x, q, o);
  } else {
    q.scales.resize(layout.group_count);
    q.zero_points.resize(s.asymmetric ? layout.group_count : 0);
    o.scales = q.scales.data();
    o.zero_points = s.asymmetric ? q.zero_points.data() : nullptr;
    quant::run_engine(fast(), s, layout, x, global, o);
  }
  const quant::ScalePicker picker(s, global);
  for (size_t g = 0; g < layout.group_count; ++g) {
    report.tensor.add(report.groups[g]);
    const float scale = picker.effective_of(q.scales[g]);
    if (std::isfinite(scale) && scale > 0) ++report.scale_log2_histogram[std::ilogb(scale)];
  }
  report.bits_per_element = scheme_bits_per_element(s, shape);
  return report;
}

}  // namespace lowbit
