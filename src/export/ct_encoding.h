// One Linear's weight in compressed-tensors' layout (the format vLLM loads): the rules that map a
// lowbit scheme onto a compressed-tensors compressor, its tensors and its QuantizationArgs, and
// the error where none stores the values exactly.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/model/safetensors.h"
#include "lowbit/quant/qtensor.h"

namespace lowbit::exports {

// What a weight becomes: its tensors (names relative to the module: "weight_packed",
// "weight_scale", ...), the "weights" QuantizationArgs (null when kept dense) and the compressor
// ("pack-quantized", "nvfp4-pack-quantized", ...; "dense" when kept).
struct CtWeight {
  std::vector<model::RawTensor> tensors;
  nlohmann::json weight_args;
  std::string format = "dense";
};

// The weight `values` [rows, cols] (what lowbit computes with) in `scheme` (nullopt: kept, stored
// as `kept_dtype`: "F32", "BF16" or "F16"). `codes`, when given, is its quantization; without it
// the values are quantized again (under the recorded tensor scale `global`) and must come back
// unchanged. `row_order`, when not empty, gives
// the source row of each written row (the Hugging Face order of a GGUF file's q / k rows).
// `has_activations`: the Linear also quantizes its input (compressed-tensors then names integer
// and FP8 weights' compressors int- / float-quantized, as it infers them). `name` is for
// messages. Throws lowbit::Error naming the tensor when no compressor stores it exactly, and why.
CtWeight encode_ct_weight(const std::string& name, const std::vector<float>& values, size_t rows,
                          size_t cols, const std::optional<Scheme>& scheme, const QTensor* codes,
                          float global, const std::string& kept_dtype,
                          const std::vector<size_t>& row_order, bool has_activations);

// The "input_activations" QuantizationArgs for a Linear's activation scheme (null for none), or an
// error naming `name` for a scheme vLLM's dynamic quantizers do not implement.
nlohmann::json ct_activation_args(const std::string& name, const std::optional<Scheme>& scheme);

// A float32 vector in `dtype` ("F32", "BF16", "F16"), as bytes: kept weights, norms, biases.
model::RawTensor dense_tensor(const std::string& name, const std::vector<float>& values,
                              const std::vector<int64_t>& shape, const std::string& dtype);

}  // namespace lowbit::exports
