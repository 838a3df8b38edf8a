// Perplexity and baseline comparison on a tiny random model, against values computed from the
// float64 reference forward: PPL over the second half of each window, KL divergence (exact when
// the baseline keeps the whole vocabulary, a lower bound when it keeps the top k), top-1
// agreement, ΔPPL; baseline files round-trip and refuse a different text.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "lowbit/error.h"
#include "lowbit/eval.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

class EvalTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    tiny_ = TinyLlama::random(21);
    tiny_.write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    for (int i = 0; i < 40; ++i) text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
  }
  // log-softmax rows of reference logits
  static std::vector<double> log_softmax(const std::vector<double>& logits, int vocab) {
    std::vector<double> out(logits.size());
    for (size_t r = 0; r < logits.size() / size_t(vocab); ++r) {
      const double* row = logits.data() + r * size_t(vocab);
      double mx = *std::max_element(row, row + vocab), sum = 0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
      for (int v = 0; v < vocab; ++v) out[r * size_t(vocab) + size_t(v)] = row[v] - mx - std::log(sum);
    }
    return out;
  }
  TinyLlama tiny_;
  model::Model model_;
  std::string text_;
};

TEST_F(EvalTest, PerplexityScoresTheSecondHalfOfEachWindow) {
  eval::PerplexityOptions opt;
  opt.n_ctx = 32;
  const eval::PerplexityResult r = eval::perplexity(model_, text_, opt);
  const std::vector<int32_t> tokens = model_.tokenizer->encode(text_);
  ASSERT_EQ(r.text_tokens, int64_t(tokens.size()));
  ASSERT_EQ(r.n_windows, int64_t(tokens.size()) / 32);
  ASSERT_EQ(r.n_scored, r.n_windows * 15);  // positions 16 .. 30 predict 17 .. 31
  double nll = 0;
  for (int64_t w = 0; w < r.n_windows; ++w) {
    const std::vector<int32_t> window(tokens.begin() + w * 32, tokens.begin() + (w + 1) * 32);
    const std::vector<double> lp = log_softmax(tiny_.reference_logits(window), tiny_.vocab);
    for (int i = 16; i < 31; ++i) nll -= lp[size_t(i) * size_t(tiny_.vocab) + size_t(window[size_t(i) + 1])];
  }
  const double want = std::exp(nll / double(r.n_scored));
  EXPECT_NEAR(r.ppl, want, 1e-5 * want);
  EXPECT_GT(r.ppl_stderr, 0);
  // --max-tokens caps the windows.
  opt.max_tokens = 70;
  EXPECT_EQ(eval::perplexity(model_, text_, opt).n_windows, 2);
  opt.max_tokens = 20;
  EXPECT_THROW(eval::perplexity(model_, text_, opt), Error);
}

TEST_F(EvalTest, SameModelAgainstItsBaselineHasZeroDivergence) {
  eval::PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.record = true;
  opt.baseline_top_k = 8;
  const eval::PerplexityResult base = eval::perplexity(model_, text_, opt);
  base.recorded.save(path("base.bin"));
  const eval::Baseline loaded = eval::Baseline::load(path("base.bin"));
  EXPECT_EQ(loaded.top_ids, base.recorded.top_ids);
  EXPECT_EQ(loaded.nll, base.recorded.nll);
  opt.record = false;
  opt.compare_to = &loaded;
  const eval::PerplexityResult r = eval::perplexity(model_, text_, opt);
  EXPECT_TRUE(r.compared);
  EXPECT_NEAR(r.kld.mean, 0.0, 1e-9);
  EXPECT_NEAR(r.kld.max, 0.0, 1e-9);
  EXPECT_EQ(r.top1_agreement, 1.0);
  EXPECT_NEAR(r.delta_ppl, 0.0, 1e-9);
  EXPECT_NEAR(r.base_ppl, base.ppl, 1e-6 * base.ppl);
}

