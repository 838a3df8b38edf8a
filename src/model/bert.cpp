// BERT encoder forward: embeddings + LayerNorm, then per layer
// x = LN(x + attn_out(softmax(q kᵀ/√d + mask) v)); x = LN(x + ffn_out(gelu(ffn_in x))).
#include "lowbit/model/bert.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "lowbit/model/tensor_store.h"
#include "lowbit/util/error.h"
#include "model/transformer_ops.h"

namespace lowbit::model {

std::string BertConfig::summary() const {
  std::ostringstream s;
  s << "bert: " << n_layers << " layers, dim " << dim << ", " << n_heads << " heads, GELU "
    << hidden_dim << ", vocab " << vocab_size << ", " << max_positions
    << " positions, LayerNorm eps " << norm_eps;
  return s.str();
}

Bert::Bert(BertConfig config, BertWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  if (config_.dim % config_.n_heads != 0)
    throw Error("BERT: dim must be a multiple of the head count");
}

Bert Bert::load(const TensorStore& store, BertConfig c) {
  const std::string prefix = store.find("bert.embeddings.word_embeddings.weight") ? "bert." : "";
  const int64_t dim = c.dim, hidden = c.hidden_dim;
  const auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    return store.take_f32(prefix + name, shape);
  };
  // `site` is the name recipes use; `name` the tensor's name in the file.
  const auto linear = [&](const std::string& name, const std::string& site, int64_t out,
                          int64_t in) {
    return Linear(site, int(out), int(in),
                  std::make_shared<std::vector<float>>(get(name + ".weight", {out, in})),
                  get(name + ".bias", {out}));
  };
  BertWeights w;
  w.word_embedding = std::make_shared<std::vector<float>>(
      get("embeddings.word_embeddings.weight", {c.vocab_size, dim}));
  w.position_embedding = get("embeddings.position_embeddings.weight", {c.max_positions, dim});
  w.type_embedding = get("embeddings.token_type_embeddings.weight", {c.type_vocab_size, dim});
  w.emb_ln_weight = get("embeddings.LayerNorm.weight", {dim});
  w.emb_ln_bias = get("embeddings.LayerNorm.bias", {dim});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".",
                      site = "layers." + std::to_string(l) + ".";
    BertLayer layer;
    layer.wq = linear(p + "attention.self.query", site + "q_proj", dim, dim);
    layer.wk = linear(p + "attention.self.key", site + "k_proj", dim, dim);
    layer.wv = linear(p + "attention.self.value", site + "v_proj", dim, dim);
    layer.attn_out = linear(p + "attention.output.dense", site + "o_proj", dim, dim);
    layer.ln1_weight = get(p + "attention.output.LayerNorm.weight", {dim});
    layer.ln1_bias = get(p + "attention.output.LayerNorm.bias", {dim});
    layer.ffn_in = linear(p + "intermediate.dense", site + "ffn_in", hidden, dim);
    layer.ffn_out = linear(p + "output.dense", site + "ffn_out", dim, hidden);
    layer.ln2_weight = get(p + "output.LayerNorm.weight", {dim});
    layer.ln2_bias = get(p + "output.LayerNorm.bias", {dim});
    w.layers.push_back(std::move(layer));
  }
  return Bert(std::move(c), std::move(w));
}

std::vector<float> Bert::encode(const std::vector<std::vector<int32_t>>& batch,
                                int& max_len) const {
  max_len = 0;
  std::vector<int> lens;
  for (const auto& ids : batch) {
    max_len = std::max(max_len, int(ids.size()));
    lens.push_back(int(ids.size()));
  }
  std::vector<float> x(batch.size() * size_t(max_len) * size_t(config_.dim), 0.0f);
  embed_tokens(batch, max_len, x.data());
  for (int l = 0; l < config_.n_layers; ++l) forward_layer(l, lens, max_len, x.data());
  return x;
}

void Bert::embed_tokens(const std::vector<std::vector<int32_t>>& batch, int L, float* x) const {
  const BertConfig& c = config_;
  if (L > c.max_positions)
    throw Error("BERT: a sequence of " + std::to_string(L) + " tokens exceeds the model's " +
                std::to_string(c.max_positions) + " positions (truncate it)");
  const int n = int(batch.size()) * L;
  const size_t dim = size_t(c.dim);
  std::fill_n(x, size_t(n) * dim, 0.0f);
  for (size_t b = 0; b < batch.size(); ++b)
    for (int t = 0; t < int(batch[b].size()); ++t) {
      const int32_t id = batch[b][size_t(t)];
      if (id < 0 || id >= c.vocab_size)
        throw Error("BERT: token id " + std::to_string(id) + " is outside the vocabulary");
      float* row = x + (b * size_t(L) + size_t(t)) * dim;
      for (size_t i = 0; i < dim; ++i)  // token type 0 for a single sentence
        row[i] = (*weights_.word_embedding)[size_t(id) * dim + i] +
                 weights_.position_embedding[size_t(t) * dim + i] + weights_.type_embedding[i];
    }
  layer_norm(x, weights_.emb_ln_weight.data(), weights_.emb_ln_bias.data(), n, c.dim, c.norm_eps,
             x);
}

