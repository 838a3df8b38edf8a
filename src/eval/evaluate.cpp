// evaluate_recipe: the one path from a recipe to its numbers (lowbit/evaluate.h).
#include "lowbit/eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "lowbit/eval/hardware_cost.h"
#include "lowbit/util/error.h"

namespace lowbit::eval {

Reference::Reference(const model::Decoder& fp, const TextWindows& windows, const Baseline* baseline,
                     bool layer_stats)
    : fp_(fp), windows_(&windows), baseline_(baseline) {
  if (layer_stats) layer_window_ = windows.window(0);
}

Reference::Reference(const model::Encoder& fp, const Sentences& sentences,
                     std::vector<float> embeddings, bool layer_stats)
    : fp_(fp), sentences_(&sentences), embeddings_(std::move(embeddings)) {
  if (layer_stats) layer_window_ = sentences.tokens.front();
}

Reference::~Reference() = default;

std::shared_ptr<const ReferenceOutputs> Reference::layer_outputs(
    const model::Runtime* transformed) const {
  // A transformed (rotated, smoothed) model is compared with its own full-precision self.
  if (transformed) return std::make_shared<const ReferenceOutputs>(*transformed, layer_window_);
  if (!fp_outputs_) fp_outputs_ = std::make_shared<const ReferenceOutputs>(fp_, layer_window_);
  return fp_outputs_;
}

RecipeResult evaluate_recipe(const ptq::Recipe& recipe, const model::Runtime& fp,
                             const Reference& reference, const EvaluateOptions& opt,
                             ptq::ApplyReport* applied_out) {
  const auto t0 = std::chrono::steady_clock::now();
  ptq::ApplyReport applied;
  const std::unique_ptr<model::Runtime> q = ptq::apply_recipe(
      recipe, fp, &applied, opt.calibration,
      [&](const std::string& what, int done, int total) {
        if (opt.progress) opt.progress(what, done, total);
      },
      opt.cache);
  RecipeResult r;
  if (opt.execution != model::Execution::Emulate)
    r.execution = model::prepare_execution(*q, opt.execution).summary();
  r.recipe = recipe;
  r.hash = recipe.hash_hex();
  r.bits_per_weight = applied.bits_per_weight;
  r.bits_per_linear_weight = applied.bits_per_linear_weight;
  r.mac_cost = recipe_mac_cost(recipe, fp);
  r.method_seconds = applied.method_seconds;
  if (recipe.needs_calibration() && opt.calibration) r.calibration = opt.calibration->description;
  if (const TextWindows* w = reference.windows()) {
    const auto* decoder = dynamic_cast<const model::Decoder*>(q.get());
    if (!decoder) throw Error("internal: a decoder reference for a model that is not a decoder");
    PerplexityOptions popt;
    popt.compare_to = reference.baseline();
    popt.progress = [&](int64_t done, int64_t total) {
      if (opt.progress) opt.progress("eval", done, total);
    };
    const PerplexityResult e = perplexity(*decoder, *w, "", popt);
    r.compared = e.compared;
    r.ppl = e.ppl;
    r.ppl_stderr = e.ppl_stderr;
    r.delta_ppl = e.delta_ppl;
    r.delta_ppl_stderr = e.delta_ppl_stderr;
    r.ln_ppl_ratio = e.ln_ppl_ratio;
    r.ln_ppl_ratio_stderr = e.ln_ppl_ratio_stderr;
    r.kld = e.kld;
    r.top1 = e.top1_agreement;
    r.top1_stderr = e.top1_stderr;
    r.tokens_per_second = e.tokens_per_second;
    r.gflops = e.gflops;
  } else {
    const auto* encoder = dynamic_cast<const model::Encoder*>(q.get());
    if (!encoder || !reference.sentences())
      throw Error("internal: an encoder reference for a model that is not an encoder");
    r.encoder = true;
    const std::vector<float> e = embed_all(*encoder, *reference.sentences());
    r.embedding = compare_embeddings(e, reference.embeddings(), encoder->embedding_width());
  }
  if (!reference.layer_window().empty())
    r.layers = layer_statistics(*q, *reference.layer_outputs(applied.transformed.get()), applied);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (applied_out) *applied_out = std::move(applied);
  return r;
}

}  // namespace lowbit::eval
