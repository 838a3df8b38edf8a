// `lowbit eval`: perplexity of a decoder on a text (llama.cpp's method), optionally recording a
// baseline or comparing with one (KL divergence, top-1 agreement, ΔPPL); for an encoder, sentence
// embeddings of the text's lines and their cosine similarity to a baseline.
#include <fmt/core.h>
#include <sys/resource.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "io/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/eval.h"
#include "lowbit/npy.h"
#include "lowbit/calibration.h"
#include "lowbit/layer_stats.h"
#include "lowbit/ptq.h"
#include "progress.h"
#include "recipe_flags.h"
#include "util/files.h"

namespace lowbit::cli {
namespace {

using nlohmann::json;

struct Args {
  std::string model;
  std::string text;
  int ctx = 512;
  int64_t max_tokens = 0;
  std::string save_baseline;
  std::string baseline;
  int top_k = 64;
  int threads = 0;
  bool json = false;
  RecipeFlags recipe;
  bool layers = false;
  bool repair_utf8 = false;
};

// Peak resident memory of this process so far (Linux reports ru_maxrss in KiB).
double peak_rss_mib() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

json distribution_json(const eval::Distribution& d) {
  return {{"mean", d.mean}, {"stderr", d.stderr_}, {"median", d.median}, {"p99", d.p99}, {"max", d.max}};
}

json stats_json(const ErrorStats& e) {
  return {{"sqnr_db", std::isfinite(e.sqnr_db()) ? json(e.sqnr_db()) : json(nullptr)},
          {"clipped_fraction", e.clipped_fraction()},
          {"flushed_fraction", e.flushed_fraction()},
          {"count", e.count}};
}

std::string db(double v) { return std::isfinite(v) ? fmt::format("{:.1f}", v) : "exact"; }

void print_layers(const std::vector<eval::LayerRow>& rows, const ptq::ApplyReport& applied) {
  fmt::print("\nper-layer statistics on the first window (output SQNR against the full-precision model):\n");
  fmt::print("{:<22} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>10}\n", "site", "w SQNR", "w clip%", "w flush%",
             "in absmax", "in kurt", "in SQNR", "in flush%", "out SQNR");
  for (const eval::LayerRow& r : rows)
    fmt::print("{:<22} {:>9} {:>8.3f} {:>8.3f} {:>9.2f} {:>9.1f} {:>9} {:>8.3f} {:>10}\n", r.site,
               r.weight.count ? db(r.weight.sqnr_db()) : "fp", 100 * r.weight.clipped_fraction(),
               100 * r.weight.flushed_fraction(), r.input_absmax, r.input_kurtosis,
               r.input.count ? db(r.input.sqnr_db()) : "fp", 100 * r.input.flushed_fraction(), db(r.output_sqnr_db));
  for (const ptq::WeightReport& w : applied.weights)
    if ((w.site == "embedding" || w.site == "output") && w.error.count)
      fmt::print("{:<22} {:>9} {:>8.3f} {:>8.3f}\n", w.site, db(w.error.sqnr_db()), 100 * w.error.clipped_fraction(),
                 100 * w.error.flushed_fraction());
}

void run_decoder(const Args& a, const model::Model& m, const std::string& text) {
  const bool quantized = a.recipe.any();
  if (a.layers && !quantized) throw Error("--layers describes a recipe's error: give one (--recipe or --w/--a/--kv ...)");
  ptq::Recipe recipe;
  ptq::ApplyReport applied;
  std::unique_ptr<model::Llama> q;
  if (quantized) {
    recipe = a.recipe.recipe();
    const std::unique_ptr<ptq::Calibration> calib = a.recipe.calibration(recipe, m);
    ProgressBar method_bar("methods", "layers");
    q = std::make_unique<model::Llama>(ptq::apply_recipe(recipe, *m.llama, &applied, calib.get(),
                                                         [&](const std::string&, int done, int total) { method_bar.update(done, total); }));
    for (const auto& [method, sec] : applied.method_seconds) fmt::print(stderr, "{}: {:.1f} s\n", method, sec);
    if (calib) fmt::print(stderr, "calibration: {}\n", calib->description);
  }
  const model::Llama& llama = q ? *q : *m.llama;
  warn_if_beyond_trained_context(a.ctx, m.llama->config().context_length, m.path);
  const std::vector<int32_t> tokens = m.tokenizer->encode_prefix(text, size_t(a.max_tokens));
  const int32_t bos = m.tokenizer->adds_bos() ? m.tokenizer->bos_id() : -1;
  eval::PerplexityOptions opt;
  opt.n_ctx = a.ctx;
  opt.max_tokens = a.max_tokens;
  opt.record = !a.save_baseline.empty();
  opt.baseline_top_k = a.top_k;
  eval::Baseline base;
  if (!a.baseline.empty()) {
    base = eval::Baseline::load(a.baseline);
    opt.compare_to = &base;
  }
  ProgressBar bar("eval", "windows");
  opt.progress = [&](int64_t done, int64_t total) { bar.update(done, total); };
  const eval::PerplexityResult r =
      eval::perplexity(llama, tokens, bos, m.path + " (" + m.summary() + ")" + (quantized ? " with " + recipe.canonical() : ""), opt);
  if (opt.record) r.recorded.save(a.save_baseline);
  std::vector<eval::LayerRow> layers;
  if (a.layers) {
    std::vector<int32_t> window(tokens.begin(), tokens.begin() + std::min<size_t>(tokens.size(), size_t(a.ctx)));
    if (bos >= 0) window[0] = bos;
    // A transformed (rotated, smoothed) model is compared with its own full-precision self.
    layers = eval::layer_statistics(llama, eval::ReferenceOutputs(applied.transformed ? *applied.transformed : static_cast<const model::Runtime&>(*m.llama), window),
                                    applied);
  }

  if (a.json) {
    json j = {{"model", m.path},         {"architecture", m.summary()},   {"text", a.text},
              {"text_tokens", r.text_tokens}, {"ctx", r.n_ctx},            {"windows", r.n_windows},
              {"scored_tokens", r.n_scored},  {"ppl", r.ppl},              {"ppl_stderr", r.ppl_stderr},
              {"seconds", r.seconds},         {"tokens_per_second", r.tokens_per_second}, {"gflops", r.gflops},
              {"parameters", m.llama->parameter_count()}, {"peak_rss_mib", peak_rss_mib()}};
    if (r.compared)
      j["baseline"] = {{"file", a.baseline},        {"base_ppl", r.base_ppl},        {"delta_ppl", r.delta_ppl},  {"delta_ppl_stderr", r.delta_ppl_stderr},
                       {"ln_ppl_ratio", r.ln_ppl_ratio}, {"ln_ppl_ratio_stderr", r.ln_ppl_ratio_stderr},
                       {"ppl_ratio", r.ppl_ratio},  {"kld", distribution_json(r.kld)}, {"top1_agreement", r.top1_agreement},
                       {"top1_stderr", r.top1_stderr}};
    if (opt.record) j["saved_baseline"] = a.save_baseline;
    if (quantized) {
      j["recipe"] = json::parse(recipe.canonical());
      j["bits_per_weight"] = applied.bits_per_weight;
      j["bits_per_linear_weight"] = applied.bits_per_linear_weight;
    }
    if (a.layers) {
      json rows = json::array();
      for (const eval::LayerRow& l : layers)
        rows.push_back({{"site", l.site}, {"weight_scheme", l.weight_scheme}, {"input_scheme", l.input_scheme},
                        {"weight", stats_json(l.weight)}, {"input", stats_json(l.input)}, {"input_absmax", l.input_absmax},
                        {"input_kurtosis", l.input_kurtosis},
                        {"output_sqnr_db", std::isfinite(l.output_sqnr_db) ? json(l.output_sqnr_db) : json(nullptr)}});
      j["layers"] = rows;
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("model:   {}\n         {}\n", m.path, m.summary());
  if (quantized)
    fmt::print("recipe:  {}\n         {}\n         {:.3f} bits per weight (model), {:.3f} per Linear weight; quantized in {:.1f} s\n",
               recipe.label(), recipe.canonical(), applied.bits_per_weight, applied.bits_per_linear_weight, applied.seconds);
  fmt::print("text:    {} ({} tokens tokenized); {} windows of {} tokens, {} scored (second half of each window)\n", a.text,
             r.text_tokens, r.n_windows, r.n_ctx, r.n_scored);
  fmt::print("PPL:     {:.4f} ± {:.4f}\n", r.ppl, r.ppl_stderr);
  fmt::print("speed:   {:.1f} tokens/s, {:.1f} GFLOP/s ({:.1f} s)\n", r.tokens_per_second, r.gflops, r.seconds);
  const double f32_mib = double(m.llama->parameter_count()) * 4 / (1 << 20);
  fmt::print("memory:  peak {:.0f} MiB resident; the float32 weights are {:.0f} MiB ({:.1f}M parameters)\n",
             peak_rss_mib(), f32_mib, double(m.llama->parameter_count()) * 1e-6);
  if (r.compared) {
    fmt::print("against baseline {}:\n", a.baseline);
    fmt::print("  PPL(base)        {:.4f}\n  ΔPPL             {:+.4f} ± {:.4f}  (ratio {:.5f}; ln ratio {:+.5f} ± {:.5f})\n",
               r.base_ppl, r.delta_ppl, r.delta_ppl_stderr, r.ppl_ratio, r.ln_ppl_ratio, r.ln_ppl_ratio_stderr);
    fmt::print("  KLD mean         {:.6f} ± {:.6f}\n  KLD median       {:.6f}\n  KLD p99          {:.6f}\n"
               "  KLD max          {:.6f}\n",
               r.kld.mean, r.kld.stderr_, r.kld.median, r.kld.p99, r.kld.max);
    fmt::print("  top-1 agreement  {:.3f} ± {:.3f} %\n", 100 * r.top1_agreement, 100 * r.top1_stderr);
  }
  if (opt.record) fmt::print("baseline saved to {} (top-{} log-probabilities per scored token)\n", a.save_baseline, a.top_k);
  if (a.layers) print_layers(layers, applied);
}

// Encoders: each non-empty line of the text is a sentence.
void run_encoder(const Args& a, const model::Model& m, const std::string& text) {
  std::vector<std::string> sentences;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) sentences.push_back(line);
  if (sentences.empty()) throw Error(a.text + ": no non-empty lines to embed");
  const int dim = m.bert->config().dim;
  const std::vector<float> emb = eval::embed_sentences(m, sentences);
  const std::vector<size_t> shape = {sentences.size(), size_t(dim)};
  if (!a.save_baseline.empty()) write_npy(a.save_baseline, "<f4", shape, emb.data(), emb.size() * sizeof(float));
  json j = {{"model", m.path}, {"architecture", m.summary()}, {"sentences", sentences.size()}};
  if (!a.baseline.empty()) {
    std::vector<size_t> base_shape;
    const std::vector<float> base = read_npy_float32(a.baseline, base_shape);
    const eval::CosineResult c = eval::cosine_to_baseline(emb, base, dim);
    j["cosine_mean"] = c.mean;
    j["cosine_min"] = c.min;
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("model:     {}\n           {}\nsentences: {} from {}\n", m.path, m.summary(), sentences.size(), a.text);
  if (j.contains("cosine_mean"))
    fmt::print("cosine to baseline {}: mean {:.6f}, min {:.6f}\n", a.baseline, double(j["cosine_mean"]),
               double(j["cosine_min"]));
  if (!a.save_baseline.empty()) fmt::print("embeddings saved to {}\n", a.save_baseline);
}

void run(const Args& a) {
  if (!a.save_baseline.empty() && !a.baseline.empty()) throw Error("give --save-baseline or --baseline, not both");
  if (!a.save_baseline.empty()) io::require_writable(a.save_baseline, "--save-baseline");  // not after the run
  model::set_num_threads(a.threads);
  const std::string text = model::read_text_file(a.text, a.repair_utf8);  // before the slow part: fail fast
  if (a.recipe.any()) a.recipe.recipe();               // likewise: a bad recipe fails before loading
  const model::Model m = model::load_model(a.model);
  print_model_warnings(m);
  if (m.is_encoder() && a.recipe.any()) throw Error("recipes apply to decoder (LLaMA-family) models; " + m.path + " is an encoder");
  if (m.is_encoder()) run_encoder(a, m, text); else run_decoder(a, m, text);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval", "Perplexity of a model on a text, and its distance from a baseline");
  cmd->add_option("--model,-m", args->model, "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--text", args->text, "Text file (UTF-8); for encoders, one sentence per line")->required();
  cmd->add_option("--ctx", args->ctx, "Window length in tokens")->default_val(512)->check(CLI::Range(8, 1 << 20));
  add_max_tokens_option(cmd, args->max_tokens, "Use at most this many tokens of the text (0: all)", 0);
  cmd->add_option("--save-baseline", args->save_baseline, "Record this run as a baseline file");
  cmd->add_option("--baseline", args->baseline, "Compare with a recorded baseline (KL divergence, top-1, ΔPPL)");
  cmd->add_option("--top-k", args->top_k, "Log-probabilities a baseline keeps per token")->default_val(64)->check(CLI::Range(1, 1 << 20));
  add_threads_option(cmd, args->threads);
  cmd->add_flag("--json", args->json, "Print the result as JSON");
  add_repair_utf8_flag(cmd, args->repair_utf8);
  args->recipe.add_to(cmd);
  cmd->add_flag("--layers", args->layers, "Per-Linear table: weight/input error, input range and kurtosis, output SQNR");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
