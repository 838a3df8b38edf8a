// Perplexity over windows (llama.cpp's method) and comparison with a recorded baseline.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/util/error.h"
#include "util/fnv.h"
#include "util/memory.h"

namespace lowbit::eval {
namespace {

constexpr int kLogitRows = 64;  // rows of logits held at once (64 x vocab floats)

}  // namespace

uint64_t hash_tokens(const std::vector<int32_t>& tokens, size_t count, int n_ctx) {
  util::Fnv1a f;
  f.u64_bytes(uint64_t(n_ctx));
  for (size_t i = 0; i < count; ++i) f.u64_bytes(uint32_t(tokens[i]));
  return f.h;
}

TextWindows make_windows(const model::Tokenizer& tokenizer, const std::string& text,
                         const std::string& text_name, int n_ctx, int64_t max_tokens) {
  return windows_of(tokenizer.encode_prefix(text, size_t(std::max<int64_t>(0, max_tokens))),
                    tokenizer.adds_bos() ? tokenizer.bos_id() : -1, n_ctx, max_tokens, text_name);
}

TextWindows windows_of(std::vector<int32_t> tokens, int32_t bos, int n_ctx, int64_t max_tokens,
                       const std::string& text_name) {
  if (n_ctx < 8) throw Error("the context length must be at least 8 tokens");
  TextWindows w;
  w.tokens = std::move(tokens);
  w.bos = bos;
  w.n_ctx = n_ctx;
  w.max_tokens = max_tokens;
  const int64_t usable = max_tokens > 0 ? std::min<int64_t>(max_tokens, int64_t(w.tokens.size()))
                                        : int64_t(w.tokens.size());
  w.n_windows = usable / n_ctx;
  if (w.n_windows < 1)
    throw Error(text_name + " has " + std::to_string(w.tokens.size()) + " tokens" +
                (max_tokens > 0 ? " (" + std::to_string(max_tokens) + " allowed)" : std::string()) +
                ", fewer than one window of the context length " + std::to_string(n_ctx));
  w.hash = hash_tokens(w.tokens, size_t(w.n_windows * n_ctx), n_ctx);
  return w;
}

std::vector<int32_t> TextWindows::window(int64_t w) const {
  if (w < 0 || w >= n_windows)
    throw Error("internal: window " + std::to_string(w) + " of " + std::to_string(n_windows));
  std::vector<int32_t> out(tokens.begin() + w * n_ctx, tokens.begin() + (w + 1) * n_ctx);
  if (bos >= 0) out[0] = bos;
  return out;
}

namespace {

Distribution describe(std::vector<double> v) {
  Distribution d;
  if (v.empty()) return d;
  const double n = double(v.size());
  d.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double var = 0;
  for (double x : v) var += (x - d.mean) * (x - d.mean);
  d.stderr_ = v.size() > 1 ? std::sqrt(var / (n - 1) / n) : 0;
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * (n - 1) + 0.5))]; };
  d.median = at(0.5);
  d.p99 = at(0.99);
  d.max = v.back();
  return d;
}

// Log-sum-exp of a row, in double.
double log_sum_exp(const float* row, int n) {
  const float max = *std::max_element(row, row + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(row[i]) - max);
  return max + std::log(sum);
}

}  // namespace

PerplexityResult perplexity(const model::Model& m, const std::string& text,
                            const PerplexityOptions& opt) {
  if (!m.llama)
    throw Error(
        "perplexity needs a decoder model (this one is an encoder; use sentence embeddings)");
  const TextWindows w = make_windows(*m.tokenizer, text, "the text", opt.n_ctx, opt.max_tokens);
  return perplexity(*m.llama, w, m.path + " (" + m.summary() + ")", opt);
}

PerplexityResult perplexity(const model::Decoder& decoder, const std::vector<int32_t>& tokens,
                            int32_t bos, const std::string& description,
                            const PerplexityOptions& opt) {
  return perplexity(decoder, windows_of(tokens, bos, opt.n_ctx, opt.max_tokens, "the text"),
                    description, opt);
}

PerplexityResult perplexity(const model::Decoder& decoder, const TextWindows& windows,
                            const std::string& description, const PerplexityOptions& opt) {
  const std::unique_ptr<model::Decoder::Pass> pass = decoder.pass(windows.n_ctx);
  return perplexity(decoder, *pass, windows, description, opt);
}

