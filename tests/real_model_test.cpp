// Checks on the real models the set-up installs (SmolLM2-135M-Instruct, all-MiniLM-L6-v2). Each
// test skips, with the reason, when its model or the corpora are not installed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/model.h"
#include "lowbit/util/error.h"

#ifndef LOWBIT_CORPORA_DIR
#define LOWBIT_CORPORA_DIR "../shared/corpora"
#endif

namespace lowbit {
namespace {

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string installed(const std::string& name) {
  try {
    return model::resolve_model_path(name);
  } catch (const Error&) {
    return "";
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class SmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (installed("smollm2").empty()) return;
    model_ = new model::Model(model::load_model("smollm2"));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "SmolLM2 is not installed (scripts/install-models.sh)";
  }
  static model::Model* model_;
};
model::Model* SmolLM2::model_ = nullptr;

TEST_F(SmolLM2, ConfigIsWhatTheModelCardSays) {
  const model::LlamaConfig& c = model_->llama->config();
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.dim, 576);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.hidden_dim, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_TRUE(c.tied_output);
  EXPECT_EQ(c.rope_theta, 100000.0f);
}

TEST_F(SmolLM2, PerplexityOnAustenIsInTheRangeOfA135MModel) {
  const std::string path = std::string(LOWBIT_CORPORA_DIR) + "/austen_prideprejudice.txt";
  if (!exists(path)) GTEST_SKIP() << "no corpora at " << LOWBIT_CORPORA_DIR;
  eval::PerplexityOptions opt;
  opt.n_ctx = 256;
  opt.max_tokens = 1024;
  const eval::PerplexityResult r = eval::perplexity(*model_, read_file(path), opt);
  EXPECT_EQ(r.n_windows, 4);
  // A broken runtime (wrong RoPE pairing, a transposed weight) gives PPL in the hundreds or
  // thousands; SmolLM2-135M reads Austen at about 15-25.
  EXPECT_GT(r.ppl, 5.0);
  EXPECT_LT(r.ppl, 40.0);
}

// Tokenizing only the prefix a budget needs gives the whole text's first ids, on every corpus; and
// the whole of Moby Dick tokenizes in seconds (158 s for 1024 scored tokens before the fix).
TEST_F(SmolLM2, PrefixTokenizationEqualsTheWholeTextOnTheCorpora) {
  const std::string dir = LOWBIT_CORPORA_DIR;
  if (!exists(dir + "/mobydick.txt")) GTEST_SKIP() << "no corpora at " << dir;
  for (const char* name : {"mobydick.txt", "austen_emma.txt", "austen_persuasion.txt"}) {
    const std::string text = model::read_text_file(dir + "/" + name);
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> all = model_->tokenizer->encode(text);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(seconds, 30.0) << name << ": " << text.size() << " bytes took " << seconds << " s";
    for (size_t n : {size_t(1000), size_t(4096), size_t(32768)}) {
      const std::vector<int32_t> prefix = model_->tokenizer->encode_prefix(text, n);
      ASSERT_EQ(prefix.size(), n) << name;
      EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), all.begin()))
          << name << ", " << n << " tokens";
    }
  }
}

TEST_F(SmolLM2, GreedyContinuationIsEnglish) {
  const model::Llama& llama = *model_->llama;
  std::vector<int32_t> ids = model_->tokenizer->encode("The capital of France is");
  model::LlamaRunState s(llama.config(), int(ids.size()), 64);
  std::vector<float> logits(size_t(llama.config().vocab_size));
  llama.forward(ids.data(), int(ids.size()), 0, s);
  std::vector<int32_t> out;
  for (int pos = int(ids.size()); out.size() < 4; ++pos) {
    llama.logits(s, s.n_tokens - 1, 1, logits.data());
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    llama.forward(&next, 1, pos, s);
  }
  const std::string text = model_->tokenizer->decode(out);
  EXPECT_NE(text.find("Paris"), std::string::npos) << "continuation: " << text;
}

TEST(MiniLM, ParaphrasesScoreCloserThanUnrelatedSentences) {
  if (installed("minilm").empty())
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not installed (scripts/install-models.sh)";
  const model::Model m = model::load_model("minilm");
  // (sentence, paraphrase, unrelated)
  const std::vector<std::array<std::string, 3>> triples = {
      {"A man is playing a guitar.", "Someone is strumming a guitar.",
       "The stock market fell sharply today."},
      {"The cat sleeps on the sofa.", "A cat is napping on the couch.",
       "Quantum computers use qubits."},
      {"She bought a new car yesterday.", "Yesterday she purchased a new automobile.",
       "Rain is expected tomorrow in Paris."},
      {"It is a truth universally acknowledged that a single man in possession of a good fortune "
       "must be in want of a wife.",
       "Everyone knows a rich bachelor must be looking for a wife.", "Call me Ishmael."},
  };
  for (const auto& t : triples) {
    const std::vector<float> e = eval::embed_sentences(m, {t[0], t[1], t[2]});
    const size_t d = size_t(m.bert->config().dim);
    const auto cos = [&](size_t i, size_t j) {
      double s = 0;
      for (size_t k = 0; k < d; ++k) s += double(e[i * d + k]) * e[j * d + k];
      return s;  // embeddings are unit length
    };
    EXPECT_GT(cos(0, 1), 0.5) << t[0];
    EXPECT_GT(cos(0, 1), cos(0, 2) + 0.3) << t[0] << " | " << t[1] << " vs " << t[2];
  }
}

}  // namespace
}  // namespace lowbit