void Bert::forward_layer(int layer, const std::vector<int>& lens, int L, float* x) const {
  const BertConfig& c = config_;
  const int b_count = int(lens.size()), n = b_count * L;
  const size_t dim = size_t(c.dim), size = size_t(n) * dim;
  const int hd = c.dim / c.n_heads;
  const float scale = 1.0f / std::sqrt(float(hd));
  std::vector<float> q(size), k(size), v(size), att(size), tmp(size),
      h(size_t(n) * size_t(c.hidden_dim));
  std::vector<float> scores(size_t(b_count) * size_t(c.n_heads) * size_t(L) * size_t(L));
  const BertLayer& w = weights_.layers[size_t(layer)];
  w.wq.forward(x, n, q.data());
  w.wk.forward(x, n, k.data());
  w.wv.forward(x, n, v.data());
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < b_count; ++b)
    for (int head = 0; head < c.n_heads; ++head) {
      const int len = lens[size_t(b)];  // keys beyond it are padding: masked out
      const size_t base = size_t(b) * size_t(L) * dim + size_t(head) * size_t(hd);
      float* s =
          scores.data() + (size_t(b) * size_t(c.n_heads) + size_t(head)) * size_t(L) * size_t(L);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, scale, q.data() + base, c.dim,
                  k.data() + base, c.dim, 0.0f, s, L);
      for (int i = 0; i < L; ++i) softmax_prefix(s + size_t(i) * size_t(L), std::max(len, 1), L);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, 1.0f, s, L, v.data() + base,
                  c.dim, 0.0f, att.data() + base, c.dim);
    }
  w.attn_out.forward(att.data(), n, tmp.data());
  add_in_place(tmp.data(), x, size);
  layer_norm(tmp.data(), w.ln1_weight.data(), w.ln1_bias.data(), n, c.dim, c.norm_eps, x);
  w.ffn_in.forward(x, n, h.data());
  gelu_in_place(h.data(), h.size());
  w.ffn_out.forward(h.data(), n, tmp.data());
  add_in_place(tmp.data(), x, size);
  layer_norm(tmp.data(), w.ln2_weight.data(), w.ln2_bias.data(), n, c.dim, c.norm_eps, x);
}

Sites Bert::sites() {
  Sites s;
  s.blocks = config_.n_layers;
  s.embedding = {"embedding", &weights_.word_embedding, size_t(config_.vocab_size),
                 size_t(config_.dim)};
  for (int l = 0; l < config_.n_layers; ++l) {
    BertLayer& w = weights_.layers[size_t(l)];
    // No folds: each input is also the residual (post-LayerNorm), or comes out of attention or
    // GELU.
    s.add_input(l, "attn_in", {&w.wq, &w.wk, &w.wv});
    s.add_input(l, "attn_out", {&w.attn_out});
    s.add_input(l, "ffn_in", {&w.ffn_in});
    s.add_input(l, "ffn_hidden", {&w.ffn_out});
  }
  return s;
}

namespace {

class BertBlockRunner : public BlockRunner {
 public:
  explicit BertBlockRunner(const Bert& m) : m_(m) {}
  size_t width() const override { return size_t(m_.config().dim); }
  void embed(const int32_t* tokens, int n, float* stream) override {
    m_.embed_tokens({std::vector<int32_t>(tokens, tokens + n)}, n, stream);
  }
  void run_block(int block, int n, float* stream) override {
    m_.forward_layer(block, {n}, n, stream);
  }

 private:
  const Bert& m_;
};

}  // namespace

std::unique_ptr<BlockRunner> Bert::block_runner(int) const {
  return std::make_unique<BertBlockRunner>(*this);
}

int64_t Bert::parameter_count() const {
  const BertWeights& w = weights_;
  int64_t n = int64_t(w.word_embedding->size() + w.position_embedding.size() +
                      w.type_embedding.size() + w.emb_ln_weight.size() + w.emb_ln_bias.size());
  for (const BertLayer& l : w.layers) {
    for (const Linear* lin : {&l.wq, &l.wk, &l.wv, &l.attn_out, &l.ffn_in, &l.ffn_out})
      n += int64_t(size_t(lin->out_features()) * size_t(lin->in_features()) + lin->bias().size());
    n += int64_t(l.ln1_weight.size() + l.ln1_bias.size() + l.ln2_weight.size() + l.ln2_bias.size());
  }
  return n;
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
