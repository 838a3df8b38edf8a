// Tokenizer pieces on small hand-made vocabularies: regex pre-tokenizers, special tokens,
// byte-level BPE, SentencePiece BPE with byte fallback, WordPiece normalisation. (The real
// tokenizers are compared with Hugging Face's on thousands of lines in tokenizer_crosscheck.py.)
#include <gtest/gtest.h>

#include <set>

#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"
#include "model/text_splitting.h"
#include "model/tokenizer_spec.h"
#include "model/unicode.h"
#include "tiny_models.h"

namespace lowbit::model {
namespace {

std::vector<std::string> pieces(const PreTokenizer& pre, const std::string& text) {
  std::vector<std::string> out;
  for (std::string_view p : pre.split(text)) out.emplace_back(p);
  return out;
}

TEST(PreTokenizer, Gpt2Regex) {
  PreTokenizer pre;
  pre.add_stage(regex::kGpt2);
  EXPECT_EQ(pieces(pre, "Hello world's  123 ok!!\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 123", " ok", "!!", "\n"}));
  EXPECT_EQ(pieces(pre, "naïve café"), (std::vector<std::string>{"naïve", " café"}));
  EXPECT_TRUE(pieces(pre, "").empty());
}

TEST(PreTokenizer, DigitsFirstThenGpt2LikeSmolLM) {
  PreTokenizer pre;
  pre.add_stage(regex::kEachDigit);
  pre.add_stage(regex::kGpt2);
  EXPECT_EQ(pieces(pre, "abc 2024x"),
            (std::vector<std::string>{"abc", " ", "2", "0", "2", "4", "x"}));
}

TEST(PreTokenizer, PiecesAlwaysConcatenateToTheInput) {
  PreTokenizer pre;
  pre.add_stage(regex::kLlama3);
  const std::string text = "  Tabs\tand\r\nnewlines \xF0\x9F\x98\x80 émoji 12345 I'M DONE ";
  std::string joined;
  for (const auto& p : pieces(pre, text)) joined += p;
  EXPECT_EQ(joined, text);
  // Invalid UTF-8 is kept, not dropped.
  const std::string bad = "ok \xFF\xFE end";
  joined.clear();
  for (const auto& p : pieces(pre, bad)) joined += p;
  EXPECT_EQ(joined, bad);
}

TEST(PreTokenizer, BadRegexIsAnError) {
  EXPECT_THROW(RegexSplitter("(unclosed"), Error);
}

TEST(SpecialTokens, MatchedLiterallyLongestFirst) {
  SpecialTokens s;
  s.add("<|im_start|>", 1);
  s.add("<|im", 7);
  s.add("<|im_end|>", 2);
  const auto segs = s.split("<|im_start|>user\nhi<|im_end|><|im");
  ASSERT_EQ(segs.size(), 4u);
  EXPECT_EQ(segs[0].id, 1);
  EXPECT_EQ(segs[1].text, "user\nhi");
  EXPECT_EQ(segs[1].id, -1);
  EXPECT_EQ(segs[2].id, 2);
  EXPECT_EQ(segs[3].id, 7);
}

std::unique_ptr<Tokenizer> tiny_byte_bpe() {
  const testing::TinyByteVocab v;
  TokenizerSpec spec;
  spec.tokens = v.tokens;
  spec.merges = v.merges;
  spec.pre_patterns = {regex::kGpt2};
  spec.literal_ids = {testing::TinyByteVocab::kEos};
  spec.eos = testing::TinyByteVocab::kEos;
  return make_byte_level_bpe(spec);
}

TEST(ByteLevelBpe, MergesByRankAndRoundTrips) {
  const auto tok = tiny_byte_bpe();
  // " the" = Ġ t h e: "t h" (rank 0) first, then "th e" (rank 1); "Ġ t" (rank 2) no longer applies.
  EXPECT_EQ(tok->encode(" the"), (std::vector<int32_t>{' ', 258}));
  // "tt" has no merge; " t" merges to "Ġt" (259).
  EXPECT_EQ(tok->encode(" tt"), (std::vector<int32_t>{259, 't'}));
  EXPECT_EQ(tok->encode("a<|endoftext|>b"), (std::vector<int32_t>{'a', 256, 'b'}));
  for (const std::string text :
       {"the cat sat", "naïve — 😀 \xFF\xFE bytes", "", "  spaces\n\nlines\t"}) {
    EXPECT_EQ(tok->decode(tok->encode(text)), text) << text;
  }
}

std::unique_ptr<Tokenizer> tiny_sentencepiece() {
  TokenizerSpec spec;
  const std::vector<std::pair<std::string, float>> vocab = {{"<unk>", 0},
                                                            {"<s>", 0},
                                                            {"</s>", 0},
                                                            {"<0xC3>", 0},
                                                            {"<0xA9>", 0},
                                                            {"\xE2\x96\x81", -1},
                                                            {"h", -1},
                                                            {"e", -1},
                                                            {"l", -1},
                                                            {"o", -1},
                                                            {"\xE2\x96\x81h", -3},
                                                            {"el", -2},
                                                            {"ll", -4},
                                                            {"lo", -5},
                                                            {"hel", -6},
                                                            {"\xE2\x96\x81hel", -7},
                                                            {"\xE2\x96\x81hello", -8},
                                                            {"llo", -9}};
  for (const auto& [t, s] : vocab) {
    spec.tokens.push_back(t);
    spec.scores.push_back(s);
  }
  spec.unk = 0;
  spec.bos = 1;
  spec.eos = 2;
  spec.add_bos = true;
  return make_sentencepiece_bpe(spec);
}

TEST(SentencePieceBpe, MergesByScoreWithByteFallback) {
  const auto tok = tiny_sentencepiece();
  // "▁hello": best pairs by score: "el" (-2) → ▁h? no: candidates ▁h(-3), el(-2), ll(-4), lo(-5);
  // "el" wins: ▁ h el l o; then ▁h(-3) → ▁h el l o; then "lo" (-5) (ll is gone) → ▁h el lo;
  // "hel" is not adjacent as a pair of current symbols (▁h + el = "▁hel", -7) → ▁hel lo;
  // "▁hello" (-8) → ▁hello.
  EXPECT_EQ(tok->encode("hello"), (std::vector<int32_t>{16}));
  EXPECT_EQ(tok->encode_for_model("hello"), (std::vector<int32_t>{1, 16}));
  // "é" is not in the vocabulary: its two UTF-8 bytes fall back to <0xC3> <0xA9>.
  EXPECT_EQ(tok->encode("hé"), (std::vector<int32_t>{10, 3, 4}));
  EXPECT_EQ(tok->decode(tok->encode("hello hé")), "hello hé");
}

std::unique_ptr<Tokenizer> tiny_wordpiece() {
  TokenizerSpec spec;
  spec.tokens = {"[PAD]", "[UNK]",  "[CLS]", "[SEP]", "cafe", "un",
                 "##aff", "##able", ",",     "!",     "的",   "a"};
  spec.unk = 1;
  spec.cls = 2;
  spec.sep = 3;
  return make_wordpiece(spec);
}

TEST(WordPiece, NormalisesSplitsAndMatchesGreedily) {
  const auto tok = tiny_wordpiece();
  // Accents stripped, lowercased; punctuation split off; greedy longest-first subwords.
  EXPECT_EQ(tok->encode("Café, UNAFFABLE!"), (std::vector<int32_t>{4, 8, 5, 6, 7, 9}));
  // A word with an unmatched remainder is [UNK] as a whole; control characters vanish; CJK
  // ideographs become words of their own.
  EXPECT_EQ(tok->encode("unx a\x01"), (std::vector<int32_t>{1, 11}));
  EXPECT_EQ(tok->encode("a的a"), (std::vector<int32_t>{11, 10, 11}));
  EXPECT_EQ(tok->encode(std::string(101, 'a')), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->encode_for_model("cafe"), (std::vector<int32_t>{2, 4, 3}));
  EXPECT_EQ(tok->decode({2, 5, 6, 7, 3}), "unaffable");
}

TEST(Unicode, ByteMapIsAReversibleBijection) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string& t = unicode::byte_to_text(uint8_t(b));
    EXPECT_TRUE(seen.insert(t).second);
    char32_t cp;
    unicode::next_code_point(t, 0, cp);
    EXPECT_EQ(unicode::text_to_byte(cp), b);
  }
  EXPECT_EQ(unicode::byte_to_text(' '), "\xC4\xA0");  // Ġ
}

