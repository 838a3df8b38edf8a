// lowbit/eval/hardware_cost.h — a first-order hardware cost model of the multiply-accumulates a
// recipe asks for, in full-adder equivalents (FA): what an INT-versus-FP choice costs in silicon,
// to set beside what it costs in accuracy. docs/hardware-cost.md derives every term.
//
// One MAC of an activation element a and a weight element w, summed over a reduction of K:
//   multiplier   p_a · p_w                 significand (integer: magnitude) widths, array
//   multiplier exponents    max(e_a, e_w) + 1         when either operand is a float accumulator
//   the cheaper of
//     fixed point (Kulisch): an adder of W = F_a + F_w + ceil(log2 K) bits, F the operand's
//       fixed-point width (log2 of largest / smallest magnitude, + 1), plus a shifter placing
//       the p_a + p_w-bit product into it: (p_a + p_w) · ceil(log2 (W − p_a − p_w + 1)) muxes
//       of 0.5 FA (none for integer × integer);
//     float32: a 24-bit significand adder with alignment and normalisation shifters,
//       24 + 2 · 24 · 5 · 0.5 + 8 = 152 FA, plus the product's alignment as above into 24 bits;
//   scales       per operand, the cost of applying one scale, divided by the elements it covers
//     along K: E8M0 (power of two) an 8-bit exponent add; another narrow float scale a
//     p_s × 24 multiply; float32 scales 24 × 24; an asymmetric operand's zero point adds one
//     product of its width with the other operand's significand per group.
// Kept (unquantized) operands count as BF16. Lookup-table elements (NF4) count as the BF16 they
// decode to.
#pragma once

#include <optional>
#include <string>

#include "lowbit/format/format.h"
#include "lowbit/model/sites.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::eval {

struct MacCost {
  double multiplier = 0, exponents = 0, alignment = 0, accumulator = 0, scales = 0;
  int accumulator_bits = 0;  // the fixed-point accumulator's width, or 24 for float32
  bool float_accumulator = false;
  double total() const { return multiplier + exponents + alignment + accumulator + scales; }
};

// One MAC of activations in `a` and weights in `w` (nullopt: kept, BF16) over a reduction of
// `reduction` elements.
MacCost mac_cost(const std::optional<Scheme>& a, const std::optional<Scheme>& w, int reduction);

// The MAC cost of a recipe on a model: every block Linear's, with the schemes the recipe gives it
// (methods that choose schemes, such as search, are not seen), weighted by its MACs per token.
double recipe_mac_cost(const ptq::Recipe& recipe, const model::Runtime& model);

}  // namespace lowbit::eval
