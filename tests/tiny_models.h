// Tiny random models for the model-level tests: a 2-layer grouped-query LLaMA and a 2-layer BERT,
// written to disk through lowbit's own writers in the layouts real converters produce, and an
// independent straightforward float64 reference forward for each (no BLAS, HF conventions).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/llama.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/quant/ggml_types.h"
#include "model/unicode.h"

namespace lowbit::testing {

using Matrix = std::vector<float>;  // row-major

inline Matrix random_matrix(std::mt19937& rng, size_t rows, size_t cols, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  Matrix m(rows * cols);
  for (float& x : m) x = u(rng);
  return m;
}
inline Matrix random_norm(std::mt19937& rng, size_t n) {
  std::uniform_real_distribution<float> u(0.8f, 1.2f);
  Matrix m(n);
  for (float& x : m) x = u(rng);
  return m;
}

// A byte-level BPE vocabulary: the 256 byte tokens, "<|endoftext|>", and three merges.
struct TinyByteVocab {
  std::vector<std::string> tokens;
  std::vector<std::string> merges = {"t h", "th e", "Ġ t"};
  TinyByteVocab() {
    for (int b = 0; b < 256; ++b) tokens.push_back(model::unicode::byte_to_text(uint8_t(b)));
    tokens.push_back("<|endoftext|>");
    tokens.push_back("th");
    tokens.push_back("the");
    tokens.push_back("Ġt");
  }
  static constexpr int kEos = 256;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Logits [n, vocab] of every position of `tokens` in one forward.
inline std::vector<float> all_logits(const model::Llama& llama,
                                     const std::vector<int32_t>& tokens) {
  const int n = int(tokens.size());
  model::LlamaRunState s(llama.config(), n, n);
  llama.forward(tokens.data(), n, 0, s);
  std::vector<float> out(size_t(n) * size_t(llama.config().vocab_size));
  llama.logits(s, 0, n, out.data());
  return out;
}

// Largest |got - want| relative to the reference's largest magnitude (infinite when the sizes
// differ).
inline double max_relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double scale = 0, err = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::abs(double(got[i]) - want[i]));
  return err / scale;
}

struct TinyLlama {
  int dim = 32, n_layers = 2, n_heads = 4, n_kv_heads = 2, head_dim = 8, hidden = 48, vocab = 260;
  double theta = 10000.0, eps = 1e-5;
  bool tied = true, qkv_bias = false;
  struct Layer {
    Matrix attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, w_gate, w_up, w_down;
  };
  Matrix embedding, final_norm, output;
  std::vector<Layer> layers;
  // Extra or replaced GGUF metadata (tests of what the loader does with each key).
  std::vector<std::pair<std::string, model::GgufValue>> gguf_keys;
  // How write_gguf stores the 2-D weights (embedding, projections, head): F32, BF16 or F16.
  GgmlType matrix_type = GgmlType::F32;
  int gguf_tokens = 0;  // when > 0, write only this many vocabulary entries

  static TinyLlama random(uint32_t seed, bool tied_output = true, bool bias = false) {
    TinyLlama m;
    m.fill_random(seed, tied_output, bias);
    return m;
  }
  // Random weights for the sizes set in *this (a test that needs wider rows sets dim first).
  void fill_random(uint32_t seed, bool tied_output = true, bool bias = false) {
    std::mt19937 rng(seed);
    TinyLlama& m = *this;
    m.layers.clear();
    m.tied = tied_output;
    m.qkv_bias = bias;
    const size_t d = size_t(m.dim), q = size_t(m.n_heads * m.head_dim),
                 kv = size_t(m.n_kv_heads * m.head_dim), h = size_t(m.hidden), v = size_t(m.vocab);
    m.embedding = random_matrix(rng, v, d, 1.0f);
    for (int l = 0; l < m.n_layers; ++l) {
      Layer L;
      L.attn_norm = random_norm(rng, d);
      L.wq = random_matrix(rng, q, d, 0.5f);
      L.wk = random_matrix(rng, kv, d, 0.5f);
      L.wv = random_matrix(rng, kv, d, 0.3f);
      L.wo = random_matrix(rng, d, q, 0.3f);
      if (bias) {
        L.bq = random_matrix(rng, q, 1, 0.2f);
        L.bk = random_matrix(rng, kv, 1, 0.2f);
        L.bv = random_matrix(rng, kv, 1, 0.2f);
      }
      L.ffn_norm = random_norm(rng, d);
      L.w_gate = random_matrix(rng, h, d, 0.3f);
      L.w_up = random_matrix(rng, h, d, 0.3f);
      L.w_down = random_matrix(rng, d, h, 0.3f);
      m.layers.push_back(L);
    }
    m.final_norm = random_norm(rng, d);
    if (!tied_output) m.output = random_matrix(rng, v, d, 0.3f);
  }