// A BPE trained on a text: the most frequent pair is merged first, the vocabulary has the size
// asked for, the text round-trips, and the merges shorten it (lowbit train's "bpe:<n>").
TEST(BpeTraining, LearnsFrequentPairsAndRoundTrips) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "the cat and the hat sat on the mat 12 times.\n";
  const HfTokenizerFiles files = train_byte_level_bpe(text, 270, 128);
  const std::string path = ::testing::TempDir() + "tokenizer.json";
  testing::write_text(path, files.tokenizer_json);
  testing::write_text(::testing::TempDir() + "tokenizer_config.json", files.tokenizer_config_json);
  const std::unique_ptr<Tokenizer> t = tokenizer_from_json(path);
  EXPECT_EQ(t->vocab_size(), 270);
  EXPECT_EQ(t->eos_id(), 256);
  EXPECT_EQ(t->token(257), "at");  // 4 per line (cat, hat, sat, mat): the most frequent pair
  // Asked for more than the text has pairs to merge: it stops when every word is one symbol.
  EXPECT_LT(train_byte_level_bpe(text, 400, 128).tokenizer_json.size(), 400 * 40);
  const std::vector<int32_t> ids = t->encode(text);
  EXPECT_EQ(t->decode(ids), text);
  EXPECT_LT(ids.size(), text.size() * 2 / 3);  // 13 merges: 9000 bytes -> 4800 tokens
  EXPECT_EQ(t->encode("<|endoftext|>").size(), 1u);
  EXPECT_EQ(train_byte_level_bpe(text, 270, 128).tokenizer_json, files.tokenizer_json);
  EXPECT_THROW(train_byte_level_bpe(text, 200, 128), Error);
}

}  // namespace
}  // namespace lowbit::model
