// Model-level tests on tiny random models written through lowbit's own writers: the LLaMA
// runtime (from GGUF with llama.cpp's permuted wq/wk, and from Hugging Face safetensors, single
// and sharded, with and without qkv bias) and the BERT encoder against independent float64
// reference forwards; KV-cache decoding against batched prefill.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "lowbit/model/model.h"
#include "lowbit/util/error.h"
#include "model/transformer_ops.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

class TinyModelTest : public TempDirTest {};

std::vector<int32_t> some_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng() % uint32_t(vocab));
  return t;
}

TEST_F(TinyModelTest, LlamaFromGgufMatchesFloat64Reference) {
  const TinyLlama tiny = TinyLlama::random(1);
  tiny.write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  ASSERT_TRUE(m.llama);
  EXPECT_EQ(m.llama->config().n_kv_heads, 2);
  EXPECT_TRUE(m.llama->config().tied_output);
  EXPECT_EQ(m.llama->config().rope_style, model::RopeStyle::AdjacentPairs);
  const auto tokens = some_tokens(40, tiny.vocab, 7);
  EXPECT_LT(max_relative_error(all_logits(*m.llama, tokens), tiny.reference_logits(tokens)), 2e-6);
}

TEST_F(TinyModelTest, LlamaFromSafetensorsMatchesFloat64Reference) {
  for (bool sharded : {false, true}) {
    const TinyLlama tiny = TinyLlama::random(2, /*tied_output=*/false);
    const std::string folder = path(sharded ? "sharded" : "single");
    std::filesystem::create_directories(folder);
    tiny.write_hf(folder, sharded);
    const model::Model m = model::load_model(folder);
    ASSERT_TRUE(m.llama);
    EXPECT_FALSE(m.llama->config().tied_output);
    EXPECT_EQ(m.llama->config().rope_style, model::RopeStyle::HalfSplit);
    const auto tokens = some_tokens(33, tiny.vocab, 8);
    EXPECT_LT(max_relative_error(all_logits(*m.llama, tokens), tiny.reference_logits(tokens)), 2e-6)
        << "sharded " << sharded;
  }
}

TEST_F(TinyModelTest, Qwen2StyleBiasesAreApplied) {
  const TinyLlama tiny = TinyLlama::random(3, /*tied_output=*/true, /*bias=*/true);
  tiny.write_hf(dir_.string());
  const model::Model m = model::load_model(dir_.string());
  ASSERT_TRUE(m.llama->config().qkv_bias);
  const auto tokens = some_tokens(25, tiny.vocab, 9);
  EXPECT_LT(max_relative_error(all_logits(*m.llama, tokens), tiny.reference_logits(tokens)), 2e-6);
}

TEST_F(TinyModelTest, CachedDecodingMatchesBatchedPrefill) {
  const TinyLlama tiny = TinyLlama::random(4);
  tiny.write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  const auto tokens = some_tokens(24, tiny.vocab, 10);
  const std::vector<float> batched = all_logits(*m.llama, tokens);
  const int vocab = tiny.vocab;
  // Prefill 10, then a chunk of 5, then one token at a time.
  model::LlamaRunState s(m.llama->config(), 24, 24);
  std::vector<float> row(size_t(vocab) * 10);
  const auto check_rows = [&](int pos0, int n) {
    m.llama->logits(s, 0, n, row.data());
    for (int r = 0; r < n; ++r)
      for (int v = 0; v < vocab; ++v)
        ASSERT_NEAR(row[size_t(r * vocab + v)], batched[size_t((pos0 + r) * vocab + v)], 1e-4)
            << "position " << pos0 + r;
  };
  m.llama->forward(tokens.data(), 10, 0, s);
  check_rows(0, 10);
  m.llama->forward(tokens.data() + 10, 5, 10, s);
  check_rows(10, 5);
  for (int p = 15; p < 24; ++p) {
    m.llama->forward(tokens.data() + p, 1, p, s);
    check_rows(p, 1);
  }
}

TEST_F(TinyModelTest, ForwardRejectsBadTokensAndPositions) {
  const TinyLlama tiny = TinyLlama::random(5);
  tiny.write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  model::LlamaRunState s(m.llama->config(), 4, 8);
  const int32_t bad[] = {1, 2, 260, 3};
  EXPECT_THROW(m.llama->forward(bad, 4, 0, s), Error);
  const int32_t good[] = {1, 2, 3, 4};
  EXPECT_THROW(m.llama->forward(good, 4, 6, s), Error);  // positions 6..9 exceed the context of 8
  EXPECT_THROW(m.llama->forward(good, 5, 0, s), Error);  // more rows than the run state holds
}

TEST_F(TinyModelTest, ShapeMismatchNamesTheTensor) {
  TinyLlama::random(6).write_gguf(path("good.gguf"));
  // Copy the file, giving one tensor a row fewer than the config implies.
  const model::GgufFile good(path("good.gguf"));
  model::GgufWriter w;
  for (const auto& [key, value] : good.metadata()) w.set(key, value);
  for (const model::TensorView& t : good.store().tensors()) {
    std::vector<int64_t> shape = t.shape;
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    if (t.name == "blk.1.ffn_up.weight") {
      shape[0] -= 1;
      bytes.resize(bytes.size() - size_t(shape[1]) * 4);
    }
    w.add_tensor(t.name, *t.type, shape, bytes);
  }
  w.write(path("bad.gguf"));
  try {
    model::load_model(path("bad.gguf"));
    FAIL() << "a tensor with the wrong shape was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.1.ffn_up.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[47, 32]"), std::string::npos) << e.what();
  }
}

