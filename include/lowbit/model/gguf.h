// lowbit/model/gguf.h — GGUF files (llama.cpp's model container, versions 2 and 3): metadata of
// every value type, tensor infos, alignment, memory-mapped tensor data; and a writer (used by the
// tests to build small models, and by anything that wants to save one). Layout:
// https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/model/tensor_store.h"

namespace lowbit::model {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Integers keep their exact value in `i` (signed) or `u` (unsigned); floats
// in `f`; arrays hold their items (all of `item_type`).
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType item_type = GgufType::U32;  // arrays only
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string str;
  std::vector<GgufValue> items;

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == GgufType::F32 || type == GgufType::F64; }
  double as_double() const;                           // any number
  int64_t as_int() const;                             // integers only
  std::string to_string(size_t max_items = 8) const;  // short human-readable form

  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_u64(uint64_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_string(std::string v);
  static GgufValue of_strings(const std::vector<std::string>& v);
  static GgufValue of_f32s(const std::vector<float>& v);
  static GgufValue of_i32s(const std::vector<int32_t>& v);
};

class GgufFile {
 public:
  // Maps and validates the whole file; throws lowbit::Error naming the file and the problem.
  explicit GgufFile(const std::string& path);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;
  // Typed lookups; the no-default forms throw naming the key when it is missing or mistyped.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback = "") const;
  std::vector<std::string> get_strings(const std::string& key) const;  // empty when missing
  std::vector<double> get_numbers(const std::string& key) const;       // empty when missing

  // Frees the metadata whose key starts with `prefix` (the tokenizer's vocabulary and merges, read
  // once, are as large as a small quantized model): lookups of them then find nothing.
  void drop_metadata(const std::string& prefix);

  // The tensors (shapes in row-major order: GGUF's ne[0], the contiguous axis, comes last).
  const TensorStore& store() const { return store_; }
  TensorStore& store() { return store_; }

 private:
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> key_index_;
  TensorStore store_;
};

// Builds a GGUF v3 file in memory and writes it atomically.
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  // `shape` is row-major (outermost first), as everywhere in lowbit; `bytes` must be exactly the
  // size the type and shape imply.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                  std::vector<uint8_t> bytes);
  void add_f32(const std::string& name, const std::vector<int64_t>& shape,
               const std::vector<float>& values);
  void write(const std::string& path, uint64_t alignment = 32) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

// Bytes a tensor of `type` and row-major `shape` occupies; throws when the innermost dimension is
// not a whole number of blocks or the size overflows.
uint64_t ggml_tensor_bytes(GgmlType type, const std::vector<int64_t>& shape);

}  // namespace lowbit::model
