// The result object's JSON (docs/results.md): written by one serializer, read by one reader.
#include "eval/result_json.h"

#include <cmath>
#include <limits>

#include "lowbit/util/error.h"
#include "util/json_file.h"

namespace lowbit::eval {
namespace {

using nlohmann::json;

// SQNR-like figures are +inf when exact; JSON has no infinity, so they travel as null.
json finite_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
double inf_if_null(const json& v) {
  return v.is_null() ? std::numeric_limits<double>::infinity() : v.get<double>();
}

json stats_json(const ErrorStats& e) {
  return {{"count", e.count},           {"sum_sq_x", e.sum_sq_x},
          {"sum_sq_err", e.sum_sq_err}, {"max_abs_err", e.max_abs_err},
          {"clipped", e.clipped},       {"flushed", e.flushed},
          {"non_finite", e.non_finite}};
}

// Integer fields of files read back: nlohmann's get<int>() casts a float or an out-of-range value
// with undefined behaviour, so they go through the checked reader with a range.
}  // namespace

int64_t int_field(const json& j, const char* key, int64_t lo, int64_t hi) {
  const int64_t v = files::json_int(j.at(key), std::string("\"") + key + "\"");
  if (v < lo || v > hi)
    throw Error(std::string("\"") + key + "\" = " + std::to_string(v) + " is out of range");
  return v;
}

namespace {

ErrorStats stats_from(const json& j) {
  ErrorStats e;
  e.count = size_t(int_field(j, "count"));
  e.sum_sq_x = j.at("sum_sq_x").get<double>();
  e.sum_sq_err = j.at("sum_sq_err").get<double>();
  e.max_abs_err = j.at("max_abs_err").get<double>();
  e.clipped = size_t(int_field(j, "clipped"));
  e.flushed = size_t(int_field(j, "flushed"));
  e.non_finite = size_t(int_field(j, "non_finite"));
  return e;
}

}  // namespace

json result_to_json(const RecipeResult& r) {
  json layers = json::array();
  for (const LayerRow& l : r.layers)
    layers.push_back({{"site", l.site},
                      {"layer", l.layer},
                      {"role", l.role},
                      {"weight_scheme", l.weight_scheme},
                      {"input_scheme", l.input_scheme},
                      {"weight", stats_json(l.weight)},
                      {"input_absmax", l.input_absmax},
                      {"input_kurtosis", l.input_kurtosis},
                      {"input", stats_json(l.input)},
                      {"output_sqnr_db", finite_or_null(l.output_sqnr_db)}});
  json j = {{"name", r.recipe.name},
            {"hash", r.hash},
            {"recipe", json::parse(r.recipe.canonical())},
            {"short", r.recipe.short_form()},
            {"bits_per_weight", r.bits_per_weight},
            {"bits_per_linear_weight", r.bits_per_linear_weight},
            {"mac_cost", r.mac_cost},
            {"ppl", r.ppl},
            {"ppl_stderr", r.ppl_stderr},
            {"delta_ppl", r.delta_ppl},
            {"delta_ppl_stderr", r.delta_ppl_stderr},
            {"ln_ppl_ratio", r.ln_ppl_ratio},
            {"ln_ppl_ratio_stderr", r.ln_ppl_ratio_stderr},
            {"kld",
             {{"mean", r.kld.mean},
              {"stderr", r.kld.stderr_},
              {"median", r.kld.median},
              {"p99", r.kld.p99},
              {"max", r.kld.max}}},
            {"top1_agreement", r.top1},
            {"top1_stderr", r.top1_stderr},
            {"seconds", r.seconds},
            {"method_seconds", r.method_seconds},
            {"calibration", r.calibration},
            {"layers", layers}};
  if (!r.execution.empty()) j["execution"] = r.execution;  // absent: emulated
  // Encoders have no perplexity: their figures are the embedding scores (the decoder fields stay
  // 0).
  if (r.encoder)
    j["embedding"] = {{"sentences", r.embedding.sentences},
                      {"pairs", r.embedding.pairs},
                      {"cosine_mean", r.embedding.cosine_mean},
                      {"cosine_min", r.embedding.cosine_min},
                      {"rank_correlation", r.embedding.rank_correlation}};
  if (!r.compared) j["compared"] = false;
  return j;
}

RecipeResult result_from(const json& j, const std::string& where) {
  RecipeResult r;
  json recipe = j.at("recipe");
  recipe["name"] = j.at("name");
  r.recipe = ptq::parse_recipe_json(recipe.dump(), where);
  r.hash = j.at("hash").get<std::string>();
  if (r.hash != r.recipe.hash_hex())
    throw Error(where + ": the stored hash does not match the recipe");
  r.bits_per_weight = j.at("bits_per_weight").get<double>();
  r.bits_per_linear_weight = j.at("bits_per_linear_weight").get<double>();
  r.mac_cost = j.value("mac_cost", 0.0);  // absent from results written before the cost model
  r.ppl = j.at("ppl").get<double>();
  r.ppl_stderr = j.at("ppl_stderr").get<double>();
  r.delta_ppl = j.at("delta_ppl").get<double>();
  r.delta_ppl_stderr = j.at("delta_ppl_stderr").get<double>();
  r.ln_ppl_ratio = j.at("ln_ppl_ratio").get<double>();
  r.ln_ppl_ratio_stderr = j.at("ln_ppl_ratio_stderr").get<double>();
  const json& k = j.at("kld");
  r.kld = {k.at("mean").get<double>(), k.at("stderr").get<double>(), k.at("median").get<double>(),
           k.at("p99").get<double>(), k.at("max").get<double>()};
  r.top1 = j.at("top1_agreement").get<double>();
  r.top1_stderr = j.at("top1_stderr").get<double>();
  r.seconds = j.at("seconds").get<double>();
  if (j.contains("method_seconds"))
    r.method_seconds = j.at("method_seconds").get<std::vector<std::pair<std::string, double>>>();
  r.calibration = j.value("calibration", std::string());
  r.execution = j.value("execution", std::string());
  r.compared = j.value("compared", true);
  if (j.contains("embedding")) {
    const json& e = j.at("embedding");
    r.encoder = true;
    r.embedding.sentences = int_field(e, "sentences");
    r.embedding.pairs = int_field(e, "pairs");
    r.embedding.cosine_mean = e.at("cosine_mean").get<double>();
    r.embedding.cosine_min = e.at("cosine_min").get<double>();
    r.embedding.rank_correlation = e.at("rank_correlation").get<double>();
  }
  for (const json& l : j.at("layers")) {
    LayerRow row;
    row.site = l.at("site").get<std::string>();
    row.layer = int(int_field(l, "layer", -1, 1 << 24));
    row.role = l.at("role").get<std::string>();
    row.weight_scheme = l.at("weight_scheme").get<std::string>();
    row.input_scheme = l.at("input_scheme").get<std::string>();
    row.weight = stats_from(l.at("weight"));
    row.input_absmax = l.at("input_absmax").get<double>();
    row.input_kurtosis = l.at("input_kurtosis").get<double>();
    row.input = stats_from(l.at("input"));
    row.output_sqnr_db = inf_if_null(l.at("output_sqnr_db"));
    r.layers.push_back(std::move(row));
  }
  return r;
}

std::string result_json(const RecipeResult& r) {
  return result_to_json(r).dump(1);
}

RecipeResult result_from_json(const std::string& text, const std::string& where) {
  try {
    return result_from(json::parse(text), where);
  } catch (const json::exception& e) {
    throw Error(where + ": not a lowbit result (" + e.what() + ")");
  }
}

}  // namespace lowbit::eval
