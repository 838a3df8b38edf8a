// The baseline file: a small header, then per scored token its NLL and top-k log-probabilities,
// then a checksum of everything before it.
//   "LOWBITKL" | u32 version (2) | i32 n_ctx, n_vocab, top_k | i64 n_windows, scored_per_window |
//   u64 tokens_hash | u32 length + model description | f64 nll[n] | i32 ids[n*k] | f32
//   logprobs[n*k] | 16 bytes XXH3-128 of all preceding bytes (high 64 bits, then low,
//   little-endian)
#include <xxhash.h>

#include <cmath>
#include <cstring>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/io/byte_reader.h"
#include "lowbit/io/mapped_file.h"
#include "lowbit/util/error.h"
#include "util/content_hash.h"

namespace lowbit::eval {
namespace {
constexpr char kMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'K', 'L'};
constexpr uint32_t kVersion = 2;  // 1 had no checksum

template <class T>
void get_array(io::ByteReader& r, std::vector<T>& v, size_t n, const char* what) {
  r.need(uint64_t(n) * sizeof(T), what);
  v.resize(n);
  for (T& x : v) x = r.read<T>(what);
}
}  // namespace

void Baseline::save(const std::string& path) const {
  // Streamed to the file and hashed as it goes (a baseline of 32k tokens x top-64 is ~25 MB; no
  // second copy in memory).
  util::ContentHash hash;
  io::write_file_atomically(path, [&](std::ostream& file) {
    const auto write = [&](const void* p, size_t n) {
      file.write(static_cast<const char*>(p), std::streamsize(n));
      hash.bytes(p, n);
    };
    const auto put = [&](const auto& v) { write(&v, sizeof v); };
    write(kMagic, sizeof kMagic);
    put(kVersion);
    put(n_ctx);
    put(n_vocab);
    put(top_k);
    put(n_windows);
    put(scored_per_window);
    put(tokens_hash);
    put(uint32_t(model.size()));
    write(model.data(), model.size());
    write(nll.data(), nll.size() * sizeof(double));
    write(top_ids.data(), top_ids.size() * sizeof(int32_t));
    write(top_logprobs.data(), top_logprobs.size() * sizeof(float));
    const XXH128_hash_t sum = hash.digest();
    file.write(reinterpret_cast<const char*>(&sum.high64), 8);
    file.write(reinterpret_cast<const char*>(&sum.low64), 8);
  });
}

Baseline Baseline::load(const std::string& path) {
  model::MappedFile file(path);
  const std::string what = path + ": not a usable lowbit baseline file";
  if (file.size() < 8 + 4 + 16 || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0)
    throw Error(what + ": bad magic or too short (record one from the full-precision model)");
  uint32_t version = 0;
  std::memcpy(&version, file.data() + 8, 4);
  if (version != kVersion)
    throw Error(what + ": version " + std::to_string(version) + ", this lowbit reads version " +
                std::to_string(kVersion) + " (record the baseline again)");
  // The checksum first: a truncated or patched file is refused before any of it is believed.
  const size_t body = file.size() - 16;
  const XXH128_hash_t sum = XXH3_128bits(file.data(), body);
  uint64_t high = 0, low = 0;
  std::memcpy(&high, file.data() + body, 8);
  std::memcpy(&low, file.data() + body + 8, 8);
  if (sum.high64 != high || sum.low64 != low)
    throw Error(what +
                ": its checksum does not match its content (truncated, corrupted or edited); "
                "record it again");
  io::ByteReader r(file.data() + 12, body - 12, what);
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
  if (r.remaining() != 0) r.fail("it has bytes after the data the header describes");
  for (int32_t id : b.top_ids)
    if (id < 0 || id >= b.n_vocab) r.fail("a top-k token id lies outside the vocabulary");
  // What a model can produce: NLL >= 0 and log-probabilities <= 0, all finite (NaN never passes).
  for (size_t i = 0; i < b.nll.size(); ++i)
    if (!(b.nll[i] >= 0 && std::isfinite(b.nll[i])))
      r.fail("the NLL of scored token " + std::to_string(i) + " is " + std::to_string(b.nll[i]));
  for (size_t i = 0; i < b.top_logprobs.size(); ++i)
    if (!(b.top_logprobs[i] <= 1e-5f && std::isfinite(b.top_logprobs[i])))
      r.fail("a top-k log-probability (entry " + std::to_string(i) + ") is " +
             std::to_string(b.top_logprobs[i]));
  return b;
}

}  // namespace lowbit::eval
