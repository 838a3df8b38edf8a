// Splitting text before subword tokenization: regular-expression pre-tokenizers (PCRE2, Unicode
// properties) and special tokens that must be matched literally before anything else.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lowbit::model {

// One regex stage with HF tokenizers' "Isolated" behaviour: every match is a piece and so is every
// gap between matches, so the pieces always concatenate back to the input.
class RegexSplitter {
 public:
  explicit RegexSplitter(const std::string& pattern);  // throws lowbit::Error on a bad pattern
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<void> code_;  // pcre2_code_8
};

// Stages applied in order, each to every piece the previous one produced.
class PreTokenizer {
 public:
  void add_stage(const std::string& pattern) { stages_.emplace_back(pattern); }
  std::vector<std::string_view> split(std::string_view text) const;
  bool empty() const { return stages_.empty(); }

 private:
  std::vector<RegexSplitter> stages_;
};

// Regexes of the pre-tokenizers real models declare.
namespace regex {
// GPT-2 (also what HF's ByteLevel pre-tokenizer uses with use_regex=true).
inline const std::string kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// LLaMA-3 ("llama-bpe" in GGUF).
inline const std::string kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as LLaMA-3 but single digits.
inline const std::string kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline const std::string kEachDigit = R"(\p{N})";   // HF Digits(individual_digits=true)
inline const std::string kDigitRuns = R"(\p{N}+)";  // HF Digits(individual_digits=false)
}  // namespace regex

// Literal tokens (chat markers and the like) found in the text before pre-tokenization, longest
// first, as HF tokenizers does for added tokens.
class SpecialTokens {
 public:
  void add(std::string text, int32_t id);
  struct Segment {
    std::string_view text;
    int32_t id;  // -1: ordinary text to tokenize
  };
  std::vector<Segment> split(std::string_view text) const;

 private:
  std::vector<std::pair<std::string, int32_t>> tokens_;  // sorted longest first
};

}  // namespace lowbit::model
