// The trainable LLaMA (lowbit/train/train_model.h): parameters named as Hugging Face names them,
// a forward that keeps what the backward needs, and the backward in the reverse order of the
// forward, op by op (lowbit/train/ops.h).
#include "lowbit/train/train_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "lowbit/util/error.h"
#include "util/splitmix.h"

namespace lowbit::train {

template <typename T>
void LinearProducts<T>::forward(int, const T* x, int n, const T* w, int out, int in, T* y) {
  gemm<T>(false, true, n, out, in, T(1), x, in, w, in, T(0), y, out);
}

template <typename T>
void LinearProducts<T>::backward(int, const T* dy, const T* x, int n, const T* w, int out, int in,
                                 T* dx, bool add_dx, T* dw) {
  gemm<T>(false, false, n, in, out, T(1), dy, out, w, in, add_dx ? T(1) : T(0), dx, in);
  gemm<T>(true, false, out, in, n, T(1), dy, out, x, in, T(1), dw, in);
}

template <typename T>
struct TrainLlama<T>::Index {
  struct Layer {
    size_t attn_norm, q, k, v, o, ffn_norm, gate, up, down;
  };
  std::vector<Layer> layers;
  size_t embedding = 0, final_norm = 0;
  size_t head = 0;  // == embedding when tied
};

// Activations of one forward over N = batch · seq rows, per layer what its backward reads.
template <typename T>
struct TrainLlama<T>::Buffers {
  struct Layer {
    std::vector<T> x_in, inv1, xn1, q, k, v, probs, att, x_mid, inv2, xn2, g, u, a;
  };
  int batch = 0, seq = 0, n = 0;
  std::vector<Layer> layers;
  std::vector<T> x, inv_final, xn_final, dxn_final;
  std::unique_ptr<Rope<T>> rope;
  // Scratch of the backward.
  std::vector<T> dx, dxn, tmp, dq, dk, dv, datt, dg, du, da, logits;
  void resize(const model::LlamaConfig& c, int b, int s) {
    if (b == batch && s == seq) return;
    batch = b, seq = s, n = b * s;
    const size_t N = size_t(n), d = size_t(c.dim), qd = size_t(c.q_dim()), kvd = size_t(c.kv_dim()),
                 h = size_t(c.hidden_dim);
    layers.resize(size_t(c.n_layers));
    for (Layer& l : layers) {
      for (std::vector<T>* v : {&l.x_in, &l.xn1, &l.x_mid, &l.xn2}) v->assign(N * d, T(0));
      l.inv1.assign(N, T(0));
      l.inv2.assign(N, T(0));
      for (std::vector<T>* v : {&l.q, &l.att}) v->assign(N * qd, T(0));
      for (std::vector<T>* v : {&l.k, &l.v}) v->assign(N * kvd, T(0));
      for (std::vector<T>* v : {&l.g, &l.u, &l.a}) v->assign(N * h, T(0));
      l.probs.assign(size_t(b) * size_t(c.n_heads) * size_t(s) * size_t(s), T(0));
    }
    for (std::vector<T>* v : {&x, &xn_final, &dxn_final, &dx, &dxn, &tmp}) v->assign(N * d, T(0));
    inv_final.assign(N, T(0));
    for (std::vector<T>* v : {&dq, &datt}) v->assign(N * qd, T(0));
    for (std::vector<T>* v : {&dk, &dv}) v->assign(N * kvd, T(0));
    for (std::vector<T>* v : {&dg, &du, &da}) v->assign(N * h, T(0));
    rope = std::make_unique<Rope<T>>(c.rope_inv_freq, s, c.rope_style);
  }
};

namespace {

// What the backward covers; anything else would train with a wrong gradient, so it is refused.
void check_trainable(const model::LlamaConfig& c) {
  std::string missing;
  if (c.qkv_bias || c.o_bias || c.mlp_bias) missing = "biases on the Linears";
  if (c.qk_norm) missing = "QK-norm";
  if (c.sandwich_norms) missing = "post-norms";
  if (c.gate_activation != model::GateActivation::SiLU) missing = "a GeGLU feed-forward";
  if (c.embedding_scale != 1.0f) missing = "scaled embeddings";
  if (c.sliding_window > 0 || !c.layer_window.empty()) missing = "windowed attention";
  if (c.attention_scale > 0) missing = "a custom attention scale";
  if (!missing.empty())
    throw Error("training covers LLaMA-family decoders (RMSNorm, RoPE, GQA, SwiGLU, no biases); " +
                c.arch + " has " + missing + ", whose backward lowbit does not implement");
  if (c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.hidden_dim <= 0 || c.vocab_size <= 0 || c.n_heads % c.n_kv_heads != 0 ||
      c.head_dim % 2 != 0 || int(c.rope_inv_freq.size()) != c.head_dim / 2)
    throw Error("training: the model shape is incomplete or inconsistent (" + c.summary() + ")");
}

// A normal stream of its own (SplitMix64 + Box-Muller), so that initial weights are the same on
// every standard library.
class NormalStream {
 public:
  explicit NormalStream(uint64_t seed) : state_(seed) {}
  double next() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double u1 = (double(bits() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = double(bits() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
    spare_ = r * std::sin(a);
    have_spare_ = true;
    return r * std::cos(a);
  }

 private:
  uint64_t bits() { return util::splitmix64(state_); }
  uint64_t state_;
  double spare_ = 0;
  bool have_spare_ = false;
};

std::string layer_name(int l, const char* part) {
  return "model.layers." + std::to_string(l) + "." + part;
}

}  // namespace

template <typename T>
TrainLlama<T>::TrainLlama(model::LlamaConfig config)
    : config_(std::move(config)),
      index_(std::make_unique<Index>()),
      buffers_(std::make_unique<Buffers>()) {
  check_trainable(config_);
  build_parameters();
}

template <typename T>
TrainLlama<T>::TrainLlama(model::LlamaConfig config, uint64_t seed, double init_std)
    : TrainLlama(std::move(config)) {
  const double residual_std = init_std / std::sqrt(2.0 * config_.n_layers);
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter<T>& p = params_[i];
    if (!p.is_matrix) {
      std::fill(p.value.begin(), p.value.end(), T(1));
      continue;
    }
    const bool residual =
        p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos;
    NormalStream normal(seed * 0x100000001B3ULL + i);
    for (T& v : p.value) v = T(float(normal.next() * (residual ? residual_std : init_std)));
  }
}

template <typename T>
TrainLlama<T>::TrainLlama(TrainLlama&&) noexcept = default;
template <typename T>
TrainLlama<T>& TrainLlama<T>::operator=(TrainLlama&&) noexcept = default;
template <typename T>
TrainLlama<T>::~TrainLlama() = default;

template <typename T>
void TrainLlama<T>::build_parameters() {
  const model::LlamaConfig& c = config_;
  const auto add = [&](std::string name, std::vector<int64_t> shape, bool matrix) {
    Parameter<T> p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    size_t n = 1;
    for (int64_t s : p.shape) n *= size_t(s);
    p.value.assign(n, T(0));
    p.grad.assign(n, T(0));
    p.is_matrix = matrix;
    params_.push_back(std::move(p));
    return params_.size() - 1;
  };
  const int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), h = c.hidden_dim;
  index_->embedding = add("model.embed_tokens.weight", {c.vocab_size, d}, true);
  for (int l = 0; l < c.n_layers; ++l) {
    typename Index::Layer L;
    L.attn_norm = add(layer_name(l, "input_layernorm.weight"), {d}, false);
    L.q = add(layer_name(l, "self_attn.q_proj.weight"), {q, d}, true);
    L.k = add(layer_name(l, "self_attn.k_proj.weight"), {kv, d}, true);
    L.v = add(layer_name(l, "self_attn.v_proj.weight"), {kv, d}, true);
    L.o = add(layer_name(l, "self_attn.o_proj.weight"), {d, q}, true);
    L.ffn_norm = add(layer_name(l, "post_attention_layernorm.weight"), {d}, false);
    L.gate = add(layer_name(l, "mlp.gate_proj.weight"), {h, d}, true);
    L.up = add(layer_name(l, "mlp.up_proj.weight"), {h, d}, true);
    L.down = add(layer_name(l, "mlp.down_proj.weight"), {d, h}, true);
    index_->layers.push_back(L);
  }
  index_->final_norm = add("model.norm.weight", {d}, false);
  index_->head = c.tied_output ? index_->embedding : add("lm_head.weight", {c.vocab_size, d}, true);
}

template <typename T>
TrainLlama<T> TrainLlama<T>::from_runtime(const model::Llama& m) {
  TrainLlama<T> t(m.config());
  const model::LlamaWeights& w = m.weights();
  const auto take = [&](size_t index, const std::vector<float>& from) {
    Parameter<T>& p = t.params_[index];
    if (from.size() != p.value.size())
      throw Error("training: " + p.name + " has " + std::to_string(from.size()) +
                  " values, expected " + std::to_string(p.value.size()));
    std::copy(from.begin(), from.end(), p.value.begin());
  };
  const auto linear = [&](size_t index, const model::Linear& lin) {
    if (lin.input_scheme() || lin.input_transform() || lin.low_rank() || lin.products() ||
        lin.accumulation() || lin.packed_weight())
      throw Error("training: " + lin.name() +
                  " is quantized or transformed for inference; train from the unquantized model "
                  "(quantized training is set by the training recipe instead)");
    take(index, lin.weight());
  };
  if (!w.token_embedding) throw Error("training: the model's embedding is not held as float32");
  take(t.index_->embedding, *w.token_embedding);
  for (int l = 0; l < m.config().n_layers; ++l) {
    const model::LlamaLayer& L = w.layers[size_t(l)];
    const typename Index::Layer& I = t.index_->layers[size_t(l)];
    if (L.kv_cache || L.qk_rotation || L.attention_products)
      throw Error("training: layer " + std::to_string(l) + " is quantized for inference");
    take(I.attn_norm, L.attn_norm);
    linear(I.q, L.wq);
    linear(I.k, L.wk);
    linear(I.v, L.wv);
    linear(I.o, L.wo);
    take(I.ffn_norm, L.ffn_norm);
    linear(I.gate, L.w_gate);
    linear(I.up, L.w_up);
    linear(I.down, L.w_down);
  }
  take(t.index_->final_norm, w.final_norm);
  if (!m.config().tied_output) linear(t.index_->head, w.output);
  return t;
}

template <typename T>
model::Llama TrainLlama<T>::to_runtime() const {
  const auto floats = [&](size_t index) {
    const std::vector<T>& v = params_[index].value;
    return std::vector<float>(v.begin(), v.end());
  };
  const auto linear = [&](const std::string& site, size_t index) {
    const Parameter<T>& p = params_[index];
    return model::Linear(site, int(p.shape[0]), int(p.shape[1]),
                         std::make_shared<std::vector<float>>(floats(index)));
  };
  model::LlamaWeights w;
  w.token_embedding = std::make_shared<std::vector<float>>(floats(index_->embedding));
  for (int l = 0; l < config_.n_layers; ++l) {
    const typename Index::Layer& I = index_->layers[size_t(l)];
    const std::string site = "layers." + std::to_string(l) + ".";
    model::LlamaLayer L;
    L.attn_norm = floats(I.attn_norm);
    L.wq = linear(site + "q_proj", I.q);
    L.wk = linear(site + "k_proj", I.k);
    L.wv = linear(site + "v_proj", I.v);
    L.wo = linear(site + "o_proj", I.o);
    L.ffn_norm = floats(I.ffn_norm);
    L.w_gate = linear(site + "gate_proj", I.gate);
    L.w_up = linear(site + "up_proj", I.up);
    L.w_down = linear(site + "down_proj", I.down);
    w.layers.push_back(std::move(L));
  }
  w.final_norm = floats(index_->final_norm);
  w.output = config_.tied_output
                 ? model::Linear("output", config_.vocab_size, config_.dim, w.token_embedding)
                 : linear("output", index_->head);
  return model::Llama(config_, std::move(w));
}

template <typename T>
Parameter<T>& TrainLlama<T>::parameter(const std::string& name) {
  for (Parameter<T>& p : params_)
    if (p.name == name) return p;
  throw Error("training: the model has no parameter " + name);
}

template <typename T>
int64_t TrainLlama<T>::parameter_count() const {
  int64_t n = 0;
  for (const Parameter<T>& p : params_) n += int64_t(p.value.size());
  return n;
}

template <typename T>
void TrainLlama<T>::zero_grad() {
  for (Parameter<T>& p : params_) std::fill(p.grad.begin(), p.grad.end(), T(0));
}

template <typename T>
double TrainLlama<T>::forward_flops(int64_t tokens, int seq) const {
  const model::LlamaConfig& c = config_;
  const double linear_macs =
      double(c.n_layers) *
          (double(c.dim) * (2.0 * c.q_dim() + 2.0 * c.kv_dim()) + 3.0 * c.dim * c.hidden_dim) +
      double(c.dim) * c.vocab_size;
  // Query i of a sequence sees i + 1 keys: q·k and p·v, head_dim multiply-adds each.
  const double attention_macs = 2.0 * c.head_dim * c.n_heads * c.n_layers * (seq + 1) / 2.0;
  return 2.0 * double(tokens) * (linear_macs + attention_macs);
}

template <typename T>
void TrainLlama<T>::forward(const int32_t* tokens, int batch, int seq) {
  const model::LlamaConfig& c = config_;
  Buffers& B = *buffers_;
  B.resize(c, batch, seq);
  const int n = B.n, d = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), h = c.hidden_dim;
  const T eps = T(c.norm_eps);
  const AttentionShape shape{batch,        seq,        c.n_heads,
                             c.n_kv_heads, c.head_dim, 1.0 / std::sqrt(double(float(c.head_dim)))};
  const std::vector<T>& E = params_[index_->embedding].value;
  for (int r = 0; r < n; ++r) {
    if (tokens[r] < 0 || tokens[r] >= c.vocab_size)
      throw Error("training: token id " + std::to_string(tokens[r]) +
                  " is outside the vocabulary of " + std::to_string(c.vocab_size));
    std::copy_n(E.data() + size_t(tokens[r]) * d, d, B.x.data() + size_t(r) * d);
  }
  LinearProducts<T>& P = products();
  for (int l = 0; l < c.n_layers; ++l) {
    const typename Index::Layer& I = index_->layers[size_t(l)];
    typename Buffers::Layer& S = B.layers[size_t(l)];
    const auto W = [&](size_t i) { return params_[i].value.data(); };
    const int site = l * kLinearsPerLayer;
    // Attention block: x_mid = x_in + o(attention(rope(q xn1), rope(k xn1), v xn1)).
    S.x_in = B.x;
    rms_norm_forward(S.x_in.data(), W(I.attn_norm), n, d, eps, S.xn1.data(), S.inv1.data());
    P.forward(site + 0, S.xn1.data(), n, W(I.q), qd, d, S.q.data());
    P.forward(site + 1, S.xn1.data(), n, W(I.k), kvd, d, S.k.data());
    P.forward(site + 2, S.xn1.data(), n, W(I.v), kvd, d, S.v.data());
    B.rope->forward(S.q.data(), n, c.n_heads, c.head_dim);
    B.rope->forward(S.k.data(), n, c.n_kv_heads, c.head_dim);
    attention_forward(shape, S.q.data(), S.k.data(), S.v.data(), S.probs.data(), S.att.data());
    P.forward(site + 3, S.att.data(), n, W(I.o), d, qd, B.tmp.data());
    for (size_t i = 0; i < S.x_mid.size(); ++i) S.x_mid[i] = S.x_in[i] + B.tmp[i];
    // Feed-forward block: x = x_mid + down(silu(gate xn2) · up xn2).
    rms_norm_forward(S.x_mid.data(), W(I.ffn_norm), n, d, eps, S.xn2.data(), S.inv2.data());
    P.forward(site + 4, S.xn2.data(), n, W(I.gate), h, d, S.g.data());
    P.forward(site + 5, S.xn2.data(), n, W(I.up), h, d, S.u.data());
    swiglu_forward(S.g.data(), S.u.data(), S.a.size(), S.a.data());
    P.forward(site + 6, S.a.data(), n, W(I.down), d, h, B.tmp.data());
    for (size_t i = 0; i < B.x.size(); ++i) B.x[i] = S.x_mid[i] + B.tmp[i];
  }
  rms_norm_forward(B.x.data(), params_[index_->final_norm].value.data(), n, d, eps,
                   B.xn_final.data(), B.inv_final.data());
}

