// lowbit/ptq/recipe.h — what a quantized model is made of: per tensor role (Linear weights, the
// embedding, the output head, the input activations of every Linear, the KV cache) the scheme
// that applies or "full precision", per-layer overrides by name pattern, and the optional
// emulation of a narrow matrix-product accumulator. docs/recipes.md defines every field.
//
// Site names (what overrides match, with shell-style patterns: `*`, `?`, `[...]`):
//   layers.<l>.{q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj}   the Linears
//   layers.<l>.kv_cache                                                     keys and values
//   embedding, output                                                       token embedding, head
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/model/linear.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::ptq {

// A role's scheme; nullopt keeps that role in full precision.
using MaybeScheme = std::optional<Scheme>;

// Parses "fp" (also "none", "keep", "f32") as full precision, anything else as a scheme.
MaybeScheme parse_maybe_scheme(const std::string& text);
// The preset name when the scheme equals a preset, else its long spelling; "fp" for nullopt.
std::string maybe_scheme_name(const MaybeScheme& s);

// Parses "<format>/<every>" ("bf16/32", "fp16/1") into an accumulator emulation.
model::Accumulation parse_accumulation(const std::string& text);
std::string accumulation_name(const model::Accumulation& a);

struct RecipeOverride {
  std::string match;  // pattern over site names
  // Each role is either untouched by this override (unset) or set to a scheme / full precision.
  std::optional<MaybeScheme> weights, activations, kv;
};

// A post-training method run on the full-precision model before the weights are quantized, in
// the order given: "hadamard[:seed=S]", "smoothquant[:alpha=A]",
// "gptq[:damp=D][:block=B][:act_order]", "search[:bits=N]". docs/ptq.md describes each and its
// parameters.
struct Method {
  std::string name;
  std::vector<std::pair<std::string, std::string>> params;  // in canonical (sorted) order
  std::string spelling() const;                             // "gptq:act_order:damp=0.01"
  // A parameter's value, or `fallback` when absent.
  double number(const std::string& key, double fallback) const;
  bool flag(const std::string& key) const;
};
// Parses and checks one method spelling; throws lowbit::Error listing the methods and their
// parameters for anything unknown.
Method parse_method(const std::string& text);

struct Recipe {
  std::string name;  // a label for tables; not part of the identity (hash, canonical form)
  std::vector<Method> methods;  // run in order before quantization
  MaybeScheme weights;          // every Linear of every layer
  MaybeScheme activations;      // the input of every Linear of every layer (quantized at run time)
  MaybeScheme kv;               // keys (after RoPE) and values, as [tokens, kv_heads, head_dim]
  MaybeScheme embedding;        // token embedding table [vocab, dim]
  MaybeScheme output;           // output head weight [vocab, dim] (tied or not)
  std::optional<model::Accumulation> accumulate;  // every Linear, quantized or not
  std::vector<RecipeOverride> overrides;          // applied in order; later ones win

  // What applies at one site after the overrides.
  struct Resolved {
    MaybeScheme weights, activations, kv;
  };
  Resolved resolve(const std::string& site) const;

  bool is_full_precision() const;  // nothing is quantized, transformed or emulated
  bool needs_calibration() const;  // a method uses calibration activations
  // The canonical JSON (fixed key order, canonical scheme names, no name): parse_recipe of it
  // gives an equal recipe, and it is what hash() digests.
  std::string canonical() const;
  uint64_t hash() const;         // FNV-1a of canonical()
  std::string hash_hex() const;  // 16 hex digits
  // "w=mxfp4 a=mxfp8_e4m3 kv=fp" (+ embedding, output, accumulator and overrides when set).
  std::string short_form() const;
  // name, or short_form() when unnamed.
  std::string label() const;
};

// Parses a recipe from JSON text: {"name", "methods": ["hadamard", ...], "weights", "activations",
// "kv", "embedding", "output", "accumulate", "overrides": [{"match", "weights", "activations",
// "kv"}]}; every field optional (absent: full precision). Throws lowbit::Error naming `where` and
// the field.
Recipe parse_recipe_json(const std::string& json_text, const std::string& where);
Recipe read_recipe_file(const std::string& path);

// Parses an override given on the command line: "<pattern>:w=<scheme>,a=<scheme>,kv=<scheme>"
// (any subset of the three keys, e.g. "*.down_proj:w=fp").
RecipeOverride parse_override(const std::string& text);

// The grid `lowbit sweep` runs when no --grid is given (docs/recipes.md lists it).
std::vector<Recipe> default_sweep_grid();
// A grid file: a JSON array of recipes, or {"recipes": [...]}.
std::vector<Recipe> read_recipe_grid(const std::string& path);

}  // namespace lowbit::ptq
