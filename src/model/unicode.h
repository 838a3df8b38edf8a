// Unicode helpers the tokenizers share: UTF-8 stepping, GPT-2's byte <-> printable-character map,
// and the character classes HF tokenizers uses (Rust's char::is_whitespace, general categories).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit::model::unicode {

// Decodes the code point at text[pos] and returns its byte length (>= 1). Invalid or truncated
// UTF-8 yields U+FFFD and length 1, so the caller always makes progress.
int next_code_point(std::string_view text, size_t pos, char32_t& cp);
void append_utf8(std::string& out, char32_t cp);

// GPT-2's reversible byte -> character map: printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100.. in order, so every byte string becomes printable text (space -> 'Ġ').
const std::string& byte_to_text(uint8_t b);
// Inverse of byte_to_text for one code point; -1 when cp is not an image of a byte.
int text_to_byte(char32_t cp);

bool is_whitespace(char32_t cp);       // Unicode White_Space (Rust's char::is_whitespace)
bool is_punctuation(char32_t cp);      // general category P* (Pc Pd Ps Pe Pi Pf Po)
bool is_other(char32_t cp);            // general category C* (Cc Cf Cs Co Cn)
bool is_mark_nonspacing(char32_t cp);  // Mn
bool is_cjk_ideograph(char32_t cp);    // the ranges BERT puts spaces around

std::string to_lower(std::string_view text);  // full-string lowercase (utf8proc)
std::string nfd(std::string_view text);       // canonical decomposition
std::string nfc(std::string_view text);       // canonical composition

}  // namespace lowbit::model::unicode
