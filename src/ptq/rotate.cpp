// QuaRot-style rotation of a LLaMA-family model (see lowbit/rotate.h for the algebra's summary).
// With x' = x·Q on the residual stream: a Linear reading it needs W' = W·Q (rows rotated), one
// writing it W' = Qᵀ·W (columns rotated); RMSNorm commutes with Q once its scale is folded
// into the readers, because ||x·Q|| = ||x||.
#include "lowbit/ptq/rotate.h"

#include <memory>

#include "lowbit/ptq/hadamard.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

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
void transform_outputs(Matrix& w, size_t out, size_t in, const model::RowTransform& t) {
  Matrix wt = transpose(w, out, in);
  t.apply(wt.data(), wt.size() / size_t(t.size()));
  w = transpose(wt, in, out);
}

uint64_t stream(uint64_t seed, uint64_t which) {
  return seed * 0x9E3779B97F4A7C15ull + which;
}

}  // namespace

std::unique_ptr<model::Runtime> rotate_model(const model::Runtime& fp, const RotationOptions& o) {
  std::unique_ptr<model::Runtime> out = fp.clone();  // Linears share weights until replaced below
  const std::optional<model::RotationPlan> plan = out->rotation_plan();
  if (!plan)
    throw Error("hadamard: the " + fp.architecture() +
                " architecture has no rotation plan (which tensors read and write "
                "its residual stream); rotation is implemented for the LLaMA family");
  const model::RotationPlan& p = *plan;
  // Block-diagonal (MR-GPTQ / BRQ) where o.block is set and smaller than the width; a width up to
  // the block is rotated whole, as QuaRot rotates every width.
  const auto blocked = [&](int n) { return o.block > 0 && o.block < n; };
  for (const auto& [what, n] :
       {std::pair("dim", p.stream_width), std::pair("hidden_dim", p.hidden_width),
        std::pair("head_dim", p.head_width)}) {
    if (blocked(n) && (n % o.block != 0 || !HadamardTransform::supported(o.block)))
      throw Error(std::string("hadamard: block ") + std::to_string(o.block) +
                  " does not divide the model's " + what + " " + std::to_string(n) +
                  " or has no Hadamard transform");
    if (!blocked(n) && !HadamardTransform::supported(n))
      throw Error(std::string("hadamard: the model's ") + what + " " + std::to_string(n) +
                  " has no Hadamard transform (sizes are 2^k times 1, 2 or a Paley order)");
  }
  const auto rotation = [&](int n, uint64_t which) -> std::shared_ptr<const model::RowTransform> {
    if (blocked(n))
      return std::make_shared<BlockHadamardTransform>(n, o.block, stream(o.seed, which));
    return std::make_shared<HadamardTransform>(n, stream(o.seed, which));
  };
  const auto q_ptr = rotation(p.stream_width, 1);  // residual stream
  const model::RowTransform& q = *q_ptr;
  const auto down = rotation(p.hidden_width, 2);
  const auto head_ptr = rotation(p.head_width, 3);  // values / attention output
  const model::RowTransform& head = *head_ptr;
  const auto qk = std::make_shared<HadamardTransform>(p.head_width, stream(o.seed, 4));
  const size_t dim = size_t(p.stream_width);

  auto embedding = std::make_shared<Matrix>(**p.embedding.values);
  q.apply(embedding->data(), p.embedding.rows);
  *p.embedding.values = embedding;
  // A Linear reading the stream after a norm with scale `norm`: W·diag(norm)·Q; the norm becomes
  // ones.
  for (const model::RotationPlan::Readers& r : p.readers) {
    for (model::Linear* lin : r.readers) {
      Matrix m = lin->weight();
      scale_columns(m, *r.norm);
      q.apply(m.data(), size_t(lin->out_features()));
      lin->set_weight(std::move(m));
    }
    r.norm->assign(dim, 1.0f);
  }
  for (const model::RotationPlan::Heads& h : p.heads) {
    {  // values rotated per head: W_v <- blockdiag(H)ᵀ W_v
      Matrix m = h.values->weight();
      transform_outputs(m, size_t(h.values->out_features()), size_t(h.values->in_features()), head);
      h.values->set_weight(std::move(m));
    }
    {  // the reader of the per-head-rotated attention output: W_o <- W_o blockdiag(H)
      Matrix m = h.output->weight();
      head.apply(m.data(), m.size() / size_t(p.head_width));
      h.output->set_weight(std::move(m));
    }
  }
  if (o.online_down_proj)
    for (model::Linear* lin : p.online) {  // W·H on the input, H applied at run time
      Matrix m = lin->weight();
      down->apply(m.data(), size_t(lin->out_features()));
      lin->set_weight(std::move(m));
      lin->set_input_transform(down);
    }
  for (model::Linear* lin : p.writers) {  // writers of the stream: Qᵀ·W
    Matrix m = lin->weight();
    transform_outputs(m, size_t(lin->out_features()), size_t(lin->in_features()), q);
    lin->set_weight(std::move(m));
  }
  if (o.qk)
    for (std::shared_ptr<const model::RowTransform>* slot : p.qk) {
      if (*slot)
        throw Error(
            "hadamard: queries and keys already have a transform after RoPE (kvreorder's "
            "permutation); a rotation would mix the channels it sorted: use one of the two");
      *slot = qk;
    }
  p.untie();  // the head reads the final norm: untied from the embedding from here on
  return out;
}

MethodInfo hadamard_method() {
  MethodInfo m;
  m.name = "hadamard";
  m.summary =
      "rotation by randomized Hadamard transforms, QuaRot-style (the model's rotation plan)";
  m.params = {{"seed", MethodParam::Kind::Integer, 1, 0, 9007199254740992.0, false,
               "random signs of the transforms"},
              {"no_online", MethodParam::Kind::Flag, 0, 0, 0, false,
               "no online rotation of down_proj's input"},
              {"block", MethodParam::Kind::Integer, 0, 0, 1 << 16, false,
               "block-diagonal rotations of this many elements, matched to the format's group "
               "(16 NVFP4, 32 MX; MR-GPTQ / BRQ); 0: whole widths"}};
  m.transforms = true;
  m.run = [](MethodRun& r) {
    RotationOptions o;
    o.seed = uint64_t(r.number("seed"));
    o.online_down_proj = !r.flag("no_online");
    o.block = r.integer("block");
    r.model = rotate_model(*r.model, o);
  };
  return m;
}

}  // namespace lowbit::ptq
