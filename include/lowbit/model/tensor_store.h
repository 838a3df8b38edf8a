// lowbit/model/tensor_store.h — the tensors of a model file (GGUF or safetensors), read in place
// from memory-mapped files, and their conversion to float32.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lowbit/quant/ggml_types.h"

namespace lowbit::model {

// One tensor, in place in its mapped file.
struct TensorView {
  std::string name;
  std::string dtype;             // as the file spells it: "F32", "Q4_1", "BF16", "I64" ...
  std::optional<GgmlType> type;  // how lowbit decodes the bytes; nullopt when it cannot
  std::vector<int64_t> shape;    // row-major, outermost first: a Linear weight is [out, in]
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // for error messages

  int64_t numel() const;
  std::string shape_string() const;  // "[576, 1536]"
};

class TensorStore {
 public:
  // Keeps `owner` (a mapped file) alive as long as the store.
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }
  // Adds a tensor; throws when the name is already present.
  void add(TensorView view);
  // Adds a tensor, or puts it in the place of the one of its name (a decoded replacement).
  void add_or_replace(TensorView view);

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;
  // Throws lowbit::Error naming the tensor and the file when it is missing.
  const TensorView& get(const std::string& name) const;

  // Dequantizes / widens to float32; throws naming the tensor when its type is not supported.
  std::vector<float> to_f32(const TensorView& t) const;
  // The same, checking the shape first (a lying or unexpected shape is an error naming the tensor).
  std::vector<float> to_f32(const std::string& name,
                            const std::vector<int64_t>& expected_shape) const;

  // Rows [r0, r1) of a 2-D tensor as float32 (out: (r1 - r0) * cols values): every tensor type
  // lowbit reads stores whole rows contiguously (GGML blocks lie within rows).
  void rows_to_f32(const TensorView& t, size_t r0, size_t r1, float* out) const;

  // The tensor, its shape checked and marked used (a loader that reads the bytes itself).
  const TensorView& use(const std::string& name, const std::vector<int64_t>& expected_shape) const;
  // Drops the tensor's mapped pages from memory (they come back from the file if read again).
  void drop_pages(const TensorView& t) const;

  // to_f32 with the shape check, then drops the tensor's mapped pages from memory: loaders read
  // each tensor once, and this keeps peak memory near the float32 model size (the pages come
  // back from the file if the tensor is read again).
  std::vector<float> take_f32(const std::string& name,
                              const std::vector<int64_t>& expected_shape) const;

  // Tensors that no loader read (to_f32 / take_f32 by name, or mark_used): a model file whose
  // tensors the runtime does not use is not the model the config describes.
  void mark_used(const std::string& name) const { used_.insert(name); }
  std::vector<std::string> unused() const;
  // Throws lowbit::Error naming the file and (up to ten of) the unused tensors.
  void require_all_used(const std::string& what) const;

  // Drops all mapped pages from memory.
  void release_pages() const;
  void set_page_releaser(std::function<void()> fn) { releasers_.push_back(std::move(fn)); }

 private:
  std::vector<std::shared_ptr<const void>> owners_;
  std::vector<std::function<void()>> releasers_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  mutable std::unordered_set<std::string> used_;
};

}  // namespace lowbit::model
