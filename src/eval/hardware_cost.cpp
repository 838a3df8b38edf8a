// The hardware cost model (lowbit/eval/hardware_cost.h).
#include "lowbit/eval/hardware_cost.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace lowbit::eval {
namespace {

// What the model needs of an operand's element format.
struct Operand {
  bool is_float = false;
  int significand = 0;  // p: mantissa bits + 1 (float), magnitude bits (integer)
  int exponent = 0;     // e (float)
  int fixed_width = 0;  // F: bits of a fixed-point register holding every value exactly
};

Operand operand_of(const std::optional<Scheme>& s) {
  const Format f = s && s->element.kind != FormatKind::Lut ? s->element : formats::bf16;
  Operand o;
  if (f.kind == FormatKind::Int) {
    // Asymmetric codes are unsigned levels 0 .. 2^b - 1 (the zero point is subtracted per group).
    o.significand = f.is_signed && !(s && s->asymmetric) ? f.int_bits - 1 : f.int_bits;
    o.fixed_width = f.int_bits;
    return o;
  }
  o.is_float = true;
  o.significand = f.man_bits + 1;
  o.exponent = f.exp_bits;
  const double span = std::log2(max_finite(f) / min_positive(f));
  o.fixed_width = int(std::ceil(span)) + 1;
  return o;
}

// Elements one scale of a [rows, K] operand covers along the reduction K.
double elements_per_scale(const Scheme& s, int reduction) {
  switch (s.granularity) {
    case Granularity::Group:  // groups along K (axis -1 or 1); along the rows they are constant
      return s.axis == -1 || s.axis == 1 ? double(std::min(s.group, reduction)) : reduction;
    case Granularity::Block2D:
      return double(std::min(s.block_cols, reduction));
    case Granularity::Channel:
    case Granularity::Token:
    case Granularity::Tensor:
      break;
  }
  return double(reduction);  // constant along K: applied once per dot product
}

// Applying one scale to a partial sum.
double scale_apply_cost(const Scheme& s) {
  if (!s.scale_is_f32 && s.scale_format == formats::e8m0fnu) return 8;  // an exponent add
  if (s.scale_is_f32) return 24.0 * 24.0;
  return double(s.scale_format.man_bits + 1) * 24.0;
}

double shifter(int width, int range) {
  return range <= 0 ? 0.0 : 0.5 * double(width) * std::ceil(std::log2(double(range) + 1));
}

}  // namespace

MacCost mac_cost(const std::optional<Scheme>& a, const std::optional<Scheme>& w, int reduction) {
  const Operand x = operand_of(a), y = operand_of(w);
  MacCost c;
  c.multiplier = double(x.significand) * double(y.significand);
  if (x.is_float || y.is_float) c.exponents = double(std::max(x.exponent, y.exponent) + 1);
  const int product = x.significand + y.significand;
  const int guard = int(std::ceil(std::log2(std::max(2, reduction))));
  const int kulisch = x.fixed_width + y.fixed_width + guard;
  const double fixed_align = (x.is_float || y.is_float) ? shifter(product, kulisch - product) : 0;
  const double fixed = fixed_align + double(kulisch);
  const double float_align = shifter(product, 24);
  const double float32 = float_align + 24 + 2 * 24 * 5 * 0.5 + 8;
  if (fixed <= float32) {
    c.alignment = fixed_align;
    c.accumulator = double(kulisch);
    c.accumulator_bits = kulisch;
  } else {
    c.alignment = float_align;
    c.accumulator = float32 - float_align;
    c.accumulator_bits = 24;
    c.float_accumulator = true;
  }
  for (const auto& [s, other] : {std::pair{&a, y}, std::pair{&w, x}}) {
    if (!*s || (*s)->ggml || (*s)->element.kind == FormatKind::Lut) continue;
    // An asymmetric operand's zero point adds z · Σ(other operand) per group: one more product
    // of the zero point's width with the other operand's.
    const double zero_point =
        (*s)->asymmetric ? double((*s)->element.int_bits) * double(other.significand) : 0;
    c.scales += (scale_apply_cost(**s) + zero_point) / elements_per_scale(**s, reduction);
  }
  return c;
}

double recipe_mac_cost(const ptq::Recipe& recipe, const model::Runtime& model) {
  const std::unique_ptr<model::Runtime> m = model.clone();  // sites() needs a mutable runtime
  double cost = 0, macs = 0;
  for (const model::LinearSite& site : m->sites().linears) {
    const model::Linear& lin = *site.linear;
    const ptq::Recipe::Resolved r = recipe.resolve(lin.name());
    const double n = double(lin.out_features()) * double(lin.in_features());
    cost += n * mac_cost(r.activations, r.weights, lin.in_features()).total();
    macs += n;
  }
  return macs > 0 ? cost / macs : 0;
}

}  // namespace lowbit::eval
