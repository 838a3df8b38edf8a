// Sentence embeddings of an encoder and their cosine similarity to a baseline.
#include <algorithm>
#include <cmath>

#include "lowbit/error.h"
#include "lowbit/eval.h"

namespace lowbit::eval {

std::vector<float> embed_sentences(const model::Model& m, const std::vector<std::string>& sentences, int max_tokens) {
  if (!m.bert) throw Error("sentence embeddings need an encoder model (BERT)");
  constexpr size_t kBatch = 32;
  if (max_tokens <= 0) max_tokens = m.bert->config().max_sequence_tokens;
  const size_t dim = size_t(m.bert->config().dim);
  std::vector<float> out;
  out.reserve(sentences.size() * dim);
  for (size_t b0 = 0; b0 < sentences.size(); b0 += kBatch) {
    std::vector<std::vector<int32_t>> batch;
    for (size_t i = b0; i < std::min(sentences.size(), b0 + kBatch); ++i) {
      std::vector<int32_t> ids = m.tokenizer->encode_for_model(sentences[i]);
      if (int(ids.size()) > max_tokens) {  // truncate, keeping the final [SEP]
        const int32_t last = ids.back();
        ids.resize(size_t(max_tokens));
        ids.back() = last;
      }
      batch.push_back(std::move(ids));
    }
    const std::vector<float> e = m.bert->embed(batch);
    for (size_t k = 0; k < e.size(); ++k)
      if (!std::isfinite(e[k]))
        throw Error("the embedding of sentence " + std::to_string(b0 + k / dim + 1) +
                    " is not a number: the weights or the recipe produce non-finite values");
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

CosineResult cosine_to_baseline(const std::vector<float>& a, const std::vector<float>& b, int dim) {
  if (a.size() != b.size() || dim <= 0 || a.size() % size_t(dim) != 0)
    throw Error("embeddings and baseline differ in shape (" + std::to_string(a.size()) + " vs " +
                std::to_string(b.size()) + " values): record the baseline again on the same sentences");
  CosineResult r;
  r.n = int64_t(a.size() / size_t(dim));
  r.min = 1;
  double sum = 0;
  for (int64_t i = 0; i < r.n; ++i) {
    double dot = 0, na = 0, nb = 0;
    for (int k = 0; k < dim; ++k) {
      const double x = a[size_t(i) * size_t(dim) + size_t(k)], y = b[size_t(i) * size_t(dim) + size_t(k)];
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
