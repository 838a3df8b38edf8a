// Calibration sequences and the block-by-block runner.
#include "lowbit/ptq/calibration.h"

#include <algorithm>

#include "lowbit/util/error.h"
#include "util/fnv.h"
#include "util/memory.h"

namespace lowbit::ptq {

Calibration make_calibration(const model::Tokenizer& tokenizer, const std::string& text,
                             const std::string& name, int count, int length) {
  if (count < 1 || length < 2) throw Error("calibration needs at least one sequence of two tokens");
  const std::vector<int32_t> tokens = tokenizer.encode(text);
  if (int64_t(tokens.size()) < int64_t(count) * length)
    throw Error(name + ": " + std::to_string(tokens.size()) + " tokens, fewer than " +
                std::to_string(count) + " calibration sequences of " + std::to_string(length));
  Calibration c;
  const int32_t bos = tokenizer.adds_bos() ? tokenizer.bos_id() : -1;
  // Evenly spaced, non-overlapping windows.
  const size_t stride = tokens.size() / size_t(count);
  util::Fnv1a ids;  // over the token ids used, one step per id
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> seq(tokens.begin() + int64_t(size_t(i) * stride),
                             tokens.begin() + int64_t(size_t(i) * stride) + length);
    if (bos >= 0) seq[0] = bos;
    for (int32_t t : seq) ids.step(uint32_t(t));
    c.sequences.push_back(std::move(seq));
  }
  c.id = util::hex64(ids.h) + "/" + std::to_string(count) + "x" + std::to_string(length);
  const std::string base = name.substr(name.find_last_of('/') + 1);
  c.description =
      base + ": " + std::to_string(count) + " sequences of " + std::to_string(length) + " tokens";
  return c;
}

LayerwiseRunner::LayerwiseRunner(const model::Runtime& m, const Calibration& c) : calibration_(c) {
  if (c.sequences.empty()) throw Error("calibration: no sequences");
  const size_t n = c.sequences[0].size();
  runner_ = m.block_runner(int(n));
  const size_t width = runner_->width();
  // The stream of every sequence is kept between blocks.
  util::require_memory(4.0 * double(c.sequences.size()) * double(n) * double(width),
                       "the residual streams of " + std::to_string(c.sequences.size()) +
                           " calibration sequences of " + std::to_string(n) + " tokens",
                       "use fewer or shorter calibration sequences");
  for (const std::vector<int32_t>& seq : c.sequences) {
    if (seq.size() != n) throw Error("calibration: sequences of different lengths");
    streams_.emplace_back(n * width);
    runner_->embed(seq.data(), int(n), streams_.back().data());
  }
}

void LayerwiseRunner::run_layer(int layer, bool advance) {
  const int n = int(calibration_.sequences[0].size());
  for (std::vector<float>& x : streams_) {
    if (advance) {
      runner_->run_block(layer, n, x.data());
    } else {
      scratch_ = x;
      runner_->run_block(layer, n, scratch_.data());
    }
  }
}

size_t LayerwiseRunner::tokens() const {
  return calibration_.sequences.size() * calibration_.sequences[0].size();
}

}  // namespace lowbit::ptq
