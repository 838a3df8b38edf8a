// The LLaMA-family forward pass: batched over the tokens of a window, matrix products in
// OpenBLAS (through Linear), everything else in OpenMP loops over rows or heads.
#include "lowbit/model/llama.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "lowbit/model/tensor_store.h"
#include "lowbit/quant/packed_weight.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "model/transformer_ops.h"
#include "util/memory.h"

namespace lowbit::model {

std::string LlamaConfig::summary() const {
  std::ostringstream s;
  s << arch << ": " << n_layers << " layers, dim " << dim << ", " << n_heads << " query / "
    << n_kv_heads << " key-value heads of " << head_dim
    << (gate_activation == GateActivation::GeluTanh ? ", GeGLU " : ", SwiGLU ") << hidden_dim
    << ", vocab " << vocab_size << ", RoPE theta " << rope_theta << " ("
    << (rope_style == RopeStyle::AdjacentPairs ? "adjacent pairs" : "half split") << ", scaling "
    << rope_scaling << "), RMSNorm eps " << norm_eps << (tied_output ? ", tied output head" : "")
    << (qkv_bias ? ", qkv bias" : "") << (o_bias ? ", output-projection bias" : "")
    << (mlp_bias ? ", MLP bias" : "")
    << (sliding_window ? ", sliding window " + std::to_string(sliding_window) : std::string())
    << (qk_norm ? ", QK-norm" : "") << (sandwich_norms ? ", pre- and post-norms" : "")
    << (embedding_scale != 1.0f ? ", embeddings scaled by " + std::to_string(embedding_scale)
                                : std::string())
    << (layer_window.empty()
            ? std::string()
            : ", local attention window " +
                  std::to_string(*std::max_element(layer_window.begin(), layer_window.end())) +
                  " in " +
                  std::to_string(std::count_if(layer_window.begin(), layer_window.end(),
                                               [](int w) { return w > 0; })) +
                  " of " + std::to_string(n_layers) + " layers (RoPE " + rope_local + ")")
    << ", trained context " << context_length;
  return s.str();
}

namespace {
// Attention scores are computed for at most this many queries at a time per worker, so the
// workspace is workers x 512 x context instead of heads x tokens x context (which at a context of
// 65536 would be 150 GiB). Windows of up to 512 tokens run as one block, as before.
constexpr int kQueryBlock = 512;
int attention_workers(const LlamaConfig& c) {
  return std::max(1, std::min(c.n_heads, omp_get_max_threads()));
}
}  // namespace

double LlamaRunState::bytes_needed(const LlamaConfig& c, int max_tokens, int max_context) {
  const double t = max_tokens, ctx = max_context;
  const double activations =
      t * (2.0 * c.dim + 2.0 * c.q_dim() + 2.0 * c.kv_dim() + 2.0 * c.hidden_dim);
  const double scores = double(attention_workers(c)) * std::min(kQueryBlock, max_tokens) * ctx;
  const double kv_cache = 2.0 * c.n_layers * ctx * c.kv_dim();
  return 4.0 * (activations + scores + kv_cache);
}

LlamaRunState::LlamaRunState(const LlamaConfig& c, int max_tokens_, int max_context_)
    : max_tokens(max_tokens_), max_context(max_context_) {
  if (max_tokens < 1 || max_context < max_tokens)
    throw Error("run state: need 1 <= tokens per forward <= context (got " +
                std::to_string(max_tokens) + ", " + std::to_string(max_context) + ")");
  util::require_memory(bytes_needed(c, max_tokens, max_context),
                       "the activations, attention workspace and KV cache for a context of " +
                           std::to_string(max_context),
                       "use a shorter context");
  const size_t t = size_t(max_tokens);
  x.resize(t * size_t(c.dim));
  xb.resize(t * size_t(c.dim));
  q.resize(t * size_t(c.q_dim()));
  k.resize(t * size_t(c.kv_dim()));
  v.resize(t * size_t(c.kv_dim()));
  att.resize(t * size_t(c.q_dim()));
  score_workers = attention_workers(c);
  score_rows = std::min(kQueryBlock, max_tokens);
  scores.resize(size_t(score_workers) * size_t(score_rows) * size_t(max_context));
  hb.resize(t * size_t(c.hidden_dim));
  hb2.resize(t * size_t(c.hidden_dim));
  key_cache.resize(size_t(c.n_layers) * size_t(max_context) * size_t(c.kv_dim()));
  value_cache.resize(key_cache.size());
}

Llama::Llama(LlamaConfig config, LlamaWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  if (config_.n_heads % config_.n_kv_heads != 0)
    throw Error("n_heads must be a multiple of n_kv_heads");
  if (int(config_.rope_inv_freq.size()) != config_.head_dim / 2)
    throw Error("rope_inv_freq must have head_dim/2 entries");
}

void Llama::forward(const int32_t* tokens, int n, int pos0, LlamaRunState& s) const {
  embed(tokens, n, pos0, s);
  for (int l = 0; l < config_.n_layers; ++l) forward_layer(l, n, pos0, s);
  finish(n, s);
}

void Llama::embed(const int32_t* tokens, int n, int pos0, LlamaRunState& s) const {
  const LlamaConfig& c = config_;
  if (n <= 0 || n > s.max_tokens)
    throw Error("forward: " + std::to_string(n) + " tokens do not fit the run state");
  if (pos0 < 0 || pos0 + n > s.max_context)
    throw Error("forward: positions up to " + std::to_string(pos0 + n) + " exceed the context of " +
                std::to_string(s.max_context));
  if (c.sliding_window > 0 && pos0 + n > c.sliding_window)
    throw Error(
        "the model attends through a sliding window of " + std::to_string(c.sliding_window) +
        " positions, which lowbit does not implement; a context of " + std::to_string(pos0 + n) +
        " would give different numbers than the model's: use at most " +
        std::to_string(c.sliding_window));
  const size_t dim = size_t(c.dim);
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " +
                  std::to_string(c.vocab_size));
    if (weights_.token_embedding) {
      std::copy_n(weights_.token_embedding->data() + size_t(tokens[i]) * dim, dim,
                  s.x.data() + size_t(i) * dim);
    } else {  // released for the tied head's packed weight (real execution): decode the row
      const kernels::PackedMatrix& head = *weights_.output.packed_weight();
      thread_local std::vector<float> row;
      row.resize(head.padded_cols);
      const size_t t = size_t(tokens[i]);
      kernels::default_matmul_backend().decode_rows(head, t, t + 1, row.data());
      std::copy_n(row.data(), dim, s.x.data() + size_t(i) * dim);
    }
  }
  if (c.embedding_scale != 1.0f)
    for (size_t i = 0; i < size_t(n) * dim; ++i) s.x[i] *= c.embedding_scale;
}

