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
#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/evaluate.h"
#include "lowbit/eval/layer_stats.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/io/npy.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/util/error.h"
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
  std::string exec = "emulate";
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

std::string db(double v) {
  return std::isfinite(v) ? fmt::format("{:.1f}", v) : "exact";
}

void print_layers(const std::vector<eval::LayerRow>& rows, const ptq::ApplyReport& applied) {
  fmt::print(
      "\nper-layer statistics on the first window (output SQNR against the full-precision "
      "model):\n");
  fmt::print("{:<22} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>10}\n", "site", "w SQNR",
             "w clip%", "w flush%", "in absmax", "in kurt", "in SQNR", "in flush%", "out SQNR");
  for (const eval::LayerRow& r : rows)
    fmt::print("{:<22} {:>9} {:>8.3f} {:>8.3f} {:>9.2f} {:>9.1f} {:>9} {:>8.3f} {:>10}\n", r.site,
               r.weight.count ? db(r.weight.sqnr_db()) : "fp", 100 * r.weight.clipped_fraction(),
               100 * r.weight.flushed_fraction(), r.input_absmax, r.input_kurtosis,
               r.input.count ? db(r.input.sqnr_db()) : "fp", 100 * r.input.flushed_fraction(),
               db(r.output_sqnr_db));
  for (const ptq::WeightReport& w : applied.weights)
    if ((w.site == "embedding" || w.site == "output") && w.error.count)
      fmt::print("{:<22} {:>9} {:>8.3f} {:>8.3f}\n", w.site, db(w.error.sqnr_db()),
                 100 * w.error.clipped_fraction(), 100 * w.error.flushed_fraction());
}

// The document `--json` prints (docs/results.md): what was evaluated and the result object.
json result_document(const Args& a, const model::Model& m, const eval::RecipeResult& r,
                     const json& setup) {
  json j = {{"lowbit_result", 1},
            {"model", m.path},
            {"architecture", m.summary()},
            {"model_hash", m.content_hash},
            {"text", a.text},
            {"setup", setup},
            {"result", json::parse(eval::result_json(r))},
            {"peak_rss_mib", peak_rss_mib()}};
  if (!a.baseline.empty()) j["baseline"] = a.baseline;
  return j;
}

void print_recipe(const ptq::Recipe& recipe, const eval::RecipeResult& r,
                  const ptq::ApplyReport& applied) {
  if (recipe.is_full_precision()) return;
  fmt::print(
      "recipe:  {}\n         {}\n         {:.3f} bits per weight (model), {:.3f} per Linear "
      "weight; quantized in {:.1f} s\n",
      recipe.label(), recipe.canonical(), r.bits_per_weight, r.bits_per_linear_weight,
      applied.seconds);
  for (const auto& [method, sec] : applied.method_seconds)
    fmt::print(stderr, "{}: {:.1f} s\n", method, sec);
  if (!r.calibration.empty()) fmt::print(stderr, "calibration: {}\n", r.calibration);
  if (!r.execution.empty()) fmt::print(stderr, "execution: {}\n", r.execution);
}

// Records the full-precision model's baseline (no recipe: a baseline is what recipes are measured
// against).
void record_baseline(const Args& a, const model::Model& m, const eval::TextWindows& windows) {
  eval::PerplexityOptions opt;
  opt.record = true;
  opt.baseline_top_k = a.top_k;
  ProgressBar bar("eval", "windows");
  opt.progress = [&](int64_t done, int64_t total) { bar.update(done, total); };
  const eval::PerplexityResult r =
      eval::perplexity(*m.llama, windows, m.path + " (" + m.summary() + ")", opt);
  r.recorded.save(a.save_baseline);
  if (a.json) {
    fmt::print("{}\n", json({{"model", m.path},
                             {"text", a.text},
                             {"ctx", r.n_ctx},
                             {"windows", r.n_windows},
                             {"ppl", r.ppl},
                             {"ppl_stderr", r.ppl_stderr},
                             {"saved_baseline", a.save_baseline}})
                           .dump(2));
    return;
  }
  fmt::print("model:   {}\n         {}\n", m.path, m.summary());
  fmt::print(
      "text:    {} ({} tokens tokenized); {} windows of {} tokens, {} scored (second half of each "
      "window)\n",
      a.text, r.text_tokens, r.n_windows, r.n_ctx, r.n_scored);
  fmt::print("PPL:     {:.4f} ± {:.4f}\n", r.ppl, r.ppl_stderr);
  fmt::print("speed:   {:.1f} tokens/s, {:.1f} GFLOP/s ({:.1f} s)\n", r.tokens_per_second, r.gflops,
             r.seconds);
  fmt::print("baseline saved to {} (top-{} log-probabilities per scored token)\n", a.save_baseline,
             a.top_k);
}