template <typename T>
void TrainLlama<T>::head_loss(const int32_t* targets, bool grads, T grad_scale, LossSum& loss) {
  // The logits of all rows would be [N, vocab] (400 MB for 2048 rows of SmolLM2's 49152); they are
  // made, scored and differentiated a block of rows at a time instead.
  constexpr int kRows = 128;
  const model::LlamaConfig& c = config_;
  Buffers& B = *buffers_;
  const int d = c.dim, V = c.vocab_size, site = kLinearsPerLayer * c.n_layers;
  Parameter<T>& head = params_[index_->head];
  B.logits.resize(size_t(kRows) * size_t(V));
  for (int r0 = 0; r0 < B.n; r0 += kRows) {
    const int rows = std::min(kRows, B.n - r0);
    const T* x = B.xn_final.data() + size_t(r0) * d;
    products().forward(site, x, rows, head.value.data(), V, d, B.logits.data());
    loss.sum += cross_entropy(B.logits.data(), targets + r0, rows, V, grad_scale, B.logits.data());
    for (int r = 0; r < rows; ++r) loss.scored += targets[r0 + r] >= 0;
    if (grads)
      products().backward(site, B.logits.data(), x, rows, head.value.data(), V, d,
                          B.dxn_final.data() + size_t(r0) * d, false, head.grad.data());
  }
}

