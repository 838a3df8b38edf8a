// Bad input and bad numbers at run time: text that is not UTF-8, tokenization that must stay
// linear and read only what a budget needs, results that come out NaN, thread counts and
// memory the machine does not have, and attention over windows longer than one block.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "error_message.h"
#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/model.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

class TrustTest : public TempDirTest {};

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, InvalidTextIsAnErrorNamingTheFirstBadOffset) {
  EXPECT_EQ(model::checked_utf8("plain ascii, é, 😀, ∑", "t"), "plain ascii, é, 😀, ∑");
  const std::vector<std::pair<std::string, size_t>> bad = {
      {"abc\xE9"
       "def",
       3},                      // Latin-1 é
      {"ok\x80", 2},            // lone continuation byte
      {"\xC0\x80", 0},          // overlong NUL
      {"x\xED\xA0\x80", 1},     // UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},  // above U+10FFFF
      {"end\xF0\x9F\x98", 3},   // truncated at the end
      {"\xFF\xFEh\0i\0", 0}};   // UTF-16 with its byte-order mark
  for (const auto& [text, offset] : bad) {
    const std::string e = error_of([&, t = text] { model::checked_utf8(t, "f.txt"); });
    EXPECT_NE(e.find("f.txt: not valid UTF-8 at byte offset " + std::to_string(offset)),
              std::string::npos)
        << e;
  }
  EXPECT_NE(error_of([] { model::checked_utf8("\xFF\xFEh\0i\0", "f"); }).find("UTF-16"),
            std::string::npos);
  // UTF-16 without a mark is valid UTF-8 full of NUL bytes: refused as not text, even when
  // repairing.
  const std::string utf16(std::string("h\0i\0", 4));
  EXPECT_NE(error_of([&] { model::checked_utf8(utf16, "f"); }).find("NUL byte at offset 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model::checked_utf8(utf16, "f", true); }).find("NUL"),
            std::string::npos);
}

TEST(Utf8, RepairReplacesEachMaximalIllFormedSubpartByOneReplacementCharacter) {
  // The Unicode Standard's examples (§3.9, Table 3-8 and around it).
  EXPECT_EQ(model::checked_utf8("a\xF0\x9F\x98"
                                "b",
                                "t", true),
            "a" + kFffd + "b");  // one truncated sequence: one U+FFFD
  EXPECT_EQ(model::checked_utf8("\xC0\x80", "t", true),
            kFffd + kFffd);  // C0 can never start a sequence
  EXPECT_EQ(model::checked_utf8("\xED\xA0\x80", "t", true),
            kFffd + kFffd + kFffd);  // ED A0: A0 not allowed after ED
  EXPECT_EQ(model::checked_utf8("caf\xE9 ok", "t", true), "caf" + kFffd + " ok");
  EXPECT_EQ(model::checked_utf8("\x80\x80", "t", true), kFffd + kFffd);
  EXPECT_EQ(model::checked_utf8("\xE2\x82", "t", true), kFffd);
}

TEST_F(TrustTest, TextFilesAreCheckedOnReading) {
  write_text(path("latin1.txt"), "r\xE9sum\xE9\n");
  const std::string e = error_of([&] { model::read_text_file(path("latin1.txt")); });
  EXPECT_NE(e.find("latin1.txt: not valid UTF-8 at byte offset 1"), std::string::npos) << e;
  EXPECT_NE(e.find("UTF-8 repair"), std::string::npos) << e;  // the CLI adds --repair-utf8
  EXPECT_EQ(model::read_text_file(path("latin1.txt"), true), "r" + kFffd + "sum" + kFffd + "\n");
}

// A text of many short lines, like a book.
std::string book(size_t lines) {
  std::string text;
  for (size_t i = 0; i < lines; ++i)
    text += (i % 7 == 0 ? "\n" : "") + std::string("the cat sat on the mat, then the dog ran ") +
            std::to_string(i) + " times.\n";
  return text;
}

TEST(Tokenization, APrefixGivesTheSameIdsAsTheWholeText) {
  TinyLlama::random(1).write_gguf("/tmp/lowbit_trust_tok.gguf");
  const model::Model m = model::load_model("/tmp/lowbit_trust_tok.gguf");
  const std::string text = book(3000);
  const std::vector<int32_t> all = m.tokenizer->encode(text);
  for (size_t n : {size_t(1), size_t(100), size_t(2047), size_t(5000), all.size() - 1, all.size(),
                   all.size() + 10}) {
    const std::vector<int32_t> prefix = m.tokenizer->encode_prefix(text, n);
    ASSERT_EQ(prefix.size(), std::min(n, all.size())) << n;
    EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), all.begin())) << n;
  }
  EXPECT_EQ(m.tokenizer->encode_prefix(text, 0), all);
  std::remove("/tmp/lowbit_trust_tok.gguf");
}

