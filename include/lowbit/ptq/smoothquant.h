// lowbit/ptq/smoothquant.h — SmoothQuant (Xiao et al. 2023): move activation outliers into the
// weights. For each input channel j of a Linear (or of the Linears sharing one input), with a_j the
// channel's largest calibration activation and w_j its largest weight magnitude,
// s_j = a_j^α / w_j^(1-α); the activation is divided by s_j where it is produced (the RMSNorm
// scale before q/k/v and gate/up; up_proj's rows before down_proj) and the weight column
// multiplied by it, so the model computes the same function in exact arithmetic.
#pragma once

#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"

namespace lowbit::ptq {

struct SmoothQuantOptions {
  double alpha = 0.5;  // migration strength: 0 leaves activations alone, 1 moves all into weights
  // Round every s_j to a power of two: the factor moved into the weights then only shifts their
  // exponents (LLM-FP4's pre-shifted exponent bias): exact in any binary floating-point format,
  // and the smoothed model is bit-identical in full precision.
  bool pow2 = false;
};

// A smoothed copy of `base`: every input site whose channels can be scaled where they are produced
// (InputSite::fold) and whose reader does not rotate it online (after a Hadamard rotation the
// channels are mixed, and the rotation already spreads outliers).
std::unique_ptr<model::Runtime> smooth_model(const model::Runtime& base,
                                             const Calibration& calibration,
                                             const SmoothQuantOptions& options);
// s_j = max|x_j|^α / max|W_:,j|^(1−α) over the Linears sharing one input, `act` the channels'
// largest calibration magnitudes; rounded to powers of two with `pow2`.
std::vector<float> smoothing_scales(const std::vector<float>& act,
                                    const std::vector<const model::Linear*>& linears, double alpha,
                                    bool pow2);
// Divides input channel j by s_j where `in` is produced (its fold) and multiplies column j of
// every reader by it: the function stays the same.
void fold_input_scales(const model::InputSite& in, const std::vector<float>& s);
// Multiplies column j of the weight by s_j.
void scale_columns(model::Linear& lin, const std::vector<float>& s);

inline model::Llama smooth_model(const model::Llama& base, const Calibration& calibration,
                                 const SmoothQuantOptions& options) {
  return model::runtime_as<model::Llama>(
      smooth_model(static_cast<const model::Runtime&>(base), calibration, options));
}

}  // namespace lowbit::ptq
