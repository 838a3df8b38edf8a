// `lowbit quantize-tensor`: quantize one .npy tensor with a scheme (or compare several) and print
// the error metrics; optionally save the quantized tensor (.lbq) and its dequantized values.
// `lowbit schemes`: list the named schemes.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/io/npy.h"
#include "lowbit/io/qtensor_file.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string scheme;
  std::string compare;
  std::string input;
  std::string out;
  std::string dequant;
  bool json = false;
  bool groups = false;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) parts.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return parts;
}

std::string shape_text(const std::vector<size_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s.empty() ? "scalar" : s;
}

nlohmann::json stats_json(const ErrorStats& st) {
  return {{"count", st.count},
          {"mse", st.mse()},
          {"sqnr_db",
           std::isfinite(st.sqnr_db()) ? nlohmann::json(st.sqnr_db()) : nlohmann::json(nullptr)},
          {"max_abs_err", st.max_abs_err},
          {"clipped_fraction", st.clipped_fraction()},
          {"flushed_fraction", st.flushed_fraction()},
          {"non_finite", st.non_finite}};
}

struct Row {
  std::string scheme;
  QuantReport report;
};

void print_table(const std::vector<Row>& rows) {
  fmt::print("{:<40} {:>9} {:>12} {:>9} {:>12} {:>9} {:>9} {:>8}  {}\n", "scheme", "bits/elem",
             "MSE", "SQNR dB", "max |err|", "clipped", "flushed", "groups", "scales 2^k");
  for (const Row& r : rows) {
    const ErrorStats& t = r.report.tensor;
    const auto& h = r.report.scale_log2_histogram;
    const std::string scales =
        h.empty() ? "-" : fmt::format("{}..{}", h.begin()->first, h.rbegin()->first);
    fmt::print("{:<40} {:>9.4f} {:>12.4g} {:>9.2f} {:>12.4g} {:>8.3f}% {:>8.3f}% {:>8}  {}\n",
               r.scheme, r.report.bits_per_element, t.mse(), t.sqnr_db(), t.max_abs_err,
               100 * t.clipped_fraction(), 100 * t.flushed_fraction(), r.report.groups.size(),
               scales);
  }
}

void run(const Args& a) {
  std::vector<std::string> names = split_commas(a.compare);
  if (!a.scheme.empty()) names.insert(names.begin(), a.scheme);
  if (names.empty()) throw Error("give --scheme S or --compare S1,S2,... (see `lowbit schemes`)");
  if (names.size() > 1 && (!a.out.empty() || !a.dequant.empty()))
    throw Error("--out and --dequant take a single --scheme, not a comparison");
  std::vector<Scheme> schemes;
  for (const std::string& n : names)
    schemes.push_back(parse_scheme(n));  // all names checked before any work
  if (!a.out.empty()) io::require_writable(a.out, "--out");
  if (!a.dequant.empty()) io::require_writable(a.dequant, "--dequant");
  std::vector<size_t> shape;
  const std::vector<float> x = read_npy_float32(a.input, shape);

  std::vector<Row> rows;
  for (const Scheme& s : schemes) {
    std::vector<float> dq;
    rows.push_back({scheme_name(s), measure(s, x.data(), shape, &dq)});
    // Both outputs or neither: the dequantized file is removed when the quantized one fails.
    const QTensor q = a.out.empty() ? QTensor{} : quantize(s, x.data(), shape);
    if (!a.dequant.empty())
      write_npy(a.dequant, "<f4", shape, dq.data(), dq.size() * sizeof(float));
    try {
      if (!a.out.empty()) write_qtensor(a.out, q);
    } catch (...) {
      if (!a.dequant.empty()) std::remove(a.dequant.c_str());
      throw;
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& l, const Row& r) {
    return l.report.bits_per_element < r.report.bits_per_element;
  });
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      nlohmann::json j = stats_json(r.report.tensor);
      j["scheme"] = r.scheme;
      j["bits_per_element"] = r.report.bits_per_element;
      j["groups"] = r.report.groups.size();
      nlohmann::json hist = nlohmann::json::object();
      for (const auto& [k, count] : r.report.scale_log2_histogram) hist[std::to_string(k)] = count;
      j["scale_log2_histogram"] = hist;
      if (a.groups) {
        nlohmann::json groups = nlohmann::json::array();
        for (const ErrorStats& g : r.report.groups) groups.push_back(stats_json(g));
        j["per_group"] = groups;
      }
      out.push_back(j);
    }
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{}: {} float32 values, shape {}\n", a.input, x.size(), shape_text(shape));
  print_table(rows);
  if (!a.out.empty()) fmt::print("quantized tensor written to {}\n", a.out);
  if (!a.dequant.empty()) fmt::print("dequantized values written to {}\n", a.dequant);
}

}  // namespace

void add_quantize_tensor_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("quantize-tensor",
                                     "Quantize a .npy tensor with a scheme and report the error");
  cmd->add_option("input", a->input, "Input .npy (float32, float16 or bfloat16)")->required();
  cmd->add_option("-s,--scheme", a->scheme,
                  "Scheme: a preset (see `lowbit schemes`) or element:options");
  cmd->add_option("--compare", a->compare,
                  "Comma-separated schemes: one row each, sorted by bits per element");
  cmd->add_option("--out", a->out, "Write the quantized tensor to this .lbq file");
  cmd->add_option("--dequant", a->dequant, "Write the dequantized values to this .npy file");
  cmd->add_flag("--json", a->json, "Print JSON instead of a table");
  cmd->add_flag("--groups", a->groups, "With --json: also the metrics of every group");
  cmd->callback([a] { run(*a); });
}

void add_schemes_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("schemes", "List the named quantization schemes");
  cmd->callback([] {
    fmt::print("{:<14} {:<36} {:>9}  {}\n", "name", "definition", "bits/elem", "description");
    for (const NamedScheme& ns : named_schemes()) {
      const double bits = scheme_bits_per_element(parse_scheme(ns.name), {4096, 4096});
      fmt::print("{:<14} {:<36} {:>9.3f}  {}\n", ns.name, ns.definition, bits, ns.description);
    }
    fmt::print(
        "\n(bits per element on a 4096x4096 tensor.) Syntax: "
        "<element>[:tensor|:channel|:token|:g<G>|"
        ":block<R>x<C>][:axis=<a>][:scale=<format>|f32][:pow2[=floor|ceil|nearest]]"
        "[:mse|:percentile=<p>|:fixed=<s>][:global][:asym][:round=<mode>][:seed=<n>]\n");
  });
}

}  // namespace lowbit::cli
