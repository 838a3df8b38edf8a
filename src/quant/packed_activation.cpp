// Quantized activations laid out for the weight-and-activation kernels (packed_activation.h).
#include "lowbit/quant/packed_activation.h"

#include <array>
#include <memory>
#include <mutex>

#include "lowbit/format/reference.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/quant/packing.h"
#include "lowbit/util/error.h"
#include "quant/integer_levels.h"

namespace lowbit {
namespace {

// Every code's value, and its integer level where the format's values are integers times one
// power of two that fit int8 (int8, int4, e2m1 ...). Built once per format: activations are
// packed on every forward.
struct ElementTable {
  bool integer = false;
  float unit = 1.0f;
  std::array<int8_t, 256> levels{};
  std::array<float, 256> values{};
};

ElementTable build_element_table(const Format& f) {
  ElementTable t;
  const size_t codes = size_t(1) << f.bits();
  for (size_t c = 0; c < codes; ++c) t.values[c] = ref::decode(f, uint32_t(c));
  t.integer = quant::integer_levels(t.values.data(), codes, -128, 127, t.levels.data(), t.unit);
  return t;
}

// Formats of up to 8 bits only (the caller checks).
const ElementTable& element_table(const Format& f) {
  static std::mutex mutex;
  static std::vector<std::pair<Format, std::unique_ptr<const ElementTable>>> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  for (const auto& [format, table] : cache)
    if (format == f) return *table;
  cache.emplace_back(f, std::make_unique<const ElementTable>(build_element_table(f)));
  return *cache.back().second;
}

bool per_row(const Scheme& a) {
  return a.granularity == Granularity::Token || a.granularity == Granularity::Tensor;
}

bool along_last_axis_by_16(const Scheme& a) {
  return a.granularity == Granularity::Group && (a.axis == -1 || a.axis == 1) && a.group > 0 &&
         a.group % 16 == 0;
}

}  // namespace

std::string activation_kernel_gap(const Scheme& a) {
  if (a.ggml) return "ggml block activations (" + scheme_name(a) + ") run emulated";
  if (a.asymmetric) return "asymmetric activations (" + scheme_name(a) + ") have no kernel";
  if (a.element.bits() > 8)
    return "activation elements of more than 8 bits (" + scheme_name(a) + ")";
  const bool integer = element_table(a.element).integer;
  if (per_row(a) && (integer || a.element.kind == FormatKind::Float)) return "";
  if (integer && along_last_axis_by_16(a)) return "";
  return "activations " + scheme_name(a) +
         ": the kernels take one scale per token or for the tensor (int8:token, e4m3fn:token), "
         "or integer-level elements in groups of a multiple of 16 along the hidden axis (mxfp4, "
         "nvfp4, int4:g32)";
}

ActivationCoding activation_coding(const Scheme& a) {
  if (!per_row(a)) return ActivationCoding::IntBlocks;
  return element_table(a.element).integer ? ActivationCoding::IntRows : ActivationCoding::FloatRows;
}

PackedActivations pack_activations(const QTensor& q) {
  const Scheme& s = q.scheme;
  if (const std::string gap = activation_kernel_gap(s); !gap.empty()) throw Error(gap);
  if (q.shape.size() != 2) throw Error("pack_activations: expected [rows, cols] activations");
  PackedActivations p;
  p.coding = activation_coding(s);
  p.rows = q.shape[0];
  p.cols = q.shape[1];
  const size_t n = p.rows * p.cols;
  // 8-bit codes are stored one per byte: read them in place.
  std::vector<uint8_t> unpacked;
  const uint8_t* codes = q.codes.data();
  if (s.element.bits() != 8) {
    unpacked.resize(n);
    unpack_codes(q.codes.data(), n, s.element.bits(), unpacked.data());
    codes = unpacked.data();
  }

  // The group of element (j, c), in QTensor's group order (contiguous layouts only here).
  const quant::GroupLayout layout = quant::make_group_layout(s, q.shape);
  const auto group_of = [&](size_t j, size_t c) {
    return layout.contiguous_group_of(j * p.cols + c);
  };

  const ElementTable& table = element_table(s.element);
  const float unit = table.unit;
  if (p.coding == ActivationCoding::FloatRows) {
    p.values.resize(n);
    for (size_t i = 0; i < n; ++i) p.values[i] = table.values[codes[i]];
  } else {
    p.levels.resize(n);
    const int8_t* levels = table.levels.data();
    for (size_t i = 0; i < n; ++i) p.levels[i] = levels[codes[i]];
  }
  if (p.coding == ActivationCoding::IntBlocks) {
    const size_t blocks = p.blocks_per_row();
    p.block_scales.resize(p.rows * blocks);
    for (size_t j = 0; j < p.rows; ++j)
      for (size_t b = 0; b < blocks; ++b)
        p.block_scales[j * blocks + b] = q.group_scale(group_of(j, 16 * b)) * unit;
  } else {
    p.row_scales.resize(p.rows);
    for (size_t j = 0; j < p.rows; ++j) p.row_scales[j] = q.group_scale(group_of(j, 0)) * unit;
  }
  return p;
}

}  // namespace lowbit
