#include "model/config_fields.h"

#include <cmath>

#include "lowbit/util/error.h"
#include "util/json_file.h"

namespace lowbit::model {

using nlohmann::json;

ConfigFields::ConfigFields(const json& object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) throw Error(where_ + ": not a JSON object");
}

bool ConfigFields::has(const std::string& key) const {
  return object_.contains(key) && !object_[key].is_null();
}

void ConfigFields::fail(const std::string& key, const std::string& problem) const {
  const std::string value = object_.contains(key) ? object_[key].dump() : std::string("(missing)");
  throw Error(where_ + ": \"" + key + "\" = " + value.substr(0, 80) + ": " + problem);
}

const json& ConfigFields::get(const std::string& key) {
  used_.insert(key);
  if (!has(key)) fail(key, "is required");
  return object_[key];
}

int ConfigFields::size(const std::string& key) {
  const int64_t v = files::json_int(get(key), where_ + ": \"" + key + "\"");
  if (v <= 0 || v > (int64_t(1) << 24)) fail(key, "is not a sensible size (1 .. 2^24)");
  return int(v);
}

int ConfigFields::size_or(const std::string& key, int64_t fallback) {
  used_.insert(key);
  return has(key) ? size(key) : int(fallback);
}

double ConfigFields::positive(const std::string& key) {
  const json& v = get(key);
  if (!v.is_number()) fail(key, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d <= 0) fail(key, "must be a finite number greater than zero");
  return d;
}

double ConfigFields::positive_or(const std::string& key, double fallback) {
  used_.insert(key);
  return has(key) ? positive(key) : fallback;
}

std::string ConfigFields::string_or(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  if (!object_[key].is_string()) fail(key, "must be a string");
  return object_[key].get<std::string>();
}

bool ConfigFields::bool_or(const std::string& key, bool fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  if (!object_[key].is_boolean()) fail(key, "must be true or false");
  return object_[key].get<bool>();
}

const json* ConfigFields::object(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return nullptr;
  if (!object_[key].is_object()) fail(key, "must be a JSON object");
  return &object_[key];
}

const json* ConfigFields::array(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return nullptr;
  if (!object_[key].is_array()) fail(key, "must be a JSON array");
  return &object_[key];
}

const json& ConfigFields::raw(const std::string& key) {
  static const json null;
  used_.insert(key);
  return has(key) ? object_[key] : null;
}

void ConfigFields::require_value(const std::string& key, std::initializer_list<json> allowed) {
  used_.insert(key);
  if (!has(key)) return;
  std::string list;
  for (const json& a : allowed) {
    if (object_[key] == a) return;
    list += (list.empty() ? "" : ", ") + a.dump();
  }
  fail(key, "is not supported (lowbit implements " + list + ")");
}

void ConfigFields::not_math(std::initializer_list<const char*> keys) {
  for (const char* k : keys) used_.insert(k);
}

void ConfigFields::finish() const {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : object_.items())
    if (!used_.count(key) && !value.is_null())
      unknown.push_back("\"" + key + "\" = " + value.dump().substr(0, 60));
  if (unknown.empty()) return;
  std::string list;
  for (const std::string& u : unknown) list += (list.empty() ? "" : ", ") + u;
  throw Error(where_ + ": field" + (unknown.size() > 1 ? "s " : " ") + list +
              (unknown.size() > 1 ? " are" : " is") +
              " not known to lowbit, which cannot tell whether it changes the model's arithmetic "
              "(docs/model-config.md "
              "lists the fields it reads)");
}

}  // namespace lowbit::model
