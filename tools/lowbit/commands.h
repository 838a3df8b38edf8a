// The lowbit command-line tool: one file per sub-command, each registering itself here.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "lowbit/linear.h"

namespace lowbit::cli {

// --threads,-t: 0 (all hardware threads) up to the machine's hardware threads.
inline CLI::Option* add_threads_option(CLI::App* cmd, int& threads) {
  const int max = model::max_threads();
  return cmd
      ->add_option("--threads,-t", threads,
                   "Threads: 1.." + std::to_string(max) + " (this machine's hardware threads), 0 for all")
      ->default_val(0)
      ->check(CLI::Range(0, max));
}

// --max-tokens: a budget of tokens, 0 meaning the whole text; negative values are refused.
inline CLI::Option* add_max_tokens_option(CLI::App* cmd, int64_t& max_tokens, const std::string& help, int64_t fallback) {
  return cmd->add_option("--max-tokens", max_tokens, help)->default_val(fallback)->check(CLI::NonNegativeNumber);
}

void add_formats_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_quantize_tensor_command(CLI::App& app);
void add_schemes_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_recipe_command(CLI::App& app);
void add_sweep_commands(CLI::App& app);

}  // namespace lowbit::cli
