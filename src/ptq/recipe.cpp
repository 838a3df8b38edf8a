// Recipes: parsing (JSON, command-line overrides), site resolution, the canonical form that
// identifies a recipe, and the default sweep grid.
#include "lowbit/ptq/recipe.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "lowbit/ptq/methods.h"
#include "lowbit/util/error.h"
#include "util/fnv.h"
#include "util/json_file.h"

namespace lowbit::ptq {
namespace {

using nlohmann::ordered_json;

bool is_full_precision_word(const std::string& t) {
  return t == "fp" || t == "none" || t == "keep" || t == "f32";
}

ordered_json maybe_json(const MaybeScheme& s) {
  return maybe_scheme_name(s);
}

MaybeScheme field_scheme(const nlohmann::json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return std::nullopt;
  if (!obj[key].is_string())
    throw Error(where + ": \"" + key + "\" must be a scheme name string (or \"fp\")");
  try {
    return parse_maybe_scheme(obj[key].get<std::string>());
  } catch (const Error& e) {
    throw Error(where + ": \"" + key + "\": " + e.what());
  }
}

}  // namespace

std::string Method::spelling() const {
  std::string s = name;
  for (const auto& [k, v] : params) s += ":" + k + (v.empty() ? "" : "=" + v);
  return s;
}

double Method::number(const std::string& key, double fallback) const {
  for (const auto& [k, v] : params)
    if (k == key) return std::stod(v);
  return fallback;
}

bool Method::flag(const std::string& key) const {
  for (const auto& [k, v] : params)
    if (k == key) return true;
  return false;
}

Method parse_method(const std::string& text) {
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t colon = text.find(':', at);
    parts.push_back(text.substr(at, colon - at));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  const MethodInfo& spec = find_method(parts[0]);
  const std::string usage = spec.usage() + " (" + spec.summary + ")";
  Method m;
  m.name = spec.name;
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    const std::string key = parts[i].substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : parts[i].substr(eq + 1);
    const MethodParam* p = spec.param(key);
    if (p && p->kind != MethodParam::Kind::Flag) {
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !std::isfinite(v))
        throw Error("method \"" + text + "\": " + key + " needs a number; " + usage);
      if (p->kind == MethodParam::Kind::Integer && v != std::floor(v))
        throw Error("method \"" + text + "\": " + key + " must be a whole number; " +
                    p->describe());
      if (v < p->min || (p->min_exclusive && v == p->min) || v > p->max)
        throw Error("method \"" + text + "\": " + key + " = " + value + " is out of range; " +
                    p->describe());
      // Canonical number spelling, so "0.50" and "0.5" are one recipe.
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.9g", v);
      m.params.emplace_back(key, buf);
    } else if (p && value.empty()) {
      m.params.emplace_back(key, "");
    } else {
      throw Error("method \"" + text + "\": unknown parameter \"" + parts[i] + "\"; " + usage);
    }
  }
  std::sort(m.params.begin(), m.params.end());
  for (size_t i = 1; i < m.params.size(); ++i)
    if (m.params[i].first == m.params[i - 1].first)
      throw Error("method \"" + text + "\": " + m.params[i].first + " given twice");
  return m;
}

MaybeScheme parse_maybe_scheme(const std::string& text) {
  if (is_full_precision_word(text)) return std::nullopt;
  return parse_scheme(text);
}

std::string maybe_scheme_name(const MaybeScheme& s) {
  if (!s) return "fp";
  for (const NamedScheme& n : named_schemes())
    if (parse_scheme(n.name) == *s) return n.name;
  Scheme plain = *s;
  plain.preset.clear();
  return scheme_name(plain);
}

