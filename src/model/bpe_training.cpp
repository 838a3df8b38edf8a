// Training a byte-level BPE on a text (lowbit/model/tokenizer.h): what `lowbit train` uses for
// small models, whose cost SmolLM2's 49152-entry vocabulary would otherwise dominate.
#include <algorithm>
#include <map>
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
  while (int(spec.tokens.size()) < vocab_size) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (const Word& w : words)
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i)
        pairs[{w.symbols[i], w.symbols[i + 1]}] += w.count;
    if (pairs.empty()) break;  // every word is one symbol: nothing left to merge
    auto best = pairs.end();
    for (auto it = pairs.begin(); it != pairs.end(); ++it) {
      if (best == pairs.end() || it->second > best->second) {
        best = it;
      } else if (it->second == best->second) {
        const std::string a = spec.tokens[size_t(it->first.first)] + " " +
                              spec.tokens[size_t(it->first.second)],
                          b = spec.tokens[size_t(best->first.first)] + " " +
                              spec.tokens[size_t(best->first.second)];
        if (a < b) best = it;
      }
    }
    const auto [left, right] = best->first;
    const int32_t merged = int32_t(spec.tokens.size());
    spec.merges.push_back(spec.tokens[size_t(left)] + " " + spec.tokens[size_t(right)]);
    spec.tokens.push_back(spec.tokens[size_t(left)] + spec.tokens[size_t(right)]);
    for (Word& w : words) {  // left to right, as the encoder applies a rule
      std::vector<int32_t> out;
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == left && w.symbols[i + 1] == right) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(w.symbols[i]);
        }
      }
      w.symbols.swap(out);
    }
  }
  spec.description =
      "byte-level BPE trained by lowbit (" + std::to_string(spec.tokens.size()) + " entries)";
  return hf_tokenizer_files(spec, model_max_length, "the trained BPE");
}

}  // namespace lowbit::model
