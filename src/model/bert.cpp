// BERT encoder forward: embeddings + LayerNorm, then per layer
// x = LN(x + attn_out(softmax(q kᵀ/√d + mask) v)); x = LN(x + ffn_out(gelu(ffn_in x))).
#include "lowbit/bert.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/tensor_store.h"
#include "model/transformer_ops.h"

namespace lowbit::model {

std::string BertConfig::summary() const {
  std::ostringstream s;
  s << "bert: " << n_layers << " layers, dim " << dim << ", " << n_heads << " heads, GELU " << hidden_dim << ", vocab "
    << vocab_size << ", " << max_positions << " positions, LayerNorm eps " << norm_eps;
  return s.str();
}

Bert::Bert(BertConfig config, BertWeights weights) : config_(std::move(config)), weights_(std::move(weights)) {
  if (config_.dim % config_.n_heads != 0) throw Error("BERT: dim must be a multiple of the head count");
}

Bert Bert::load(const TensorStore& store, BertConfig c) {
  const std::string prefix = store.find("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  const int64_t dim = c.dim, hidden = c.hidden_dim;
  const auto get = [&](const std::string& name, std::vector<int64_t> shape) { return store.take_f32(prefix + name, shape); };
  const auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    return Linear(prefix + name + ".weight", int(out), int(in),
                  std::make_shared<std::vector<float>>(get(name + ".weight", {out, in})), get(name + ".bias", {out}));
  };
  BertWeights w;
  w.word_embedding = get("embeddings.word_embeddings.weight", {c.vocab_size, dim});
  w.position_embedding = get("embeddings.position_embeddings.weight", {c.max_positions, dim});
  w.type_embedding = get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, dim});
  w.emb_ln_weight = get("embeddings.LayerNorm.weight", {dim});
  w.emb_ln_bias = get("embeddings.LayerNorm.bias", {dim});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    BertLayer layer;
    layer.wq = linear(p + "attention.self.query", dim, dim);
    layer.wk = linear(p + "attention.self.key", dim, dim);
    layer.wv = linear(p + "attention.self.value", dim, dim);
    layer.attn_out = linear(p + "attention.output.dense", dim, dim);
    layer.ln1_weight = get(p + "attention.output.LayerNorm.weight", {dim});
    layer.ln1_bias = get(p + "attention.output.LayerNorm.bias", {dim});
    layer.ffn_in = linear(p + "intermediate.dense", hidden, dim);
    layer.ffn_out = linear(p + "output.dense", dim, hidden);
    layer.ln2_weight = get(p + "output.LayerNorm.weight", {dim});
    layer.ln2_bias = get(p + "output.LayerNorm.bias", {dim});
    w.layers.push_back(std::move(layer));
  }
  return Bert(std::move(c), std::move(w));
}

std::vector<float> Bert::encode(const std::vector<std::vector<int32_t>>& batch, int& max_len) const {
  const BertConfig& c = config_;
  const int b_count = int(batch.size());
  max_len = 0;
  for (const auto& ids : batch) max_len = std::max(max_len, int(ids.size()));
  if (max_len > c.max_positions)
    throw Error("BERT: a sequence of " + std::to_string(max_len) + " tokens exceeds the model's " +
                std::to_string(c.max_positions) + " positions (truncate it)");
  const int L = max_len, n = b_count * L;
  const size_t dim = size_t(c.dim);
  std::vector<float> x(size_t(n) * dim, 0.0f), tmp(size_t(n) * dim);
  for (int b = 0; b < b_count; ++b)
    for (int t = 0; t < int(batch[size_t(b)].size()); ++t) {
      const int32_t id = batch[size_t(b)][size_t(t)];
      if (id < 0 || id >= c.vocab_size) throw Error("BERT: token id " + std::to_string(id) + " is outside the vocabulary");
      float* row = x.data() + (size_t(b) * size_t(L) + size_t(t)) * dim;
      for (size_t i = 0; i < dim; ++i)  // token type 0 for a single sentence
        row[i] = weights_.word_embedding[size_t(id) * dim + i] + weights_.position_embedding[size_t(t) * dim + i] +
                 weights_.type_embedding[i];
    }
  layer_norm(x.data(), weights_.emb_ln_weight.data(), weights_.emb_ln_bias.data(), n, c.dim, c.norm_eps, x.data());

  const int hd = c.dim / c.n_heads;
  const float scale = 1.0f / std::sqrt(float(hd));
  std::vector<float> q(x.size()), k(x.size()), v(x.size()), att(x.size()), h(size_t(n) * size_t(c.hidden_dim));
  std::vector<float> scores(size_t(b_count) * size_t(c.n_heads) * size_t(L) * size_t(L));
  for (const BertLayer& w : weights_.layers) {
    w.wq.forward(x.data(), n, q.data());
    w.wk.forward(x.data(), n, k.data());
    w.wv.forward(x.data(), n, v.data());
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < b_count; ++b)
      for (int head = 0; head < c.n_heads; ++head) {
        const int len = int(batch[size_t(b)].size());  // keys beyond it are padding: masked out
        const size_t base = size_t(b) * size_t(L) * dim + size_t(head) * size_t(hd);
        float* s = scores.data() + (size_t(b) * size_t(c.n_heads) + size_t(head)) * size_t(L) * size_t(L);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, scale, q.data() + base, c.dim, k.data() + base,
                    c.dim, 0.0f, s, L);
        for (int i = 0; i < L; ++i) softmax_prefix(s + size_t(i) * size_t(L), std::max(len, 1), L);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, 1.0f, s, L, v.data() + base, c.dim, 0.0f,
                    att.data() + base, c.dim);
      }
    w.attn_out.forward(att.data(), n, tmp.data());
    add_in_place(tmp.data(), x.data(), x.size());
    layer_norm(tmp.data(), w.ln1_weight.data(), w.ln1_bias.data(), n, c.dim, c.norm_eps, x.data());
    w.ffn_in.forward(x.data(), n, h.data());
    gelu_in_place(h.data(), h.size());
    w.ffn_out.forward(h.data(), n, tmp.data());
    add_in_place(tmp.data(), x.data(), x.size());
    layer_norm(tmp.data(), w.ln2_weight.data(), w.ln2_bias.data(), n, c.dim, c.norm_eps, x.data());
  }
  return x;
}

std::vector<float> Bert::embed(const std::vector<std::vector<int32_t>>& batch) const {
  int L = 0;
  const std::vector<float> hidden = encode(batch, L);
  const size_t dim = size_t(config_.dim);
  std::vector<float> out(batch.size() * dim, 0.0f);
  for (size_t b = 0; b < batch.size(); ++b) {
    const size_t len = batch[b].size();
    std::vector<double> sum(dim, 0.0);
    for (size_t t = 0; t < len; ++t)
      for (size_t i = 0; i < dim; ++i) sum[i] += hidden[(b * size_t(L) + t) * dim + i];
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) {
      sum[i] /= double(std::max<size_t>(len, 1));
      norm += sum[i] * sum[i];
    }
    norm = std::max(std::sqrt(norm), 1e-12);  // as torch.nn.functional.normalize
    for (size_t i = 0; i < dim; ++i) out[b * dim + i] = float(sum[i] / norm);
  }
  return out;
}

}  // namespace lowbit::model
