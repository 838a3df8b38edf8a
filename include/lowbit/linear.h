// lowbit/linear.h — the one place a model multiplies by a weight matrix. Every matrix product of
// the transformer runtimes goes through a Linear, so quantized weights and activation quantizers
// are swapped in here and nowhere else.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace lowbit::model {

class Linear {
 public:
  Linear() = default;
  // weight: [out, in] row-major (as PyTorch and GGUF store it); bias: empty or [out].
  Linear(std::string name, int out_features, int in_features, std::shared_ptr<std::vector<float>> weight,
         std::vector<float> bias = {});

  // y[n, out] = x[n, in] · weightᵀ + bias (OpenBLAS sgemm; threads as openblas_set_num_threads).
  void forward(const float* x, int n, float* y) const;

  const std::string& name() const { return name_; }
  int in_features() const { return in_; }
  int out_features() const { return out_; }
  const std::vector<float>& weight() const { return *weight_; }
  const std::vector<float>& bias() const { return bias_; }
  // Replaces the weight (same shape); a tied weight stops being shared.
  void set_weight(std::vector<float> weight);
  // Multiply-adds one forward performs per input row.
  double flops_per_row() const { return 2.0 * in_ * out_; }

 private:
  std::string name_;
  int out_ = 0, in_ = 0;
  std::shared_ptr<std::vector<float>> weight_;
  std::vector<float> bias_;
};

// Sets the threads OpenBLAS and the runtimes' own OpenMP loops use (0: all cores).
void set_num_threads(int threads);

}  // namespace lowbit::model
