// lowbit/export/compressed_tensors_export.h — writing a quantized LLaMA model as a Hugging Face
// folder in the compressed-tensors layout that vLLM loads (config.json with a
// quantization_config, model.safetensors, tokenizer.json): every Linear in the compressor that
// stores the recipe's values exactly (FP8 per tensor / channel / block, MXFP8, MXFP4, NVFP4 as
// nvfp4_ct, INT2..8 pack-quantized with groups, channels and zero points), activations as dynamic
// quantizers. docs/export.md has the mapping; lowbit loads such folders back (model::load_model).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/ptq/recipe.h"

namespace lowbit::exports {

struct CompressedTensorsOptions {
  // The dtype of what the recipe keeps in full precision (embedding, head, kept Linears): "F32"
  // (what lowbit's emulation computes with), "BF16" or "F16". Norms are always float32.
  std::string kept_dtype = "F32";
  // Every weight as float32 with lowbit's fake-quantized values and no quantization_config: a
  // plain checkpoint with exactly the weights lowbit evaluates (the reference to check against).
  bool emulated_f32 = false;
  std::string recipe_text;  // provenance, in the safetensors metadata
};

// One tensor of the written model.safetensors.
struct CtExportedTensor {
  std::string name;   // "model.layers.0.self_attn.q_proj.weight_packed"
  std::string dtype;  // safetensors dtype: "U8", "I32", "F8_E4M3", "F32" ...
  std::vector<int64_t> shape;
  std::string from;  // the scheme, "fp", "norm"
  uint64_t bytes = 0;
};

struct CompressedTensorsReport {
  std::vector<CtExportedTensor> tensors;
  std::string format;  // the quantization_config's format ("mixed-precision" for several)
  uint64_t folder_bytes = 0;
  double weight_bits = 0;  // bits per parameter over the matrices (embedding, Linears, head)
  double linear_bits = 0;  // over the blocks' Linears only
};

// Why `recipe` cannot be exported to compressed-tensors as it stands (empty when it can).
std::string compressed_tensors_export_gap(const ptq::Recipe& recipe);

// "F32", "BF16" or "F16" from "f32", "bf16", "f16" (throws lowbit::Error otherwise).
std::string parse_kept_dtype(const std::string& name);

// Writes `model` (loaded from `source` — a GGUF file or a Hugging Face folder — and put through
// apply_recipe with `recipe`) to the folder `out` (created; its files replaced atomically). The
// tokenizer comes from the source: a GGUF's byte-level BPE as tokenizer.json, an HF folder's
// tokenizer files copied. Throws lowbit::Error naming the tensor when a scheme has no exact
// layout, or why the model or recipe cannot be written (online rotations, KV-cache schemes, a
// quantized embedding or head, architectures other than llama).
CompressedTensorsReport export_compressed_tensors(const model::Llama& model,
                                                  const ptq::Recipe& recipe,
                                                  const std::string& source, const std::string& out,
                                                  const CompressedTensorsOptions& options = {});

}  // namespace lowbit::exports
