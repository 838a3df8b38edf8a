// lowbit/ptq/calibration.h — calibration data for the PTQ methods: token sequences from a text (one
// different from the evaluation text), and a runner that pushes them through a model one
// transformer block at a time, so a method can look at (and change) block l with the inputs that
// the already-processed blocks produce, holding only one residual stream per sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <memory>

#include "lowbit/model/sites.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit::ptq {

struct Calibration {
  std::vector<std::vector<int32_t>> sequences;  // each of the same length
  std::string id;                               // identifies the data: text hash, count, length
  std::string description;                      // "austen_emma.txt: 32 sequences of 512 tokens"
};

// `count` sequences of `length` tokens spread evenly over the text (the first token of each
// replaced by BOS when the tokenizer adds one). Throws lowbit::Error when the text is too short.
Calibration make_calibration(const model::Tokenizer& tokenizer, const std::string& text,
                             const std::string& name, int count, int length);

class LayerwiseRunner {
 public:
  // Embeds every sequence with `model`'s embedding. `model` must outlive the runner: its blocks
  // run as they are when run_layer is called (a method changes block l, then advances).
  LayerwiseRunner(const model::Runtime& model, const Calibration& calibration);
  // Runs block `layer` on every sequence's current stream (the Linears' probes see their
  // inputs); with `advance`, the streams become the block's outputs.
  void run_layer(int layer, bool advance);
  size_t tokens() const;

 private:
  const Calibration& calibration_;
  std::unique_ptr<model::BlockRunner> runner_;
  std::vector<std::vector<float>> streams_;
  std::vector<float> scratch_;
};

}  // namespace lowbit::ptq
