// lowbit/train/train_model.h — a LLaMA-family decoder that trains: the runtime's forward (same
// config, same arithmetic order where it matters) with every activation the backward needs kept,
// and the backward of the whole model into one gradient per parameter. float for training, double
// for the gradient checks (tests/train_gradient_test.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/train/ops.h"

namespace lowbit::train {

// One trainable tensor, named as Hugging Face checkpoints name it ("model.layers.0.mlp.up_proj
// .weight"), so checkpoints are ordinary safetensors.
template <typename T>
struct Parameter {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<T> value, grad;
  bool is_matrix = false;  // a Linear's weight or the embedding (weight decay applies to these)
};

// The Linears of a model in the order of model::Llama::linears(): per layer q, k, v, o, gate, up,
// down (site = layer · 7 + role), then the head (site = 7 · layers).
enum class LinearRole { Q, K, V, O, Gate, Up, Down, Head };
constexpr int kLinearsPerLayer = 7;

// How a Linear's three matrix products are computed. The default multiplies exactly; quantized
// training (lowbit/train/quantized_training.h) rounds each operand by its role's scheme.
template <typename T>
class LinearProducts {
 public:
  virtual ~LinearProducts() = default;
  // y[n, out] = x[n, in] · w[out, in]ᵀ
  virtual void forward(int site, const T* x, int n, const T* w, int out, int in, T* y);
  // dx[n, in] (= or += as add_dx says) dy[n, out] · w;  dw[out, in] += dyᵀ · x
  virtual void backward(int site, const T* dy, const T* x, int n, const T* w, int out, int in,
                        T* dx, bool add_dx, T* dw);
};

struct LossSum {
  double sum = 0;      // Σ −log p(target) over scored positions
  int64_t scored = 0;  // positions with a target ≥ 0
};

template <typename T>
class TrainLlama {
 public:
  // Random initialisation: Linears and embedding N(0, init_std²) (the output projections o_proj
  // and down_proj scaled by 1/sqrt(2·layers), as GPT-2 does), norms 1. Throws lowbit::Error for
  // configurations the backward does not cover (biases, QK-norm, sandwich norms, GeGLU, windows).
  TrainLlama(model::LlamaConfig config, uint64_t seed, double init_std = 0.02);
  TrainLlama(TrainLlama&&) noexcept;
  TrainLlama& operator=(TrainLlama&&) noexcept;
  ~TrainLlama();
  // The weights of a loaded model (float32; packed or quantized weights are an error).
  static TrainLlama from_runtime(const model::Llama& m);
  // The runtime with these weights (float32), for eval, export and the tests.
  model::Llama to_runtime() const;

  const model::LlamaConfig& config() const { return config_; }
  std::vector<Parameter<T>>& parameters() { return params_; }
  const std::vector<Parameter<T>>& parameters() const { return params_; }
  Parameter<T>& parameter(const std::string& name);
  int64_t parameter_count() const;
  void zero_grad();
  void set_products(LinearProducts<T>* p) { products_ = p; }  // not owned; nullptr: exact

  // Runs `batch` sequences of `seq` tokens (tokens and targets [batch · seq]); with `grads`,
  // adds grad_scale · ∂(loss sum)/∂θ to every parameter's grad (grad_scale = 1 / scored tokens of
  // the whole step gives the mean's gradient across accumulated micro-batches).
  LossSum forward_backward(const int32_t* tokens, const int32_t* targets, int batch, int seq,
                           bool grads, T grad_scale = T(1));
  // Multiply-adds of one forward over `tokens` tokens in sequences of `seq` (the causal half of
  // attention counted), times 2 for FLOPs.
  double forward_flops(int64_t tokens, int seq) const;

 private:
  struct Index;    // where each layer's parameters sit in params_
  struct Buffers;  // the saved activations of one forward
  explicit TrainLlama(model::LlamaConfig config);
  void build_parameters();
  LinearProducts<T>& products() { return products_ ? *products_ : exact_; }
  void forward(const int32_t* tokens, int batch, int seq);
  void backward(const int32_t* tokens);
  void head_loss(const int32_t* targets, bool grads, T grad_scale, LossSum& loss);

  model::LlamaConfig config_;
  std::vector<Parameter<T>> params_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<Buffers> buffers_;
  LinearProducts<T> exact_;
  LinearProducts<T>* products_ = nullptr;
};

}  // namespace lowbit::train
