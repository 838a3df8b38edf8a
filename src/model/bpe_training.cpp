// Training a byte-level BPE on a text (lowbit/model/tokenizer.h): what `lowbit train` uses for
// small models, whose cost SmolLM2's 49152-entry vocabulary would otherwise dominate.
#include <algorithm>
#include <unordered_map>

#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"
#include "model/text_splitting.h"
#include "model/tokenizer_spec.h"
#include "model/unicode.h"

namespace lowbit::model {

HfTokenizerFiles train_byte_level_bpe(std::string_view text, int vocab_size, int model_max_length) {
  constexpr int kBytes = 256, kEndOfText = 256;
  if (vocab_size <= kEndOfText)
    throw Error("a byte-level BPE needs a vocabulary of more than 257 entries (got " +
                std::to_string(vocab_size) + ")");
  TokenizerSpec spec;
  spec.pre_patterns = {regex::kEachDigit, regex::kGpt2};
  for (int b = 0; b < kBytes; ++b) spec.tokens.push_back(unicode::byte_to_text(uint8_t(b)));
  spec.tokens.push_back("<|endoftext|>");
  spec.literal_ids = {kEndOfText};
  spec.eos = kEndOfText;
  spec.add_bos = false;
  // Words (pre-tokenizer pieces) with their counts, each as a sequence of symbol ids.
  PreTokenizer pre;
  for (const std::string& p : spec.pre_patterns) pre.add_stage(p);
  std::unordered_map<std::string_view, int64_t> counts;
  for (std::string_view piece : pre.split(text)) ++counts[piece];
  struct Word {
    std::vector<int32_t> symbols;
    int64_t count;
  };
  std::vector<Word> words;
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());  // a fixed order, whatever the hash map's
  for (const auto& [piece, count] : sorted) {
    Word w{{}, count};
    for (char c : piece) w.symbols.push_back(int32_t(uint8_t(c)));
    words.push_back(std::move(w));
  }
  // Each round recounts the adjacent pairs of every distinct word (weighted by its count); the
  // words are few (tens of thousands for a book) next to the text, so a round is cheap.
  std::unordered_map<uint64_t, int64_t> pairs;
  const auto key = [](int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); };
  while (int(spec.tokens.size()) < vocab_size) {
    pairs.clear();
    for (const Word& w : words)
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i)
        pairs[key(w.symbols[i], w.symbols[i + 1])] += w.count;
    if (pairs.empty()) break;  // every word is one symbol: nothing left to merge
    uint64_t best_key = 0;
    int64_t best_count = -1;
    std::string best_text;
    for (const auto& [k, count] : pairs) {
      if (count < best_count) continue;
      const std::string text =
          spec.tokens[size_t(k >> 32)] + " " + spec.tokens[size_t(k & 0xFFFFFFFFu)];
      if (count > best_count || text < best_text)
        best_key = k, best_count = count, best_text = text;
    }
    const int32_t left = int32_t(best_key >> 32), right = int32_t(best_key & 0xFFFFFFFFu);
    const int32_t merged = int32_t(spec.tokens.size());
    spec.merges.push_back(spec.tokens[size_t(left)] + " " + spec.tokens[size_t(right)]);
    spec.tokens.push_back(spec.tokens[size_t(left)] + spec.tokens[size_t(right)]);
    for (Word& w : words) {  // left to right, as the encoder applies a rule; in place
      std::vector<int32_t>& s = w.symbols;
      size_t j = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          s[j++] = merged;
          i += 2;
        } else {
          s[j++] = s[i++];
        }
      }
      s.resize(j);
    }
  }
  spec.description =
      "byte-level BPE trained by lowbit (" + std::to_string(spec.tokens.size()) + " entries)";
  return hf_tokenizer_files(spec, model_max_length, "the trained BPE");
}

}  // namespace lowbit::model