TEST_F(TinyModelTest, MalformedConfigAndTokenizerJsonAreErrors) {
  TinyLlama::random(7).write_hf(dir_.string());
  const std::string config = path("config.json"), tokenizer = path("tokenizer.json");
  const nlohmann::json good_config = nlohmann::json::parse(read_text(config));
  const nlohmann::json good_tokenizer = nlohmann::json::parse(read_text(tokenizer));
  const auto expect_error = [&](const std::string& file, const nlohmann::json& j,
                                const std::string& why) {
    write_text(file, j.dump());
    try {
      model::load_model(dir_.string());
      ADD_FAILURE() << "accepted " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << why << ": " << e.what();
    }
    write_text(config, good_config.dump());
    write_text(tokenizer, good_tokenizer.dump());
  };
  nlohmann::json j = good_config;
  j["hidden_size"] = 1.5e30;  // found by the fuzzer: a float where an integer belongs
  expect_error(config, j, "a float hidden_size");
  j = good_config;
  j["rope_theta"] = "big";
  expect_error(config, j, "a string rope_theta");
  j = good_config;
  j.erase("num_hidden_layers");
  expect_error(config, j, "a missing num_hidden_layers");
  j = good_config;
  j["model_type"] = "gpt_neox";
  expect_error(config, j, "an unsupported architecture");
  j = good_tokenizer;
  j["model"]["vocab"]["a"] = 111111111111111111111111111.0;
  expect_error(tokenizer, j, "a float token id");
  j = good_tokenizer;
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error(tokenizer, j, "an unsupported pre-tokenizer");
}

TEST_F(TinyModelTest, BertMatchesFloat64ReferenceAndPaddingIsMasked) {
  const TinyBert tiny = TinyBert::random(11);
  tiny.write_hf(dir_.string());
  const model::Model m = model::load_model(dir_.string());
  ASSERT_TRUE(m.bert);
  const std::vector<int32_t> ids = m.tokenizer->encode_for_model("The cats sat on the mat.");
  // [CLS] the cat ##s sat on the mat . [SEP]
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 4, 5, 12, 6, 7, 4, 8, 13, 3}));
  const std::vector<int32_t> ids2 = m.tokenizer->encode_for_model("A big dog ran!");
  const std::vector<float> single = m.bert->embed({ids});
  const std::vector<double> want = tiny.reference_embedding(ids);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(single[i], want[i], 2e-6) << i;
  // In a padded batch each sentence's embedding is what it is alone.
  const std::vector<float> batch = m.bert->embed({ids2, ids});
  const std::vector<double> want2 = tiny.reference_embedding(ids2);
  const size_t d = size_t(tiny.dim);
  for (size_t i = 0; i < d; ++i) {
    EXPECT_NEAR(batch[i], want2[i], 2e-6);
    EXPECT_NEAR(batch[d + i], want[i], 2e-6);
  }
}

}  // namespace
}  // namespace lowbit::testing

namespace lowbit::testing {
namespace {

// Gemma 3's pieces on the tiny model: a sliding window as wide as the sequence changes nothing,
// a window of one makes each position see only itself, and the tanh-GELU gate is what it says.
TEST(GemmaPieces, SlidingWindowAttentionSeesOnlyTheWindow) {
  const std::string dir = ::testing::TempDir() + "/gemma_pieces";
  std::filesystem::create_directories(dir);
  TinyLlama::random(8).write_gguf(dir + "/m.gguf");
  const model::Model m = model::load_model(dir + "/m.gguf");
  const std::vector<int32_t> a = {5, 9, 2, 7, 1, 3, 8, 4},
                             b = {6, 9, 2, 7, 1, 3, 8, 4};  // first token differs
  const auto with_window = [&](int w) {
    model::LlamaConfig c = m.llama->config();
    c.layer_window.assign(size_t(c.n_layers), w);
    return model::Llama(c, m.llama->weights());
  };
  EXPECT_EQ(all_logits(with_window(int(a.size())), a), all_logits(*m.llama, a));  // bit-identical
  const model::Llama one = with_window(1), three = with_window(3);
  const size_t vocab = size_t(m.llama->config().vocab_size);
  const std::vector<float> la = all_logits(one, a), lb = all_logits(one, b);
  EXPECT_NE(std::vector<float>(la.begin(), la.begin() + vocab),
            std::vector<float>(lb.begin(), lb.begin() + vocab));
  EXPECT_EQ(std::vector<float>(la.begin() + vocab, la.end()),
            std::vector<float>(lb.begin() + vocab, lb.end()))
      << "with a window of one, later positions do not see the first token";
  // Two layers of window 3: position p sees tokens down to p - 4; token 0 reaches position 4,
  // not 5.
  const std::vector<float> ta = all_logits(three, a), tb = all_logits(three, b);
  EXPECT_NE(std::vector<float>(ta.begin() + 4 * vocab, ta.begin() + 5 * vocab),
            std::vector<float>(tb.begin() + 4 * vocab, tb.begin() + 5 * vocab));
  EXPECT_EQ(std::vector<float>(ta.begin() + 5 * vocab, ta.end()),
            std::vector<float>(tb.begin() + 5 * vocab, tb.end()));
}

TEST(GemmaPieces, GegluIsTanhGeluTimesUp) {
  std::vector<float> gate = {-3.0f, -1.0f, 0.0f, 0.5f, 2.0f}, up = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f};
  std::vector<float> want(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) {
    const double x = gate[i];
    want[i] =
        float(0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * up[i]);
  }
  model::geglu_in_place(gate.data(), up.data(), gate.size());
  for (size_t i = 0; i < gate.size(); ++i) EXPECT_NEAR(gate[i], want[i], 1e-6) << i;
}

}  // namespace
}  // namespace lowbit::testing