void run_decoder(const Args& a, const model::Model& m, const std::string& text) {
  const ptq::Recipe recipe = a.recipe.any() ? a.recipe.recipe() : ptq::Recipe();
  if (a.layers && recipe.is_full_precision())
    throw Error("--layers describes a recipe's error: give one (--recipe or --w/--a/--kv ...)");
  warn_if_beyond_trained_context(a.ctx, m.llama->config().context_length, m.path);
  const eval::TextWindows windows =
      eval::make_windows(*m.tokenizer, text, a.text, a.ctx, a.max_tokens);
  if (!a.save_baseline.empty()) {
    if (!recipe.is_full_precision())
      throw Error(
          "--save-baseline records the full-precision model (what recipes are compared with): drop "
          "the recipe flags");
    return record_baseline(a, m, windows);
  }
  eval::Baseline base;
  if (!a.baseline.empty()) base = eval::Baseline::load(a.baseline);
  const eval::Reference reference(*m.llama, windows, a.baseline.empty() ? nullptr : &base,
                                  a.layers);
  const std::unique_ptr<ptq::Calibration> calib =
      a.recipe.any() ? a.recipe.calibration(recipe, m) : nullptr;
  ProgressBar method_bar("methods", "layers"), bar("eval", "windows");
  eval::EvaluateOptions opt;
  opt.calibration = calib.get();
  opt.execution = model::parse_execution(a.exec);
  opt.progress = [&](const std::string& what, int64_t done, int64_t total) {
    (what == "eval" ? bar : method_bar).update(done, total);
  };
  ptq::ApplyReport applied;
  const eval::RecipeResult r = eval::evaluate_recipe(recipe, *m.llama, reference, opt, &applied);
  const int per_window = windows.scored_per_window();
  if (a.json) {
    const json setup = {{"ctx", a.ctx},
                        {"max_tokens", a.max_tokens},
                        {"text_tokens", windows.tokens.size()},
                        {"windows", windows.n_windows},
                        {"scored_tokens", windows.n_windows * per_window},
                        {"parameters", m.llama->parameter_count()},
                        {"tokens_per_second", r.tokens_per_second},
                        {"gflops", r.gflops}};
    fmt::print("{}\n", result_document(a, m, r, setup).dump(2));
    return;
  }
  fmt::print("model:   {}\n         {}\n", m.path, m.summary());
  print_recipe(recipe, r, applied);
  fmt::print(
      "text:    {} ({} tokens tokenized); {} windows of {} tokens, {} scored (second half of each "
      "window)\n",
      a.text, windows.tokens.size(), windows.n_windows, a.ctx, windows.n_windows * per_window);
  fmt::print("PPL:     {:.4f} ± {:.4f}\n", r.ppl, r.ppl_stderr);
  fmt::print("speed:   {:.1f} tokens/s, {:.1f} GFLOP/s\n", r.tokens_per_second, r.gflops);
  const double f32_mib = double(m.llama->parameter_count()) * 4 / (1 << 20);
  fmt::print(
      "memory:  peak {:.0f} MiB resident; the float32 weights are {:.0f} MiB ({:.1f}M "
      "parameters)\n",
      peak_rss_mib(), f32_mib, double(m.llama->parameter_count()) * 1e-6);
  if (r.compared && !a.baseline.empty()) {
    fmt::print("against baseline {}:\n", a.baseline);
    fmt::print(
        "  PPL(base)        {:.4f}\n  ΔPPL             {:+.4f} ± {:.4f}  (ratio {:.5f}; ln ratio "
        "{:+.5f} ± {:.5f})\n",
        r.ppl - r.delta_ppl, r.delta_ppl, r.delta_ppl_stderr, r.ppl / (r.ppl - r.delta_ppl),
        r.ln_ppl_ratio, r.ln_ppl_ratio_stderr);
    fmt::print(
        "  KLD mean         {:.6f} ± {:.6f}\n  KLD median       {:.6f}\n  KLD p99          {:.6f}\n"
        "  KLD max          {:.6f}\n",
        r.kld.mean, r.kld.stderr_, r.kld.median, r.kld.p99, r.kld.max);
    fmt::print("  top-1 agreement  {:.3f} ± {:.3f} %\n", 100 * r.top1, 100 * r.top1_stderr);
  }
  if (a.layers) print_layers(r.layers, applied);
}

