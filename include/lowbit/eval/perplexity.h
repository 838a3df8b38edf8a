// lowbit/eval/perplexity.h — how good a decoder is on a text: perplexity the way llama.cpp
// measures it, over the one window set-up, and the distance of a run from a recorded baseline
// (KL divergence, top-1 agreement, ΔPPL — the figures llama.cpp's --kl-divergence reports).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/eval/baseline.h"
#include "lowbit/model/model.h"

namespace lowbit::eval {

struct PerplexityOptions {
  int n_ctx = 512;
  int64_t max_tokens = 0;   // 0: all whole windows of the text
  int baseline_top_k = 64;  // recorded when `record` is set
  bool record = false;      // fill result.recorded
  const Baseline* compare_to = nullptr;
  // Called after each window with (windows done, windows total).
  std::function<void(int64_t, int64_t)> progress;
};

struct Distribution {
  double mean = 0, stderr_ = 0, median = 0, p99 = 0, max = 0;
};

struct PerplexityResult {
  int64_t text_tokens =
      0;  // tokens tokenized: the whole text, or the budget (Tokenizer::encode_prefix)
  int64_t n_windows = 0;
  int64_t n_scored = 0;  // tokens whose log-likelihood counts (second half of each window)
  int n_ctx = 0;
  double ppl = 0, ppl_stderr = 0;
  double seconds = 0;            // model time (forward + logits)
  double tokens_per_second = 0;  // window tokens processed per second
  double gflops = 0;             // arithmetic rate of the model over the run
  std::vector<float> nll;        // per scored token
  Baseline recorded;             // when options.record
  // Against options.compare_to:
  bool compared = false;
  double base_ppl = 0, delta_ppl = 0, delta_ppl_stderr = 0, ppl_ratio = 0;
  double ln_ppl_ratio = 0,
         ln_ppl_ratio_stderr = 0;  // mean of NLL - NLL(base), as llama.cpp reports
  Distribution kld;
  double top1_agreement = 0, top1_stderr = 0;
};

// The one window set-up every decoder evaluation uses: the text's tokens (all of them, or the
// budget's prefix: Tokenizer::encode_prefix), cut into whole windows of n_ctx; each window's first
// token is replaced by BOS when the tokenizer adds one.
struct TextWindows {
  std::vector<int32_t> tokens;
  int32_t bos = -1;
  int n_ctx = 0;
  int64_t max_tokens = 0;  // the budget (0: the whole text)
  int64_t n_windows = 0;
  uint64_t hash = 0;  // hash_tokens over the windows' tokens
  std::vector<int32_t> window(int64_t w) const;
  // The second half of each window is scored: positions n_ctx/2 .. n_ctx-2 predict the next token.
  int first_scored() const { return n_ctx / 2; }
  int scored_per_window() const { return n_ctx - 1 - first_scored(); }
};
// Throws lowbit::Error naming `text_name` when the text has fewer tokens than one window.
TextWindows make_windows(const model::Tokenizer& tokenizer, const std::string& text,
                         const std::string& text_name, int n_ctx, int64_t max_tokens);
// The same over tokens already encoded.
TextWindows windows_of(std::vector<int32_t> tokens, int32_t bos, int n_ctx, int64_t max_tokens,
                       const std::string& text_name);

// FNV-1a of n_ctx and the first `count` token ids: what a Baseline's tokens_hash holds for the
// tokens it was recorded on.
uint64_t hash_tokens(const std::vector<int32_t>& tokens, size_t count, int n_ctx);

// Tokenizes `text` and evaluates over non-overlapping windows of n_ctx tokens, scoring the second
// half of each window as llama.cpp's perplexity tool does (each scored token sees at least
// n_ctx/2 tokens of context). Throws lowbit::Error when the text is shorter than one window or
// the baseline was recorded on something else.
PerplexityResult perplexity(const model::Model& model, const std::string& text,
                            const PerplexityOptions& options);
// The same over tokens already encoded; `bos` (when >= 0) replaces the first token of each window,
// `description` names the model in a recorded baseline.
PerplexityResult perplexity(const model::Decoder& decoder, const std::vector<int32_t>& tokens,
                            int32_t bos, const std::string& description,
                            const PerplexityOptions& options);
// The same over windows already set up (their n_ctx and budget replace the options').
PerplexityResult perplexity(const model::Decoder& decoder, const TextWindows& windows,
                            const std::string& description, const PerplexityOptions& options);
// The same through a pass the caller made (one that resumes from cached activations, say): it
// must compute what decoder.pass(windows.n_ctx) would, window after window in order.
PerplexityResult perplexity(const model::Decoder& decoder, model::Decoder::Pass& pass,
                            const TextWindows& windows, const std::string& description,
                            const PerplexityOptions& options);

}  // namespace lowbit::eval
