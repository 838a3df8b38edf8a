// Regex pre-tokenizers with PCRE2 (UTF + UCP, so \s, \p{L}, \p{N} follow Unicode).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/text_splitting.h"

#include <pcre2.h>

#include <algorithm>

#include "lowbit/util/error.h"

namespace lowbit::model {

RegexSplitter::RegexSplitter(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &err_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("tokenizer pre-tokenizer regex does not compile at offset " +
                std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg) +
                " (pattern: " + pattern + ")");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; matching works without it
  code_ =
      std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
}

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  auto* code = static_cast<pcre2_code*>(code_.get());
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, gap_start = 0;
  // PCRE2 checks the UTF-8 of the whole subject from the start offset on every call unless told
  // not to, which made splitting quadratic in the text; the first call checks it once.
  uint32_t options = 0;
  while (pos < text.size()) {
    // Invalid UTF-8 (byte-level BPE takes any bytes; text files are checked on reading, see
    // checked_utf8): PCRE2 refuses to match and the rest is kept whole.
    const int rc = pcre2_match(code, subject, text.size(), pos, options, match.get(), nullptr);
    options = PCRE2_NO_UTF_CHECK;
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match.get());
    const size_t begin = ov[0], end = ov[1];
    if (end == begin) {  // empty match: step one code point and try again
      pos = begin + 1;
      while (pos < text.size() && (uint8_t(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (begin > gap_start) out.push_back(text.substr(gap_start, begin - gap_start));
    out.push_back(text.substr(begin, end - begin));
    pos = gap_start = end;
  }
  if (gap_start < text.size()) out.push_back(text.substr(gap_start));
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces{text}, next;
  for (const RegexSplitter& stage : stages_) {
    next.clear();
    for (std::string_view p : pieces) stage.split(p, next);
    pieces.swap(next);
  }
  return pieces;
}

void SpecialTokens::add(std::string text, int32_t id) {
  if (text.empty()) return;
  tokens_.emplace_back(std::move(text), id);
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::vector<SpecialTokens::Segment> SpecialTokens::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0, pos = 0;
  // Each token's next occurrence at or after pos, searched again only once pos has passed it:
  // linear in the text times the number of special tokens, however many occurrences there are.
  std::vector<size_t> next(tokens_.size(), 0);
  std::vector<bool> searched(tokens_.size(), false);
  while (pos < text.size() && !tokens_.empty()) {
    // The earliest occurrence of any special token; the longest one wins at the same position.
    size_t best_pos = std::string_view::npos;
    const std::pair<std::string, int32_t>* best = nullptr;
    for (size_t t = 0; t < tokens_.size(); ++t) {
      if (!searched[t] || (next[t] != std::string_view::npos && next[t] < pos)) {
        next[t] = text.find(tokens_[t].first, pos);
        searched[t] = true;
      }
      if (next[t] < best_pos) {
        best_pos = next[t];
        best = &tokens_[t];
      }
    }
    if (!best) break;
    if (best_pos > plain_start)
      out.push_back({text.substr(plain_start, best_pos - plain_start), -1});
    out.push_back({text.substr(best_pos, best->first.size()), best->second});
    pos = plain_start = best_pos + best->first.size();
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
  return out;
}

}  // namespace lowbit::model
