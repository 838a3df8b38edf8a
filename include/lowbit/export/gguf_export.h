// lowbit/export/gguf_export.h — writing a quantized LLaMA-family model as a GGUF file that
// llama.cpp runs: every weight in the GGML type that stores the recipe's values exactly (the
// ggml_* schemes in their own types, mxfp4 as MXFP4, nvfp4 as NVFP4 with its tensor scale, ...),
// the metadata and tokenizer carried over from the source GGUF. docs/export.md has the mapping.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/quant/ggml_types.h"

namespace lowbit::exports {

struct GgufExportOptions {
  // The type of weights the recipe keeps in full precision: F32 (what lowbit's emulation
  // computes with, so the export runs the same numbers), F16 or BF16 (half the size).
  GgmlType kept_type = GgmlType::F32;
  // Write every weight as F32 with the values lowbit's emulation uses (its fake-quantized
  // weights) instead of in GGML block types: a file on which llama.cpp computes with exactly the
  // weights lowbit evaluates, to tell the runtimes' differences from the format's.
  bool emulated_f32 = false;
  // Free-form provenance stored as general.quantized_by / lowbit.recipe.
  std::string recipe_text;
};

// GgufExportOptions::kept_type from its name: "f32", "f16" or "bf16" (throws lowbit::Error).
GgmlType parse_kept_type(const std::string& name);

// One tensor of the written file.
struct ExportedTensor {
  std::string name;            // GGUF name: "blk.0.attn_q.weight"
  GgmlType type;               // how it is stored
  std::vector<int64_t> shape;  // row-major
  std::string from;            // what lowbit had: a scheme name, "fp", "norm", "tensor scale"
  uint64_t bytes = 0;
};

struct GgufExportReport {
  std::vector<ExportedTensor> tensors;
  uint64_t file_bytes = 0;
  double weight_bits = 0;  // bits per parameter over the matrices (embedding, Linears, head)
  double linear_bits = 0;  // over the blocks' Linears only
};

// Why `recipe` cannot be exported to llama.cpp as it stands (empty when it can): activation,
// KV-cache and accumulator emulations (llama.cpp quantizes activations with its own rules) and
// run-time parts of methods (online rotations) have no place in a GGUF file.
std::string gguf_export_gap(const ptq::Recipe& recipe);

// Writes `model` (a source GGUF loaded and then put through apply_recipe with `recipe`, which
// says the embedding's scheme) to `out`, atomically.
// Metadata and tokenizer come from `source_gguf`, the file the model was loaded from. Throws
// lowbit::Error naming the tensor when a weight's scheme has no GGML type that stores its values
// exactly (with the nearest types that do), when the model has run-time transforms, or when its
// architecture is not one lowbit writes (llama, mistral, qwen2 from GGUF).
GgufExportReport export_gguf(const model::Llama& model, const ptq::Recipe& recipe,
                             const std::string& source_gguf, const std::string& out,
                             const GgufExportOptions& options = {});

}  // namespace lowbit::exports
