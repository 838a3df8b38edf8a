// TensorStore: lookup by name, shape checks, conversion to float32.
#include "lowbit/model/tensor_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <sstream>

#include "lowbit/util/error.h"

namespace lowbit::model {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_string() const {
  std::ostringstream s;
  s << '[';
  for (size_t k = 0; k < shape.size(); ++k) s << (k ? ", " : "") << shape[k];
  s << ']';
  return s.str();
}

void TensorStore::add(TensorView view) {
  if (index_.count(view.name)) throw Error("tensor '" + view.name + "' appears twice");
  index_[view.name] = tensors_.size();
  tensors_.push_back(std::move(view));
}

void TensorStore::add_or_replace(TensorView view) {
  const auto it = index_.find(view.name);
  if (it == index_.end()) return add(std::move(view));
  tensors_[it->second] = std::move(view);
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& TensorStore::get(const std::string& name) const {
  if (const TensorView* t = find(name)) return *t;
  const std::string file = tensors_.empty() ? std::string("the model") : tensors_.front().file;
  throw Error(file + ": tensor '" + name +
              "' is missing (is this the architecture lowbit thinks it is? "
              "`lowbit inspect` lists the tensors)");
}

std::vector<float> TensorStore::to_f32(const TensorView& t) const {
  if (!t.type)
    throw Error(t.file + ": tensor '" + t.name + "' has type " + t.dtype +
                ", which lowbit cannot convert to float32");
  std::vector<float> out(size_t(t.numel()));
  dequantize_ggml(*t.type, t.data, out.size(), out.data());
  return out;
}

const TensorView& TensorStore::use(const std::string& name,
                                   const std::vector<int64_t>& expected_shape) const {
  const TensorView& t = get(name);
  used_.insert(name);
  if (t.shape != expected_shape) {
    TensorView expected;
    expected.shape = expected_shape;
    throw Error(t.file + ": tensor '" + name + "' has shape " + t.shape_string() +
                " but the model's config implies " + expected.shape_string());
  }
  return t;
}

std::vector<float> TensorStore::to_f32(const std::string& name,
                                       const std::vector<int64_t>& expected_shape) const {
  return to_f32(use(name, expected_shape));
}

void TensorStore::rows_to_f32(const TensorView& t, size_t r0, size_t r1, float* out) const {
  if (!t.type)
    throw Error(t.file + ": tensor '" + t.name + "' has type " + t.dtype +
                ", which lowbit cannot convert to float32");
  if (t.shape.size() != 2 || t.shape[0] <= 0 || t.nbytes % size_t(t.shape[0]) != 0 || r0 > r1 ||
      r1 > size_t(t.shape[0]))
    throw Error(t.file + ": tensor '" + t.name + "' " + t.shape_string() +
                " cannot be read by rows " + std::to_string(r0) + ".." + std::to_string(r1));
  const size_t row_bytes = t.nbytes / size_t(t.shape[0]);
  dequantize_ggml(*t.type, t.data + r0 * row_bytes, (r1 - r0) * size_t(t.shape[1]), out);
}

void TensorStore::drop_pages(const TensorView& t) const {
  // Only whole pages inside the tensor: its neighbours may share the first and last page.
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (uintptr_t(t.data) + page - 1) / page * page;
  const uintptr_t end = (uintptr_t(t.data) + t.nbytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::vector<float> TensorStore::take_f32(const std::string& name,
                                         const std::vector<int64_t>& expected_shape) const {
  std::vector<float> values = to_f32(name, expected_shape);
  drop_pages(get(name));
  return values;
}

std::vector<std::string> TensorStore::unused() const {
  std::vector<std::string> names;
  for (const TensorView& t : tensors_)
    if (!used_.count(t.name)) names.push_back(t.name);
  return names;
}

void TensorStore::require_all_used(const std::string& what) const {
  const std::vector<std::string> names = unused();
  if (names.empty()) return;
  std::string list;
  for (size_t i = 0; i < names.size() && i < 10; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 10) list += ", ... (" + std::to_string(names.size() - 10) + " more)";
  const std::string file = tensors_.front().file;
  throw Error(
      file + ": " + std::to_string(names.size()) + " tensor" +
      (names.size() > 1 ? "s are" : " is") + " not used by " + what + ": " + list +
      ". The configuration and the weights disagree (fewer layers than the file holds, a head the "
      "architecture does not have, ...); lowbit refuses rather than run a different model than the "
      "file's");
}

void TensorStore::release_pages() const {
  for (const auto& fn : releasers_) fn();
}

}  // namespace lowbit::model