// Encoders: each non-empty line of the text is a sentence. A recipe is measured against the
// full-precision model's embeddings of the same sentences (computed here, or read from --baseline).
void run_encoder(const Args& a, const model::Model& m, const std::string& text) {
  const ptq::Recipe recipe = a.recipe.any() ? a.recipe.recipe() : ptq::Recipe();
  const eval::Sentences sentences =
      eval::make_sentences(*m.tokenizer, text, a.text, m.bert->config().max_sequence_tokens);
  const int width = m.bert->embedding_width();
  std::vector<float> base;
  if (!a.baseline.empty()) {
    std::vector<size_t> base_shape;
    base = read_npy_float32(a.baseline, base_shape);
    if (base.size() != sentences.tokens.size() * size_t(width))
      throw Error(a.baseline + ": holds " + std::to_string(base.size()) + " values, not the " +
                  std::to_string(sentences.tokens.size()) + " x " + std::to_string(width) +
                  " embeddings of this text's sentences: record it again on the same text");
  } else {
    base = eval::embed_all(*m.bert, sentences);
  }
  if (!a.save_baseline.empty()) {
    if (!recipe.is_full_precision())
      throw Error(
          "--save-baseline records the full-precision model (what recipes are compared with): drop "
          "the recipe flags");
    const std::vector<size_t> shape = {sentences.tokens.size(), size_t(width)};
    write_npy(a.save_baseline, "<f4", shape, base.data(), base.size() * sizeof(float));
  }
  const eval::Reference reference(*m.bert, sentences, base, a.layers);
  const std::unique_ptr<ptq::Calibration> calib =
      a.recipe.any() ? a.recipe.calibration(recipe, m) : nullptr;
  eval::EvaluateOptions opt;
  opt.calibration = calib.get();
  opt.execution = model::parse_execution(a.exec);
  ptq::ApplyReport applied;
  const eval::RecipeResult r = eval::evaluate_recipe(recipe, *m.bert, reference, opt, &applied);
  if (a.json) {
    fmt::print("{}\n",
               result_document(
                   a, m, r, {{"sentences", sentences.tokens.size()}, {"pairs", r.embedding.pairs}})
                   .dump(2));
    return;
  }
  fmt::print("model:     {}\n           {}\n", m.path, m.summary());
  print_recipe(recipe, r, applied);
  fmt::print("sentences: {} from {}\n", sentences.tokens.size(), a.text);
  if (!recipe.is_full_precision() || !a.baseline.empty())
    fmt::print(
        "against {}: cosine mean {:.6f}, worst {:.6f}; rank correlation of {} pairwise "
        "similarities {:.6f}\n",
        a.baseline.empty() ? "the full-precision embeddings" : "baseline " + a.baseline,
        r.embedding.cosine_mean, r.embedding.cosine_min, r.embedding.pairs,
        r.embedding.rank_correlation);
  if (!a.save_baseline.empty()) fmt::print("embeddings saved to {}\n", a.save_baseline);
  if (a.layers) print_layers(r.layers, applied);
}

void run(const Args& a) {
  if (!a.save_baseline.empty() && !a.baseline.empty())
    throw Error("give --save-baseline or --baseline, not both");
  if (!a.save_baseline.empty())
    io::require_writable(a.save_baseline, "--save-baseline");  // not after the run
  model::set_num_threads(a.threads);
  const std::string text =
      model::read_text_file(a.text, a.repair_utf8);  // before the slow part: fail fast
  if (a.recipe.any()) a.recipe.recipe();             // likewise: a bad recipe fails before loading
  const model::Model m = model::load_model(a.model);
  print_model_warnings(m);
  if (m.is_encoder())
    run_encoder(a, m, text);
  else
    run_decoder(a, m, text);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity of a model on a text, and its distance from a baseline");
  cmd->add_option("--model,-m", args->model,
                  "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--text", args->text, "Text file (UTF-8); for encoders, one sentence per line")
      ->required();
  cmd->add_option("--ctx", args->ctx, "Window length in tokens")
      ->default_val(512)
      ->check(CLI::Range(8, 1 << 20));
  add_max_tokens_option(cmd, args->max_tokens, "Use at most this many tokens of the text (0: all)",
                        0);
  cmd->add_option("--save-baseline", args->save_baseline, "Record this run as a baseline file");
  cmd->add_option("--baseline", args->baseline,
                  "Compare with a recorded baseline (KL divergence, top-1, ΔPPL)");
  cmd->add_option("--top-k", args->top_k, "Log-probabilities a baseline keeps per token")
      ->default_val(64)
      ->check(CLI::Range(1, 1 << 20));
  add_threads_option(cmd, args->threads);
  // Emulation defines a recipe's numbers (and keys cached results); real execution differs from
  // it only in the order of float32 sums, which --exec real lets a user check.
  add_exec_option(cmd, args->exec, "emulate");
  cmd->add_flag("--json", args->json, "Print the result as JSON");
  add_repair_utf8_flag(cmd, args->repair_utf8);
  args->recipe.add_to(cmd);
  cmd->add_flag("--layers", args->layers,
                "Per-Linear table: weight/input error, input range and kurtosis, output SQNR");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