PerplexityResult perplexity(const model::Decoder& decoder, model::Decoder::Pass& pass,
                            const TextWindows& windows, const std::string& description,
                            const PerplexityOptions& opt) {
  const int n_ctx = windows.n_ctx;
  const int n_vocab = decoder.vocab_size();
  const std::vector<int32_t>& tokens = windows.tokens;
  PerplexityResult res;
  res.text_tokens = int64_t(tokens.size());
  res.n_ctx = n_ctx;
  res.n_windows = windows.n_windows;
  const int first = windows.first_scored();
  const int per_window = windows.scored_per_window();
  const uint64_t hash = windows.hash;
  const Baseline* base = opt.compare_to;
  if (base) {
    if (base->n_ctx != n_ctx || base->n_windows != res.n_windows || base->n_vocab != n_vocab ||
        base->tokens_hash != hash)
      throw Error(
          "the baseline was recorded on a different text, context size, token budget or tokenizer "
          "(baseline: "
          "ctx " +
          std::to_string(base->n_ctx) + ", " + std::to_string(base->n_windows) +
          " windows, vocab " + std::to_string(base->n_vocab) + "); record the baseline again");
  }
  const int top_k = std::min(opt.baseline_top_k, n_vocab);
  if (opt.record) {
    // per scored token: its NLL, top_k ids and log-probabilities
    util::require_memory(double(res.n_windows) * per_window * (8.0 + 8.0 * top_k),
                         "recording a baseline with top-" + std::to_string(top_k) +
                             " log-probabilities for " +
                             std::to_string(res.n_windows * per_window) + " tokens",
                         "keep fewer top-k log-probabilities, or use a smaller token budget");
    Baseline& b = res.recorded;
    b.n_ctx = n_ctx;
    b.n_vocab = n_vocab;
    b.top_k = top_k;
    b.n_windows = res.n_windows;
    b.scored_per_window = per_window;
    b.tokens_hash = hash;
    b.model = description;
  }

  std::vector<float> logits(size_t(kLogitRows) * size_t(n_vocab));
  std::vector<int32_t> order(static_cast<size_t>(n_vocab));
  std::vector<double> kld;
  int64_t same_top1 = 0;
  double nll_sum = 0, nll2_sum = 0, base_sum = 0, diff_sum = 0, diff2_sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t w = 0; w < res.n_windows; ++w) {
    const size_t start = size_t(w) * size_t(n_ctx);
    const std::vector<int32_t> window = windows.window(w);
    pass.forward(window.data(), n_ctx);
    for (int row0 = first; row0 < first + per_window; row0 += kLogitRows) {
      const int rows = std::min(kLogitRows, first + per_window - row0);
      pass.logits(row0, rows, logits.data());
      for (int r = 0; r < rows; ++r) {
        const float* row = logits.data() + size_t(r) * size_t(n_vocab);
        const int pos = row0 + r;
        const int32_t target = tokens[start + size_t(pos) + 1];
        const double lse = log_sum_exp(row, n_vocab);
        const double nll = lse - row[target];
        if (!std::isfinite(nll))
          throw Error("the model's output is not a number (NLL " + std::to_string(nll) +
                      " at token " + std::to_string(start + size_t(pos) + 1) + ", window " +
                      std::to_string(w + 1) +
                      "): the weights or the recipe produce non-finite logits, so no perplexity "
                      "can be reported");
        const size_t idx = size_t(w) * size_t(per_window) + size_t(pos - first);
        nll_sum += nll;
        nll2_sum += nll * nll;
        res.nll.push_back(float(nll));
        if (opt.record) {
          std::iota(order.begin(), order.end(), 0);
          std::partial_sort(
              order.begin(), order.begin() + top_k, order.end(),
              [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
          res.recorded.nll.push_back(nll);
          for (int k = 0; k < top_k; ++k) {
            res.recorded.top_ids.push_back(order[size_t(k)]);
            res.recorded.top_logprobs.push_back(float(row[order[size_t(k)]] - lse));
          }
        }
        if (base) {
          // KL(P_base || Q) over the baseline's top-k tokens plus the lumped rest.
          const int32_t* ids = base->top_ids.data() + idx * size_t(base->top_k);
          const float* lp = base->top_logprobs.data() + idx * size_t(base->top_k);
          double kl = 0, p_top = 0, q_top = 0;
          for (int k = 0; k < base->top_k; ++k) {
            // q's log-probability rounded to float as the baseline's were, so that identical
            // logits give exactly zero (the rounding is far below any divergence of interest).
            const double p = std::exp(double(lp[k])), lq = double(float(double(row[ids[k]]) - lse));
            kl += p * (double(lp[k]) - lq);
            p_top += p;
            q_top += std::exp(lq);
          }
          const double p_rest = std::max(0.0, 1.0 - p_top), q_rest = std::max(1e-30, 1.0 - q_top);
          if (p_rest > 1e-12) kl += p_rest * (std::log(p_rest) - std::log(q_rest));
          kld.push_back(std::max(0.0, kl));
          const int32_t top1 = int32_t(std::max_element(row, row + n_vocab) - row);
          same_top1 += top1 == ids[0];
          const double d = nll - double(base->nll[idx]);
          base_sum += base->nll[idx];
          diff_sum += d;
          diff2_sum += d * d;
        }
      }
    }
    if (opt.progress) opt.progress(w + 1, res.n_windows);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.n_scored = int64_t(res.nll.size());
  const double n = double(res.n_scored);
  const double mean = nll_sum / n;
  res.ppl = std::exp(mean);
  // llama.cpp's uncertainty: PPL times the standard error of the mean NLL.
  const double var = nll2_sum / n - mean * mean;
  res.ppl_stderr = n > 1 ? res.ppl * std::sqrt(std::max(0.0, var) / (n - 1)) : 0;
  res.tokens_per_second = double(res.n_windows * n_ctx) / res.seconds;
  res.gflops = decoder.flops(n_ctx, per_window) * double(res.n_windows) / res.seconds * 1e-9;
  if (base) {
    res.compared = true;
    res.base_ppl = std::exp(base_sum / n);
    res.delta_ppl = res.ppl - res.base_ppl;
    res.ppl_ratio = res.ppl / res.base_ppl;
    // Paired per-token differences d = NLL - NLL(base): mean(d) = ln(PPL / PPL(base)); ΔPPL's
    // uncertainty by the delta method is PPL times the standard error of mean(d).
    const double mean_d = diff_sum / n;
    const double se_d =
        n > 1 ? std::sqrt(std::max(0.0, diff2_sum / n - mean_d * mean_d) / (n - 1)) : 0;
    res.ln_ppl_ratio = mean_d;
    res.ln_ppl_ratio_stderr = se_d;
    res.delta_ppl_stderr = res.ppl * se_d;
    res.kld = describe(std::move(kld));
    res.top1_agreement = double(same_top1) / n;
    res.top1_stderr =
        n > 1 ? std::sqrt(res.top1_agreement * (1 - res.top1_agreement) / (n - 1)) : 0;
  }
  return res;
}

}  // namespace lowbit::eval
