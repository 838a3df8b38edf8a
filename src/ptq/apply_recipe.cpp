// Applies a recipe to a LLaMA-family model: round-to-nearest weights, run-time quantizers.
#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "lowbit/model/execution.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/format_search.h"
#include "lowbit/ptq/gptq.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/ptq/rotate.h"
#include "lowbit/ptq/smoothquant.h"
#include "lowbit/util/error.h"

namespace lowbit::ptq {
namespace {

constexpr double kKeptBits = 16;  // a kept weight is counted as bf16

struct Quantized {
  std::shared_ptr<std::vector<float>> values;  // the tensor to use (the original when kept)
  std::shared_ptr<const QTensor> codes;        // values quantized (null when kept)
  WeightReport report;
};

Quantized quantize_weight(const std::string& site, const MaybeScheme& scheme,
                          std::shared_ptr<std::vector<float>> w, size_t rows, size_t cols) {
  Quantized q;
  q.report.site = site;
  q.report.shape = {rows, cols};
  q.report.scheme = maybe_scheme_name(scheme);
  q.report.bits_per_element = kKeptBits;
  if (!scheme) {
    q.values = std::move(w);
    return q;
  }
  auto out = std::make_shared<std::vector<float>>(w->size());
  // The codes too, for real execution (model::prepare_execution packs them for the kernels).
  auto codes = std::make_shared<QTensor>();
  try {
    const QuantReport r = measure(*scheme, w->data(), q.report.shape, out.get(), codes.get());
    q.report.error = r.tensor;
    q.report.bits_per_element = r.bits_per_element;
  } catch (const Error& e) {
    throw Error("recipe: weight " + site + ": " + e.what());
  }
  q.codes = std::move(codes);
  q.values = std::move(out);
  return q;
}

}  // namespace

std::vector<std::string> model_sites(const model::Runtime& m) {
  // sites() hands out pointers for changing the model; only the names are read here.
  return const_cast<model::Runtime&>(m).sites().names();
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs the recipe's methods on `base`; GPTQ's results land in `prequantized` and the format
// search's choices in `chosen`, by site.
// What a weight-quantizing method's result depends on: the methods up to and including it, the
// weight schemes, the calibration data (the model is the same within one sweep).
std::string method_key(const Recipe& recipe, size_t upto, const Calibration& calibration) {
  Recipe r = recipe;
  r.methods.resize(upto + 1);
  r.activations.reset();
  r.kv.reset();
  r.accumulate.reset();
  for (RecipeOverride& o : r.overrides) {
    o.activations.reset();
    o.kv.reset();
  }
  return r.canonical() + "|" + calibration.id;
}

std::unique_ptr<model::Runtime> run_methods(
    const Recipe& recipe, const model::Runtime& fp, const Calibration* calibration,
    PrequantizedWeights& prequantized, std::map<std::string, Scheme>& chosen, ApplyReport& rep,
    const std::function<void(const std::string&, int, int)>& progress, MethodCache* cache) {
  std::unique_ptr<model::Runtime> base = fp.clone();
  size_t index = 0;
  const auto scheme_of = [&](const std::string& site) -> MaybeScheme {
    const auto it = chosen.find(site);
    return it != chosen.end() ? MaybeScheme(it->second) : recipe.resolve(site).weights;
  };
  for (const Method& m : recipe.methods) {
    const size_t at = index++;
    const auto t0 = std::chrono::steady_clock::now();
    const MethodInfo& info = find_method(m.name);
    if (info.needs_calibration && !calibration)
      throw Error("recipe: the method " + m.name + " needs calibration data");
    MethodRun run{m,
                  recipe,
                  base,
                  calibration,
                  prequantized,
                  chosen,
                  scheme_of,
                  calibration && cache ? method_key(recipe, at, *calibration) : "",
                  cache,
                  [&](int done, int total) {
                    if (progress) progress(m.name, done, total);
                  }};
    info.run(run);
    rep.method_seconds.emplace_back(m.spelling(), seconds_since(t0));
  }
  return base;
}

// The methods' after_quantization steps, on the quantized model, in the recipe's order.
void run_after_quantization(const Recipe& recipe, std::unique_ptr<model::Runtime>& q,
                            const Calibration* calibration, PrequantizedWeights& prequantized,
                            std::map<std::string, Scheme>& chosen, ApplyReport& rep,
                            const std::function<void(const std::string&, int, int)>& progress) {
  const auto scheme_of = [&](const std::string& site) -> MaybeScheme {
    const auto it = chosen.find(site);
    return it != chosen.end() ? MaybeScheme(it->second) : recipe.resolve(site).weights;
  };
  for (const Method& m : recipe.methods) {
    const MethodInfo& info = find_method(m.name);
    if (!info.after_quantization) continue;
    const auto t0 = std::chrono::steady_clock::now();
    MethodRun run{m,
                  recipe,
                  q,
                  calibration,
                  prequantized,
                  chosen,
                  scheme_of,
                  "",
                  nullptr,
                  [&](int done, int total) {
                    if (progress) progress(m.name, done, total);
                  }};
    info.after_quantization(run);
    rep.method_seconds.emplace_back(m.spelling() + " (on the quantized model)", seconds_since(t0));
  }
}

}  // namespace

std::unique_ptr<model::Runtime> apply_recipe(
    const Recipe& recipe, const model::Runtime& fp_in, ApplyReport* report,
    const Calibration* calibration,
    const std::function<void(const std::string&, int, int)>& progress, MethodCache* cache) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> names = model_sites(fp_in);
  for (const RecipeOverride& o : recipe.overrides) {
    bool hit = false;
    for (const std::string& s : names) hit = hit || ::fnmatch(o.match.c_str(), s.c_str(), 0) == 0;
    if (!hit)
      throw Error("recipe: override pattern \"" + o.match +
                  "\" matches no site of this model (sites look like " + names.front() + ", " +
                  names[std::min<size_t>(1, names.size() - 1)] + ", " + names.back() +
                  "; model_sites() lists them)");
  }
  ApplyReport rep;
  PrequantizedWeights prequantized;
  std::map<std::string, Scheme> chosen;
  const std::unique_ptr<model::Runtime> fp =
      run_methods(recipe, fp_in, calibration, prequantized, chosen, rep, progress, cache);
  for (const Method& m : recipe.methods)
    if (find_method(m.name).transforms)
      rep.transformed = std::shared_ptr<const model::Runtime>(fp->clone());
  std::unique_ptr<model::Runtime> q = fp->clone();  // shares every weight until replaced
  const model::Sites fs = fp->sites(), qs = q->sites();
  if (qs.kv.empty() &&
      (recipe.kv || std::any_of(recipe.overrides.begin(), recipe.overrides.end(),
                                [](const RecipeOverride& o) { return o.kv && *o.kv; })))
    throw Error("recipe: the " + fp->architecture() +
                " model has no KV cache (an encoder attends within one pass); "
                "give no kv scheme");

