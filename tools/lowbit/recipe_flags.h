// The recipe options shared by `lowbit eval` and `lowbit recipe`: a JSON file and/or flags per
// role, overrides, accumulator. Flags given on the command line replace the file's roles.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/error.h"
#include "lowbit/recipe.h"

namespace lowbit::cli {

struct RecipeFlags {
  std::string file, name, weights, activations, kv, embedding, output, accumulate;
  std::vector<std::string> overrides;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--recipe", file, "Recipe JSON file (docs/recipes.md); the flags below replace its fields");
    cmd->add_option("--w", weights, "Scheme for every Linear's weights, or fp (e.g. mxfp4, int4_g128, e4m3fn:channel)");
    cmd->add_option("--a", activations, "Scheme for every Linear's input activations, or fp (e.g. mxfp8_e4m3, fp8_token)");
    cmd->add_option("--kv", kv, "Scheme for the KV cache as [tokens, kv_heads, head_dim], or fp (e.g. e4m3fn:token)");
    cmd->add_option("--embed", embedding, "Scheme for the token embedding table, or fp");
    cmd->add_option("--head", output, "Scheme for the output head's weight, or fp");
    cmd->add_option("--accum", accumulate, "Emulate a narrow accumulator: <format>/<every>, e.g. bf16/32, fp16/1");
    cmd->add_option("--override", overrides, "<pattern>:w=..,a=..,kv=.. for matching sites, e.g. '*.down_proj:w=fp' (repeatable)");
    cmd->add_option("--name", name, "A label for the recipe in reports");
  }

  bool any() const {
    return !file.empty() || !weights.empty() || !activations.empty() || !kv.empty() || !embedding.empty() ||
           !output.empty() || !accumulate.empty() || !overrides.empty();
  }

  ptq::Recipe recipe() const {
    ptq::Recipe r;
    if (!file.empty()) r = ptq::read_recipe_file(file);
    const auto set = [](ptq::MaybeScheme& role, const std::string& flag, const char* what) {
      if (flag.empty()) return;
      try {
        role = ptq::parse_maybe_scheme(flag);
      } catch (const Error& e) {
        throw Error(std::string(what) + ": " + e.what());
      }
    };
    set(r.weights, weights, "--w");
    set(r.activations, activations, "--a");
    set(r.kv, kv, "--kv");
    set(r.embedding, embedding, "--embed");
    set(r.output, output, "--head");
    if (!accumulate.empty()) r.accumulate = ptq::parse_accumulation(accumulate);
    for (const std::string& o : overrides) r.overrides.push_back(ptq::parse_override(o));
    if (!name.empty()) r.name = name;
    return r;
  }
};

}  // namespace lowbit::cli
