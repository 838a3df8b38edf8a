// Linear: y = x Wᵀ + b with OpenBLAS.
#include "lowbit/linear.h"

#include <cblas.h>
#include <omp.h>

#include <thread>

#include "lowbit/error.h"

namespace lowbit::model {

Linear::Linear(std::string name, int out_features, int in_features, std::shared_ptr<std::vector<float>> weight,
               std::vector<float> bias)
    : name_(std::move(name)), out_(out_features), in_(in_features), weight_(std::move(weight)), bias_(std::move(bias)) {
  if (!weight_ || weight_->size() != size_t(out_) * size_t(in_))
    throw Error("Linear '" + name_ + "': weight does not hold out x in = " + std::to_string(out_) + " x " +
                std::to_string(in_) + " values");
  if (!bias_.empty() && bias_.size() != size_t(out_))
    throw Error("Linear '" + name_ + "': bias has " + std::to_string(bias_.size()) + " values, expected " +
                std::to_string(out_));
}

void Linear::forward(const float* x, int n, float* y) const {
  if (n <= 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_, in_, 1.0f, x, in_, weight_->data(), in_, 0.0f, y,
              out_);
  if (!bias_.empty()) {
    for (int r = 0; r < n; ++r) {
      float* row = y + size_t(r) * size_t(out_);
      for (int c = 0; c < out_; ++c) row[c] += bias_[size_t(c)];
    }
  }
}

void Linear::set_weight(std::vector<float> weight) {
  if (weight.size() != size_t(out_) * size_t(in_)) throw Error("Linear '" + name_ + "': replacement weight has the wrong size");
  weight_ = std::make_shared<std::vector<float>>(std::move(weight));
}

void set_num_threads(int threads) {
  if (threads <= 0) threads = int(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
}

}  // namespace lowbit::model
