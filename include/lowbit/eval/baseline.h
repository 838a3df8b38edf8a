// lowbit/eval/baseline.h — what a full-precision run records for recipes to be measured against:
// per scored token its negative log-likelihood and top-k log-probabilities; saved atomically
// with a checksum, refused when it does not fit the text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::eval {

// What a baseline run records per scored token: the target's negative log-likelihood, the top-k
// log-probabilities (ids and values, best first). KL is computed over those k tokens plus one
// lumped "rest" bucket, which bounds the full-vocabulary KL from below and equals it when the
// k tokens hold all the mass (DESIGN: docs/models.md).
struct Baseline {
  int32_t n_ctx = 0, n_vocab = 0, top_k = 0;
  int64_t n_windows = 0, scored_per_window = 0;
  uint64_t tokens_hash = 0;      // of the evaluated token ids: a baseline only fits the same text
  std::string model;             // description of what produced it
  std::vector<double> nll;       // [n_scored]
  std::vector<int32_t> top_ids;  // [n_scored, top_k]
  std::vector<float> top_logprobs;  // [n_scored, top_k]

  void save(const std::string& path) const;  // atomic
  static Baseline load(const std::string& path);
};

}  // namespace lowbit::eval
