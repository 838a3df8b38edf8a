// The JSON of evaluation results (docs/results.md): one serializer and one reader for the result
// object that `lowbit eval --json`, the sweep's cache entries and results.json all hold.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/eval/evaluate.h"

namespace lowbit::eval {

nlohmann::json result_to_json(const RecipeResult& r);
RecipeResult result_from(const nlohmann::json& j, const std::string& where);

// Integer fields of files read back, range-checked (nlohmann's get<int>() casts a float or an
// out-of-range value with undefined behaviour).
int64_t int_field(const nlohmann::json& j, const char* key, int64_t lo = 0,
                  int64_t hi = int64_t(1) << 53);

}  // namespace lowbit::eval
