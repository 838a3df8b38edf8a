// lowbit/ptq/methods.h — the one table of post-training methods. Each row names a method, its typed
// parameters with defaults and ranges, whether it needs calibration data, whether it transforms
// the full-precision model, its help, and the function that runs it. Parsing a method spelling,
// printing and hashing recipes, `--help`, `lowbit recipe --methods`, docs and the error for an
// unknown method all come from it. Adding a method is one file (its run function and its row)
// and one line in src/ptq/methods.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::ptq {

class MethodCache;

struct MethodParam {
  enum class Kind { Number, Integer, Flag };
  std::string name;
  Kind kind = Kind::Number;
  double default_value = 0;  // numbers and integers; a flag is off unless given
  double min = -1e300, max = 1e300;
  bool min_exclusive = false;  // min < value instead of min <= value
  std::string help;
  std::string describe() const;  // "damp: number > 0, default 0.01 — ..."
};

// A weight a method quantized itself (GPTQ): its values, on the scheme's grid, and their codes —
// the QTensor they dequantize from, with the group scales the method fixed — which exports need
// (nullptr where a method cannot say).
struct PrequantizedWeight {
  std::vector<float> values;
  std::shared_ptr<const QTensor> codes;
};
using PrequantizedWeights = std::map<std::string, PrequantizedWeight>;

// What a method's run sees and changes.
struct MethodRun {
  const Method& method;
  const Recipe& recipe;
  std::unique_ptr<model::Runtime>& model;  // a transforming method replaces it
  const Calibration* calibration;          // set whenever the method needs calibration
  // A weight-quantizing method's results, by site: weights already on their grid, or the scheme
  // chosen for a site (round-to-nearest applies it later).
  PrequantizedWeights& prequantized;
  std::map<std::string, Scheme>& chosen;
  // The weight scheme of a site after earlier methods' choices (nullopt: kept).
  std::function<MaybeScheme(const std::string&)> scheme_of;
  // What this method's result depends on (recipe up to this method, weight schemes, calibration):
  // the key under which a sweep shares it between recipes; "" when no cache is in use.
  std::string cache_key;
  MethodCache* cache;
  std::function<void(int, int)> progress;  // (blocks done, blocks)

  double number(const std::string& param) const;  // the given value or the registry's default
  int integer(const std::string& param) const;
  bool flag(const std::string& param) const;
};

struct MethodInfo {
  std::string name;
  std::string summary;  // one line: what it does, the paper
  std::vector<MethodParam> params;
  bool needs_calibration = false;
  bool transforms = false;  // changes the full-precision model (rotations, smoothing)
  // Chooses the weights' values or schemes (gptq, learnround, search, llmfp4): a method that
  // corrects the quantized weights (biascorrect, lorc) must come after it.
  bool chooses_weights = false;
  std::function<void(MethodRun&)> run;
  // Runs once more after round to nearest has set every weight, with run.model the quantized model
  // (integer-only execution builds on the final codes); empty for most methods.
  std::function<void(MethodRun&)> after_quantization;

  const MethodParam* param(const std::string& name) const;
  std::string usage() const;  // "gptq[:damp=D][:block=B][:act_order]"
};

// Results of methods shared between the recipes of a sweep (W4A16, W4A8 and W4A4 with the same
// weights share GPTQ's work), by MethodRun::cache_key. What is kept is opaque: a method asks for
// its result back (restore) before computing it and hands it over (store) after.
class MethodCache {
 public:
  MethodCache();
  ~MethodCache();
  MethodCache(const MethodCache&) = delete;
  MethodCache& operator=(const MethodCache&) = delete;
  // Puts the stored result for run.cache_key into `run` (its prequantized weights and chosen
  // schemes); false when there is none.
  bool restore(MethodRun& run) const;
  void store(const MethodRun& run);
  size_t size() const;  // results stored

 private:
  struct Results;
  std::unique_ptr<Results> results_;
};

// Every method, in the order help lists them.
const std::vector<MethodInfo>& method_registry();
// The row for `name`; lowbit::Error listing the methods when there is none.
const MethodInfo& find_method(const std::string& name);
// "hadamard[:seed=S][:no_online] (...), smoothquant[...] (...), ..." for help and errors.
std::string methods_help();
// The table `lowbit recipe --methods` prints: every method with its parameters.
std::string methods_table();

}  // namespace lowbit::ptq