template <typename T>
void TrainLlama<T>::backward(const int32_t* tokens) {
  const model::LlamaConfig& c = config_;
  Buffers& B = *buffers_;
  const int n = B.n, d = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), h = c.hidden_dim;
  const AttentionShape shape{B.batch,      B.seq,      c.n_heads,
                             c.n_kv_heads, c.head_dim, 1.0 / std::sqrt(double(float(c.head_dim)))};
  LinearProducts<T>& P = products();
  const auto W = [&](size_t i) { return params_[i].value.data(); };
  const auto G = [&](size_t i) { return params_[i].grad.data(); };
  const auto add_into = [](std::vector<T>& to, const std::vector<T>& from) {
    for (size_t i = 0; i < to.size(); ++i) to[i] += from[i];
  };
  // B.dx is the gradient of the residual stream, carried down through the layers.
  rms_norm_backward(B.x.data(), W(index_->final_norm), B.inv_final.data(), B.dxn_final.data(), n, d,
                    B.dx.data(), G(index_->final_norm));
  for (int l = c.n_layers - 1; l >= 0; --l) {
    const typename Index::Layer& I = index_->layers[size_t(l)];
    typename Buffers::Layer& S = B.layers[size_t(l)];
    const int site = l * kLinearsPerLayer;
    // Feed-forward block.
    P.backward(site + 6, B.dx.data(), S.a.data(), n, W(I.down), d, h, B.da.data(), false,
               G(I.down));
    swiglu_backward(S.g.data(), S.u.data(), B.da.data(), B.da.size(), B.dg.data(), B.du.data());
    P.backward(site + 4, B.dg.data(), S.xn2.data(), n, W(I.gate), h, d, B.dxn.data(), false,
               G(I.gate));
    P.backward(site + 5, B.du.data(), S.xn2.data(), n, W(I.up), h, d, B.dxn.data(), true, G(I.up));
    rms_norm_backward(S.x_mid.data(), W(I.ffn_norm), S.inv2.data(), B.dxn.data(), n, d,
                      B.tmp.data(), G(I.ffn_norm));
    add_into(B.dx, B.tmp);
    // Attention block.
    P.backward(site + 3, B.dx.data(), S.att.data(), n, W(I.o), d, qd, B.datt.data(), false, G(I.o));
    attention_backward(shape, S.q.data(), S.k.data(), S.v.data(), S.probs.data(), B.datt.data(),
                       B.dq.data(), B.dk.data(), B.dv.data());
    B.rope->backward(B.dq.data(), n, c.n_heads, c.head_dim);
    B.rope->backward(B.dk.data(), n, c.n_kv_heads, c.head_dim);
    P.backward(site + 0, B.dq.data(), S.xn1.data(), n, W(I.q), qd, d, B.dxn.data(), false, G(I.q));
    P.backward(site + 1, B.dk.data(), S.xn1.data(), n, W(I.k), kvd, d, B.dxn.data(), true, G(I.k));
    P.backward(site + 2, B.dv.data(), S.xn1.data(), n, W(I.v), kvd, d, B.dxn.data(), true, G(I.v));
    rms_norm_backward(S.x_in.data(), W(I.attn_norm), S.inv1.data(), B.dxn.data(), n, d,
                      B.tmp.data(), G(I.attn_norm));
    add_into(B.dx, B.tmp);
  }
  // Embedding rows, in token order (a repeated token adds its rows in a fixed order).
  T* dE = G(index_->embedding);
  for (int r = 0; r < n; ++r) {
    T* row = dE + size_t(tokens[r]) * d;
    const T* g = B.dx.data() + size_t(r) * d;
    for (int j = 0; j < d; ++j) row[j] += g[j];
  }
}

template <typename T>
LossSum TrainLlama<T>::forward_backward(const int32_t* tokens, const int32_t* targets, int batch,
                                        int seq, bool grads, T grad_scale) {
  if (batch < 1 || seq < 1) throw Error("training: a batch needs at least one sequence and token");
  forward(tokens, batch, seq);
  LossSum loss;
  head_loss(targets, grads, grad_scale, loss);
  if (grads) backward(tokens);
  return loss;
}

template class LinearProducts<float>;
template class LinearProducts<double>;
template class TrainLlama<float>;
template class TrainLlama<double>;

}  // namespace lowbit::train
