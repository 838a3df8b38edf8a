// Perplexity and baseline comparison on a tiny random model, against values computed from the
// float64 reference forward: PPL over the second half of each window, KL divergence (exact when
// the baseline keeps the whole vocabulary, a lower bound when it keeps the top k), top-1
// agreement, ΔPPL; baseline files round-trip and refuse a different text.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "error_message.h"
#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/evaluate.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/eval/sweep.h"
#include "lowbit/util/error.h"
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
    for (int i = 0; i < 40; ++i)
      text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
  }
  // log-softmax rows of reference logits
  static std::vector<double> log_softmax(const std::vector<double>& logits, int vocab) {
    std::vector<double> out(logits.size());
    for (size_t r = 0; r < logits.size() / size_t(vocab); ++r) {
      const double* row = logits.data() + r * size_t(vocab);
      double mx = *std::max_element(row, row + vocab), sum = 0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
      for (int v = 0; v < vocab; ++v)
        out[r * size_t(vocab) + size_t(v)] = row[v] - mx - std::log(sum);
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
    for (int i = 16; i < 31; ++i)
      nll -= lp[size_t(i) * size_t(tiny_.vocab) + size_t(window[size_t(i) + 1])];
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
      agree += std::max_element(pr, pr + tiny_.vocab) - pr ==
               std::max_element(qr, qr + tiny_.vocab) - qr;
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

namespace lowbit::testing {
namespace {

// Encoders take recipes: measured against the full-precision embeddings of the same sentences,
// through the same evaluate_recipe and sweep as decoders.
class EncoderRecipes : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyBert::random(3).write_hf(path(""));
    model_ = model::load_model(path(""));
    const char* lines[] = {"the cat sat on the mat.",  "a dog ran!",       "the big dog sat.",
                           "small cats ran on a mat,", "the unknown cat.", "a big mat."};
    for (const char* l : lines) text_ += std::string(l) + "\n";
    sentences_ = eval::make_sentences(*model_.tokenizer, text_, "text", 32);
  }
  eval::RecipeResult evaluate(const ptq::Recipe& r, bool layers = false) {
    const eval::Reference reference(*model_.bert, sentences_,
                                    eval::embed_all(*model_.bert, sentences_), layers);
    return eval::evaluate_recipe(r, *model_.bert, reference, {});
  }
  model::Model model_;
  std::string text_;
  eval::Sentences sentences_;
};

TEST_F(EncoderRecipes, FullPrecisionIsExactAndQuantizationMovesTheEmbeddings) {
  const eval::RecipeResult fp = evaluate(ptq::Recipe());
  EXPECT_TRUE(fp.encoder);
  EXPECT_EQ(fp.embedding.sentences, 6);
  EXPECT_EQ(fp.embedding.pairs, 15);
  EXPECT_NEAR(fp.embedding.cosine_mean, 1.0, 1e-12);
  EXPECT_EQ(fp.embedding.rank_correlation, 1.0);
  ptq::Recipe r;
  r.weights = parse_scheme("int4:g16");
  r.activations = parse_scheme("int8_token");
  const eval::RecipeResult q = evaluate(r, true);
  EXPECT_LT(q.embedding.cosine_mean, 1.0);
  EXPECT_LE(q.embedding.cosine_min, q.embedding.cosine_mean);
  EXPECT_LE(q.embedding.rank_correlation, 1.0);
  EXPECT_GT(q.embedding.rank_correlation, -1.0);
  ASSERT_EQ(q.layers.size(), 12u);  // 6 Linears per layer
  EXPECT_EQ(q.layers[5].site, "layers.0.ffn_out");
  EXPECT_EQ(q.layers[5].role, "ffn_out");
  // The result round-trips through its JSON.
  const eval::RecipeResult back = eval::result_from_json(eval::result_json(q), "q");
  EXPECT_TRUE(back.encoder);
  EXPECT_EQ(back.embedding.rank_correlation, q.embedding.rank_correlation);
  // No KV cache and no rotation plan: clear errors naming the architecture.
  ptq::Recipe kv;
  kv.kv = parse_scheme("int8:token");
  EXPECT_NE(error_of([&] { evaluate(kv); }).find("no KV cache"), std::string::npos);
  ptq::Recipe rot;
  rot.methods.push_back(ptq::parse_method("hadamard"));
  EXPECT_NE(error_of([&] { evaluate(rot); }).find("bert"), std::string::npos);
}

TEST_F(EncoderRecipes, RankCorrelationIsSpearmans) {
  // Embeddings on a circle: the baseline's pairwise similarities, and a version with two
  // sentences swapped (order of pairs changes) must give a correlation below 1.
  const int n = 5, w = 2;
  std::vector<float> base, swapped;
  for (int i = 0; i < n; ++i) {
    const double a = 0.4 * i;
    base.insert(base.end(), {float(std::cos(a)), float(std::sin(a))});
  }
  swapped = base;
  std::swap_ranges(swapped.begin(), swapped.begin() + w, swapped.begin() + 4 * w);
  EXPECT_EQ(eval::compare_embeddings(base, base, w).rank_correlation, 1.0);
  const eval::EmbeddingScores s = eval::compare_embeddings(swapped, base, w);
  EXPECT_LT(s.rank_correlation, 0.9);
  EXPECT_EQ(s.pairs, 10);
}

TEST_F(EncoderRecipes, TheSweepRunsOnEncoders) {
  eval::SweepOptions opt;
  opt.out_dir = path("sweep");
  std::vector<ptq::Recipe> grid(2);
  grid[0].weights = parse_scheme("mxfp4");
  grid[1].weights = parse_scheme("int8:channel");
  const eval::SweepReport r = eval::run_sweep(model_, "text", text_, grid, opt);
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_TRUE(r.setup.encoder);
  EXPECT_GT(r.results[1].embedding.cosine_mean,
            r.results[0].embedding.cosine_mean);  // 8 bits beat 4
  EXPECT_NE(eval::sweep_table(r).find("rank corr"), std::string::npos);
  const eval::SweepReport again = eval::read_sweep_results(path("sweep/results.json"));
  EXPECT_EQ(again.results[0].embedding.cosine_mean, r.results[0].embedding.cosine_mean);
  EXPECT_TRUE(again.setup.encoder);
}

}  // namespace
}  // namespace lowbit::testing
