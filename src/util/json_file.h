// Parsing JSON text with nlohmann-json, turning its exceptions into lowbit::Error naming where
// the text came from.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/util/error.h"
#include "util/files.h"

namespace lowbit::files {

inline nlohmann::json parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed JSON (" + e.what() + ")");
  }
}

inline nlohmann::json read_json(const std::string& path) {
  return parse_json(read_all(path), path);
}

// An integer field. nlohmann's get<int64_t>() casts a float silently (and out of range, with
// undefined behaviour), so untrusted files go through this instead.
inline int64_t json_int(const nlohmann::json& v, const std::string& what) {
  const bool fits =
      v.is_number_integer() && !(v.is_number_unsigned() &&
                                 v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()));
  if (!fits) throw Error(what + " must be an integer (got " + v.dump().substr(0, 40) + ")");
  return v.get<int64_t>();
}

// obj[key] as an integer, or `fallback` when absent or null.
inline int64_t json_int_or(const nlohmann::json& obj, const char* key, int64_t fallback,
                           const std::string& where) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  return json_int(obj[key], where + ": \"" + key + "\"");
}

}  // namespace lowbit::files
