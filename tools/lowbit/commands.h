// The lowbit command-line tool: one file per sub-command, each registering itself here.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "lowbit/model/linear.h"
#include "lowbit/model/model.h"

namespace lowbit::cli {

// --threads,-t: 0 (all hardware threads) up to the machine's hardware threads.
inline CLI::Option* add_threads_option(CLI::App* cmd, int& threads) {
  const int max = model::max_threads();
  return cmd
      ->add_option(
          "--threads,-t", threads,
          "Threads: 1.." + std::to_string(max) + " (this machine's hardware threads), 0 for all")
      ->default_val(0)
      ->check(CLI::Range(0, max));
}

// --exec: how a quantized model runs (lowbit/model/execution.h).
inline CLI::Option* add_exec_option(CLI::App* cmd, std::string& exec, const std::string& dflt) {
  return cmd
      ->add_option("--exec", exec,
                   "emulate (float32 on fake-quantized weights), real (packed weights and "
                   "kernels at every quantized site, else an error naming the site) or auto "
                   "(real where a kernel exists, emulated elsewhere, and says where)")
      ->default_val(dflt)
      ->check(CLI::IsMember({"emulate", "real", "auto"}));
}

// --repair-utf8: invalid UTF-8 in the text becomes U+FFFD (model::checked_utf8) instead of an
// error.
inline void add_repair_utf8_flag(CLI::App* cmd, bool& repair) {
  cmd->add_flag("--repair-utf8", repair,
                "Replace each invalid UTF-8 sequence of the text by U+FFFD instead of stopping "
                "(default: an error naming "
                "the first bad byte offset)");
}

// Windows longer than the model was trained for: allowed (research on extrapolation wants them),
// but never silently. Printed to stderr before the run.
inline void warn_if_beyond_trained_context(int ctx, int trained, const std::string& model) {
  if (ctx > trained)
    std::fprintf(stderr,
                 "lowbit: warning: --ctx %d exceeds the trained context of %s (%d positions): "
                 "positions past %d "
                 "are RoPE extrapolation the model never saw, and its perplexity there measures "
                 "that, not the "
                 "quantization\n",
                 ctx, model.c_str(), trained, trained);
}

// Prints what the loader accepted but reported (lowbit::model::Model::warnings).
inline void print_model_warnings(const model::Model& m) {
  for (const std::string& w : m.warnings)
    std::fprintf(stderr, "lowbit: note: %s: %s\n", m.path.c_str(), w.c_str());
}

// --max-tokens: a budget of tokens, 0 meaning the whole text; negative values are refused.
inline CLI::Option* add_max_tokens_option(CLI::App* cmd, int64_t& max_tokens,
                                          const std::string& help, int64_t fallback) {
  return cmd->add_option("--max-tokens", max_tokens, help)
      ->default_val(fallback)
      ->check(CLI::NonNegativeNumber);
}

void add_formats_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_quantize_tensor_command(CLI::App& app);
void add_schemes_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_recipe_command(CLI::App& app);
void add_sweep_commands(CLI::App& app);
void add_allocate_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_train_sweep_command(CLI::App& app);

}  // namespace lowbit::cli
