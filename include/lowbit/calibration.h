// lowbit/calibration.h — calibration data for the PTQ methods: token sequences from a text (one
// different from the evaluation text), and a runner that pushes them through a model one
// transformer block at a time, so a method can look at (and change) block l with the inputs that
// the already-processed blocks produce, holding only one residual stream per sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/llama.h"
#include "lowbit/tokenizer.h"

namespace lowbit::ptq {

struct Calibration {
  std::vector<std::vector<int32_t>> sequences;  // each of the same length
  std::string id;                               // identifies the data: text hash, count, length
  std::string description;                      // "austen_emma.txt: 32 sequences of 512 tokens"
};

// `count` sequences of `length` tokens spread evenly over the text (the first token of each
// replaced by BOS when the tokenizer adds one). Throws lowbit::Error when the text is too short.
Calibration make_calibration(const model::Tokenizer& tokenizer, const std::string& text, const std::string& name, int count,
                             int length);

class LayerwiseRunner {
 public:
  // Embeds every sequence with `model`'s embedding.
  LayerwiseRunner(const model::Llama& model, const Calibration& calibration);
  // Runs block `layer` of `model` on every sequence's current residual stream (the Linears'
  // probes see their inputs); with `advance`, the streams become the block's outputs.
  void run_layer(const model::Llama& model, int layer, bool advance);
  size_t tokens() const;

 private:
  const Calibration& calibration_;
  model::LlamaRunState state_;
  std::vector<std::vector<float>> streams_;
};

}  // namespace lowbit::ptq
