// lowbit/train/quantized_training.h — training with low-precision products and states. Every
// Linear has three matrix products: forward Y = X·Wᵀ, input gradient dX = dY·W and weight
// gradient dW = dYᵀ·X. A recipe gives each operand of each product a scheme (any lowbit scheme,
// with its rounding: nearest or stochastic), quantized along that product's reduction dimension
// as a kernel would (MX blocks run along k), optionally after a block Hadamard rotation of both
// operands along it (which leaves the exact product unchanged); and it may compress AdamW's
// moments. The presets reproduce the papers' recipes; docs/training.md lists each with its
// source and where lowbit's emulation departs from it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/quant/scheme.h"
#include "lowbit/train/optimizer.h"
#include "lowbit/train/train_model.h"

namespace lowbit::train {

// The six operand roles, in log order.
enum class OperandRole { ForwardX, ForwardW, DgradDy, DgradW, WgradDy, WgradX };
constexpr int kOperandRoles = 6;
const char* operand_role_name(OperandRole r);  // "fwd_x", "fwd_w", "dgrad_dy", ...

struct TrainingRecipeSpec {
  std::string name, source, description;
  std::optional<Scheme> forward;         // X and W of X·Wᵀ
  std::optional<Scheme> gradient;        // dY of dY·W and of dYᵀ·X
  std::optional<Scheme> backward_other;  // W of dY·W and X of dYᵀ·X (unset: forward's scheme)
  int hadamard = 0;         // block of the Hadamard rotation along every product's reduction
  bool delayed = false;     // per-tensor scales from the largest |value| of the last 16 steps
  bool exact_sums = false;  // products summed exactly (integer accumulators) instead of float32
  std::optional<Scheme> optimizer_states;  // element format of AdamW's m and v, groups of 128
  bool range_expansion = false;            // COAT's dynamic range expansion of those groups
  bool head = false;                       // the output head's products too (default: kept)
  // The master weights rounded onto this format after every update (BF16 master weights, ...),
  // nearest or, with master_stochastic, stochastically (a fresh stream per step and tensor).
  std::optional<Format> master;
  bool master_stochastic = false;
  // Trainable fixed point (QFX) when > 0: the forward's X and W in signed fixed point of this many
  // bits with a binary point learned per tensor (src/train/learned_fixed_point.h); the schemes
  // above must then be unset.
  int fixed_point_bits = 0;
  double binary_point_lr = 0.01;  // Adam's step for the binary points
  // Per-role schemes (long form fwd_x=, fwd_w=, dgrad_dy=, dgrad_w=, wgrad_dy=, wgrad_x=): each
  // replaces what forward / gradient / backward_other give that one operand.
  std::array<std::optional<Scheme>, kOperandRoles> roles;
  // The scheme of one operand role after the per-role overrides (nullopt: float32).
  std::optional<Scheme> scheme_for(OperandRole r) const;
  bool is_full_precision() const;
};

// Every preset, in the order docs/training.md lists them.
const std::vector<TrainingRecipeSpec>& training_presets();
// A preset name ("fp8", "mxfp4_quartet", ...) or the long form
//   fwd=<scheme>[;grad=<scheme>][;other=<scheme>][;hadamard=<block>][;delayed][;exact_sums]
//     [;states=<element>[;expand]][;master=<format>[:sr]][;head][;<role>=<scheme>]...
//   or   qfx=<bits>[;qfx_lr=<lr>][;head]
// (a preset may start the long form: "fp8;head"). Throws lowbit::Error listing the presets.
TrainingRecipeSpec parse_training_recipe(const std::string& spelling);
// One line: what the recipe quantizes and its source. Throws like parse_training_recipe.
std::string describe_training_recipe(const std::string& spelling);

// What one role saw in a step (sums over sites and micro-batches) or at one site.
struct OperandTelemetry {
  uint64_t elements = 0, overflow = 0, underflow = 0;  // clipped; nonzero rounded to zero
  double log2_scale_sum = 0;                           // over the scales used
  uint64_t scales = 0;
};

// A recipe at work on one model: the products it installs, its per-step state (stochastic
// rounding streams, delayed-scaling history), telemetry and optimizer-state compression.
class TrainingRecipe {
 public:
  TrainingRecipe(TrainingRecipeSpec spec, const model::LlamaConfig& config, uint64_t seed);
  ~TrainingRecipe();
  const TrainingRecipeSpec& spec() const;
  LinearProducts<float>* products();  // nullptr: exact products
  void begin_step(int64_t step);
  void end_step();  // commits the step's delayed-scaling observations
  // The step's telemetry per role ("fwd_x_overflow" ... as fractions, "fwd_x_log2_scale").
  std::vector<std::pair<std::string, double>> step_telemetry() const;
  // Per site and role, for the last step: {site name, role, telemetry}.
  struct SiteTelemetry {
    std::string site;
    OperandRole role;
    OperandTelemetry t;
  };
  std::vector<SiteTelemetry> site_telemetry() const;
  // Re-quantizes AdamW's moments after an update (no-op without optimizer_states).
  void compress_optimizer_states(AdamW& optimizer) const;
  // Rounds the master weights onto the recipe's master format after update `step` (no-op
  // without one).
  void round_master_weights(std::vector<Parameter<float>>& params, int64_t step) const;
  // The delayed-scaling history as JSON, for checkpoints (bit-identical resume).
  std::string state() const;
  void restore(const std::string& json);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::train