  // llama.cpp's converter permutes the rows of wq / wk so RoPE pairs become adjacent.
  Matrix permute_for_gguf(const Matrix& w, int heads) const {
    Matrix out(w.size());
    const size_t cols = size_t(dim), hd = size_t(head_dim);
    for (size_t h = 0; h < size_t(heads); ++h)
      for (size_t half = 0; half < 2; ++half)
        for (size_t i = 0; i < hd / 2; ++i)
          for (size_t c = 0; c < cols; ++c)
            out[(h * hd + 2 * i + half) * cols + c] = w[(h * hd + half * hd / 2 + i) * cols + c];
    return out;
  }

  void write_gguf(const std::string& path) const {
    using model::GgufValue;
    model::GgufWriter w;
    w.set("general.architecture", GgufValue::of_string("llama"));
    w.set("llama.block_count", GgufValue::of_u32(uint32_t(n_layers)));
    w.set("llama.context_length", GgufValue::of_u32(256));
    w.set("llama.embedding_length", GgufValue::of_u32(uint32_t(dim)));
    w.set("llama.feed_forward_length", GgufValue::of_u32(uint32_t(hidden)));
    w.set("llama.attention.head_count", GgufValue::of_u32(uint32_t(n_heads)));
    w.set("llama.attention.head_count_kv", GgufValue::of_u32(uint32_t(n_kv_heads)));
    w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::of_f32(float(eps)));
    w.set("llama.rope.freq_base", GgufValue::of_f32(float(theta)));
    TinyByteVocab bv;
    if (gguf_tokens > 0) bv.tokens.resize(size_t(gguf_tokens));
    std::vector<int32_t> types(bv.tokens.size(), 1);
    types[TinyByteVocab::kEos] = 3;
    w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::of_string("default"));
    w.set("tokenizer.ggml.tokens", GgufValue::of_strings(bv.tokens));
    w.set("tokenizer.ggml.token_type", GgufValue::of_i32s(types));
    w.set("tokenizer.ggml.merges", GgufValue::of_strings(bv.merges));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::of_u32(TinyByteVocab::kEos));
    const int64_t d = dim, q = n_heads * head_dim, kv = n_kv_heads * head_dim, h = hidden;
    const auto add_matrix = [&](const std::string& name, const std::vector<int64_t>& shape,
                                const std::vector<float>& values) {
      if (matrix_type == GgmlType::F32) return w.add_f32(name, shape, values);
      std::vector<uint16_t> bits(values.size());
      encode(matrix_type == GgmlType::BF16 ? formats::bf16 : formats::fp16, values.data(),
             values.size(), bits.data());
      std::vector<uint8_t> bytes(bits.size() * 2);
      std::memcpy(bytes.data(), bits.data(), bytes.size());
      w.add_tensor(name, matrix_type, shape, std::move(bytes));
    };
    add_matrix("token_embd.weight", {vocab, d}, embedding);
    for (int l = 0; l < n_layers; ++l) {
      const Layer& L = layers[size_t(l)];
      const std::string p = "blk." + std::to_string(l) + ".";
      w.add_f32(p + "attn_norm.weight", {d}, L.attn_norm);
      add_matrix(p + "attn_q.weight", {q, d}, permute_for_gguf(L.wq, n_heads));
      add_matrix(p + "attn_k.weight", {kv, d}, permute_for_gguf(L.wk, n_kv_heads));
      add_matrix(p + "attn_v.weight", {kv, d}, L.wv);
      add_matrix(p + "attn_output.weight", {d, q}, L.wo);
      w.add_f32(p + "ffn_norm.weight", {d}, L.ffn_norm);
      add_matrix(p + "ffn_gate.weight", {h, d}, L.w_gate);
      add_matrix(p + "ffn_up.weight", {h, d}, L.w_up);
      add_matrix(p + "ffn_down.weight", {d, h}, L.w_down);
    }
    w.add_f32("output_norm.weight", {d}, final_norm);
    if (!tied) add_matrix("output.weight", {vocab, d}, output);
    for (const auto& [key, value] : gguf_keys) w.set(key, value);
    w.write(path);
  }

  // A Hugging Face folder: config.json, model.safetensors (optionally in two shards + index),
  // tokenizer.json.
  void write_hf(const std::string& folder, bool sharded = false) const {
    nlohmann::json config = {{"model_type", qkv_bias ? "qwen2" : "llama"},
                             {"hidden_size", dim},
                             {"num_hidden_layers", n_layers},
                             {"num_attention_heads", n_heads},
                             {"num_key_value_heads", n_kv_heads},
                             {"intermediate_size", hidden},
                             {"vocab_size", vocab},
                             {"max_position_embeddings", 256},
                             {"rms_norm_eps", eps},
                             {"rope_theta", theta},
                             {"tie_word_embeddings", tied}};
    write_text(folder + "/config.json", config.dump(2));
    std::vector<model::NamedTensor> t;
    const int64_t d = dim, q = n_heads * head_dim, kv = n_kv_heads * head_dim, h = hidden;
    t.push_back({"model.embed_tokens.weight", {vocab, d}, embedding});
    for (int l = 0; l < n_layers; ++l) {
      const Layer& L = layers[size_t(l)];
      const std::string p = "model.layers." + std::to_string(l) + ".";
      t.push_back({p + "input_layernorm.weight", {d}, L.attn_norm});
      t.push_back({p + "self_attn.q_proj.weight", {q, d}, L.wq});
      t.push_back({p + "self_attn.k_proj.weight", {kv, d}, L.wk});
      t.push_back({p + "self_attn.v_proj.weight", {kv, d}, L.wv});
      if (qkv_bias) {
        t.push_back({p + "self_attn.q_proj.bias", {q}, L.bq});
        t.push_back({p + "self_attn.k_proj.bias", {kv}, L.bk});
        t.push_back({p + "self_attn.v_proj.bias", {kv}, L.bv});
      }
      t.push_back({p + "self_attn.o_proj.weight", {d, q}, L.wo});
      t.push_back({p + "post_attention_layernorm.weight", {d}, L.ffn_norm});
      t.push_back({p + "mlp.gate_proj.weight", {h, d}, L.w_gate});
      t.push_back({p + "mlp.up_proj.weight", {h, d}, L.w_up});
      t.push_back({p + "mlp.down_proj.weight", {d, h}, L.w_down});
    }
    t.push_back({"model.norm.weight", {d}, final_norm});
    if (!tied) t.push_back({"lm_head.weight", {vocab, d}, output});
    if (!sharded) {
      model::write_safetensors(folder + "/model.safetensors", t);
    } else {
      const size_t half = t.size() / 2;
      const std::vector<model::NamedTensor> a(t.begin(), t.begin() + int64_t(half)),
          b(t.begin() + int64_t(half), t.end());
      model::write_safetensors(folder + "/model-00001-of-00002.safetensors", a);
      model::write_safetensors(folder + "/model-00002-of-00002.safetensors", b);
      nlohmann::json index = {{"metadata", nlohmann::json::object()},
                              {"weight_map", nlohmann::json::object()}};
      for (const auto& x : a) index["weight_map"][x.name] = "model-00001-of-00002.safetensors";
      for (const auto& x : b) index["weight_map"][x.name] = "model-00002-of-00002.safetensors";
      write_text(folder + "/model.safetensors.index.json", index.dump(2));
    }
    const TinyByteVocab bv;
    nlohmann::json vocab_map = nlohmann::json::object();
    for (size_t i = 0; i < bv.tokens.size(); ++i)
      if (int(i) != TinyByteVocab::kEos) vocab_map[bv.tokens[i]] = i;
    nlohmann::json tok = {
        {"version", "1.0"},
        {"added_tokens",
         {{{"id", TinyByteVocab::kEos}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer",
         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab_map}, {"merges", bv.merges}}}};
    write_text(folder + "/tokenizer.json", tok.dump());
  }

  // Straightforward float64 forward in Hugging Face conventions: logits [n, vocab].
  std::vector<double> reference_logits(const std::vector<int32_t>& tokens) const {
    const size_t n = tokens.size(), d = size_t(dim), hd = size_t(head_dim), H = size_t(n_heads),
                 KV = size_t(n_kv_heads), F = size_t(hidden), V = size_t(vocab);
    std::vector<double> x(n * d);
    for (size_t t = 0; t < n; ++t)
      for (size_t i = 0; i < d; ++i) x[t * d + i] = embedding[size_t(tokens[t]) * d + i];
    const auto rmsnorm = [&](const std::vector<double>& in, const Matrix& w) {
      std::vector<double> out(in.size());
      for (size_t t = 0; t < n; ++t) {
        double ss = 0;
        for (size_t i = 0; i < d; ++i) ss += in[t * d + i] * in[t * d + i];
        const double s = 1.0 / std::sqrt(ss / double(d) + eps);
        for (size_t i = 0; i < d; ++i) out[t * d + i] = in[t * d + i] * s * w[i];
      }
      return out;
    };
    const auto matmul = [&](const std::vector<double>& in, size_t in_dim, const Matrix& w,
                            size_t out_dim, const Matrix& bias) {
      std::vector<double> out(n * out_dim);
      for (size_t t = 0; t < n; ++t)
        for (size_t o = 0; o < out_dim; ++o) {
          double s = bias.empty() ? 0.0 : double(bias[o]);
          for (size_t i = 0; i < in_dim; ++i) s += in[t * in_dim + i] * double(w[o * in_dim + i]);
          out[t * out_dim + o] = s;
        }
      return out;
    };
    const auto rope = [&](std::vector<double>& v, size_t heads) {
      for (size_t t = 0; t < n; ++t)
        for (size_t h = 0; h < heads; ++h)
          for (size_t i = 0; i < hd / 2; ++i) {
            const double angle = double(t) * std::pow(theta, -2.0 * double(i) / double(hd));
            double& a = v[(t * heads + h) * hd + i];
            double& b = v[(t * heads + h) * hd + i + hd / 2];
            const double a0 = a, b0 = b;
            a = a0 * std::cos(angle) - b0 * std::sin(angle);
            b = b0 * std::cos(angle) + a0 * std::sin(angle);
          }
    };
    for (const Layer& L : layers) {
      const std::vector<double> h1 = rmsnorm(x, L.attn_norm);
      std::vector<double> q = matmul(h1, d, L.wq, H * hd, L.bq),
                          k = matmul(h1, d, L.wk, KV * hd, L.bk),
                          v = matmul(h1, d, L.wv, KV * hd, L.bv);
      rope(q, H);
      rope(k, KV);
      std::vector<double> att(n * H * hd, 0.0);
      for (size_t h = 0; h < H; ++h) {
        const size_t g = h / (H / KV);
        for (size_t i = 0; i < n; ++i) {
          std::vector<double> s(i + 1);
          double mx = -1e300;
          for (size_t j = 0; j <= i; ++j) {
            double dot = 0;
            for (size_t e = 0; e < hd; ++e)
              dot += q[(i * H + h) * hd + e] * k[(j * KV + g) * hd + e];
            s[j] = dot / std::sqrt(double(hd));
            mx = std::max(mx, s[j]);
          }
          double sum = 0;
          for (double& z : s) sum += (z = std::exp(z - mx));
          for (size_t j = 0; j <= i; ++j)
            for (size_t e = 0; e < hd; ++e)
              att[(i * H + h) * hd + e] += s[j] / sum * v[(j * KV + g) * hd + e];
        }
      }
      const std::vector<double> o = matmul(att, H * hd, L.wo, d, {});
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      const std::vector<double> h2 = rmsnorm(x, L.ffn_norm);
      std::vector<double> g = matmul(h2, d, L.w_gate, F, {}), u = matmul(h2, d, L.w_up, F, {});
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const std::vector<double> down = matmul(g, F, L.w_down, d, {});
      for (size_t i = 0; i < x.size(); ++i) x[i] += down[i];
    }
    return matmul(rmsnorm(x, final_norm), d, tied ? embedding : output, V, {});
  }
};

