// The table of post-training methods (lowbit/methods.h) and what is derived from it: parameter
// descriptions, usage lines, help and the table `lowbit recipe --methods` prints.
#include <fmt/core.h>

#include <cmath>

#include "lowbit/ptq/methods.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {

const std::vector<MethodInfo>& method_registry() {
  // One line per method; its row and run function live in the method's file.
  static const std::vector<MethodInfo> rows = {
      hadamard_method(), smoothquant_method(), gptq_method(),         learned_rounding_method(),
      search_method(),   llm_fp4_method(),     equalization_method(), bias_correction_method(),
      lorc_method(),     kv_reorder_method(),  lmul_method(),         bit_switch_method(),
      dyadic_method()};
  return rows;
}

void require_after_weight_methods(const MethodRun& run) {
  bool after = false;
  for (const Method& m : run.recipe.methods) {
    if (&m == &run.method) {
      after = true;
    } else if (after && find_method(m.name).chooses_weights) {
      throw Error(run.method.name + " corrects the quantized weights, so it comes after " + m.name +
                  " in the recipe's methods");
    }
  }
}

const MethodInfo& find_method(const std::string& name) {
  for (const MethodInfo& m : method_registry())
    if (m.name == name) return m;
  throw Error("unknown method \"" + name + "\"; known: " + methods_help());
}

const MethodParam* MethodInfo::param(const std::string& key) const {
  for (const MethodParam& p : params)
    if (p.name == key) return &p;
  return nullptr;
}

std::string MethodInfo::usage() const {
  std::string u = name;
  for (const MethodParam& p : params) {
    if (p.kind == MethodParam::Kind::Flag) {
      u += "[:" + p.name + "]";
    } else {
      std::string placeholder = p.name;
      for (char& c : placeholder) c = char(std::toupper(static_cast<unsigned char>(c)));
      u += "[:" + p.name + "=" + placeholder.substr(0, 1) + "]";
    }
  }
  return u;
}

namespace {
std::string number_text(double v) {
  return fmt::format("{:.15g}", v);
}
}  // namespace

std::string MethodParam::describe() const {
  if (kind == Kind::Flag) return name + ": flag — " + help;
  std::string range;
  if (min > -1e300) range += std::string(min_exclusive ? " > " : " >= ") + number_text(min);
  if (max < 1e300) range += (range.empty() ? " <= " : ", <= ") + number_text(max);
  return name + ": " + (kind == Kind::Integer ? "integer" : "number") + range + ", default " +
         number_text(default_value) + " — " + help;
}

std::string methods_help() {
  std::string h;
  for (const MethodInfo& m : method_registry())
    h += (h.empty() ? "" : ", ") + m.usage() + " (" + m.summary + ")";
  return h;
}

std::string methods_table() {
  std::string t;
  for (const MethodInfo& m : method_registry()) {
    t += m.usage() + "\n  " + m.summary +
         "\n  calibration: " + (m.needs_calibration ? "needed" : "not needed") +
         (m.transforms ? "; transforms the full-precision model" : "") + "\n";
    for (const MethodParam& p : m.params) t += "  " + p.describe() + "\n";
  }
  return t;
}

struct MethodCache::Results {
  struct Result {
    PrequantizedWeights prequantized;
    std::map<std::string, Scheme> chosen;
  };
  std::map<std::string, Result> by_key;
};

MethodCache::MethodCache() : results_(std::make_unique<Results>()) {}
MethodCache::~MethodCache() = default;

bool MethodCache::restore(MethodRun& run) const {
  const auto it = results_->by_key.find(run.cache_key);
  if (run.cache_key.empty() || it == results_->by_key.end()) return false;
  run.prequantized = it->second.prequantized;
  run.chosen = it->second.chosen;
  return true;
}

void MethodCache::store(const MethodRun& run) {
  if (!run.cache_key.empty()) results_->by_key[run.cache_key] = {run.prequantized, run.chosen};
}

size_t MethodCache::size() const {
  return results_->by_key.size();
}

double MethodRun::number(const std::string& key) const {
  const MethodParam* p = find_method(method.name).param(key);
  if (!p) throw Error("internal: the method " + method.name + " has no parameter " + key);
  return method.number(key, p->default_value);
}

int MethodRun::integer(const std::string& key) const {
  return int(number(key));
}

bool MethodRun::flag(const std::string& key) const {
  return method.flag(key);
}

}  // namespace lowbit::ptq
