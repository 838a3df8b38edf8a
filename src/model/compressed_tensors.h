// Reading compressed-tensors checkpoints (vLLM's quantized Hugging Face format, as llm-compressor
// and lowbit's export write it): each quantized Linear's parts (weight_packed / weight,
// weight_scale, weight_zero_point, weight_global_scale, weight_shape) become the float32 "weight"
// its decompressor computes, so the runtimes load the checkpoint like any other.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/model/tensor_store.h"

namespace lowbit::model {

// Adds a float32 "<module>.weight" for every module the quantization_config's groups quantize
// and marks its compressed parts used. The values are the decompressors' arithmetic in float32
// (codes times scales, minus zero points), exact where compressed-tensors' own output dtype would
// round (it returns the scale's dtype, bfloat16 for NVFP4). `where` (config.json) is for
// messages; throws lowbit::Error for formats and arguments lowbit does not read, naming them.
void decompress_compressed_tensors(TensorStore& store, const nlohmann::json& quantization_config,
                                   const std::string& where);

}  // namespace lowbit::model