model::Accumulation parse_accumulation(const std::string& text) {
  const size_t slash = text.find('/');
  const std::string usage =
      "accumulator \"" + text + "\": expected <float format>/<every>, e.g. bf16/32 or fp16/1";
  if (slash == std::string::npos) throw Error(usage);
  model::Accumulation a;
  try {
    a.format = parse_format(text.substr(0, slash));
  } catch (const Error& e) {
    throw Error(usage + " (" + e.what() + ")");
  }
  const std::string every = text.substr(slash + 1);
  if (every.empty() || every.size() > 7 ||
      every.find_first_not_of("0123456789") != std::string::npos)
    throw Error(usage);
  a.every = std::stoi(every);
  if (a.every < 1 || a.format.kind != FormatKind::Float) throw Error(usage);
  return a;
}

std::string accumulation_name(const model::Accumulation& a) {
  return format_name(a.format) + "/" + std::to_string(a.every);
}

Recipe::Resolved Recipe::resolve(const std::string& site) const {
  Resolved r;
  if (site == "embedding") {
    r.weights = embedding;
  } else if (site == "output") {
    r.weights = output;
  } else if (site.size() > 9 && site.compare(site.size() - 9, 9, ".kv_cache") == 0) {
    r.kv = kv;
  } else {
    r.weights = weights;
    r.activations = activations;
  }
  for (const RecipeOverride& o : overrides) {
    if (::fnmatch(o.match.c_str(), site.c_str(), 0) != 0) continue;
    if (o.weights) r.weights = *o.weights;
    if (o.activations) r.activations = *o.activations;
    if (o.kv) r.kv = *o.kv;
  }
  return r;
}

bool Recipe::needs_calibration() const {
  for (const Method& m : methods)
    if (find_method(m.name).needs_calibration) return true;
  return false;
}

bool Recipe::is_full_precision() const {
  if (!methods.empty()) return false;
  if (weights || activations || kv || embedding || output || accumulate) return false;
  for (const RecipeOverride& o : overrides)
    if ((o.weights && *o.weights) || (o.activations && *o.activations) || (o.kv && *o.kv))
      return false;
  return true;
}

std::string Recipe::canonical() const {
  ordered_json j;
  // Methods appear only when there are some, so recipes without any keep their hashes.
  if (!methods.empty()) {
    ordered_json list = ordered_json::array();
    for (const Method& m : methods) list.push_back(m.spelling());
    j["methods"] = list;
  }
  j["weights"] = maybe_json(weights);
  j["activations"] = maybe_json(activations);
  j["kv"] = maybe_json(kv);
  j["embedding"] = maybe_json(embedding);
  j["output"] = maybe_json(output);
  j["accumulate"] =
      accumulate ? ordered_json(accumulation_name(*accumulate)) : ordered_json(nullptr);
  ordered_json list = ordered_json::array();
  for (const RecipeOverride& o : overrides) {
    ordered_json e;
    e["match"] = o.match;
    if (o.weights) e["weights"] = maybe_json(*o.weights);
    if (o.activations) e["activations"] = maybe_json(*o.activations);
    if (o.kv) e["kv"] = maybe_json(*o.kv);
    list.push_back(e);
  }
  j["overrides"] = list;
  return j.dump();
}

uint64_t Recipe::hash() const {
  util::Fnv1a f;
  f.bytes(canonical());
  return f.h;
}

std::string Recipe::hash_hex() const {
  return util::hex64(hash());
}

std::string Recipe::short_form() const {
  std::string s;
  for (const Method& m : methods) s += m.spelling() + " + ";
  s += "w=" + maybe_scheme_name(weights) + " a=" + maybe_scheme_name(activations) +
       " kv=" + maybe_scheme_name(kv);
  if (embedding) s += " emb=" + maybe_scheme_name(embedding);
  if (output) s += " head=" + maybe_scheme_name(output);
  if (accumulate) s += " acc=" + accumulation_name(*accumulate);
  for (const RecipeOverride& o : overrides) {
    std::string parts;
    const auto add = [&](const char* key, const std::optional<MaybeScheme>& v) {
      if (v) parts += std::string(parts.empty() ? "" : ",") + key + "=" + maybe_scheme_name(*v);
    };
    add("w", o.weights);
    add("a", o.activations);
    add("kv", o.kv);
    s += " [" + o.match + ":" + parts + "]";
  }
  return s;
}