TEST_F(EvalTest, KlDivergenceOfAPerturbedModelIsExactWithTheWholeVocabulary) {
  eval::PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.max_tokens = 64;
  opt.record = true;
  opt.baseline_top_k = tiny_.vocab;  // everything: the lumped rest is empty, KL is exact
  const eval::Baseline full = eval::perplexity(model_, text_, opt).recorded;
  opt.baseline_top_k = 4;
  const eval::Baseline top4 = eval::perplexity(model_, text_, opt).recorded;

  // Perturb one weight matrix, in the loaded model and in the reference.
  TinyLlama other = tiny_;
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  for (float& w : other.layers[0].w_up) w += noise(rng);
  model_.llama->weights().layers[0].w_up.set_weight(other.layers[0].w_up);

  opt.record = false;
  opt.compare_to = &full;
  const eval::PerplexityResult r = eval::perplexity(model_, text_, opt);
  opt.compare_to = &top4;
  const eval::PerplexityResult r4 = eval::perplexity(model_, text_, opt);

  const std::vector<int32_t> tokens = model_.tokenizer->encode(text_);
  double kl_sum = 0;
  int agree = 0, n = 0;
  for (int w = 0; w < 2; ++w) {
    const std::vector<int32_t> window(tokens.begin() + w * 32, tokens.begin() + (w + 1) * 32);
    const auto p = log_softmax(tiny_.reference_logits(window), tiny_.vocab);
    const auto q = log_softmax(other.reference_logits(window), tiny_.vocab);
    for (int i = 16; i < 31; ++i, ++n) {
      const double* pr = p.data() + size_t(i) * size_t(tiny_.vocab);
      const double* qr = q.data() + size_t(i) * size_t(tiny_.vocab);
      for (int v = 0; v < tiny_.vocab; ++v) kl_sum += std::exp(pr[v]) * (pr[v] - qr[v]);
      agree += std::max_element(pr, pr + tiny_.vocab) - pr == std::max_element(qr, qr + tiny_.vocab) - qr;
    }
  }
  const double kl_want = kl_sum / n;
  EXPECT_GT(kl_want, 1e-4);
  EXPECT_NEAR(r.kld.mean, kl_want, 1e-4 * kl_want + 1e-7);
  EXPECT_NEAR(r.top1_agreement, double(agree) / n, 1e-12);
  EXPECT_GT(r.kld.p99, r.kld.median);
  EXPECT_NEAR(r.ln_ppl_ratio, std::log(r.ppl / r.base_ppl), 1e-9);
  EXPECT_GT(r.delta_ppl_stderr, 0.0);
  // With only the top 4 kept, the lumped estimate never exceeds the exact value.
  EXPECT_LE(r4.kld.mean, r.kld.mean + 1e-9);
  EXPECT_GT(r4.kld.mean, 0.0);
}

TEST_F(EvalTest, BaselineFromAnotherTextIsRefused) {
  eval::PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.record = true;
  const eval::Baseline base = eval::perplexity(model_, text_, opt).recorded;
  opt.record = false;
  opt.compare_to = &base;
  std::string other = text_;
  other[10] = 'X';
  EXPECT_THROW(eval::perplexity(model_, other, opt), Error);
  opt.n_ctx = 64;
  EXPECT_THROW(eval::perplexity(model_, text_, opt), Error);
}

TEST_F(EvalTest, MalformedBaselineFilesAreErrors) {
  eval::PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.max_tokens = 64;
  opt.record = true;
  eval::perplexity(model_, text_, opt).recorded.save(path("base.bin"));
  std::ifstream in(path("base.bin"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t(0), size_t(4), size_t(30), bytes.size() / 2, bytes.size() - 1}) {
    std::ofstream(path("cut.bin"), std::ios::binary) << bytes.substr(0, cut);
    EXPECT_THROW(eval::Baseline::load(path("cut.bin")), Error) << cut;
  }
  std::string bad = bytes;
  bad[0] = 'X';
  std::ofstream(path("bad.bin"), std::ios::binary) << bad;
  EXPECT_THROW(eval::Baseline::load(path("bad.bin")), Error);
}

TEST(EmbeddingCosine, IdenticalIsOneAndShapeMismatchIsAnError) {
  const std::vector<float> a = {1, 0, 0, 1}, b = {1, 0, 1, 1};
  const eval::CosineResult r = eval::cosine_to_baseline(a, b, 2);
  EXPECT_EQ(r.n, 2);
  EXPECT_NEAR(r.min, std::sqrt(0.5), 1e-12);
  EXPECT_NEAR(r.mean, (1 + std::sqrt(0.5)) / 2, 1e-12);
  EXPECT_THROW(eval::cosine_to_baseline(a, {1, 0}, 2), Error);
}

}  // namespace
}  // namespace lowbit::testing
