// lowbit/ptq/rotate.h — rotation of a LLaMA-family model by randomized Hadamard transforms
// (QuaRot): the RMSNorm scales are folded into the Linears that read them, the residual stream is
// rotated by Q (fused into the embedding, every Linear that reads or writes the stream, and the
// output head), values and attention outputs by a per-head Hadamard (fused into wv and wo), and
// online rotations run where nothing can absorb them: the input of down_proj, and queries and keys
// after RoPE (so the KV cache is quantized rotated). In exact arithmetic the rotated model computes
// the same function; activations lose their outlier channels, which is what makes them quantizable.
#pragma once

#include <cstdint>

#include <memory>

#include "lowbit/model/llama.h"
#include "lowbit/model/sites.h"

namespace lowbit::ptq {

struct RotationOptions {
  uint64_t seed = 1;  // random signs of the transforms (each transform its own stream)
  bool online_down_proj = true;
  bool qk = true;  // rotate queries and keys per head (for KV-cache quantization)
  // 0: each rotation spans its whole width (QuaRot). b > 0: the residual stream, down_proj's input
  // and the per-head value / output rotations are block-diagonal with Hadamard blocks of b
  // (BlockHadamardTransform; MR-GPTQ / BRQ with b = the format's group: 16 NVFP4, 32 MX).
  int block = 0;
};

// A rotated copy of `fp` (weights copied, untied from the embedding), by the model's rotation plan
// (model::RotationPlan). Throws lowbit::Error when the architecture has no plan or a width (dim,
// hidden, head_dim) has no Hadamard transform.
std::unique_ptr<model::Runtime> rotate_model(const model::Runtime& fp,
                                             const RotationOptions& options = {});
inline model::Llama rotate_model(const model::Llama& fp, const RotationOptions& options = {}) {
  return model::runtime_as<model::Llama>(
      rotate_model(static_cast<const model::Runtime&>(fp), options));
}

}  // namespace lowbit::ptq
