// Sentence embeddings of an encoder and their cosine similarity to a baseline.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "lowbit/eval/embeddings.h"

#include "eval/rank_correlation.h"
#include "lowbit/eval/evaluate.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/util/error.h"
#include "util/fnv.h"
#include "util/memory.h"

namespace lowbit::eval {

namespace {

// A sentence's ids with the model's markers, truncated to max_tokens keeping the final [SEP].
std::vector<int32_t> encode_sentence(const model::Tokenizer& tokenizer, const std::string& text,
                                     int max_tokens) {
  std::vector<int32_t> ids = tokenizer.encode_for_model(text);
  if (max_tokens > 0 && int(ids.size()) > max_tokens) {
    const int32_t last = ids.back();
    ids.resize(size_t(max_tokens));
    ids.back() = last;
  }
  return ids;
}

}  // namespace

std::vector<float> embed_sentences(const model::Model& m, const std::vector<std::string>& sentences,
                                   int max_tokens) {
  if (!m.bert) throw Error("sentence embeddings need an encoder model (BERT)");
  if (max_tokens <= 0) max_tokens = m.bert->config().max_sequence_tokens;
  Sentences s;
  for (const std::string& text : sentences)
    s.tokens.push_back(encode_sentence(*m.tokenizer, text, max_tokens));
  return embed_all(*m.bert, s);
}

Sentences make_sentences(const model::Tokenizer& tokenizer, const std::string& text,
                         const std::string& text_name, int max_tokens) {
  Sentences s;
  std::istringstream lines(text);
  util::Fnv1a f;
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<int32_t> ids = encode_sentence(tokenizer, line, max_tokens);
    f.u64_bytes(ids.size());
    for (int32_t t : ids) f.u64_bytes(uint32_t(t));
    s.tokens.push_back(std::move(ids));
  }
  if (s.tokens.empty())
    throw Error(text_name +
                ": no non-empty lines to embed (an encoder's text is one sentence per line)");
  s.hash = f.h;
  return s;
}

std::vector<float> embed_all(const model::Encoder& encoder, const Sentences& sentences) {
  constexpr size_t kBatch = 32;
  const size_t width = size_t(encoder.embedding_width());
  std::vector<float> out;
  out.reserve(sentences.tokens.size() * width);
  for (size_t b0 = 0; b0 < sentences.tokens.size(); b0 += kBatch) {
    const std::vector<std::vector<int32_t>> batch(
        sentences.tokens.begin() + int64_t(b0),
        sentences.tokens.begin() + int64_t(std::min(sentences.tokens.size(), b0 + kBatch)));
    const std::vector<float> e = encoder.embed(batch);
    for (size_t k = 0; k < e.size(); ++k)
      if (!std::isfinite(e[k]))
        throw Error("the embedding of sentence " + std::to_string(b0 + k / width + 1) +
                    " is not a number: the weights or the recipe produce non-finite values");
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

namespace {

double dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int k = 0; k < n; ++k) s += double(a[k]) * double(b[k]);
  return s;
}

}  // namespace

EmbeddingScores compare_embeddings(const std::vector<float>& e, const std::vector<float>& base,
                                   int width) {
  const CosineResult c = cosine_to_baseline(e, base, width);
  EmbeddingScores s;
  s.sentences = c.n;
  s.cosine_mean = c.mean;
  s.cosine_min = c.min;
  // Pairwise similarities (the embeddings are L2-normalised: cosine = dot product).
  const size_t n = size_t(c.n);
  util::require_memory(16.0 * double(n) * double(n),
                       "the pairwise similarities of " + std::to_string(n) + " sentences",
                       "use a text with fewer lines");
  std::vector<double> sim_base, sim;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      sim_base.push_back(
          dot(base.data() + i * size_t(width), base.data() + j * size_t(width), width));
      sim.push_back(dot(e.data() + i * size_t(width), e.data() + j * size_t(width), width));
    }
  s.pairs = int64_t(sim.size());
  s.rank_correlation = sim.empty() ? 1.0 : pearson(ranks(sim_base), ranks(sim));
  return s;
}

CosineResult cosine_to_baseline(const std::vector<float>& a, const std::vector<float>& b, int dim) {
  if (a.size() != b.size() || dim <= 0 || a.size() % size_t(dim) != 0)
    throw Error("embeddings and baseline differ in shape (" + std::to_string(a.size()) + " vs " +
                std::to_string(b.size()) +
                " values): record the baseline again on the same sentences");
  CosineResult r;
  r.n = int64_t(a.size() / size_t(dim));
  r.min = 1;
  double sum = 0;
  for (int64_t i = 0; i < r.n; ++i) {
    double dot = 0, na = 0, nb = 0;
    for (int k = 0; k < dim; ++k) {
      const double x = a[size_t(i) * size_t(dim) + size_t(k)],
                   y = b[size_t(i) * size_t(dim) + size_t(k)];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    const double c = dot / std::max(1e-30, std::sqrt(na * nb));
    sum += c;
    r.min = std::min(r.min, c);
  }
  r.mean = r.n ? sum / double(r.n) : 0;
  return r;
}

}  // namespace lowbit::eval