struct TinyBert {
  int dim = 16, n_layers = 2, n_heads = 2, hidden = 32, max_positions = 32, type_vocab = 2;
  double eps = 1e-12;
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]",   "[SEP]", "the", "cat",  "sat",
                                    "on",    "mat",   "dog",     "ran",   "a",   "##s",  ".",
                                    ",",     "un",    "##known", "!",     "big", "small"};
  struct Layer {
    Matrix wq, bq, wk, bk, wv, bv, wo, bo, ln1_w, ln1_b, w1, b1, w2, b2, ln2_w, ln2_b;
  };
  Matrix word, pos, type, ln_w, ln_b;
  std::vector<Layer> layers;

  static TinyBert random(uint32_t seed) {
    std::mt19937 rng(seed);
    TinyBert m;
    const size_t d = size_t(m.dim), f = size_t(m.hidden);
    m.word = random_matrix(rng, m.vocab.size(), d, 1.0f);
    m.pos = random_matrix(rng, size_t(m.max_positions), d, 0.3f);
    m.type = random_matrix(rng, size_t(m.type_vocab), d, 0.3f);
    m.ln_w = random_norm(rng, d);
    m.ln_b = random_matrix(rng, d, 1, 0.1f);
    for (int l = 0; l < m.n_layers; ++l) {
      Layer L;
      for (Matrix* w : {&L.wq, &L.wk, &L.wv, &L.wo}) *w = random_matrix(rng, d, d, 0.5f);
      for (Matrix* b : {&L.bq, &L.bk, &L.bv, &L.bo, &L.ln1_b, &L.ln2_b, &L.b2})
        *b = random_matrix(rng, d, 1, 0.1f);
      L.ln1_w = random_norm(rng, d);
      L.ln2_w = random_norm(rng, d);
      L.w1 = random_matrix(rng, f, d, 0.5f);
      L.b1 = random_matrix(rng, f, 1, 0.1f);
      L.w2 = random_matrix(rng, d, f, 0.3f);
      m.layers.push_back(L);
    }
    return m;
  }

  void write_hf(const std::string& folder) const {
    nlohmann::json config = {{"model_type", "bert"},
                             {"hidden_size", dim},
                             {"num_hidden_layers", n_layers},
                             {"num_attention_heads", n_heads},
                             {"intermediate_size", hidden},
                             {"vocab_size", vocab.size()},
                             {"max_position_embeddings", max_positions},
                             {"type_vocab_size", type_vocab},
                             {"layer_norm_eps", eps},
                             {"hidden_act", "gelu"}};
    write_text(folder + "/config.json", config.dump(2));
    const int64_t d = dim, f = hidden;
    std::vector<model::NamedTensor> t = {
        {"embeddings.word_embeddings.weight", {int64_t(vocab.size()), d}, word},
        {"embeddings.position_embeddings.weight", {max_positions, d}, pos},
        {"embeddings.token_type_embeddings.weight", {type_vocab, d}, type},
        {"embeddings.LayerNorm.weight", {d}, ln_w},
        {"embeddings.LayerNorm.bias", {d}, ln_b}};
    for (int l = 0; l < n_layers; ++l) {
      const Layer& L = layers[size_t(l)];
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      t.push_back({p + "attention.self.query.weight", {d, d}, L.wq});
      t.push_back({p + "attention.self.query.bias", {d}, L.bq});
      t.push_back({p + "attention.self.key.weight", {d, d}, L.wk});
      t.push_back({p + "attention.self.key.bias", {d}, L.bk});
      t.push_back({p + "attention.self.value.weight", {d, d}, L.wv});
      t.push_back({p + "attention.self.value.bias", {d}, L.bv});
      t.push_back({p + "attention.output.dense.weight", {d, d}, L.wo});
      t.push_back({p + "attention.output.dense.bias", {d}, L.bo});
      t.push_back({p + "attention.output.LayerNorm.weight", {d}, L.ln1_w});
      t.push_back({p + "attention.output.LayerNorm.bias", {d}, L.ln1_b});
      t.push_back({p + "intermediate.dense.weight", {f, d}, L.w1});
      t.push_back({p + "intermediate.dense.bias", {f}, L.b1});
      t.push_back({p + "output.dense.weight", {d, f}, L.w2});
      t.push_back({p + "output.dense.bias", {d}, L.b2});
      t.push_back({p + "output.LayerNorm.weight", {d}, L.ln2_w});
      t.push_back({p + "output.LayerNorm.bias", {d}, L.ln2_b});
    }
    model::write_safetensors(folder + "/model.safetensors", t);
    nlohmann::json vocab_map = nlohmann::json::object();
    for (size_t i = 0; i < vocab.size(); ++i) vocab_map[vocab[i]] = i;
    nlohmann::json tok = {{"version", "1.0"},
                          {"normalizer",
                           {{"type", "BertNormalizer"},
                            {"clean_text", true},
                            {"handle_chinese_chars", true},
                            {"strip_accents", nullptr},
                            {"lowercase", true}}},
                          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
                          // [CLS] $A [SEP], as every BERT tokenizer.json says
                          {"post_processor",
                           {{"type", "TemplateProcessing"},
                            {"single",
                             {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}}}}},
                          {"model",
                           {{"type", "WordPiece"},
                            {"unk_token", "[UNK]"},
                            {"continuing_subword_prefix", "##"},
                            {"max_input_chars_per_word", 100},
                            {"vocab", vocab_map}}}};
    write_text(folder + "/tokenizer.json", tok.dump());
  }

  // Float64 reference: mean-pooled, L2-normalised embedding of one sequence (ids include markers).
  std::vector<double> reference_embedding(const std::vector<int32_t>& ids) const {
    const size_t n = ids.size(), d = size_t(dim), H = size_t(n_heads), hd = d / H,
                 f = size_t(hidden);
    std::vector<double> x(n * d);
    const auto layernorm = [&](std::vector<double>& v, const Matrix& w, const Matrix& b) {
      for (size_t t = 0; t < n; ++t) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < d; ++i) mean += v[t * d + i];
        mean /= double(d);
        for (size_t i = 0; i < d; ++i) var += (v[t * d + i] - mean) * (v[t * d + i] - mean);
        var /= double(d);
        for (size_t i = 0; i < d; ++i)
          v[t * d + i] = (v[t * d + i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
      }
    };
    const auto matmul = [&](const std::vector<double>& in, size_t in_dim, const Matrix& w,
                            const Matrix& b, size_t out_dim) {
      std::vector<double> out(n * out_dim);
      for (size_t t = 0; t < n; ++t)
        for (size_t o = 0; o < out_dim; ++o) {
          double s = b[o];
          for (size_t i = 0; i < in_dim; ++i) s += in[t * in_dim + i] * double(w[o * in_dim + i]);
          out[t * out_dim + o] = s;
        }
      return out;
    };
    for (size_t t = 0; t < n; ++t)
      for (size_t i = 0; i < d; ++i)
        x[t * d + i] =
            double(word[size_t(ids[t]) * d + i]) + double(pos[t * d + i]) + double(type[i]);
    layernorm(x, ln_w, ln_b);
    for (const Layer& L : layers) {
      const auto q = matmul(x, d, L.wq, L.bq, d), k = matmul(x, d, L.wk, L.bk, d),
                 v = matmul(x, d, L.wv, L.bv, d);
      std::vector<double> att(n * d, 0.0);
      for (size_t h = 0; h < H; ++h)
        for (size_t i = 0; i < n; ++i) {
          std::vector<double> s(n);
          double mx = -1e300, sum = 0;
          for (size_t j = 0; j < n; ++j) {
            double dot = 0;
            for (size_t e = 0; e < hd; ++e) dot += q[i * d + h * hd + e] * k[j * d + h * hd + e];
            mx = std::max(mx, s[j] = dot / std::sqrt(double(hd)));
          }
          for (double& z : s) sum += (z = std::exp(z - mx));
          for (size_t j = 0; j < n; ++j)
            for (size_t e = 0; e < hd; ++e)
              att[i * d + h * hd + e] += s[j] / sum * v[j * d + h * hd + e];
        }
      std::vector<double> o = matmul(att, d, L.wo, L.bo, d);
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      layernorm(x, L.ln1_w, L.ln1_b);
      std::vector<double> hmid = matmul(x, d, L.w1, L.b1, f);
      for (double& z : hmid) z = 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
      std::vector<double> out = matmul(hmid, f, L.w2, L.b2, d);
      for (size_t i = 0; i < x.size(); ++i) x[i] += out[i];
      layernorm(x, L.ln2_w, L.ln2_b);
    }
    std::vector<double> e(d, 0.0);
    for (size_t t = 0; t < n; ++t)
      for (size_t i = 0; i < d; ++i) e[i] += x[t * d + i] / double(n);
    double norm = 0;
    for (double z : e) norm += z * z;
    for (double& z : e) z /= std::sqrt(norm);
    return e;
  }
};

}  // namespace lowbit::testing