void Llama::forward_layer(int l, int n, int pos0, LlamaRunState& s) const {
  const LlamaConfig& c = config_;
  const size_t dim = size_t(c.dim);
  const bool local = !c.layer_window.empty() && c.layer_window[size_t(l)] > 0;
  const RopeTable rope(
      local && !c.rope_inv_freq_local.empty() ? c.rope_inv_freq_local : c.rope_inv_freq, pos0, n);
  const LlamaLayer& w = weights_.layers[size_t(l)];
  // Attention block: x += wo(attention(rope(wq xb), rope(wk xb), wv xb)), xb = rmsnorm(x).
  rms_norm(s.x.data(), w.attn_norm.data(), n, c.dim, c.norm_eps, s.xb.data());
  w.wq.forward(s.xb.data(), n, s.q.data());
  w.wk.forward(s.xb.data(), n, s.k.data());
  w.wv.forward(s.xb.data(), n, s.v.data());
  if (c.qk_norm) {  // each head of each token normalised on its own
    rms_norm(s.q.data(), w.q_norm.data(), n * c.n_heads, c.head_dim, c.norm_eps, s.q.data());
    rms_norm(s.k.data(), w.k_norm.data(), n * c.n_kv_heads, c.head_dim, c.norm_eps, s.k.data());
  }
  rope.apply(s.q.data(), n, c.n_heads, c.head_dim, c.rope_style);
  rope.apply(s.k.data(), n, c.n_kv_heads, c.head_dim, c.rope_style);
  if (w.qk_rotation) {
    w.qk_rotation->apply(s.q.data(), size_t(n) * size_t(c.n_heads));
    w.qk_rotation->apply(s.k.data(), size_t(n) * size_t(c.n_kv_heads));
  }
  if (w.kv_probe) w.kv_probe->observe(l, s.k.data(), s.v.data(), n);
  if (w.kv_cache) quantize_kv(*w.kv_cache, n, s);
  const size_t kv = size_t(c.kv_dim());
  const size_t cache_at = (size_t(l) * size_t(s.max_context) + size_t(pos0)) * kv;
  std::copy_n(s.k.data(), size_t(n) * kv, s.key_cache.data() + cache_at);
  std::copy_n(s.v.data(), size_t(n) * kv, s.value_cache.data() + cache_at);
  attention(l, n, pos0, s);
  w.wo.forward(s.att.data(), n, s.xb.data());
  if (c.sandwich_norms)
    rms_norm(s.xb.data(), w.post_attn_norm.data(), n, c.dim, c.norm_eps, s.xb.data());
  add_in_place(s.x.data(), s.xb.data(), size_t(n) * dim);
  // Feed-forward block: x += w_down(act(w_gate xb) * w_up xb), xb = rmsnorm(x).
  rms_norm(s.x.data(), w.ffn_norm.data(), n, c.dim, c.norm_eps, s.xb.data());
  w.w_gate.forward(s.xb.data(), n, s.hb.data());
  w.w_up.forward(s.xb.data(), n, s.hb2.data());
  if (c.gate_activation == GateActivation::GeluTanh)
    geglu_in_place(s.hb.data(), s.hb2.data(), size_t(n) * size_t(c.hidden_dim));
  else
    swiglu_in_place(s.hb.data(), s.hb2.data(), size_t(n) * size_t(c.hidden_dim));
  w.w_down.forward(s.hb.data(), n, s.xb.data());
  if (c.sandwich_norms)
    rms_norm(s.xb.data(), w.post_ffn_norm.data(), n, c.dim, c.norm_eps, s.xb.data());
  add_in_place(s.x.data(), s.xb.data(), size_t(n) * dim);
}

