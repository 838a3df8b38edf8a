// The lowbit command-line tool: one file per sub-command, each registering itself here.
#pragma once

#include <CLI/CLI.hpp>

namespace lowbit::cli {

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
