// Hutchinson's estimator of per-tensor Hessian traces (lowbit/train/hessian_trace.h).
#include "lowbit/train/hessian_trace.h"

#include <algorithm>
#include <cmath>

#include "lowbit/util/error.h"
#include "train/hessian_vector.h"
#include "util/splitmix.h"

namespace lowbit::train {

std::vector<ParameterTrace> hessian_traces(const model::Llama& model,
                                           const std::vector<int32_t>& tokens,
                                           const std::vector<int32_t>& targets, int batch, int seq,
                                           int samples, uint64_t seed,
                                           const std::function<void(int, int)>& progress,
                                           const std::vector<std::string>& only) {
  if (samples < 1) throw Error("Hessian traces: need at least one Hutchinson sample");
  HessianVectorProduct hessian_times(model, tokens, targets, batch, seq);
  std::vector<ParameterTrace> out;
  for (const Parameter<double>& p : hessian_times.model().parameters())
    out.push_back({p.name, int64_t(p.value.size()), 0, 0});
  std::vector<double> sum(out.size(), 0), sum2(out.size(), 0);
  uint64_t state = seed;
  // Which elements z covers: all, or those of the `only` tensors.
  std::vector<bool> drawn(size_t(hessian_times.size()), only.empty());
  {
    size_t k = 0;
    for (const ParameterTrace& t : out) {
      if (std::find(only.begin(), only.end(), t.name) != only.end())
        std::fill(drawn.begin() + long(k), drawn.begin() + long(k) + t.size, true);
      k += size_t(t.size);
    }
  }
  std::vector<double> z(size_t(hessian_times.size()));
  for (int s = 0; s < samples; ++s) {
    for (size_t i = 0; i < z.size(); i += 64) {  // 64 signs per draw
      const uint64_t bits = util::splitmix64(state);
      for (size_t b = 0; b < 64 && i + b < z.size(); ++b)
        z[i + b] = drawn[i + b] ? ((bits >> b) & 1 ? 1.0 : -1.0) : 0.0;
    }
    const std::vector<double> hz = hessian_times(z);
    size_t k = 0;
    for (size_t t = 0; t < out.size(); ++t) {
      double v = 0;
      for (int64_t i = 0; i < out[t].size; ++i, ++k) v += z[k] * hz[k];
      sum[t] += v;
      sum2[t] += v * v;
    }
    if (progress) progress(s + 1, samples);
  }
  for (size_t t = 0; t < out.size(); ++t) {
    const double n = samples, mean = sum[t] / n;
    out[t].trace = mean;
    out[t].stderr_ =
        samples > 1 ? std::sqrt(std::max(0.0, (sum2[t] - n * mean * mean) / (n - 1)) / n) : 0;
  }
  return out;
}

std::string linear_site_of_parameter(const std::string& name) {
  const std::string prefix = "model.layers.", suffix = ".weight";
  if (name.compare(0, prefix.size(), prefix) != 0 || name.size() < prefix.size() + suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "";
  const std::string middle =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());  // 3.mlp.down_proj
  const size_t dot = middle.find('.');
  if (dot == std::string::npos) return "";
  const std::string layer = middle.substr(0, dot), rest = middle.substr(dot + 1);
  for (const char* group : {"self_attn.", "mlp."}) {
    const std::string g = group;
    if (rest.compare(0, g.size(), g) == 0 && rest.find('.', g.size()) == std::string::npos)
      return "layers." + layer + "." + rest.substr(g.size());
  }
  return "";
}

}  // namespace lowbit::train