// A tokenizer that records how many bytes it was asked to encode (one id per byte).
class CountingTokenizer : public model::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    encoded_bytes += text.size();
    return std::vector<int32_t>(text.size(), 0);
  }
  std::string decode(const std::vector<int32_t>&) const override { return ""; }
  mutable size_t encoded_bytes = 0;
};

TEST(Tokenization, ABudgetTokenizesOnlyThePrefixItNeeds) {
  const std::string text = book(200000);  // about 9 MB
  CountingTokenizer tok;
  EXPECT_EQ(tok.encode_prefix(text, 1000).size(), 1000u);
  EXPECT_LT(tok.encoded_bytes, size_t(64) << 10)
      << "for 1000 tokens of " << text.size() << " bytes";
  tok.encoded_bytes = 0;
  // The first guess is 6 bytes a token (English BPE runs about 4): with this tokenizer's 1 byte a
  // token, under 8x what is needed, far from the 9 MB of the text.
  EXPECT_EQ(tok.encode_prefix(text, 300000).size(), 300000u);
  EXPECT_LT(tok.encoded_bytes, size_t(8) * 300000);
}

TEST(Tokenization, TimeIsLinearInTheText) {
  TinyLlama::random(1).write_gguf("/tmp/lowbit_trust_lin.gguf");
  const model::Model m = model::load_model("/tmp/lowbit_trust_lin.gguf");
  std::remove("/tmp/lowbit_trust_lin.gguf");
  // One long line (no newline to cut at), so the whole text is one piece for the pre-tokenizer:
  // PCRE2's per-call UTF-8 check made this quadratic (minutes at a megabyte).
  std::string line;
  while (line.size() < (size_t(1) << 20)) line += "the cat sat on the mat, then the dog ran away. ";
  const auto seconds = [&](size_t bytes) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t n = m.tokenizer->encode(std::string_view(line).substr(0, bytes)).size();
    EXPECT_GT(n, bytes / 8);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double quarter = seconds(line.size() / 4), whole = seconds(line.size());
  EXPECT_LT(whole, 10.0) << "1 MiB took " << whole << " s";
  EXPECT_LT(whole, 10 * std::max(quarter, 0.01))
      << "4x the text took " << whole / quarter << "x the time";
}

TEST_F(TrustTest, ANonFiniteResultIsAnErrorNotNan) {
  TinyLlama tiny = TinyLlama::random(5);
  tiny.layers[1].w_down[7] = std::nanf("");
  tiny.write_gguf(path("nan.gguf"));
  const model::Model m = model::load_model(path("nan.gguf"));
  eval::PerplexityOptions opt;
  opt.n_ctx = 16;
  const std::string e = error_of([&] { eval::perplexity(m, book(20), opt); });
  EXPECT_NE(e.find("not a number"), std::string::npos) << e;
}

TEST(Threads, CountsOutsideTheMachineAreErrors) {
  EXPECT_NO_THROW(model::set_num_threads(0));
  EXPECT_NO_THROW(model::set_num_threads(model::max_threads()));
  EXPECT_NE(error_of([] { model::set_num_threads(100000); }).find("outside 0 .. "),
            std::string::npos);
  EXPECT_THROW(model::set_num_threads(-1), Error);
  model::set_num_threads(0);
}

TEST_F(TrustTest, MemoryIsEstimatedBeforeAllocating) {
  TinyLlama::random(6).write_gguf(path("m.gguf"));
  const model::Model m = model::load_model(path("m.gguf"));
  // 2^26 positions: the attention workspace alone would be workers x 512 x 2^26 floats (>= 128
  // GiB).
  const std::string e = error_of([&] { model::LlamaRunState s(m.llama->config(), 512, 1 << 26); });
  EXPECT_NE(e.find("GiB of memory"), std::string::npos) << e;
  EXPECT_NE(e.find("shorter context"), std::string::npos) << e;  // the CLI adds --ctx
  // The workspace no longer grows with heads x tokens: a 4096-token window needs workers x 512
  // rows.
  const double bytes = model::LlamaRunState::bytes_needed(m.llama->config(), 4096, 4096);
  EXPECT_LT(bytes, 4.0 * (double(m.llama->config().n_heads) * 4096 * 4096));
}

TEST_F(TrustTest, WindowsLongerThanOneAttentionBlockMatchTheReference) {
  const TinyLlama tiny = TinyLlama::random(7);
  tiny.write_gguf(path("m.gguf"));
  const model::Model m = model::load_model(path("m.gguf"));
  std::mt19937 rng(3);
  std::vector<int32_t> tokens(1100);
  for (int32_t& t : tokens) t = int32_t(rng() % uint32_t(tiny.vocab));
  EXPECT_LT(max_relative_error(all_logits(*m.llama, tokens), tiny.reference_logits(tokens)), 1e-5);
}

}  // namespace
}  // namespace lowbit::testing
