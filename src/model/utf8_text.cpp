// Validating (and, when asked, repairing) UTF-8 text before it reaches a tokenizer; and
// tokenizing only the prefix of a text that a token budget needs.
#include <algorithm>
#include <cstdio>

#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"
#include "util/files.h"

namespace lowbit::model {
namespace {

// Length of the well-formed UTF-8 sequence at p (1..4), or minus the length of its maximal
// ill-formed subpart (the lead byte and the continuation bytes that were still allowed), per the
// Unicode Standard's Table 3-7 (no overlongs, no surrogates, nothing above U+10FFFF).
int utf8_sequence(const uint8_t* p, size_t n) {
  const uint8_t b = p[0];
  if (b < 0x80) return 1;
  int len = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF)
    len = 2;
  else if (b == 0xE0)
    len = 3, lo = 0xA0;
  else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
    len = 3;
  else if (b == 0xED)
    len = 3, hi = 0x9F;
  else if (b == 0xF0)
    len = 4, lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3)
    len = 4;
  else if (b == 0xF4)
    len = 4, hi = 0x8F;
  else
    return -1;
  for (int i = 1; i < len; ++i) {
    if (size_t(i) >= n || p[i] < lo || p[i] > hi) return -i;
    lo = 0x80, hi = 0xBF;
  }
  return len;
}

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string out;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02X", p[i]);
    out += (i ? " " : "") + std::string(b);
  }
  return out;
}

}  // namespace

std::string checked_utf8(std::string text, const std::string& where, bool repair) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  std::string repaired;
  size_t copied = 0, replaced = 0;
  for (size_t i = 0; i < n;) {
    if (p[i] == 0)
      throw Error(
          where + ": a NUL byte at offset " + std::to_string(i) +
          ": not a text file (UTF-16 text and binary files contain them; convert UTF-16 with "
          "iconv -f utf-16 -t utf-8)");
    const int len = utf8_sequence(p + i, n - i);
    if (len > 0) {
      i += size_t(len);
      continue;
    }
    const size_t bad = size_t(-len);
    if (!repair) {
      const bool utf16_bom =
          i == 0 && n >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF));
      throw Error(
          where + ": not valid UTF-8 at byte offset " + std::to_string(i) + " (bytes " +
          hex_bytes(p + i, std::min<size_t>(4, n - i)) + ")" +
          (utf16_bom ? ": it starts with a UTF-16 byte-order mark" : "") +
          ". Convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8), or read it with UTF-8 repair, "
          "which replaces each invalid sequence by U+FFFD");
    }
    repaired.append(text, copied, i - copied);
    repaired += "\xEF\xBF\xBD";  // U+FFFD
    i += bad;
    copied = i;
    ++replaced;
  }
  if (replaced == 0) return text;
  repaired.append(text, copied, std::string::npos);
  return repaired;
}

std::string read_text_file(const std::string& path, bool repair) {
  return checked_utf8(files::read_all(path), path, repair);
}

std::vector<int32_t> Tokenizer::encode_prefix(std::string_view text, size_t max_tokens) const {
  if (max_tokens == 0) return encode(text);
  constexpr size_t kMargin = 64;  // ids near the cut that may differ from the whole text's, dropped
  size_t want =
      std::max<size_t>(4096, (max_tokens + kMargin) * 6);  // English runs ~4 bytes a token
  while (true) {
    size_t cut = want;
    // A line break followed by a non-space character: every pre-tokenizer splits there.
    while (cut < text.size() && !(text[cut - 1] == '\n' && text[cut] != ' ' && text[cut] != '\n' &&
                                  text[cut] != '\r' && text[cut] != '\t'))
      ++cut;
    if (cut >= text.size()) break;
    std::vector<int32_t> ids = encode(text.substr(0, cut));
    if (ids.size() >= max_tokens + kMargin) {
      ids.resize(max_tokens);
      return ids;
    }
    want = 2 * cut;
  }
  std::vector<int32_t> ids = encode(text);
  if (ids.size() > max_tokens) ids.resize(max_tokens);
  return ids;
}

}  // namespace lowbit::model
