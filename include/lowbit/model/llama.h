// lowbit/model/llama.h — the LLaMA-family decoder (llama, mistral, qwen2, smollm), laid out like
// llama2.c: a Config, the Weights (shape comment on every tensor), a RunState, one forward().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/model/linear.h"
#include "lowbit/model/load_options.h"
#include "lowbit/model/sites.h"

namespace lowbit::model {

class TensorStore;

// Which elements RoPE rotates together. GGUF's llama conversion permutes the rows of wq and wk so
// that pairs are adjacent; Hugging Face checkpoints (and GGUF qwen2) pair element i with i + d/2.
enum class RopeStyle { AdjacentPairs, HalfSplit };

// The gate activation of the gated MLP: SiLU (SwiGLU, LLaMA) or GELU's tanh form (GeGLU, Gemma).
enum class GateActivation { SiLU, GeluTanh };

struct LlamaConfig {
  std::string arch;  // "llama", "mistral", "qwen2" ...
  int dim = 0;       // width of the residual stream
  int n_layers = 0;
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (grouped-query attention when fewer than n_heads)
  int head_dim = 0;
  int hidden_dim = 0;  // SwiGLU inner width
  int vocab_size = 0;
  int context_length = 0;  // what the model was trained for
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::HalfSplit;
  std::vector<float>
      rope_inv_freq;  // [head_dim / 2]: theta^(-2i/d), with the model's scaling applied
  std::string rope_scaling = "none";  // "none", "linear", "llama3" or "gguf rope_freqs"
  bool tied_output = false;           // output head shares the token embedding
  bool qkv_bias = false;              // qwen2 has biases on wq, wk, wv
  bool o_bias = false;                // LLaMA's attention_bias also puts one on wo
  bool mlp_bias = false;              // LLaMA's mlp_bias: biases on w_gate, w_up, w_down
  // Sliding-window attention span (0: none). lowbit attends to every earlier position, which is
  // the same arithmetic only while a window fits inside the span; forward() refuses longer ones.
  int sliding_window = 0;

  // Gemma 3 (arch "gemma3") on the same runtime: what sets it apart from LLaMA.
  float embedding_scale = 1.0f;  // token embeddings are multiplied by it (Gemma: sqrt(dim))
  bool qk_norm = false;          // RMSNorm of each query and key head (q_norm, k_norm) before RoPE
  bool sandwich_norms = false;   // RMSNorm of each block's output before the residual addition
  GateActivation gate_activation = GateActivation::SiLU;
  float attention_scale = 0;  // multiplies q·k; 0: 1/sqrt(head_dim)
  // Per layer (empty: none): a layer with window w > 0 lets position p attend to positions
  // p - w + 1 .. p only (local attention); 0 attends to every earlier position (global).
  std::vector<int> layer_window;
  std::vector<float> rope_inv_freq_local;  // the windowed layers' RoPE (empty: rope_inv_freq)
  std::string rope_local = "";             // its description, "theta 10000"

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  std::string summary() const;
};

// RoPE's inverse frequencies theta^(-2i/d), i < head_dim / 2, without scaling.
std::vector<float> rope_inv_freq(int head_dim, double theta);

// Linears are named by site: layers.<l>.q_proj ... down_proj, and output (lowbit/recipe.h).
struct LlamaLayer {
  std::vector<float> attn_norm;                      // [dim]
  Linear wq;                                         // [n_heads * head_dim, dim]
  Linear wk;                                         // [n_kv_heads * head_dim, dim]
  Linear wv;                                         // [n_kv_heads * head_dim, dim]
  Linear wo;                                         // [dim, n_heads * head_dim]
  std::vector<float> ffn_norm;                       // [dim]
  Linear w_gate;                                     // [hidden_dim, dim]
  Linear w_up;                                       // [hidden_dim, dim]
  Linear w_down;                                     // [dim, hidden_dim]
  std::vector<float> q_norm, k_norm;                 // [head_dim] when qk_norm
  std::vector<float> post_attn_norm, post_ffn_norm;  // [dim] when sandwich_norms
  // When set, this step's keys (after RoPE) and values are fake-quantized as a tensor
  // [tokens, n_kv_heads, head_dim] before they enter the cache.
  std::optional<Scheme> kv_cache;
  // When set (size head_dim), queries and keys are rotated per head after RoPE (before the KV
  // cache is quantized); q·k is unchanged for an orthogonal rotation.
  std::shared_ptr<const RowTransform> qk_rotation;
  // When set, q·k and softmax·v are computed with L-Mul products (lowbit/model/lmul.h).
  std::optional<LMul> attention_products;
  KvProbe* kv_probe = nullptr;  // not owned: sees keys and values before the cache (calibration)
};

struct LlamaWeights {
  std::shared_ptr<std::vector<float>> token_embedding;  // [vocab_size, dim]
  std::vector<LlamaLayer> layers;                       // [n_layers]
  std::vector<float> final_norm;                        // [dim]
  Linear output;  // [vocab_size, dim]; shares token_embedding when tied
};

// Activations for up to max_tokens tokens per forward() and the KV cache for max_context positions.
struct LlamaRunState {
  // Throws lowbit::Error, with the estimate, when the buffers would not fit in available memory.
  LlamaRunState(const LlamaConfig& c, int max_tokens, int max_context);
  static double bytes_needed(const LlamaConfig& c, int max_tokens, int max_context);
  int max_tokens, max_context;
  std::vector<float> x;     // [max_tokens, dim] residual stream
  std::vector<float> xb;    // [max_tokens, dim] normalised input of a block
  std::vector<float> q;     // [max_tokens, q_dim]
  std::vector<float> k, v;  // [max_tokens, kv_dim] this step's keys and values
  std::vector<float> att;   // [max_tokens, q_dim] attention output, heads side by side
  int score_workers = 1, score_rows = 1;      // attention workspace: one block per worker thread
  std::vector<float> scores;                  // [score_workers, score_rows, max_context]
  std::vector<float> hb, hb2;                 // [max_tokens, hidden_dim]
  std::vector<float> key_cache, value_cache;  // [n_layers, max_context, kv_dim]
  int n_tokens = 0;                           // rows of the last forward
};

class Llama : public Decoder {
 public:
  Llama(LlamaConfig config, LlamaWeights weights);

