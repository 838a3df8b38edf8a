// Passes that resume at a layer from recorded inputs (resumed_pass.h).
#include "eval/resumed_pass.h"

#include <algorithm>
#include <string>

#include "lowbit/util/error.h"
#include "util/memory.h"

namespace lowbit::eval {

LayerInputs::LayerInputs(const model::Llama& fp, const TextWindows& windows)
    : windows_(windows),
      n_layers_(fp.config().n_layers),
      stride_(size_t(windows.n_ctx) * size_t(fp.config().dim)) {
  const double bytes = 4.0 * double(windows.n_windows) * n_layers_ * double(stride_);
  util::require_memory(bytes, "recording every layer's input for the single-site evaluations",
                       "measure the KL on fewer tokens (--sensitivity-tokens)");
  x_.resize(size_t(windows.n_windows) * size_t(n_layers_) * stride_);
  model::LlamaRunState s(fp.config(), windows.n_ctx, windows.n_ctx);
  for (int64_t w = 0; w < windows.n_windows; ++w) {
    const std::vector<int32_t> window = windows.window(w);
    fp.embed(window.data(), windows.n_ctx, 0, s);
    for (int l = 0; l < n_layers_; ++l) {
      std::copy_n(s.x.data(), stride_,
                  x_.data() + (size_t(w) * size_t(n_layers_) + size_t(l)) * stride_);
      fp.forward_layer(l, windows.n_ctx, 0, s);
    }
  }
}

const float* LayerInputs::at(int64_t w, int layer) const {
  return x_.data() + (size_t(w) * size_t(n_layers_) + size_t(layer)) * stride_;
}

ResumedPass::ResumedPass(const model::Llama& model, const LayerInputs& inputs, int first_layer)
    : model_(model),
      inputs_(inputs),
      first_layer_(first_layer),
      state_(model.config(), inputs.windows().n_ctx, inputs.windows().n_ctx) {
  if (first_layer < 0 || first_layer >= inputs.n_layers() ||
      model.config().n_layers != inputs.n_layers())
    throw Error("internal: resuming at layer " + std::to_string(first_layer) + " of " +
                std::to_string(inputs.n_layers()));
}

void ResumedPass::forward(const int32_t* tokens, int n) {
  const TextWindows& windows = inputs_.windows();
  const int64_t w = next_window_++;
  if (w >= windows.n_windows || n != windows.n_ctx ||
      !std::equal(tokens, tokens + n, windows.window(w).begin()))
    throw Error("internal: a resumed pass runs the recorded windows in order");
  const float* x = inputs_.at(w, first_layer_);
  std::copy_n(x, size_t(n) * size_t(model_.config().dim), state_.x.data());
  for (int l = first_layer_; l < model_.config().n_layers; ++l)
    model_.forward_layer(l, n, 0, state_);
  model_.finish(n, state_);
}

void ResumedPass::logits(int row0, int count, float* out) {
  model_.logits(state_, row0, count, out);
}

}  // namespace lowbit::eval
