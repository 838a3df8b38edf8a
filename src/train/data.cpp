// Token streams into batches (lowbit/train/data.h).
#include "lowbit/train/data.h"

#include <string>

#include "lowbit/util/error.h"
#include "util/splitmix.h"

namespace lowbit::train {

namespace {
void copy_window(const std::vector<int32_t>& tokens, int64_t window, int seq, int row, Batch& b) {
  const size_t from = size_t(window) * size_t(seq);
  for (int i = 0; i < seq; ++i) {
    b.tokens[size_t(row) * seq + i] = tokens[from + i];
    b.targets[size_t(row) * seq + i] = tokens[from + i + 1];
  }
}

int64_t window_count(size_t tokens, int seq) {
  return tokens < 2 ? 0 : int64_t((tokens - 1) / size_t(seq));
}
}  // namespace

StreamSplit split_stream(const std::vector<int32_t>& tokens, double validation_fraction) {
  if (!(validation_fraction >= 0 && validation_fraction < 1))
    throw Error("data: the validation fraction must be in [0, 1)");
  const size_t cut = size_t(double(tokens.size()) * (1.0 - validation_fraction));
  return {std::vector<int32_t>(tokens.begin(), tokens.begin() + cut),
          std::vector<int32_t>(tokens.begin() + cut, tokens.end())};
}

BatchStream::BatchStream(std::vector<int32_t> tokens, int batch, int seq, uint64_t seed)
    : tokens_(std::move(tokens)), batch_(batch), seq_(seq), seed_(seed) {
  if (batch < 1 || seq < 1) throw Error("data: batch and sequence length must be at least 1");
  const int64_t n = window_count(tokens_.size(), seq);
  if (n < batch)
    throw Error("data: the training text gives " + std::to_string(n) + " windows of " +
                std::to_string(seq + 1) + " tokens, fewer than one batch of " +
                std::to_string(batch) + ": use more text, a shorter seq_len or a smaller batch");
  order_.resize(size_t(n));
  shuffle();
}

void BatchStream::shuffle() {
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = int64_t(i);
  uint64_t state = seed_ ^ (uint64_t(epoch_) * 0xD1B54A32D192ED03ULL);
  for (size_t i = order_.size(); i > 1; --i)  // Fisher-Yates
    std::swap(order_[i - 1], order_[size_t(util::splitmix64(state) % i)]);
}

void BatchStream::seek(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position > windows())
    throw Error("data: position " + std::to_string(position) + " of epoch " +
                std::to_string(epoch) + " is outside the " + std::to_string(windows()) +
                " windows of the stream (was the checkpoint made on other text?)");
  epoch_ = epoch;
  position_ = position;
  shuffle();
}

Batch BatchStream::next() {
  Batch b;
  b.batch = batch_;
  b.seq = seq_;
  b.tokens.resize(size_t(batch_) * seq_);
  b.targets.resize(b.tokens.size());
  for (int r = 0; r < batch_; ++r) {
    if (position_ == windows()) {  // the epoch's last windows that do not fill a batch go on
      ++epoch_;
      position_ = 0;
      shuffle();
    }
    copy_window(tokens_, order_[size_t(position_++)], seq_, r, b);
  }
  return b;
}

std::vector<Batch> fixed_batches(const std::vector<int32_t>& tokens, int batch, int seq,
                                 int max_batches) {
  std::vector<Batch> out;
  const int64_t n = window_count(tokens.size(), seq);
  for (int64_t w = 0; w < n && int(out.size()) < max_batches; w += batch) {
    Batch b;
    b.batch = int(std::min<int64_t>(batch, n - w));
    b.seq = seq;
    b.tokens.resize(size_t(b.batch) * seq);
    b.targets.resize(b.tokens.size());
    for (int r = 0; r < b.batch; ++r) copy_window(tokens, w + r, seq, r, b);
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace lowbit::train