  // Reads the weights named the GGUF way ("blk.0.attn_q.weight") or the Hugging Face way
  // ("model.layers.0.self_attn.q_proj.weight"): float32, or as `options` say.
  static Llama load(const TensorStore& store, LlamaConfig config, bool gguf_names,
                    const LoadOptions& options = {});

  const LlamaConfig& config() const { return config_; }
  LlamaWeights& weights() { return weights_; }
  const LlamaWeights& weights() const { return weights_; }
  // Every Linear in forward order: per layer q, k, v, o, gate, up, down; then the output head.
  std::vector<Linear*> linears();
  std::vector<const Linear*> linears() const;

  // Runs tokens[0, n) at positions pos0 .. pos0 + n - 1, attending to the cache of positions
  // < pos0 filled by earlier calls. Afterwards s.xb holds the final-normalised hidden states.
  void forward(const int32_t* tokens, int n, int pos0, LlamaRunState& s) const;
  // forward() in its three steps, for layer-by-layer work (calibration): the embeddings into s.x,
  // one layer on s.x, the final norm into s.xb.
  void embed(const int32_t* tokens, int n, int pos0, LlamaRunState& s) const;
  void forward_layer(int layer, int n, int pos0, LlamaRunState& s) const;
  void finish(int n, LlamaRunState& s) const;
  // Logits of rows [row0, row0 + count) of the last forward: out[count, vocab_size].
  void logits(const LlamaRunState& s, int row0, int count, float* out) const;

  // Parameters (a tied output head counted once).
  int64_t parameter_count() const override;
  // Floating-point operations of forward(n tokens at pos0) plus logits for `logit_rows` rows.
  double flops(int n, int pos0, int logit_rows) const;

  // The sites interface (lowbit/sites.h; src/model/llama_sites.cpp).
  std::string architecture() const override { return config_.arch; }
  std::string summary() const override { return config_.summary(); }
  std::unique_ptr<Runtime> clone() const override { return std::make_unique<Llama>(*this); }
  Sites sites() override;
  std::unique_ptr<BlockRunner> block_runner(int max_tokens) const override;
  std::optional<RotationPlan> rotation_plan() override;
  int vocab_size() const override { return config_.vocab_size; }
  int context_length() const override { return config_.context_length; }
  std::unique_ptr<Pass> pass(int max_tokens) const override;
  double flops(int n, int logit_rows) const override { return flops(n, 0, logit_rows); }

 private:
  void attention(int layer, int n, int pos0, LlamaRunState& s) const;
  void quantize_kv(const Scheme& scheme, int n, LlamaRunState& s) const;
  LlamaConfig config_;
  LlamaWeights weights_;
};

}  // namespace lowbit::model
