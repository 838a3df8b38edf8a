// lowbit/model/bert.h — the BERT encoder (post-LayerNorm, GELU) with sentence embeddings by mean
// pooling and L2 normalisation, as sentence-transformers' all-MiniLM-L6-v2 computes them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/model/linear.h"
#include "lowbit/model/sites.h"

namespace lowbit::model {

class TensorStore;

struct BertConfig {
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int hidden_dim = 0;  // feed-forward inner width
  int vocab_size = 0;
  int max_positions = 0;
  int type_vocab_size = 0;
  float norm_eps = 1e-12f;
  // Tokens a sentence keeps (sentence-transformers' max_seq_length; 256 when not declared).
  int max_sequence_tokens = 256;
  std::string summary() const;
};

// Linears are named by site: layers.<l>.{q_proj,k_proj,v_proj,o_proj,ffn_in,ffn_out}.
struct BertLayer {
  Linear wq, wk, wv;                        // [dim, dim] each, with bias
  Linear attn_out;                          // [dim, dim]
  std::vector<float> ln1_weight, ln1_bias;  // [dim], after attention + residual
  Linear ffn_in;                            // [hidden_dim, dim]
  Linear ffn_out;                           // [dim, hidden_dim]
  std::vector<float> ln2_weight, ln2_bias;  // [dim], after feed-forward + residual
};

struct BertWeights {
  std::shared_ptr<std::vector<float>> word_embedding;  // [vocab_size, dim]
  std::vector<float> position_embedding;               // [max_positions, dim]
  std::vector<float> type_embedding;                   // [type_vocab_size, dim]
  std::vector<float> emb_ln_weight, emb_ln_bias;       // [dim]
  std::vector<BertLayer> layers;
};

class Bert : public Encoder {
 public:
  Bert(BertConfig config, BertWeights weights);
  // Names as in Hugging Face BertModel checkpoints (an optional "bert." prefix is accepted).
  static Bert load(const TensorStore& store, BertConfig config);

  const BertConfig& config() const { return config_; }
  BertWeights& weights() { return weights_; }

  // Final hidden states of a padded batch: ids[b] are one sequence's token ids (markers included);
  // returns [batch, max_len, dim] where positions beyond a sequence's length are padding that
  // attention ignores (mask) and pooling skips.
  std::vector<float> encode(const std::vector<std::vector<int32_t>>& batch, int& max_len) const;
  // Mean-pooled, L2-normalised sentence embeddings: [batch, dim].
  std::vector<float> embed(const std::vector<std::vector<int32_t>>& batch) const override;

  // The two steps of encode() for block-wise work: x[batch * max_len, dim] = the normalised
  // embeddings; one layer on x, where lens[b] tokens of each row block of max_len are real.
  void embed_tokens(const std::vector<std::vector<int32_t>>& batch, int max_len, float* x) const;
  void forward_layer(int layer, const std::vector<int>& lens, int max_len, float* x) const;

  // The sites interface (lowbit/sites.h). BERT normalises after the residual addition, so a
  // LayerNorm's output is both a Linear's input and the residual: no input can be smoothed
  // exactly, and there is no rotation plan.
  std::string architecture() const override { return "bert"; }
  std::string summary() const override { return config_.summary(); }
  std::unique_ptr<Runtime> clone() const override { return std::make_unique<Bert>(*this); }
  Sites sites() override;
  std::unique_ptr<BlockRunner> block_runner(int max_tokens) const override;
  int64_t parameter_count() const override;
  int embedding_width() const override { return config_.dim; }
  int max_sequence_tokens() const override { return config_.max_sequence_tokens; }

 private:
  BertConfig config_;
  BertWeights weights_;
};

}  // namespace lowbit::model
