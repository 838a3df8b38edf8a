// lowbit/eval/embeddings.h — how close an encoder's sentence embeddings are to a baseline's:
// cosine per sentence and the rank correlation of pairwise similarities.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/model/model.h"

namespace lowbit::eval {

// Encoder models: sentence embeddings [n, dim] of the given lines, in batches, each truncated to
// max_tokens (0: the model's sentence-transformers max_seq_length). Non-finite output is an error.
std::vector<float> embed_sentences(const model::Model& model,
                                   const std::vector<std::string>& sentences, int max_tokens = 0);
struct CosineResult {
  int64_t n = 0;
  double mean = 0, min = 0;
};
CosineResult cosine_to_baseline(const std::vector<float>& embeddings,
                                const std::vector<float>& baseline, int dim);

// Encoders are measured on sentences: each non-empty line of the text, truncated to the model's
// max_sequence_tokens; the pairs compared are all pairs of sentences.
struct Sentences {
  std::vector<std::vector<int32_t>> tokens;  // markers ([CLS] ... [SEP]) included
  uint64_t hash = 0;                         // of every sentence's token ids
};
Sentences make_sentences(const model::Tokenizer& tokenizer, const std::string& text,
                         const std::string& text_name, int max_tokens);
// Embeddings [n, width] of the sentences, in batches; non-finite output is a lowbit::Error.
std::vector<float> embed_all(const model::Encoder& encoder, const Sentences& sentences);

// How close an encoder's embeddings are to the full-precision ones.
struct EmbeddingScores {
  int64_t sentences = 0, pairs = 0;
  double cosine_mean = 0, cosine_min = 0;  // cosine of each sentence's embedding to its baseline
  // Spearman's rank correlation between the pairwise cosine similarities of the baseline's
  // embeddings and of these (1: every pair ranked alike — retrieval order preserved).
  double rank_correlation = 0;
};
EmbeddingScores compare_embeddings(const std::vector<float>& embeddings,
                                   const std::vector<float>& baseline, int width);

}  // namespace lowbit::eval
