// Single-site evaluations without recomputing the unchanged prefix: when only one layer's weights
// differ from the full-precision model, every layer before it computes exactly what it computes in
// that model, so the residual stream entering each layer is recorded once per window and a
// quantized model's pass starts at the first layer that differs (sensitivity.cpp's KL table).
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/eval/perplexity.h"
#include "lowbit/model/llama.h"

namespace lowbit::eval {

// The residual stream x entering every layer of `fp`, for every window of `windows`.
class LayerInputs {
 public:
  LayerInputs(const model::Llama& fp, const TextWindows& windows);
  // x entering `layer` in window `w`: [n_ctx, dim].
  const float* at(int64_t w, int layer) const;
  const TextWindows& windows() const { return windows_; }
  int n_layers() const { return n_layers_; }

 private:
  const TextWindows& windows_;
  int n_layers_;
  size_t stride_;         // floats per (window, layer)
  std::vector<float> x_;  // [windows, layers, n_ctx, dim]
};

// A pass of `model` that starts each window at `first_layer` from the recorded inputs. Exact only
// when layers before `first_layer` (and the embedding) are those the inputs were recorded with;
// windows must come in the recorded order (perplexity() runs them so, and forward() checks).
class ResumedPass : public model::Decoder::Pass {
 public:
  ResumedPass(const model::Llama& model, const LayerInputs& inputs, int first_layer);
  void forward(const int32_t* tokens, int n) override;
  void logits(int row0, int count, float* out) override;

 private:
  const model::Llama& model_;
  const LayerInputs& inputs_;
  int first_layer_;
  int64_t next_window_ = 0;
  model::LlamaRunState state_;
};

}  // namespace lowbit::eval