  const MaybeScheme emb_scheme = recipe.resolve(qs.embedding.name).weights;
  // Weights the loader already quantized and packed (model::LoadOptions::pack_at_load): their
  // float32 values never existed, so their error is not measured here.
  const auto packed_at_load = [&](const std::string& site, const MaybeScheme& scheme, size_t rows,
                                  size_t cols) {
    if (!recipe.methods.empty())
      throw Error("recipe: " + site +
                  " was quantized while loading, but the recipe's methods need the float32 "
                  "model: load it without pack_at_load");
    WeightReport wr;
    wr.site = site;
    wr.shape = {rows, cols};
    wr.scheme = maybe_scheme_name(scheme);
    wr.bits_per_element = weight_bits_per_element(scheme, wr.shape);
    rep.weights.push_back(wr);
  };
  Quantized emb;
  if (*fs.embedding.values) {
    emb = quantize_weight(qs.embedding.name, emb_scheme, *fs.embedding.values, qs.embedding.rows,
                          qs.embedding.cols);
    *qs.embedding.values = emb.values;
    rep.weights.push_back(emb.report);
  } else {  // the table is the packed head's (tied, packed at load)
    packed_at_load(qs.embedding.name, emb_scheme, qs.embedding.rows, qs.embedding.cols);
  }

  // Quantizes one Linear's weight from `source` (the embedding's values for a tied head) and
  // returns its codes: the embedding's own when one tensor serves both, a method's result
  // (GPTQ) where there is one, else round to nearest.
  const auto quantize_linear = [&](model::Linear& lin, const MaybeScheme& scheme,
                                   const std::shared_ptr<std::vector<float>>& source,
                                   bool shares_embedding) -> std::shared_ptr<const QTensor> {
    if (shares_embedding) {  // quantized alike, or both kept
      lin.set_weight_shared(emb.values);
      return emb.codes;
    }
    const auto pre = prequantized.find(lin.name());
    if (pre != prequantized.end()) {  // quantized by a method (GPTQ): measured against its input
      WeightReport wr;
      wr.site = lin.name();
      wr.shape = {size_t(lin.out_features()), size_t(lin.in_features())};
      wr.scheme = maybe_scheme_name(scheme);
      wr.error.add_values(source->data(), pre->second.values.data(), source->size());
      wr.bits_per_element = scheme_bits_per_element(*scheme, wr.shape);
      lin.set_weight(pre->second.values);
      rep.weights.push_back(wr);
      return pre->second.codes;
    }
    Quantized qw = quantize_weight(lin.name(), scheme, source, size_t(lin.out_features()),
                                   size_t(lin.in_features()));
    lin.set_weight_shared(qw.values);
    rep.weights.push_back(qw.report);
    return qw.codes;
  };

