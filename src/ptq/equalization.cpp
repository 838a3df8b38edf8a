// The `equalize` method: cross-layer weight equalization (Nagel et al. 2019, "Data-Free
// Quantization Through Weight Equalization and Bias Correction"; studied for minifloats by
// Aggarwal et al. 2023). Where a Linear's outputs multiply elementwise into the next Linear's
// input (LLaMA's up_proj into down_proj: h = silu(gate)·up), output channel j of the first can
// be divided by s_j and input column j of the second multiplied by it without changing the
// function. s_j = sqrt(r1_j / r2_j), r1 the range of the producer's row j and r2 that of the
// readers' column j, gives both the same range sqrt(r1_j · r2_j), so neither has channels that
// one per-tensor or per-channel scale serves badly. Data-free: it looks only at the weights.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "lowbit/ptq/dfq.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {

std::unique_ptr<model::Runtime> equalize_model(const model::Runtime& base) {
  std::unique_ptr<model::Runtime> out = base.clone();
  const model::Sites sites = out->sites();
  for (const model::InputSite& in : sites.inputs) {
    model::Linear* producer = in.fold.rows;
    // Inputs rotated at run time have their channels mixed: no per-channel factor commutes.
    if (!producer || in.readers.front()->input_transform()) continue;
    const size_t channels = size_t(producer->out_features());
    const size_t cols = size_t(producer->in_features());
    std::vector<float> w = producer->weight(), bias = producer->bias();
    std::vector<double> r1(channels, 0.0), r2(channels, 0.0);
    for (size_t j = 0; j < channels; ++j) {
      for (size_t c = 0; c < cols; ++c) r1[j] = std::max(r1[j], double(std::fabs(w[j * cols + c])));
      if (!bias.empty()) r1[j] = std::max(r1[j], double(std::fabs(bias[j])));
    }
    for (const model::Linear* reader : in.readers) {
      const std::vector<float>& v = reader->weight();
      for (size_t r = 0; r < size_t(reader->out_features()); ++r)
        for (size_t j = 0; j < channels; ++j)
          r2[j] = std::max(r2[j], double(std::fabs(v[r * channels + j])));
    }
    std::vector<float> s(channels, 1.0f);
    for (size_t j = 0; j < channels; ++j)
      if (r1[j] > 0 && r2[j] > 0) s[j] = float(std::sqrt(r1[j] / r2[j]));
    for (size_t j = 0; j < channels; ++j) {
      for (size_t c = 0; c < cols; ++c) w[j * cols + c] /= s[j];
      if (!bias.empty()) bias[j] /= s[j];
    }
    producer->set_weight(std::move(w));
    producer->set_bias(std::move(bias));
    for (model::Linear* reader : in.readers) {
      std::vector<float> v = reader->weight();
      for (size_t i = 0; i < v.size(); ++i) v[i] *= s[i % channels];
      reader->set_weight(std::move(v));
    }
  }
  return out;
}

MethodInfo equalization_method() {
  MethodInfo m;
  m.name = "equalize";
  m.summary =
      "cross-layer weight equalization of Linear pairs (up_proj / down_proj), data-free "
      "(Nagel et al. 2019)";
  m.transforms = true;
  m.run = [](MethodRun& r) { r.model = equalize_model(*r.model); };
  return m;
}

}  // namespace lowbit::ptq
