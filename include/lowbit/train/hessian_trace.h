// lowbit/train/hessian_trace.h — the curvature of the loss per weight tensor, for HAWQ's
// sensitivity: tr(H_pp), the trace of the Hessian block of one parameter tensor p of the mean
// cross-entropy on a batch, by Hutchinson's estimator: for Rademacher vectors z over all
// parameters, E[z_pᵀ (H z)_p] = Σ_{i∈p} H_ii. One Hessian-vector product (float64 finite
// differences, train/hessian_vector.h) per sample serves every tensor at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"

namespace lowbit::train {

struct ParameterTrace {
  std::string name;    // Hugging Face name: "model.layers.3.mlp.down_proj.weight"
  int64_t size = 0;    // elements
  double trace = 0;    // the sample mean of z_pᵀ (H z)_p
  double stderr_ = 0;  // its standard error over the samples (0 with one sample)
};

// `samples` Rademacher vectors from `seed`; tokens and targets [batch · seq] as for training
// (a target < 0 is not scored). `progress(done, samples)` after each sample.
// With one z over all parameters, a tensor's estimate carries the cross terms
// 2 Σ_{i∈p, j∉p} H_ij z_i z_j of every other tensor as noise; `only` (names) draws z over those
// tensors alone (zero elsewhere) — what HAWQ does, one product per block and sample — at the cost
// of one product per such set. Traces of tensors outside `only` are then 0.
std::vector<ParameterTrace> hessian_traces(const model::Llama& model,
                                           const std::vector<int32_t>& tokens,
                                           const std::vector<int32_t>& targets, int batch, int seq,
                                           int samples, uint64_t seed,
                                           const std::function<void(int, int)>& progress = {},
                                           const std::vector<std::string>& only = {});

// "model.layers.3.mlp.down_proj.weight" → "layers.3.down_proj" (a Linear's site name); "" for a
// tensor that is not a layer Linear's weight.
std::string linear_site_of_parameter(const std::string& name);

}  // namespace lowbit::train