void Llama::finish(int n, LlamaRunState& s) const {
  rms_norm(s.x.data(), weights_.final_norm.data(), n, config_.dim, config_.norm_eps, s.xb.data());
  s.n_tokens = n;
}

void Llama::quantize_kv(const Scheme& scheme, int n, LlamaRunState& s) const {
  const std::vector<size_t> shape = {size_t(n), size_t(config_.n_kv_heads),
                                     size_t(config_.head_dim)};
  thread_local std::vector<float> rounded;
  rounded.resize(size_t(n) * size_t(config_.kv_dim()));
  for (std::vector<float>* t : {&s.k, &s.v}) {
    fake_quant(scheme, t->data(), shape, rounded.data());
    std::copy(rounded.begin(), rounded.end(), t->begin());
  }
}

std::vector<const Linear*> Llama::linears() const {
  std::vector<const Linear*> all;
  for (const LlamaLayer& w : weights_.layers)
    for (const Linear* lin : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down})
      all.push_back(lin);
  all.push_back(&weights_.output);
  return all;
}

std::vector<Linear*> Llama::linears() {
  std::vector<Linear*> all;
  for (const Linear* lin : std::as_const(*this).linears()) all.push_back(const_cast<Linear*>(lin));
  return all;
}

// Causal grouped-query attention of this step's queries over the cache, one head per thread;
// each block of up to kQueryBlock queries is two sgemm calls (scores = q kᵀ, out = softmax(scores)
// v).
void Llama::attention(int layer, int n, int pos0, LlamaRunState& s) const {
  const LlamaConfig& c = config_;
  const int group = c.n_heads / c.n_kv_heads;
  const float scale =
      c.attention_scale > 0 ? c.attention_scale : 1.0f / std::sqrt(float(c.head_dim));
  const int window = c.layer_window.empty() ? 0 : c.layer_window[size_t(layer)];
  const size_t kv = size_t(c.kv_dim());
  const float* keys = s.key_cache.data() + size_t(layer) * size_t(s.max_context) * kv;
  const float* values = s.value_cache.data() + size_t(layer) * size_t(s.max_context) * kv;
  const std::optional<LMul>& lmul = weights_.layers[size_t(layer)].attention_products;
#pragma omp parallel for schedule(static) num_threads(s.score_workers)
  for (int h = 0; h < c.n_heads; ++h) {
    const int g = h / group;
    float* scores = s.scores.data() +
                    size_t(omp_get_thread_num()) * size_t(s.score_rows) * size_t(s.max_context);
    for (int i0 = 0; i0 < n; i0 += s.score_rows) {
      const int rows = std::min(s.score_rows, n - i0);
      const int total = pos0 + i0 + rows;  // keys visible to the block's last query
      const float* q = s.q.data() + size_t(i0) * size_t(c.q_dim()) + size_t(h) * size_t(c.head_dim);
      const float* k = keys + size_t(g) * size_t(c.head_dim);
      if (lmul)
        lmul_gemm(rows, total, c.head_dim, scale, q, c.q_dim(), k, int(kv), true, scores, total,
                  lmul->mantissa);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, total, c.head_dim, scale, q,
                    c.q_dim(), k, int(kv), 0.0f, scores, total);
      for (int i = 0; i < rows; ++i) {
        const int pos = pos0 + i0 + i;  // sees keys first .. pos
        const int first = window > 0 ? std::max(0, pos - window + 1) : 0;
        softmax_window(scores + size_t(i) * size_t(total), first, pos + 1, total);
      }
      const float* v = values + size_t(g) * size_t(c.head_dim);
      float* out = s.att.data() + size_t(i0) * size_t(c.q_dim()) + size_t(h) * size_t(c.head_dim);
      if (lmul)
        lmul_gemm(rows, c.head_dim, total, 1.0f, scores, total, v, int(kv), false, out, c.q_dim(),
                  lmul->mantissa);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, c.head_dim, total, 1.0f,
                    scores, total, v, int(kv), 0.0f, out, c.q_dim());
    }
  }
}

