// lowbit/ptq/apply_recipe.h — turning a full-precision model into the model a recipe describes. For
// now the calibration-free path: round-to-nearest weights (quantized once, here) and the run-time
// quantizers (activations, KV cache, accumulator) installed where the forward applies them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::ptq {

// What happened to one stored weight tensor.
struct WeightReport {
  std::string site;  // "layers.3.down_proj", "embedding", "output"
  std::vector<size_t> shape;
  std::string scheme;       // maybe_scheme_name: "fp" when kept
  ErrorStats error;         // of the quantization (count 0 when kept)
  double bits_per_element;  // kept weights count as 16 (bf16, the precision models ship in)
};

struct ApplyReport {
  std::vector<WeightReport> weights;  // every stored matrix: embedding, Linears, output (if stored)
  // Storage averaged over all matrix parameters (the embedding, every Linear, the output head
  // once when tied to the embedding and quantized alike) and over the layers' Linears only.
  double bits_per_weight = 0;
  double bits_per_linear_weight = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, double>> method_seconds;  // each method's time, in order
  // The full-precision model after the transforming methods (hadamard, smoothquant), when there
  // were any: the right reference for per-layer output errors, since a rotated model's Linears
  // that write the residual stream produce rotated outputs.
  std::shared_ptr<const model::Runtime> transformed;
};

// What a weight of this shape stores per element in `scheme`: its elements, scales and zero points
// (scheme_bits_per_element); a kept weight counts as 16 (bf16, the precision models ship in).
double weight_bits_per_element(const MaybeScheme& scheme, const std::vector<size_t>& shape);

// A copy of `fp` with the recipe applied: its methods run in order (hadamard, smoothquant: the
// model is transformed; gptq: weights are quantized with error compensation), then every weight
// not yet quantized is rounded to nearest (measured per tensor), and the input schemes, KV-cache
// schemes and accumulator are set on the Linears and layers. Unquantized weights stay shared with
// `fp`. Methods that need calibration data throw lowbit::Error without it; so does a scheme that
// does not fit a tensor. `progress(what, done, total)` reports long methods.
// GPTQ's and the search's results depend only on the model, the methods before them, the weight
// schemes and the calibration data — not on activation or KV schemes. A sweep passes one cache to
// every apply_recipe so W4A16, W4A8 and W4A4 recipes with the same weights share that work.
class MethodCache;  // lowbit/ptq/methods.h

std::unique_ptr<model::Runtime> apply_recipe(
    const Recipe& recipe, const model::Runtime& fp, ApplyReport* report = nullptr,
    const Calibration* calibration = nullptr,
    const std::function<void(const std::string&, int, int)>& progress = {},
    MethodCache* cache = nullptr);
// The same for a caller that holds a LLaMA-family model.
inline model::Llama apply_recipe(
    const Recipe& recipe, const model::Llama& fp, ApplyReport* report = nullptr,
    const Calibration* calibration = nullptr,
    const std::function<void(const std::string&, int, int)>& progress = {},
    MethodCache* cache = nullptr) {
  return model::runtime_as<model::Llama>(apply_recipe(
      recipe, static_cast<const model::Runtime&>(fp), report, calibration, progress, cache));
}

// model::LoadOptions::pack_at_load for real execution of `recipe`: each weight's scheme where a
// kernel runs the site (as model::prepare_execution decides), else nullopt (float32, quantized
// and emulated by apply_recipe). Empty for recipes with methods or an accumulator emulation,
// which need the float32 model. apply_recipe then takes the loaded model as it takes any.
std::function<std::optional<Scheme>(const std::string& site, size_t rows, size_t cols)>
load_time_quantizer(const Recipe& recipe);

// The sites of a model, in forward order (model::Sites::names: embedding, per block its Linears
// and kv_cache, output): what `lowbit recipe --sites` lists and what patterns are matched against.
std::vector<std::string> model_sites(const model::Runtime& model);

}  // namespace lowbit::ptq
