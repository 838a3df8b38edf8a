// lowbit/train/optimizer.h — AdamW over float32 master weights, the learning-rate schedule
// (linear warm-up, cosine decay) and global gradient-norm clipping.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/train/train_model.h"

namespace lowbit::train {

struct AdamWOptions {
  double lr = 3e-3;      // peak learning rate
  double min_lr = 3e-4;  // where the cosine ends
  int64_t warmup = 0;    // steps of linear warm-up from lr / warmup to lr
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;  // decoupled (AdamW), on matrices only (Parameter::is_matrix)
  double clip = 1.0;          // global gradient L2 norm bound; 0: no clipping
};

// The learning rate of step (0-based) out of `steps`: warm-up to lr over `warmup` steps, then a
// half cosine from lr down to min_lr at the last step.
double scheduled_lr(const AdamWOptions& o, int64_t step, int64_t steps);

// Scales every gradient so that their joint L2 norm is at most max_norm (0: unchanged); returns
// the norm before scaling (summed in double, in parameter order).
double clip_gradients(std::vector<Parameter<float>>& params, double max_norm);

class AdamW {
 public:
  AdamW(const std::vector<Parameter<float>>& params, AdamWOptions options);
  // One update with learning rate lr from each parameter's grad (bias-corrected moments).
  void step(std::vector<Parameter<float>>& params, double lr);
  int64_t steps_taken() const { return t_; }
  const AdamWOptions& options() const { return options_; }
  // The moments, one pair per parameter, for checkpoints.
  std::vector<std::vector<float>>& first_moments() { return m_; }
  std::vector<std::vector<float>>& second_moments() { return v_; }
  void set_steps_taken(int64_t t) { t_ = t; }

 private:
  AdamWOptions options_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;
};

}  // namespace lowbit::train
