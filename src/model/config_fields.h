// Reading a model's configuration so that every field is accounted for. A loader takes each
// field it applies through a typed getter (which also checks the value makes sense), declares the
// fields that hold lowbit's only implemented value with require_value, and names the fields that
// do not change the forward pass (metadata, training-only settings) with not_math. Whatever is
// left when finish() is called is a field lowbit would otherwise ignore silently: an error that
// names it and its value. docs/model-config.md lists every field and what is done with it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace lowbit::model {

class ConfigFields {
 public:
  // `where` names the file (and the object inside it) in error messages.
  ConfigFields(const nlohmann::json& object, std::string where);

  bool has(const std::string& key) const;  // present and not null
  // Sizes: an integer in [1, 2^24].
  int size(const std::string& key);
  int size_or(const std::string& key, int64_t fallback);
  // A finite number > 0 (epsilons, RoPE theta, scaling factors).
  double positive(const std::string& key);
  double positive_or(const std::string& key, double fallback);
  std::string string_or(const std::string& key, const std::string& fallback);
  bool bool_or(const std::string& key, bool fallback);
  // A nested object (marked used; its own fields are the caller's to account for).
  const nlohmann::json* object(const std::string& key);
  // A JSON array (marked used; nullptr when absent).
  const nlohmann::json* array(const std::string& key);
  // The value as it is (marked used; null when absent).
  const nlohmann::json& raw(const std::string& key);
  // When present (and not null), the field must equal one of `allowed`; otherwise an error saying
  // which values lowbit implements.
  void require_value(const std::string& key, std::initializer_list<nlohmann::json> allowed);
  // Fields that cannot change the numbers lowbit computes (documented as such).
  void not_math(std::initializer_list<const char*> keys);
  // Marks a field as handled by the caller.
  void use(const std::string& key) { used_.insert(key); }
  // Throws lowbit::Error listing every present field that was neither used nor declared.
  void finish() const;

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  const std::string& where() const { return where_; }

 private:
  const nlohmann::json& get(const std::string& key);
  const nlohmann::json& object_;
  std::string where_;
  std::set<std::string> used_;
};

}  // namespace lowbit::model