std::string Recipe::label() const {
  return name.empty() ? short_form() : name;
}

Recipe parse_recipe_json(const std::string& json_text, const std::string& where) {
  const nlohmann::json j = files::parse_json(json_text, where);
  if (!j.is_object()) throw Error(where + ": a recipe must be a JSON object");
  static const char* const known[] = {"name",      "methods", "weights",    "activations", "kv",
                                      "embedding", "output",  "accumulate", "overrides"};
  for (const auto& item : j.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || item.key() == k;
    if (!ok)
      throw Error(where + ": unknown recipe field \"" + item.key() +
                  "\" (known: name, methods, weights, activations, kv, embedding, output, "
                  "accumulate, overrides)");
  }
  Recipe r;
  if (j.contains("name")) {
    if (!j["name"].is_string()) throw Error(where + ": \"name\" must be a string");
    r.name = j["name"].get<std::string>();
  }
  if (j.contains("methods")) {
    if (!j["methods"].is_array())
      throw Error(where + ": \"methods\" must be an array of method names like \"gptq:damp=0.01\"");
    for (const nlohmann::json& m : j["methods"]) {
      if (!m.is_string()) throw Error(where + ": \"methods\" must be an array of strings");
      try {
        r.methods.push_back(parse_method(m.get<std::string>()));
      } catch (const Error& e) {
        throw Error(where + ": " + e.what());
      }
    }
  }
  r.weights = field_scheme(j, "weights", where);
  r.activations = field_scheme(j, "activations", where);
  r.kv = field_scheme(j, "kv", where);
  r.embedding = field_scheme(j, "embedding", where);
  r.output = field_scheme(j, "output", where);
  if (j.contains("accumulate") && !j["accumulate"].is_null()) {
    if (!j["accumulate"].is_string())
      throw Error(where + ": \"accumulate\" must be a string like \"bf16/32\"");
    try {
      r.accumulate = parse_accumulation(j["accumulate"].get<std::string>());
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  if (j.contains("overrides")) {
    if (!j["overrides"].is_array()) throw Error(where + ": \"overrides\" must be an array");
    for (const nlohmann::json& o : j["overrides"]) {
      const std::string at = where + ": override " + std::to_string(r.overrides.size());
      if (!o.is_object() || !o.contains("match") || !o["match"].is_string())
        throw Error(at + " must be an object with a \"match\" pattern string");
      for (const auto& item : o.items())
        if (item.key() != "match" && item.key() != "weights" && item.key() != "activations" &&
            item.key() != "kv")
          throw Error(at + ": unknown field \"" + item.key() +
                      "\" (known: match, weights, activations, kv)");
      RecipeOverride ov;
      ov.match = o["match"].get<std::string>();
      if (o.contains("weights")) ov.weights = field_scheme(o, "weights", at);
      if (o.contains("activations")) ov.activations = field_scheme(o, "activations", at);
      if (o.contains("kv")) ov.kv = field_scheme(o, "kv", at);
      r.overrides.push_back(std::move(ov));
    }
  }
  return r;
}

Recipe read_recipe_file(const std::string& path) {
  return parse_recipe_json(files::read_all(path), path);
}

RecipeOverride parse_override(const std::string& text) {
  const std::string usage =
      "override \"" + text +
      "\": expected <pattern>:w=<scheme>,a=<scheme>,kv=<scheme> "
      "(any of the three; \"fp\" keeps full precision), e.g. \"*.down_proj:w=fp\"";
  // The pattern ends at the first ':' followed by a key: scheme names contain ':' too.
  size_t split = std::string::npos;
  for (const char* key : {":w=", ":a=", ":kv="}) split = std::min(split, text.find(key));
  if (split == std::string::npos || split == 0) throw Error(usage);
  RecipeOverride o;
  o.match = text.substr(0, split);
  std::string rest = text.substr(split + 1);
  // Items are separated by ',' before a key; a scheme never contains ",w=" / ",a=" / ",kv=".
  while (!rest.empty()) {
    size_t next = std::string::npos;
    for (const char* key : {",w=", ",a=", ",kv="}) next = std::min(next, rest.find(key));
    const std::string item = rest.substr(0, next);
    rest = next == std::string::npos ? "" : rest.substr(next + 1);
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    MaybeScheme s;
    try {
      s = parse_maybe_scheme(value);
    } catch (const Error& e) {
      throw Error(usage + ": " + e.what());
    }
    if (key == "w")
      o.weights = s;
    else if (key == "a")
      o.activations = s;
    else if (key == "kv")
      o.kv = s;
    else
      throw Error(usage);
  }
  return o;
}

std::vector<Recipe> default_sweep_grid() {
  struct Row {
    const char* name;
    const char* w;
    const char* a;
    const char* kv;
  };
  // Calibration-free round-to-nearest; embedding and output head stay in full precision, as in
  // the W4/W8 literature (GPTQ, QuaRot, the MX paper's "all Linear layers").
  static const Row rows[] = {
      {"W8A8 e4m3fn tensor", "fp8_tensor", "fp8_tensor", "fp"},
      {"W8A8 e4m3fn channel/token", "fp8_channel", "fp8_token", "fp"},
      {"W8A8 e5m2 tensor", "e5m2:tensor", "e5m2:tensor", "fp"},
      {"W8A8 e5m2 channel/token", "e5m2:channel", "e5m2:token", "fp"},
      {"W8A8 int8 channel/token", "int8_channel", "int8_token", "fp"},
      {"W8A8 e4m3fn + KV e4m3fn", "fp8_channel", "fp8_token", "e4m3fn:token"},
      {"MXFP8 e4m3", "mxfp8_e4m3", "mxfp8_e4m3", "fp"},
      {"MXFP8 e5m2", "mxfp8_e5m2", "mxfp8_e5m2", "fp"},
      {"MXFP6 e2m3", "mxfp6_e2m3", "mxfp6_e2m3", "fp"},
      {"MXFP6 e3m2", "mxfp6_e3m2", "mxfp6_e3m2", "fp"},
      {"W4A16 int4 g128", "int4_g128", "fp", "fp"},
      {"W4A16 nf4 g64", "nf4_g64", "fp", "fp"},
      {"W4A16 fp4 e2m1 g32 f32", "e2m1fn:g32", "fp", "fp"},
      {"W4A16 mxfp4", "mxfp4", "fp", "fp"},
      {"W4A16 nvfp4", "nvfp4", "fp", "fp"},
      {"W4A8 mxfp4 / e4m3fn", "mxfp4", "fp8_token", "fp"},
      {"W4A8 int4 g128 / e4m3fn", "int4_g128", "fp8_token", "fp"},
      {"W4A4 mxfp4", "mxfp4", "mxfp4", "fp"},
      {"W4A4 nvfp4", "nvfp4", "nvfp4", "fp"},
  };
  std::vector<Recipe> grid;
  for (const Row& row : rows) {
    Recipe r;
    r.name = row.name;
    r.weights = parse_maybe_scheme(row.w);
    r.activations = parse_maybe_scheme(row.a);
    r.kv = parse_maybe_scheme(row.kv);
    grid.push_back(std::move(r));
  }
  return grid;
}

std::vector<Recipe> read_recipe_grid(const std::string& path) {
  const nlohmann::json j = files::read_json(path);
  const nlohmann::json* list = &j;
  if (j.is_object() && j.contains("recipes")) list = &j["recipes"];
  if (!list->is_array() || list->empty())
    throw Error(path + ": a grid is a non-empty JSON array of recipes, or {\"recipes\": [...]}");
  std::vector<Recipe> grid;
  for (const nlohmann::json& r : *list)
    grid.push_back(parse_recipe_json(r.dump(), path + ": recipe " + std::to_string(grid.size())));
  return grid;
}

}  // namespace lowbit::ptq
