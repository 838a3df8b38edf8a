// lowbit/model/safetensors.h — Hugging Face safetensors checkpoints: one file, or shards listed by
// a model.safetensors.index.json; memory-mapped; and a writer. Layout: 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {...}}, then the data (offsets relative to it).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lowbit/model/tensor_store.h"

namespace lowbit::model {

// Reads `path`: a .safetensors file, an index .json, or a folder holding model.safetensors or
// model.safetensors.index.json. Throws lowbit::Error naming the file and the problem.
TensorStore load_safetensors(const std::string& path,
                             std::vector<std::string>* files_read = nullptr);

// Writes float32 tensors (row-major shapes) to one .safetensors file, atomically.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Any dtype, as bytes: "F32", "F16", "BF16", "F8_E4M3", "U8", "I8", "I32", "I64" (little-endian,
// row-major). Written atomically, in the order given.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
void write_raw_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                           const std::map<std::string, std::string>& metadata = {});

}  // namespace lowbit::model
