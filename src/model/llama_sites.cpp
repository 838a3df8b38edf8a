// The LLaMA family's sites (lowbit/sites.h): seven Linears per block reading three inputs, a KV
// cache per block, the embedding and the (possibly tied) head; its block runner, its window pass
// and its rotation plan.
#include <algorithm>

#include "lowbit/model/llama.h"

namespace lowbit::model {

Sites Llama::sites() {
  Sites s;
  s.blocks = config_.n_layers;
  s.embedding = {"embedding", &weights_.token_embedding, size_t(config_.vocab_size),
                 size_t(config_.dim)};
  for (int l = 0; l < config_.n_layers; ++l) {
    LlamaLayer& w = weights_.layers[size_t(l)];
    s.add_input(l, "attn_in", {&w.wq, &w.wk, &w.wv}, {&w.attn_norm, nullptr, nullptr});
    s.add_input(l, "attn_out", {&w.wo});
    s.add_input(l, "mlp_in", {&w.w_gate, &w.w_up}, {&w.ffn_norm, nullptr, nullptr});
    // down_proj reads act(gate) * up: up's rows scale it channel by channel.
    s.add_input(l, "mlp_hidden", {&w.w_down}, {nullptr, nullptr, &w.w_up});
    s.kv.push_back({"layers." + std::to_string(l) + ".kv_cache", l, &w.kv_cache,
                    &w.attention_products, &w.kv_probe});
  }
  s.head = &weights_.output;
  s.head_tied = config_.tied_output;
  s.embedding_reads_packed_head = config_.tied_output;
  return s;
}

namespace {

class LlamaBlockRunner : public BlockRunner {
 public:
  LlamaBlockRunner(const Llama& m, int max_tokens)
      : m_(m), s_(m.config(), max_tokens, max_tokens) {}
  size_t width() const override { return size_t(m_.config().dim); }
  void embed(const int32_t* tokens, int n, float* stream) override {
    m_.embed(tokens, n, 0, s_);
    std::copy_n(s_.x.begin(), size_t(n) * width(), stream);
  }
  void run_block(int block, int n, float* stream) override {
    std::copy_n(stream, size_t(n) * width(), s_.x.begin());
    m_.forward_layer(block, n, 0, s_);
    std::copy_n(s_.x.begin(), size_t(n) * width(), stream);
  }

 private:
  const Llama& m_;
  LlamaRunState s_;
};

class LlamaPass : public Decoder::Pass {
 public:
  LlamaPass(const Llama& m, int max_tokens) : m_(m), s_(m.config(), max_tokens, max_tokens) {}
  void forward(const int32_t* tokens, int n) override { m_.forward(tokens, n, 0, s_); }
  void logits(int row0, int count, float* out) override { m_.logits(s_, row0, count, out); }

 private:
  const Llama& m_;
  LlamaRunState s_;
};

}  // namespace

std::unique_ptr<BlockRunner> Llama::block_runner(int max_tokens) const {
  return std::make_unique<LlamaBlockRunner>(*this, max_tokens);
}

std::unique_ptr<Decoder::Pass> Llama::pass(int max_tokens) const {
  return std::make_unique<LlamaPass>(*this, max_tokens);
}

std::optional<RotationPlan> Llama::rotation_plan() {
  // Norms on a block's output (Gemma's post-norms) or per head (QK-norm) scale channels one by
  // one where a rotation would have to pass through them: no exact rotation exists.
  if (config_.sandwich_norms || config_.qk_norm) return std::nullopt;
  RotationPlan p;
  p.stream_width = config_.dim;
  p.hidden_width = config_.hidden_dim;
  p.head_width = config_.head_dim;
  p.embedding = sites().embedding;
  for (LlamaLayer& l : weights_.layers) {
    p.readers.push_back({&l.attn_norm, {&l.wq, &l.wk, &l.wv}});
    p.readers.push_back({&l.ffn_norm, {&l.w_gate, &l.w_up}});
    p.heads.push_back({&l.wv, &l.wo});
    p.online.push_back(&l.w_down);
    p.writers.push_back(&l.wo);
    p.writers.push_back(&l.w_down);
    p.qk.push_back(&l.qk_rotation);
  }
  p.readers.push_back({&weights_.final_norm, {&weights_.output}});
  p.untie = [this] { config_.tied_output = false; };
  return p;
}

}  // namespace lowbit::model
