// The recipe options shared by `lowbit eval` and `lowbit recipe`: a JSON file and/or flags per
// role, overrides, accumulator. Flags given on the command line replace the file's roles.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/model/model.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/util/error.h"
#include "util/files.h"

namespace lowbit::cli {

struct RecipeFlags {
  std::string file, name, weights, activations, kv, embedding, output, accumulate;
  std::vector<std::string> overrides, methods;
  // Calibration data for the methods that need it.
  std::string calib_text;
  int calib_count = 32, calib_length = 512;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--recipe", file,
                    "Recipe JSON file (docs/recipes.md); the flags below replace its fields");
    cmd->add_option(
        "--w", weights,
        "Scheme for every Linear's weights, or fp (e.g. mxfp4, int4_g128, e4m3fn:channel)");
    cmd->add_option(
        "--a", activations,
        "Scheme for every Linear's input activations, or fp (e.g. mxfp8_e4m3, fp8_token)");
    cmd->add_option(
        "--kv", kv,
        "Scheme for the KV cache as [tokens, kv_heads, head_dim], or fp (e.g. e4m3fn:token)");
    cmd->add_option("--embed", embedding, "Scheme for the token embedding table, or fp");
    cmd->add_option("--head", output, "Scheme for the output head's weight, or fp");
    cmd->add_option("--accum", accumulate,
                    "Emulate a narrow accumulator: <format>/<every>, e.g. bf16/32, fp16/1");
    cmd->add_option(
        "--override", overrides,
        "<pattern>:w=..,a=..,kv=.. for matching sites, e.g. '*.down_proj:w=fp' (repeatable)");
    cmd->add_option("--method", methods,
                    "PTQ methods run in order before quantization (dyadic: after it, on the "
                    "quantized model; comma-separated or repeated; docs/ptq.md): " +
                        ptq::methods_help())
        ->delimiter(',');
    cmd->add_option("--name", name, "A label for the recipe in reports");
    add_calibration_to(cmd, calib_text, calib_count, calib_length);
  }

  static void add_calibration_to(CLI::App* cmd, std::string& text, int& count, int& length) {
    cmd->add_option(
        "--calib", text,
        "Calibration text for smoothquant / gptq (use a different text than the evaluation's)");
    cmd->add_option("--calib-seqs", count, "Calibration sequences")
        ->default_val(32)
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--calib-len", length, "Tokens per calibration sequence")
        ->default_val(512)
        ->check(CLI::Range(2, 1 << 20));
  }

  bool any() const {
    return !file.empty() || !methods.empty() || !weights.empty() || !activations.empty() ||
           !kv.empty() || !embedding.empty() || !output.empty() || !accumulate.empty() ||
           !overrides.empty();
  }

  // The calibration data the recipe needs (nullptr when it needs none).
  std::unique_ptr<ptq::Calibration> calibration(const ptq::Recipe& r, const model::Model& m) const {
    if (!r.needs_calibration()) return nullptr;
    if (calib_text.empty())
      throw Error("the recipe's methods need calibration data: give --calib TEXT");
    return std::make_unique<ptq::Calibration>(ptq::make_calibration(
        *m.tokenizer, model::read_text_file(calib_text), calib_text, calib_count, calib_length));
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
    if (!methods.empty()) {
      r.methods.clear();
      for (const std::string& m : methods) r.methods.push_back(ptq::parse_method(m));
    }
    if (!name.empty()) r.name = name;
    return r;
  }
};

}  // namespace lowbit::cli
