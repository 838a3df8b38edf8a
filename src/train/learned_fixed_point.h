// Trainable fixed point (QFX, Dai et al. 2024, "QFX: Trainable Fixed-Point Quantization for Deep
// Learning Hardware Acceleration"): the forward's activations and weights of every Linear in
// signed `bits`-bit fixed point whose binary point is learned per tensor. Each tensor t has a real
// parameter f_t; its step is s_t = 2^-round(f_t) (round's gradient passed straight through), the
// value q = s·clamp(round(x/s), -2^(bits-1), 2^(bits-1)-1). The loss's gradient reaches f through
// s as in LSQ (Esser et al. 2020): ∂q/∂s = round(x/s) - x/s inside the range, the clamp bound
// outside; x gets the gradient of q inside the range and none where it clipped. f starts where
// nothing clips (from the tensor's first largest magnitude) and is updated by its own Adam.
// Gradients stay float32 (QFX quantizes what inference hardware computes with).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/train/train_model.h"

namespace lowbit::train {

class LearnedFixedPoint : public LinearProducts<float> {
 public:
  LearnedFixedPoint(int bits, double lr, int head_site, bool head)
      : bits_(bits), lr_(lr), head_site_(head_site), head_(head) {}
  void forward(int site, const float* x, int n, const float* w, int out, int in, float* y) override;
  void backward(int site, const float* dy, const float* x, int n, const float* w, int out, int in,
                float* dx, bool add_dx, float* dw) override;
  void end_step();  // one Adam step on every binary point from the step's gradients
  // Mean fractional bits (round(f)) over the tensors, for the log.
  double mean_fraction_bits() const;
  std::string state() const;
  void restore(const std::string& json);

 private:
  struct Point {
    double f = 0, grad = 0, m = 0, v = 0;
    int64_t updates = 0;
  };
  Point& point(int site, int operand, const float* x, size_t n);  // operand 0: X, 1: W
  // q into out; returns s.
  float quantize(const Point& p, const float* x, size_t n, float* out) const;
  // Σ g ⊙ ∂q/∂s and g masked to the range (in place), for the tensor x of step s.
  double scale_gradient(const float* x, size_t n, float s, float* g) const;

  int bits_;
  double lr_;
  int head_site_;
  bool head_;
  std::map<std::pair<int, int>, Point> points_;
  std::vector<float> xq_, wq_, tmp_;
};

}  // namespace lowbit::train
