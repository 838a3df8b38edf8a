// `lowbit formats [--json]`: every named format with its derived limits.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/format/format.h"

namespace lowbit::cli {
namespace {

// What the special codes and the lowest binade mean, in a few words.
std::string specials_summary(const Format& f) {
  if (f.kind == FormatKind::Int) return f.is_signed ? "two's complement" : "unsigned";
  if (f.kind == FormatKind::Lut) return "codebook of " + std::to_string(f.lut_size) + " values";
  std::string s;
  switch (f.specials) {
    case Specials::IEEE:
      s = "inf, NaN";
      break;
    case Specials::FN:
      s = "NaN (all ones), no inf";
      break;
    case Specials::FNUZ:
      s = "NaN at -0, no inf, no -0";
      break;
    case Specials::None:
      s = "all finite";
      break;
  }
  if (f.low == LowBinade::Flush) s += ", no subnormals";
  if (f.low == LowBinade::Normal) s += ", no zero";
  if (!f.is_signed) s += ", unsigned";
  return s;
}

std::string number(double v) {
  return fmt::format("{:.9g}", v);
}

nlohmann::json row_json(const NamedFormat& nf) {
  const Format& f = nf.format;
  const bool is_float = f.kind == FormatKind::Float;
  nlohmann::json j;
  j["name"] = nf.name;
  j["aliases"] = nf.aliases;
  j["kind"] = is_float ? "float" : f.kind == FormatKind::Int ? "int" : "lut";
  j["bits"] = f.bits();
  j["exp_bits"] = is_float ? nlohmann::json(f.exp_bits) : nlohmann::json();
  j["man_bits"] = is_float ? nlohmann::json(f.man_bits) : nlohmann::json();
  j["bias"] = is_float ? nlohmann::json(f.bias) : nlohmann::json();
  j["max_finite"] = max_finite(f);
  j["lowest_finite"] = lowest_finite(f);
  j["min_normal"] = is_float ? nlohmann::json(min_normal(f)) : nlohmann::json();
  j["min_subnormal"] =
      (is_float && min_subnormal(f) > 0) ? nlohmann::json(min_subnormal(f)) : nlohmann::json();
  j["min_positive"] = min_positive(f);
  j["epsilon"] = f.kind == FormatKind::Lut ? nlohmann::json() : nlohmann::json(epsilon(f));
  j["finite_values"] = finite_value_count(f);
  j["has_inf"] = has_inf(f);
  j["has_nan"] = has_nan(f);
  j["specials"] = specials_summary(f);
  j["description"] = nf.description;
  return j;
}

void print_table() {
  fmt::print("{:<12} {:>4} {:>3} {:>3} {:>5} {:>14} {:>14} {:>14} {:>10} {:>7}  {}\n", "name",
             "bits", "e", "m", "bias", "max finite", "min normal", "min subnormal", "ulp at 1",
             "finite", "specials");
  for (const NamedFormat& nf : named_formats()) {
    const Format& f = nf.format;
    const bool is_float = f.kind == FormatKind::Float;
    const std::string dash = "-";
    fmt::print("{:<12} {:>4} {:>3} {:>3} {:>5} {:>14} {:>14} {:>14} {:>10} {:>7}  {}\n", nf.name,
               f.bits(), is_float ? std::to_string(f.exp_bits) : dash,
               is_float ? std::to_string(f.man_bits) : dash,
               is_float ? std::to_string(f.bias) : dash, number(max_finite(f)),
               is_float ? number(min_normal(f)) : dash,
               (is_float && min_subnormal(f) > 0) ? number(min_subnormal(f)) : dash,
               f.kind == FormatKind::Lut ? dash : number(epsilon(f)), finite_value_count(f),
               specials_summary(f));
  }
  fmt::print(
      "\nAny other float: "
      "eXmY[:bias=B][:specials=ieee|fn|fnuz|none][:subnormals=on|off][:zero=off][:unsigned];"
      " integers: intN, uintN (N = 2..16); codebooks: lut:v0,v1,...\n");
}

}  // namespace

void add_formats_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("formats", "List the named number formats and their limits");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON instead of a table");
  cmd->callback([json] {
    if (*json) {
      nlohmann::json rows = nlohmann::json::array();
      for (const NamedFormat& nf : named_formats()) rows.push_back(row_json(nf));
      fmt::print("{}\n", rows.dump(2));
    } else {
      print_table();
    }
  });
}

}  // namespace lowbit::cli