void Llama::logits(const LlamaRunState& s, int row0, int count, float* out) const {
  if (row0 < 0 || count < 0 || row0 + count > s.n_tokens)
    throw Error("logits: rows outside the last forward");
  weights_.output.forward(s.xb.data() + size_t(row0) * size_t(config_.dim), count, out);
}

double Llama::flops(int n, int pos0, int logit_rows) const {
  double per_row = 0;
  for (const LlamaLayer& w : weights_.layers)
    for (const Linear* lin : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down})
      per_row += lin->flops_per_row();
  // Attention: query i sees pos0 + i + 1 keys; two multiply-adds (q·k and p·v) per key and
  // head dimension. Only the causal (useful) part counts, though the sgemm computes the square.
  const double keys = double(n) * pos0 + double(n) * (n + 1) / 2;
  const double attention = 2.0 * 2.0 * keys * config_.head_dim * config_.n_heads * config_.n_layers;
  return per_row * n + attention + weights_.output.flops_per_row() * logit_rows;
}

int64_t Llama::parameter_count() const {
  int64_t n =
      int64_t(config_.vocab_size) * int64_t(config_.dim) + int64_t(weights_.final_norm.size());
  for (const LlamaLayer& w : weights_.layers) {
    n += int64_t(w.attn_norm.size() + w.ffn_norm.size() + w.q_norm.size() + w.k_norm.size() +
                 w.post_attn_norm.size() + w.post_ffn_norm.size());
    for (const Linear* lin : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down})
      n += int64_t(size_t(lin->out_features()) * size_t(lin->in_features()) + lin->bias().size());
  }
  if (!config_.tied_output)
    n += int64_t(size_t(weights_.output.out_features()) * size_t(weights_.output.in_features()));
  return n;
}

// ---- loading ----

namespace {
struct LlamaNames {
  bool gguf;
  std::string embedding() const { return gguf ? "token_embd.weight" : "model.embed_tokens.weight"; }
  std::string final_norm() const { return gguf ? "output_norm.weight" : "model.norm.weight"; }
  std::string output() const { return gguf ? "output.weight" : "lm_head.weight"; }
  std::string layer(int l, const std::string& gguf_part, const std::string& hf_part) const {
    return gguf ? "blk." + std::to_string(l) + "." + gguf_part
                : "model.layers." + std::to_string(l) + "." + hf_part;
  }
};
}  // namespace

