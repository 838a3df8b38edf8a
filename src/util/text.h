// Small text helpers shared by the parsers of format and scheme names.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::text {

// "a:b::c" -> {"a", "b", "", "c"}
inline std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t pos = text.find(sep, start);
    parts.emplace_back(text.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

// A whole decimal integer (optionally signed); false for anything else.
inline bool parse_long(const std::string& s, long& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtol(s.c_str(), &end, 10);
  return *end == '\0';
}

}  // namespace lowbit::text
