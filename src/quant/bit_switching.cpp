// Nested integer weights for bit switching (lowbit/quant/bit_switching.h).
#include "lowbit/quant/bit_switching.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit {
namespace {

int max_code(int bits) {
  return (1 << (bits - 1)) - 1;
}  // symmetric: ±(2^(b−1) − 1)

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

}  // namespace

NestedIntWeights nest_weights(const float* w, size_t rows, size_t cols, int stored_bits,
                              int anchor_bits, int group) {
  if (stored_bits < 2 || stored_bits > 8)
    throw Error("bit switching: stored width " + std::to_string(stored_bits) +
                " (int8 storage holds 2 to 8 bits)");
  if (anchor_bits < 2 || anchor_bits > stored_bits)
    throw Error("bit switching: the anchor width must lie in 2.." + std::to_string(stored_bits));
  if (group < 1) throw Error("bit switching: groups need at least one element");
  NestedIntWeights n;
  n.stored_bits = stored_bits;
  n.anchor_bits = anchor_bits;
  n.group = group;
  n.rows = rows;
  n.cols = cols;
  n.codes.resize(rows * cols);
  n.scales.resize(rows * n.groups_per_row());
  // The stored codes' range when the anchor grid is exact: ±max_code(a) · 2^(B−a).
  const int limit = max_code(anchor_bits) << (stored_bits - anchor_bits);
  for (size_t r = 0; r < rows; ++r)
    for (size_t g = 0; g < n.groups_per_row(); ++g) {
      const float* x = w + r * cols + g * size_t(group);
      const int extent = n.group_extent(g);
      float amax = 0;
      for (int i = 0; i < extent; ++i) {
        if (!std::isfinite(x[i])) throw Error("bit switching: a weight is not finite");
        amax = std::max(amax, std::fabs(x[i]));
      }
      // s_a = amax / max_code(a) (absmax at the anchor), s_B = s_a / 2^(B−a): exact in float32.
      const float anchor_scale = amax > 0 ? amax / float(max_code(anchor_bits)) : 1.0f;
      const float s = std::ldexp(anchor_scale, -(stored_bits - anchor_bits));
      n.scales[r * n.groups_per_row() + g] = s;
      for (int i = 0; i < extent; ++i) {
        const float q = std::nearbyint(x[i] / s);  // nearest, ties to even (default mode)
        n.codes[r * cols + g * size_t(group) + size_t(i)] =
            int8_t(std::clamp(q, float(-limit), float(limit)));
      }
    }
  return n;
}

std::vector<float> derive_weights(const NestedIntWeights& n, int bits, QTensor* codes,
                                  const Scheme* scheme) {
  if (bits < 2 || bits > n.stored_bits)
    throw Error("bit switching: cannot derive " + std::to_string(bits) + " bits from " +
                std::to_string(n.stored_bits) + "-bit codes");
  const int shift = n.stored_bits - bits, m = max_code(bits);
  const float step = std::ldexp(1.0f, shift);
  std::vector<float> out(n.rows * n.cols);
  std::vector<uint32_t> stored_scales(n.scales.size());
  for (size_t r = 0; r < n.rows; ++r)
    for (size_t g = 0; g < n.groups_per_row(); ++g) {
      const float s =
          std::ldexp(n.scales[r * n.groups_per_row() + g], shift);  // s_k = s_B · 2^shift
      stored_scales[r * n.groups_per_row() + g] = float_bits(s);
      for (int i = 0; i < n.group_extent(g); ++i) {
        const size_t e = r * n.cols + g * size_t(n.group) + size_t(i);
        // q_B / 2^shift is exact in float32; nearbyint rounds it half to even.
        const float q = std::clamp(std::nearbyint(float(n.codes[e]) / step), float(-m), float(m));
        out[e] = q * s + 0.0f;  // + 0: an integer code has no −0, so neither does its value
      }
    }
  if (codes)
    *codes = qtensor_on_grid(scheme ? *scheme : derived_scheme(bits, n.group), out.data(),
                             {n.rows, n.cols}, std::move(stored_scales), {}, 1.0f);
  return out;
}

Scheme derived_scheme(int bits, int group) {
  return parse_scheme("int" + std::to_string(bits) + ":g" + std::to_string(group));
}

int nested_group_of(const Scheme& s, size_t rows, size_t cols) {
  const auto refuse = [&](const std::string& why) -> int {
    throw Error(
        "bit switching derives symmetric integer weights with float32 absmax scales per "
        "group or output channel (e.g. int4:g128, int6:channel); " +
        scheme_name(s) + " " + why);
  };
  if (s.element.kind != FormatKind::Int || !s.element.is_signed) return refuse("is not signed int");
  if (s.asymmetric || s.global_scale || !s.scale_is_f32 || s.pow2 || s.ggml ||
      s.rule != ScaleRule::AbsMax)
    return refuse("has another scale or zero point");
  if (s.granularity == Granularity::Channel && (s.axis == 0 || s.axis == -2)) return int(cols);
  if (s.granularity == Granularity::Group && (s.axis == 1 || s.axis == -1)) {
    return s.group;
  }
  (void)rows;
  return refuse("has another granularity");
}

}  // namespace lowbit
