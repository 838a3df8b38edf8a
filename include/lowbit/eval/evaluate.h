// lowbit/eval/evaluate.h — the one path from a recipe to its numbers, shared by `lowbit eval`,
// `lowbit sweep` and everything that compares recipes: apply the recipe to the full-precision
// model, run it against what the full-precision model produced (decoders: perplexity, KL
// divergence, top-1 agreement, ΔPPL against a recorded baseline; encoders: cosine of sentence
// embeddings and the rank correlation of pairwise similarities), per-layer statistics, bits per
// weight. The result is one documented, versioned JSON object (docs/results.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/layer_stats.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/execution.h"
#include "lowbit/model/sites.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"

namespace lowbit::eval {

struct RecipeResult {
  ptq::Recipe recipe;
  std::string hash;  // recipe.hash_hex()
  double bits_per_weight = 0, bits_per_linear_weight = 0;
  double mac_cost = 0;  // full-adder equivalents per MAC (lowbit/eval/hardware_cost.h)
  // Decoders, against the baseline (ppl alone when there is none: compared = false).
  bool compared = true;
  double ppl = 0, ppl_stderr = 0, delta_ppl = 0, delta_ppl_stderr = 0;
  double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;
  Distribution kld;
  double top1 = 0, top1_stderr = 0;
  // Encoders.
  bool encoder = false;
  EmbeddingScores embedding;
  double seconds = 0;  // applying the recipe and evaluating it
  std::vector<std::pair<std::string, double>> method_seconds;  // each method's share of it
  std::string calibration;       // the calibration data's description, when the recipe used any
  std::string execution;         // real / auto runs: model::ExecutionPlan::summary(); "" emulated
  std::vector<LayerRow> layers;  // empty when per-layer statistics were off
  // Of this run only (not stored in results): the model's speed over the windows.
  double tokens_per_second = 0, gflops = 0;
};

// What recipes are measured against: the full-precision model's output on the evaluation data.
// Built once per model and text; layer statistics' reference outputs are built on first use.
class Reference {
 public:
  // Decoders: the windows and the baseline recorded on them (nullptr: PPL only, no comparison).
  Reference(const model::Decoder& fp, const TextWindows& windows, const Baseline* baseline,
            bool layer_stats);
  // Encoders: the sentences and the full-precision embeddings of them.
  Reference(const model::Encoder& fp, const Sentences& sentences, std::vector<float> embeddings,
            bool layer_stats);
  ~Reference();

  const TextWindows* windows() const { return windows_; }
  const Baseline* baseline() const { return baseline_; }
  const Sentences* sentences() const { return sentences_; }
  const std::vector<float>& embeddings() const { return embeddings_; }
  // The tokens per-layer statistics run on (the first window, or the first sentence); empty: off.
  const std::vector<int32_t>& layer_window() const { return layer_window_; }
  // The full-precision outputs of every Linear on layer_window(), of `fp` (the untransformed
  // model: cached) or of a transformed copy of it (computed each time).
  std::shared_ptr<const ReferenceOutputs> layer_outputs(const model::Runtime* transformed) const;

 private:
  const model::Runtime& fp_;
  const TextWindows* windows_ = nullptr;
  const Baseline* baseline_ = nullptr;
  const Sentences* sentences_ = nullptr;
  std::vector<float> embeddings_;
  std::vector<int32_t> layer_window_;
  mutable std::shared_ptr<const ReferenceOutputs> fp_outputs_;
};

struct EvaluateOptions {
  const ptq::Calibration* calibration = nullptr;  // for methods that need it
  ptq::MethodCache* cache = nullptr;              // GPTQ / search results shared between recipes
  model::Execution execution = model::Execution::Emulate;  // how the quantized model runs
  // (what is running, done, total): the methods' blocks, then the evaluation's windows.
  std::function<void(const std::string&, int64_t, int64_t)> progress;
};

// Applies `recipe` to `fp` and measures it against `reference`. `applied` (when given) receives
// the recipe's report (per-weight errors, method times).
RecipeResult evaluate_recipe(const ptq::Recipe& recipe, const model::Runtime& fp,
                             const Reference& reference, const EvaluateOptions& options,
                             ptq::ApplyReport* applied = nullptr);

// The result as its JSON object (docs/results.md) and back; `where` names the file in errors.
std::string result_json(const RecipeResult& result);
RecipeResult result_from_json(const std::string& json_text, const std::string& where);

}  // namespace lowbit::eval
