// Unicode helpers (character properties from utf8proc).
#include "model/unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

#include "lowbit/util/error.h"

namespace lowbit::model::unicode {

int next_code_point(std::string_view text, size_t pos, char32_t& cp) {
  utf8proc_int32_t c = -1;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos);
  const utf8proc_ssize_t n = utf8proc_iterate(p, utf8proc_ssize_t(text.size() - pos), &c);
  if (n <= 0 || c < 0) {
    cp = 0xFFFD;
    return 1;
  }
  cp = char32_t(c);
  return int(n);
}

void append_utf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(utf8proc_int32_t(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), size_t(n));
}

namespace {
struct ByteMap {
  std::array<std::string, 256> to_text;
  std::array<int, 512> from_cp{};
  ByteMap() {
    from_cp.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? char32_t(b) : char32_t(next++);
      append_utf8(to_text[size_t(b)], cp);
      from_cp[cp] = b;
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

utf8proc_category_t category(char32_t cp) {
  return utf8proc_category(utf8proc_int32_t(cp));
}

std::string map_with(std::string_view text, int options) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              utf8proc_ssize_t(text.size()), &out, utf8proc_option_t(options));
  if (n < 0) return std::string(text);  // invalid UTF-8: leave it for the byte-level path
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), size_t(n));
}
}  // namespace

const std::string& byte_to_text(uint8_t b) {
  return byte_map().to_text[b];
}
int text_to_byte(char32_t cp) {
  return cp < 512 ? byte_map().from_cp[cp] : -1;
}

bool is_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_punctuation(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

bool is_other(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

bool is_mark_nonspacing(char32_t cp) {
  return category(cp) == UTF8PROC_CATEGORY_MN;
}

bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::string to_lower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    pos += size_t(next_code_point(text, pos, cp));
    append_utf8(out, char32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
  }
  return out;
}

std::string nfd(std::string_view text) {
  return map_with(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
}
std::string nfc(std::string_view text) {
  return map_with(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
}

}  // namespace lowbit::model::unicode
