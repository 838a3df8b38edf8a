// QuaRot-style rotation of a LLaMA-family model (see lowbit/rotate.h for the algebra's summary).
// With x' = x·Q on the residual stream: a Linear reading it needs W' = W·Q (rows rotated), one
// writing it W' = Qᵀ·W (columns rotated); RMSNorm commutes with Q once its scale is folded
// into the readers, because ||x·Q|| = ||x||.
#include "lowbit/rotate.h"

#include <memory>

#include "lowbit/error.h"
#include "lowbit/hadamard.h"

namespace lowbit::ptq {
namespace {

using Matrix = std::vector<float>;

Matrix transpose(const Matrix& m, size_t rows, size_t cols) {
  Matrix t(m.size());
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) t[c * rows + r] = m[r * cols + c];
  return t;
}

// W[out, in] -> W·diag(scale) (an RMSNorm scale folded into a Linear that reads the norm).
void scale_columns(Matrix& w, const std::vector<float>& scale) {
  const size_t in = scale.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] *= scale[i % in];
}

// W[out, in] -> Tᵀ·W for a transform T acting on the output side: (Tᵀ W)ᵀ = Wᵀ T, so the rows of
// Wᵀ are transformed. `segments` > 1 applies T to each of that many runs of a row (per head).
void transform_outputs(Matrix& w, size_t out, size_t in, const HadamardTransform& t) {
  Matrix wt = transpose(w, out, in);
  t.apply(wt.data(), wt.size() / size_t(t.size()));
  w = transpose(wt, in, out);
}

uint64_t stream(uint64_t seed, uint64_t which) { return seed * 0x9E3779B97F4A7C15ull + which; }

}  // namespace

model::Llama rotate_model(const model::Llama& fp, const RotationOptions& o) {
  model::LlamaConfig c = fp.config();
  for (const auto& [what, n] : {std::pair("dim", c.dim), std::pair("hidden_dim", c.hidden_dim), std::pair("head_dim", c.head_dim)})
    if (!HadamardTransform::supported(n))
      throw Error(std::string("hadamard: the model's ") + what + " " + std::to_string(n) +
                  " has no Hadamard transform (sizes are 2^k times 1, 2 or a Paley order)");
  const HadamardTransform q(c.dim, stream(o.seed, 1));               // residual stream
  const auto down = std::make_shared<HadamardTransform>(c.hidden_dim, stream(o.seed, 2));
  const HadamardTransform head(c.head_dim, stream(o.seed, 3));       // values / attention output
  const auto qk = std::make_shared<HadamardTransform>(c.head_dim, stream(o.seed, 4));
  const size_t dim = size_t(c.dim);

  model::LlamaWeights w = fp.weights();  // Linears share weights until replaced below
  auto embedding = std::make_shared<Matrix>(*fp.weights().token_embedding);
  q.apply(embedding->data(), size_t(c.vocab_size));
  w.token_embedding = embedding;

  // A Linear reading the stream after a norm with scale `norm`: W·diag(norm)·Q.
  const auto reader = [&](model::Linear& lin, const std::vector<float>& norm) {
    Matrix m = lin.weight();
    scale_columns(m, norm);
    q.apply(m.data(), size_t(lin.out_features()));
    lin.set_weight(std::move(m));
  };
  for (model::LlamaLayer& l : w.layers) {
    reader(l.wq, l.attn_norm);
    reader(l.wk, l.attn_norm);
    reader(l.wv, l.attn_norm);
    l.attn_norm.assign(dim, 1.0f);
    {  // values rotated per head: W_v <- blockdiag(H)ᵀ W_v
      Matrix m = l.wv.weight();
      transform_outputs(m, size_t(l.wv.out_features()), dim, head);
      l.wv.set_weight(std::move(m));
    }
    {  // wo reads the per-head-rotated attention output (W_o <- W_o blockdiag(H)) and writes the stream
      Matrix m = l.wo.weight();
      head.apply(m.data(), m.size() / size_t(c.head_dim));
      transform_outputs(m, dim, size_t(l.wo.in_features()), q);
      l.wo.set_weight(std::move(m));
    }
    reader(l.w_gate, l.ffn_norm);
    reader(l.w_up, l.ffn_norm);
    l.ffn_norm.assign(dim, 1.0f);
    {  // down_proj: W_down·H on its input (H applied online), then it writes the stream
      Matrix m = l.w_down.weight();
      if (o.online_down_proj) {
        down->apply(m.data(), dim);
        l.w_down.set_input_transform(down);
      }
      transform_outputs(m, dim, size_t(l.w_down.in_features()), q);
      l.w_down.set_weight(std::move(m));
    }
    if (o.qk) l.qk_rotation = qk;
  }
  // The head reads the final norm: untied from the embedding from here on.
  {
    Matrix m = fp.weights().output.weight();
    scale_columns(m, fp.weights().final_norm);
    q.apply(m.data(), size_t(c.vocab_size));
    w.output.set_weight(std::move(m));
    w.final_norm.assign(dim, 1.0f);
  }
  c.tied_output = false;
  return model::Llama(std::move(c), std::move(w));
}

}  // namespace lowbit::ptq