  std::vector<model::Linear*> linears;
  for (const model::LinearSite& site : qs.linears) linears.push_back(site.linear);
  if (qs.head) linears.push_back(qs.head);
  for (model::Linear* lin : linears) {
    const bool is_output = lin == qs.head;
    const bool tied = is_output && fs.head_tied;
    Recipe::Resolved r = recipe.resolve(lin->name());
    if (const auto it = chosen.find(lin->name()); it != chosen.end()) r.weights = it->second;
    const bool at_load = lin->packed_weight() && lin->weight_scheme();
    std::shared_ptr<const QTensor> codes;
    float global = 1.0f;
    if (at_load) {
      if (lin->weight_scheme() != r.weights)
        throw Error("recipe: " + lin->name() + " was quantized while loading in " +
                    maybe_scheme_name(lin->weight_scheme()) + ", but the recipe gives it " +
                    maybe_scheme_name(r.weights));
      packed_at_load(lin->name(), r.weights, size_t(lin->out_features()),
                     size_t(lin->in_features()));
    } else {
      const std::shared_ptr<std::vector<float>> source =
          tied ? *fs.embedding.values : lin->weight_ptr();
      // The per-tensor scale of a two-level scheme, as quantizing `source` chose it (GPTQ's too).
      global = r.weights && r.weights->global_scale
                   ? tensor_global_scale(*r.weights, source->data(), source->size())
                   : 1.0f;
      codes = quantize_linear(*lin, r.weights, source, tied && r.weights == emb_scheme);
    }
    try {
      if (r.activations) validate_scheme(*r.activations);
    } catch (const Error& e) {
      throw Error("recipe: activations of " + lin->name() + ": " + e.what());
    }
    lin->set_input_scheme(r.activations);
    lin->set_accumulation(recipe.accumulate);
    if (!at_load) lin->set_weight_scheme(r.weights, global, codes);
    if (lin->low_rank())  // LoRC's factors are stored beside the weight: they count towards it
      for (WeightReport& wr : rep.weights)
        if (wr.site == lin->name())
          wr.bits_per_element += lin->low_rank()->storage_bits /
                                 (double(lin->out_features()) * double(lin->in_features()));
  }
  for (const model::KvSite& kv : qs.kv) {
    *kv.scheme = recipe.resolve(kv.name).kv;
    try {
      if (*kv.scheme) validate_scheme(**kv.scheme);
    } catch (const Error& e) {
      throw Error("recipe: " + kv.name + ": " + e.what());
    }
  }

  run_after_quantization(recipe, q, calibration, prequantized, chosen, rep, progress);

  double bits = 0, count = 0, linear_bits = 0, linear_count = 0;
  for (const WeightReport& r : rep.weights) {
    const double n = double(r.shape[0] * r.shape[1]);
    bits += n * r.bits_per_element;
    count += n;
    if (r.site != qs.embedding.name && !(qs.head && r.site == qs.head->name())) {
      linear_bits += n * r.bits_per_element;
      linear_count += n;
    }
  }
  rep.bits_per_weight = count > 0 ? bits / count : 0;
  rep.bits_per_linear_weight = linear_count > 0 ? linear_bits / linear_count : 0;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (report) *report = std::move(rep);
  return q;
}

double weight_bits_per_element(const MaybeScheme& scheme, const std::vector<size_t>& shape) {
  return scheme ? scheme_bits_per_element(*scheme, shape) : kKeptBits;
}

std::function<std::optional<Scheme>(const std::string&, size_t, size_t)> load_time_quantizer(
    const Recipe& recipe) {
  if (!recipe.methods.empty() || recipe.accumulate) return {};
  return [recipe](const std::string& site, size_t rows, size_t cols) -> std::optional<Scheme> {
    const Recipe::Resolved r = recipe.resolve(site);
    if (!r.weights) return std::nullopt;
    // The embedding is read by rows (from the tied head's packed weight): no activations.
    const MaybeScheme activations = site == "embedding" ? std::nullopt : r.activations;
    if (!model::execution_gap(*r.weights, activations, false, rows, cols).empty())
      return std::nullopt;
    return r.weights;
  };
}

}  // namespace lowbit::ptq
