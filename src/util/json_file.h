// Parsing JSON text with nlohmann-json, turning its exceptions into lowbit::Error naming where
// the text came from.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/error.h"
#include "util/files.h"

namespace lowbit::files {

inline nlohmann::json parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed JSON (" + e.what() + ")");
  }
}

inline nlohmann::json read_json(const std::string& path) { return parse_json(read_all(path), path); }

}  // namespace lowbit::files