Llama Llama::load(const TensorStore& store, LlamaConfig c, bool gguf_names,
                  const LoadOptions& options) {
  const bool keep_half = options.keep_half_precision;
  const LlamaNames names{gguf_names};
  const int64_t dim = c.dim, q = c.q_dim(), kv = c.kv_dim(), hidden = c.hidden_dim,
                vocab = c.vocab_size;
  const auto shared = [&](const std::string& name, std::vector<int64_t> shape) {
    return std::make_shared<std::vector<float>>(store.take_f32(name, shape));
  };
  // A bf16 / f16 weight kept at 2 bytes as the file holds it (keep_half), or null.
  const auto packed_half = [&](const std::string& name, int64_t out,
                               int64_t in) -> std::shared_ptr<const kernels::PackedMatrix> {
    const TensorView* t = keep_half ? store.find(name) : nullptr;
    if (!t || !t->type || (*t->type != GgmlType::BF16 && *t->type != GgmlType::F16)) return nullptr;
    const TensorView& v = store.use(name, {out, in});
    auto packed = std::make_shared<const kernels::PackedMatrix>(pack_half(
        v.data, size_t(out), size_t(in),
        *t->type == GgmlType::BF16 ? kernels::WeightCoding::BF16 : kernels::WeightCoding::F16));
    store.drop_pages(v);
    return packed;
  };
  // The weight of `site` quantized as it is read (options.pack_at_load), as a Linear, or nullopt.
  const auto packed_at_load = [&](const std::string& name, const std::string& site, int64_t out,
                                  int64_t in, std::vector<float> bias) -> std::optional<Linear> {
    const std::optional<Scheme> s =
        options.pack_at_load ? options.pack_at_load(site, size_t(out), size_t(in)) : std::nullopt;
    if (!s) return std::nullopt;
    const TensorView& t = store.use(name, {out, in});
    float global = 1.0f;
    auto packed = std::make_shared<const kernels::PackedMatrix>(pack_weight_rows(
        *s, size_t(out), size_t(in),
        [&](size_t r0, size_t r1, float* rows) { store.rows_to_f32(t, r0, r1, rows); }, &global));
    store.drop_pages(t);
    Linear lin(site, int(out), int(in), std::move(packed), std::move(bias));
    lin.set_weight_scheme(s, global);
    return lin;
  };
  // llama.cpp's NVFP4 files (lowbit export's too) may give a weight "x.weight" a second level, a
  // per-tensor float32 "x.scale" (llama.cpp's scale2) that multiplies its blocks' values. Such a
  // weight is read as float32 and scaled (not kept packed).
  const auto scale2_name = [&](const std::string& name) {
    return gguf_names ? name.substr(0, name.size() - 6) + "scale" : std::string();
  };
  const auto has_scale2 = [&](const std::string& name) {
    return gguf_names && store.find(scale2_name(name)) != nullptr;
  };
  const auto weight = [&](const std::string& name, int64_t out, int64_t in) {
    std::shared_ptr<std::vector<float>> w = shared(name, {out, in});
    if (has_scale2(name)) {
      const float scale2 = store.take_f32(scale2_name(name), {1})[0];
      for (float& v : *w) v *= scale2;
    }
    return w;
  };
  // `site` is the name recipes use (lowbit/recipe.h); `name` the tensor's name in the file.
  const auto linear = [&](const std::string& name, const std::string& site, int64_t out, int64_t in,
                          bool bias) {
    std::vector<float> b;
    if (bias)
      b = store.take_f32(name.substr(0, name.size() - 6) + "bias",
                         {out});  // "x.weight" -> "x.bias"
    if (!has_scale2(name)) {
      if (auto packed = packed_half(name, out, in))
        return Linear(site, int(out), int(in), std::move(packed), std::move(b));
      if (std::optional<Linear> lin = packed_at_load(name, site, out, in, b))
        return std::move(*lin);
    }
    return Linear(site, int(out), int(in), weight(name, out, in), std::move(b));
  };
  const auto site = [](int l, const char* role) {
    return "layers." + std::to_string(l) + "." + role;
  };
  LlamaWeights w;
  // GGUF marks a tied head by leaving output.weight out (llama.cpp's convention); Hugging Face
  // configs say it in tie_word_embeddings, which the config reader has put in c.tied_output.
  if (gguf_names) c.tied_output = store.find(names.output()) == nullptr;
  // A tied 2-byte table is kept once, as the head's packed weight; the embedding reads its rows
  // there (Llama::embed). An untied table is widened: lookups index float32 rows.
  std::shared_ptr<const kernels::PackedMatrix> half_table =
      c.tied_output ? packed_half(names.embedding(), vocab, dim) : nullptr;
  // A tied head quantized at load is packed from the table; so is the embedding, when it shares
  // the head's scheme (it then reads its rows from the head), else it loads as float32.
  std::optional<Linear> tied_head;
  if (c.tied_output && !half_table)
    tied_head = packed_at_load(names.embedding(), "output", vocab, dim, {});
  const bool table_in_head =
      half_table || (tied_head && options.pack_at_load("embedding", size_t(vocab), size_t(dim)) ==
                                      tied_head->weight_scheme());
  if (!table_in_head) w.token_embedding = shared(names.embedding(), {vocab, dim});
  for (int l = 0; l < c.n_layers; ++l) {
    LlamaLayer layer;
    layer.attn_norm =
        store.take_f32(names.layer(l, "attn_norm.weight", "input_layernorm.weight"), {dim});
    layer.wq = linear(names.layer(l, "attn_q.weight", "self_attn.q_proj.weight"), site(l, "q_proj"),
                      q, dim, c.qkv_bias);
    layer.wk = linear(names.layer(l, "attn_k.weight", "self_attn.k_proj.weight"), site(l, "k_proj"),
                      kv, dim, c.qkv_bias);
    layer.wv = linear(names.layer(l, "attn_v.weight", "self_attn.v_proj.weight"), site(l, "v_proj"),
                      kv, dim, c.qkv_bias);
    layer.wo = linear(names.layer(l, "attn_output.weight", "self_attn.o_proj.weight"),
                      site(l, "o_proj"), dim, q, c.o_bias);
    layer.ffn_norm =
        store.take_f32(names.layer(l, "ffn_norm.weight", "post_attention_layernorm.weight"), {dim});
    if (c.qk_norm) {  // Gemma 3, from GGUF only (the config readers allow it nowhere else)
      layer.q_norm = store.take_f32(names.layer(l, "attn_q_norm.weight", ""), {c.head_dim});
      layer.k_norm = store.take_f32(names.layer(l, "attn_k_norm.weight", ""), {c.head_dim});
    }
    if (c.sandwich_norms) {
      layer.post_attn_norm =
          store.take_f32(names.layer(l, "post_attention_norm.weight", ""), {dim});
      layer.post_ffn_norm = store.take_f32(names.layer(l, "post_ffw_norm.weight", ""), {dim});
    }
    layer.w_gate = linear(names.layer(l, "ffn_gate.weight", "mlp.gate_proj.weight"),
                          site(l, "gate_proj"), hidden, dim, c.mlp_bias);
    layer.w_up = linear(names.layer(l, "ffn_up.weight", "mlp.up_proj.weight"), site(l, "up_proj"),
                        hidden, dim, c.mlp_bias);
    layer.w_down = linear(names.layer(l, "ffn_down.weight", "mlp.down_proj.weight"),
                          site(l, "down_proj"), dim, hidden, c.mlp_bias);
    w.layers.push_back(std::move(layer));
  }
  w.final_norm = store.take_f32(names.final_norm(), {dim});
  if (c.tied_output && !gguf_names && store.find(names.output())) {
    // Some checkpoints store the tied head anyway; it must then be the embedding itself.
    if (store.to_f32(names.output(), {vocab, dim}) !=
        (w.token_embedding ? *w.token_embedding : store.to_f32(names.embedding(), {vocab, dim})))
      throw Error(store.get(names.output()).file +
                  ": tie_word_embeddings is true but lm_head.weight differs from the "
                  "embedding: the config and the weights disagree (set tie_word_embeddings to "
                  "false to use it)");
  }
  if (!c.tied_output && !store.find(names.output()))
    throw Error(
        (store.tensors().empty() ? std::string("the model") : store.tensors().front().file) +
        ": the output head " + names.output() +
        " is missing and the config does not tie it to the embedding "
        "(tie_word_embeddings is false or absent, whose default is false)");
  if (half_table) {
    w.output = Linear("output", int(vocab), int(dim), std::move(half_table));
  } else if (tied_head) {
    w.output = std::move(*tied_head);
  } else if (!c.tied_output && !has_scale2(names.output())) {
    if (auto packed = packed_half(names.output(), vocab, dim))
      w.output = Linear("output", int(vocab), int(dim), std::move(packed));
    else if (std::optional<Linear> head = packed_at_load(names.output(), "output", vocab, dim, {}))
      w.output = std::move(*head);
  }
  if (!w.output.packed_weight())
    w.output = Linear("output", int(vocab), int(dim),
                      c.tied_output ? w.token_embedding : weight(names.output(), vocab, dim));
  return Llama(std::move(c), std::move(w));
}

}  // namespace lowbit::model
