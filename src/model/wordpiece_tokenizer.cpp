// WordPiece as BERT uses it (HF tokenizers' BertNormalizer + BertPreTokenizer + WordPiece):
// clean control characters, space out CJK ideographs, strip accents and lowercase, split on
// whitespace and punctuation, then greedy longest-match subwords with "##" continuations.
#include <unordered_map>

#include "lowbit/util/error.h"
#include "model/tokenizer_spec.h"
#include "model/unicode.h"

namespace lowbit::model {
namespace {

constexpr size_t kMaxCharsPerWord = 100;  // longer words become [UNK], as in BERT
const std::string kContinuation = "##";

class WordPiece final : public SpecTokenizer {
 public:
  explicit WordPiece(TokenizerSpec spec) : SpecTokenizer(std::move(spec)) {
    bos_id_ = spec_.cls;  // the sequence markers
    eos_id_ = spec_.sep;
    if (spec_.unk < 0) throw Error("WordPiece tokenizer has no [UNK] token");
  }

  std::vector<int32_t> encode_for_model(std::string_view text) const override {
    std::vector<int32_t> ids;
    if (spec_.cls >= 0) ids.push_back(spec_.cls);
    const std::vector<int32_t> body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    if (spec_.sep >= 0) ids.push_back(spec_.sep);
    return ids;
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (const std::string& word : pre_tokenize(normalize(text))) encode_word(word, ids);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size() || id == spec_.cls || id == spec_.sep) continue;
      const std::string& t = tokens_[size_t(id)];
      if (t.compare(0, kContinuation.size(), kContinuation) == 0) {
        out += t.substr(kContinuation.size());
      } else {
        if (!out.empty()) out.push_back(' ');
        out += t;
      }
    }
    return out;
  }

 private:
  std::string normalize(std::string_view text) const {
    std::string cleaned;
    for (size_t pos = 0; pos < text.size();) {
      char32_t cp;
      pos += size_t(unicode::next_code_point(text, pos, cp));
      const bool keep_control = cp == '\t' || cp == '\n' || cp == '\r';
      if (cp == 0 || cp == 0xFFFD || (!keep_control && unicode::is_other(cp))) continue;
      if (unicode::is_whitespace(cp)) {
        cleaned.push_back(' ');
      } else if (unicode::is_cjk_ideograph(cp)) {
        cleaned.push_back(' ');
        unicode::append_utf8(cleaned, cp);
        cleaned.push_back(' ');
      } else {
        unicode::append_utf8(cleaned, cp);
      }
    }
    if (spec_.strip_accents) {
      const std::string decomposed = unicode::nfd(cleaned);
      cleaned.clear();
      for (size_t pos = 0; pos < decomposed.size();) {
        char32_t cp;
        pos += size_t(unicode::next_code_point(decomposed, pos, cp));
        if (!unicode::is_mark_nonspacing(cp)) unicode::append_utf8(cleaned, cp);
      }
    }
    return spec_.lowercase ? unicode::to_lower(cleaned) : cleaned;
  }

  // Whitespace separates words and is dropped; each punctuation character is a word of its own.
  static std::vector<std::string> pre_tokenize(const std::string& text) {
    std::vector<std::string> words;
    std::string current;
    const auto flush = [&] {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
    };
    for (size_t pos = 0; pos < text.size();) {
      char32_t cp;
      const int n = unicode::next_code_point(text, pos, cp);
      const bool ascii_punct = (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) ||
                               (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
      if (unicode::is_whitespace(cp)) {
        flush();
      } else if (ascii_punct || unicode::is_punctuation(cp)) {
        flush();
        words.emplace_back(text, pos, size_t(n));
      } else {
        current.append(text, pos, size_t(n));
      }
      pos += size_t(n);
    }
    flush();
    return words;
  }

  void encode_word(const std::string& word, std::vector<int32_t>& ids) const {
    size_t chars = 0;
    for (char c : word) chars += (uint8_t(c) & 0xC0) != 0x80;
    if (chars > kMaxCharsPerWord) {
      ids.push_back(spec_.unk);
      return;
    }
    std::vector<int32_t> pieces;
    for (size_t start = 0; start < word.size();) {
      // Longest vocabulary entry that starts here (code-point boundaries only).
      int32_t found = -1;
      size_t found_end = start;
      for (size_t end = word.size(); end > start; --end) {
        if (end < word.size() && (uint8_t(word[end]) & 0xC0) == 0x80) continue;
        const std::string candidate =
            (start > 0 ? kContinuation : std::string()) + word.substr(start, end - start);
        auto it = ids_.find(candidate);
        if (it != ids_.end()) {
          found = it->second;
          found_end = end;
          break;
        }
      }
      if (found < 0) {
        ids.push_back(spec_.unk);  // one unknown piece makes the whole word unknown
        return;
      }
      pieces.push_back(found);
      start = found_end;
    }
    ids.insert(ids.end(), pieces.begin(), pieces.end());
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_wordpiece(TokenizerSpec spec) {
  return std::make_unique<WordPiece>(std::move(spec));
}

}  // namespace lowbit::model
