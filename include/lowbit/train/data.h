// lowbit/train/data.h — batches of next-token examples over a token stream: the stream cut into
// windows of seq + 1 tokens (consecutive windows share one token: each input's last target is
// the next input's first token), visited in a seeded random order that is drawn afresh each
// epoch. The position (epoch, window) is all the state, so a checkpoint stores two numbers.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::train {

struct Batch {
  int batch = 0, seq = 0;
  std::vector<int32_t> tokens, targets;  // [batch · seq]
};

// The first `fraction` of a stream for training, the rest held out (cut at a token boundary).
struct StreamSplit {
  std::vector<int32_t> train, validation;
};
StreamSplit split_stream(const std::vector<int32_t>& tokens, double validation_fraction);

class BatchStream {
 public:
  // Throws lowbit::Error when the stream holds fewer than batch windows of seq + 1 tokens.
  BatchStream(std::vector<int32_t> tokens, int batch, int seq, uint64_t seed);
  Batch next();  // the next `batch` windows, moving on to a new epoch when one runs out
  int64_t windows() const { return int64_t(order_.size()); }
  // Where the next batch starts; restoring it replays the same batches.
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }
  void seek(int64_t epoch, int64_t position);

 private:
  void shuffle();
  std::vector<int32_t> tokens_;
  int batch_, seq_;
  uint64_t seed_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0, position_ = 0;
};

// Windows of seq + 1 tokens from the start of `tokens`, in order, at most max_batches batches of
// `batch` (a last, partial batch included): the fixed validation set.
std::vector<Batch> fixed_batches(const std::vector<int32_t>& tokens, int batch, int seq,
                                 int max_batches);

}  // namespace lowbit::train
