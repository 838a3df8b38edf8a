// The baseline file: a small header, then per scored token its NLL and top-k log-probabilities.
//   "LOWBITKL" | u32 version | i32 n_ctx, n_vocab, top_k | i64 n_windows, scored_per_window |
//   u64 tokens_hash | u32 length + model description | f64 nll[n] | i32 ids[n*k] | f32 logprobs[n*k]
#include <cstring>

#include "io/atomic_file.h"
#include "io/byte_reader.h"
#include "lowbit/error.h"
#include "lowbit/eval.h"
#include "model/mapped_file.h"

namespace lowbit::eval {
namespace {
constexpr char kMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'K', 'L'};
constexpr uint32_t kVersion = 1;

template <class T>
void put(std::ostream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
void put_array(std::ostream& out, const std::vector<T>& v) {
  out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
}
template <class T>
void get_array(io::ByteReader& r, std::vector<T>& v, size_t n, const char* what) {
  r.need(uint64_t(n) * sizeof(T), what);
  v.resize(n);
  for (T& x : v) x = r.read<T>(what);
}
}  // namespace

void Baseline::save(const std::string& path) const {
  io::write_file_atomically(path, [&](std::ostream& out) {
    out.write(kMagic, sizeof kMagic);
    put(out, kVersion);
    put(out, n_ctx);
    put(out, n_vocab);
    put(out, top_k);
    put(out, n_windows);
    put(out, scored_per_window);
    put(out, tokens_hash);
    put(out, uint32_t(model.size()));
    out.write(model.data(), std::streamsize(model.size()));
    put_array(out, nll);
    put_array(out, top_ids);
    put_array(out, top_logprobs);
  });
}

Baseline Baseline::load(const std::string& path) {
  model::MappedFile file(path);
  io::ByteReader r(file.data(), file.size(), path + ": not a lowbit baseline file");
  char magic[8];
  for (char& c : magic) c = char(r.read<uint8_t>("the magic"));
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) r.fail("bad magic (write one with lowbit eval --save-baseline)");
  if (r.read<uint32_t>("the version") != kVersion) r.fail("unsupported version");
  Baseline b;
  b.n_ctx = r.read<int32_t>("n_ctx");
  b.n_vocab = r.read<int32_t>("n_vocab");
  b.top_k = r.read<int32_t>("top_k");
  b.n_windows = r.read<int64_t>("n_windows");
  b.scored_per_window = r.read<int64_t>("scored_per_window");
  b.tokens_hash = r.read<uint64_t>("the token hash");
  b.model = r.read_string(r.read<uint32_t>("the description length"), "the model description");
  if (b.n_ctx < 2 || b.n_vocab < 1 || b.top_k < 1 || b.top_k > b.n_vocab || b.n_windows < 1 ||
      b.scored_per_window != b.n_ctx - 1 - b.n_ctx / 2 || b.n_windows > (int64_t(1) << 32))
    r.fail("inconsistent header");
  const size_t n = size_t(b.n_windows * b.scored_per_window);
  get_array(r, b.nll, n, "the per-token NLL");
  get_array(r, b.top_ids, n * size_t(b.top_k), "the top-k ids");
  get_array(r, b.top_logprobs, n * size_t(b.top_k), "the top-k log-probabilities");
  for (int32_t id : b.top_ids)
    if (id < 0 || id >= b.n_vocab) r.fail("a top-k token id lies outside the vocabulary");
  return b;
}

}  // namespace lowbit::eval
