// lowbit/ptq/format_search.h — format and clipping search (as in LLM-FP4): for each Linear, among
// the element formats of the scheme's bit width (every signed ExMy with E + M = bits - 1, no
// special codes, and the integer of that width) and two clipping rules (absmax, and the per-group
// MSE clip search), pick the one whose quantized weight moves the layer's output least on
// calibration data: the smallest tr(ΔW · H · ΔWᵀ), H the calibration Hessian. The scale format,
// granularity and second level of the scheme stay as they are.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"

namespace lowbit::ptq {

// The candidate schemes for `base`: its element replaced by each format of its bit width, each
// with the absmax and the MSE scale rule.
std::vector<Scheme> search_candidates(const Scheme& base);

// tr(ΔW · H · ΔWᵀ) for ΔW = q - w ([out, in]) and H (in x in, row-major).
double output_error(const std::vector<float>& w, const std::vector<float>& q, int out, int in,
                    const std::vector<float>& h);

// The candidate with the smallest output error for one weight, and the weight rounded by it.
struct SearchedWeight {
  Scheme scheme;
  std::vector<float> values;
};
SearchedWeight search_weight(const Scheme& base, const std::vector<float>& w, int out, int in,
                             const std::vector<float>& h);
inline Scheme search_scheme(const Scheme& base, const std::vector<float>& w, int out, int in,
                            const std::vector<float>& h) {
  return search_weight(base, w, out, in, h).scheme;
}

// The chosen scheme of every layer Linear whose weights `scheme_of` quantizes, block by block on
// the calibration data (inputs from the blocks before, quantized with their chosen schemes).
std::map<std::string, Scheme> search_model(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const Calibration& calibration, const std::function<void(int, int)>& progress = {});

// LLM-FP4 in full (the `llmfp4` method, src/ptq/llm_fp4.cpp): `base` with a power-of-two factor
// per input channel moved from the activations into the weights where the input can be folded —
// none, or SmoothQuant's power-of-two rule at α = 0.25 … 1, whichever leaves the readers the
// smallest tr(ΔW'·H'·ΔW'ᵀ) + tr(W'·Σ'·W'ᵀ) (Σ' the covariance of the activations' quantization
// error under `activations_of`) — and each reader's format and clipping searched on the shifted
// weight (into `chosen`). The returned model computes the same function (the factors are exact).
std::unique_ptr<model::Runtime> llm_fp4_model(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const std::function<MaybeScheme(const std::string&)>& activations_of,
    const Calibration& calibration, std::map<std::string, Scheme>& chosen,
    const std::function<void(int, int)>& progress = {});

}  // namespace lowbit::ptq
