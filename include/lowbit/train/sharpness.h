// lowbit/train/sharpness.h — how sharp the loss landscape is where a run ended: the largest
// eigenvalue λ_max of the Hessian of the mean training loss with respect to all parameters, on
// one batch, by Lanczos. It is the curvature that bounds a stable step (gradient descent diverges
// along a direction whose curvature exceeds 2 / lr: Cohen et al. 2021, "edge of stability"), so
// runs that end sharper sit nearer the edge. (To FP8 and Back Again proposes a logit-space measure;
// it is not reconstructed here: docs/training.md.)
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/train/train_model.h"

namespace lowbit::train {

// Lanczos (`iterations` steps from a seeded random unit direction) on Hessian-vector products
// Hv ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε with ε = 1e-4, the gradients in float64 on a float64 copy
// of the model; returns the largest eigenvalue of the Lanczos tridiagonal matrix.
double loss_sharpness(const TrainLlama<float>& model, const std::vector<int32_t>& tokens,
                      const std::vector<int32_t>& targets, int batch, int seq, int iterations,
                      uint64_t seed);

}  // namespace lowbit::train
