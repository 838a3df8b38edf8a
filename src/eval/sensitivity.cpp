// Per-site sensitivity to each candidate weight scheme, and the allocation problems built from it
// (lowbit/eval/sensitivity.h).
#include "lowbit/eval/sensitivity.h"

#include <fmt/core.h>
#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "eval/rank_correlation.h"
#include "eval/resumed_pass.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/execution.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/weight_error_scores.h"
#include "lowbit/train/hessian_trace.h"
#include "lowbit/util/error.h"

namespace lowbit::eval {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The recipe that quantizes one site's weights and leaves everything else in full precision.
ptq::Recipe only_site(const std::string& site, const ptq::MaybeScheme& weights) {
  ptq::Recipe r;
  ptq::RecipeOverride o;
  o.match = site;
  o.weights = weights;
  r.overrides.push_back(o);
  return r;
}

const std::vector<double>& score_of(const SiteSensitivity& s, const std::string& score) {
  if (score == "kl") return s.kl;
  if (score == "hessian") return s.hawq;
  if (score == "proxy") return s.proxy;
  throw Error("unknown sensitivity score \"" + score + "\" (kl, hessian, proxy)");
}

json numbers(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? json(x) : json(nullptr));
  return a;
}
std::vector<double> numbers_from(const json& a) {
  std::vector<double> v;
  for (const json& x : a) v.push_back(x.is_null() ? kNotMeasured : x.get<double>());
  return v;
}
json number(double x) {
  return std::isfinite(x) ? json(x) : json(nullptr);
}
double number_from(const json& x) {
  return x.is_null() ? kNotMeasured : x.get<double>();
}

}  // namespace

std::vector<std::string> SensitivityTable::candidate_names() const {
  std::vector<std::string> names;
  for (const ptq::MaybeScheme& c : candidates) names.push_back(ptq::maybe_scheme_name(c));
  return names;
}

double SensitivityTable::rank_correlation(const std::string& score, size_t candidate) const {
  std::vector<double> a, b;
  for (const SiteSensitivity& s : sites) {
    const std::vector<double>& v = score_of(s, score);
    if (!candidates[candidate] || v.empty() || s.kl.empty()) continue;
    if (!std::isfinite(v[candidate]) || !std::isfinite(s.kl[candidate])) return kNotMeasured;
    a.push_back(v[candidate]);
    b.push_back(s.kl[candidate]);
  }
  return a.size() < 2 ? kNotMeasured : spearman(a, b);
}

double SensitivityTable::rank_correlation(const std::string& score) const {
  std::vector<double> a, b;
  for (const SiteSensitivity& s : sites)
    for (size_t c = 0; c < candidates.size(); ++c) {
      const std::vector<double>& v = score_of(s, score);
      if (!candidates[c]) continue;  // full precision scores 0 everywhere: no ranking in it
      if (v.empty() || s.kl.empty() || !std::isfinite(v[c]) || !std::isfinite(s.kl[c]))
        return kNotMeasured;
      a.push_back(v[c]);
      b.push_back(s.kl[c]);
    }
  return a.size() < 2 ? kNotMeasured : spearman(a, b);
}

void measure_site_latencies(SensitivityTable& t, const model::Runtime& fp, int tokens,
                            int repeats) {
  if (tokens < 1 || repeats < 1) throw Error("latency: need at least one token and one repeat");
  std::map<std::pair<std::vector<size_t>, size_t>, double> by_shape;  // (shape, candidate) → s
  for (SiteSensitivity& s : t.sites) {
    s.latency.assign(t.candidates.size(), 0);
    for (size_t c = 0; c < t.candidates.size(); ++c) {
      const auto key = std::make_pair(s.shape, c);
      if (const auto it = by_shape.find(key); it != by_shape.end()) {
        s.latency[c] = it->second;
        continue;
      }
      const std::unique_ptr<model::Runtime> q =
          ptq::apply_recipe(only_site(s.site, t.candidates[c]), fp);
      model::prepare_execution(*q, model::Execution::Auto);
      const model::Sites sites = q->sites();
      const model::Linear* lin = nullptr;
      for (const model::LinearSite& ls : sites.linears)
        if (ls.linear->name() == s.site) lin = ls.linear;
      if (!lin) throw Error("internal: no Linear " + s.site);
      std::vector<float> x(size_t(tokens) * s.shape[1]), y(size_t(tokens) * s.shape[0]);
      for (size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(0.37 * double(i)));
      lin->forward(x.data(), tokens, y.data());  // warm: caches, pages, thread pool
      std::vector<double> runs;
      for (int r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        lin->forward(x.data(), tokens, y.data());
        runs.push_back(seconds_since(t0));
      }
      std::nth_element(runs.begin(), runs.begin() + long(runs.size() / 2), runs.end());
      s.latency[c] = by_shape[key] = runs[runs.size() / 2];
    }
  }
  t.latency_tokens = tokens;
  t.latency_execution = "auto (packed kernels where one exists, else float32 on fake-quantized)";
}

std::string sensitivity_setup(const ptq::Calibration* calibration, const SensitivityOptions& o) {
  return fmt::format(
      "calibration {}; kl windows of {} over {} tokens; {} Hutchinson samples of {} "
      "tokens, seed {}",
      calibration ? calibration->id : "none", o.n_ctx, o.max_tokens, o.hutchinson_samples,
      o.hessian_tokens, o.seed);
}

SensitivityTable measure_sensitivity(const model::Model& m, const std::string& text,
                                     const std::string& text_name,
                                     const ptq::Calibration* calibration,
                                     const SensitivityOptions& opt) {
  if (!m.llama)
    throw Error("sensitivity: " + m.path + " is not a decoder (it has no loss to score)");
  if (opt.candidates.empty()) throw Error("sensitivity: no candidate schemes");
  if ((opt.hessian || opt.proxy) && !calibration)
    throw Error("sensitivity: the hessian and proxy scores need calibration data (--calib)");
  const model::Llama& fp = *m.llama;
  const auto progress = [&](const std::string& what, int64_t done, int64_t total) {
    if (opt.progress) opt.progress(what, done, total);
  };
  SensitivityTable t;
  t.model_hash = m.content_hash;
  t.candidates = opt.candidates;
  if (calibration) t.calibration = calibration->description;
  t.setup = sensitivity_setup(calibration, opt);
  model::Llama probe = fp;
  const model::Sites sites = probe.sites();
  t.fixed_bits = double(sites.embedding.rows * sites.embedding.cols) * 16;
  if (sites.head && !sites.head_tied)
    t.fixed_bits += double(sites.head->out_features()) * double(sites.head->in_features()) * 16;
  for (const model::LinearSite& ls : sites.linears) {
    SiteSensitivity s;
    s.site = ls.linear->name();
    s.layer = ls.layer;
    s.role = ls.role;
    s.shape = {size_t(ls.linear->out_features()), size_t(ls.linear->in_features())};
    for (const ptq::MaybeScheme& c : opt.candidates)
      s.bits.push_back(ptq::weight_bits_per_element(c, s.shape));
    t.sites.push_back(std::move(s));
  }
  const size_t k = opt.candidates.size();

  auto t0 = Clock::now();
  const std::vector<ptq::WeightErrorScores> errors = ptq::weight_error_scores(
      fp, opt.candidates, opt.proxy ? calibration : nullptr,
      [&](int done, int blocks) { progress("weight errors and proxy", done, blocks); });
  for (size_t i = 0; i < t.sites.size(); ++i) {
    t.sites[i].squared_error = errors[i].squared_error;
    t.sites[i].proxy = opt.proxy ? errors[i].output_proxy : std::vector<double>(k, kNotMeasured);
  }
  t.proxy_seconds = seconds_since(t0);

  for (SiteSensitivity& s : t.sites) s.hawq.assign(k, kNotMeasured);
  if (opt.hessian) {
    t0 = Clock::now();
    const std::vector<int32_t>& seq = calibration->sequences.front();
    const int n = std::min<int>(opt.hessian_tokens, int(seq.size()) - 1);
    if (n < 2) throw Error("sensitivity: the calibration sequences are too short for the traces");
    const std::vector<int32_t> tokens(seq.begin(), seq.begin() + n),
        targets(seq.begin() + 1, seq.begin() + n + 1);
    const std::vector<train::ParameterTrace> traces = train::hessian_traces(
        fp, tokens, targets, 1, n, opt.hutchinson_samples, opt.seed,
        [&](int done, int total) { progress("Hessian traces (Hutchinson)", done, total); });
    std::map<std::string, const train::ParameterTrace*> by_site;
    for (const train::ParameterTrace& tr : traces)
      if (const std::string site = train::linear_site_of_parameter(tr.name); !site.empty())
        by_site[site] = &tr;
    for (SiteSensitivity& s : t.sites) {
      const auto it = by_site.find(s.site);
      if (it == by_site.end()) throw Error("internal: no Hessian trace for " + s.site);
      s.hessian_trace = it->second->trace;
      s.hessian_trace_stderr = it->second->stderr_;
      // A negative estimate (the loss is not convex there, or the sample is noisy) would reward
      // error; HAWQ's score takes the curvature as at least zero.
      const double per_weight = std::max(0.0, s.hessian_trace) / double(s.weights());
      for (size_t c = 0; c < k; ++c) s.hawq[c] = per_weight * s.squared_error[c];
    }
    t.hutchinson_samples = opt.hutchinson_samples;
    t.hessian_tokens = n;
    t.hessian_seconds = seconds_since(t0);
  }

  for (SiteSensitivity& s : t.sites) {
    s.kl.assign(k, kNotMeasured);
    s.ln_ppl.assign(k, kNotMeasured);
  }
  if (opt.kl) {
    t0 = Clock::now();
    const TextWindows windows =
        make_windows(*m.tokenizer, text, text_name, opt.n_ctx, opt.max_tokens);
    t.text = fmt::format("{}: {} windows of {} tokens", text_name, windows.n_windows, opt.n_ctx);
    PerplexityOptions popt;
    popt.record = true;
    const PerplexityResult base = perplexity(fp, windows, m.path, popt);
    popt.record = false;
    popt.compare_to = &base.recorded;
    // Only one layer differs from the full-precision model in each evaluation: every one starts
    // at that layer from the recorded inputs (about half the layers on average are skipped).
    const LayerInputs inputs(fp, windows);
    int64_t quantized = 0, done = 0;
    for (const ptq::MaybeScheme& c : opt.candidates) quantized += c ? 1 : 0;
    const int64_t total = quantized * int64_t(t.sites.size());
    for (SiteSensitivity& s : t.sites)
      for (size_t c = 0; c < k; ++c) {
        if (!opt.candidates[c]) {  // the site as it is: the full-precision model itself
          s.kl[c] = 0;
          s.ln_ppl[c] = 0;
          continue;
        }
        const model::Llama q = ptq::apply_recipe(only_site(s.site, opt.candidates[c]), fp);
        ResumedPass pass(q, inputs, s.layer);
        const PerplexityResult r = perplexity(q, pass, windows, "", popt);
        s.kl[c] = r.kld.mean;
        s.ln_ppl[c] = r.ln_ppl_ratio;
        progress("KL per site and candidate", ++done, total);
      }
    t.kl_seconds = seconds_since(t0);
  }
  return t;
}

std::string sensitivity_json(const SensitivityTable& t) {
  json j;
  j["version"] = 1;
  j["model_hash"] = t.model_hash;
  j["text"] = t.text;
  j["calibration"] = t.calibration;
  j["setup"] = t.setup;
  j["candidates"] = t.candidate_names();
  j["hutchinson_samples"] = t.hutchinson_samples;
  j["hessian_tokens"] = t.hessian_tokens;
  j["seconds"] = {{"kl", t.kl_seconds}, {"hessian", t.hessian_seconds}, {"proxy", t.proxy_seconds}};
  j["fixed_bits"] = t.fixed_bits;
  j["latency_tokens"] = t.latency_tokens;
  j["latency_execution"] = t.latency_execution;
  json corr;
  for (const char* score : {"hessian", "proxy"}) corr[score] = number(t.rank_correlation(score));
  j["rank_correlation_with_kl"] = corr;
  json sites = json::array();
  for (const SiteSensitivity& s : t.sites)
    sites.push_back({{"site", s.site},
                     {"layer", s.layer},
                     {"role", s.role},
                     {"shape", s.shape},
                     {"bits", numbers(s.bits)},
                     {"kl", numbers(s.kl)},
                     {"ln_ppl_ratio", numbers(s.ln_ppl)},
                     {"squared_error", numbers(s.squared_error)},
                     {"hessian_trace", number(s.hessian_trace)},
                     {"hessian_trace_stderr", number(s.hessian_trace_stderr)},
                     {"hawq", numbers(s.hawq)},
                     {"proxy", numbers(s.proxy)},
                     {"latency", numbers(s.latency)}});
  j["sites"] = sites;
  return j.dump(1);
}

SensitivityTable sensitivity_from_json(const std::string& json_text, const std::string& where) {
  try {
    const json j = json::parse(json_text);
    if (j.at("version").get<int>() != 1)
      throw Error("version " + j.at("version").dump() + " (this lowbit reads version 1)");
    SensitivityTable t;
    t.model_hash = j.at("model_hash").get<std::string>();
    t.text = j.at("text").get<std::string>();
    t.calibration = j.at("calibration").get<std::string>();
    t.setup = j.at("setup").get<std::string>();
    for (const json& c : j.at("candidates"))
      t.candidates.push_back(ptq::parse_maybe_scheme(c.get<std::string>()));
    t.hutchinson_samples = j.at("hutchinson_samples").get<int>();
    t.hessian_tokens = j.at("hessian_tokens").get<int>();
    t.kl_seconds = j.at("seconds").at("kl").get<double>();
    t.hessian_seconds = j.at("seconds").at("hessian").get<double>();
    t.proxy_seconds = j.at("seconds").at("proxy").get<double>();
    t.fixed_bits = j.at("fixed_bits").get<double>();
    t.latency_tokens = j.value("latency_tokens", 0);  // optional: measured on demand
    t.latency_execution = j.value("latency_execution", std::string());
    for (const json& e : j.at("sites")) {
      SiteSensitivity s;
      s.site = e.at("site").get<std::string>();
      s.layer = e.at("layer").get<int>();
      s.role = e.at("role").get<std::string>();
      s.shape = e.at("shape").get<std::vector<size_t>>();
      s.bits = numbers_from(e.at("bits"));
      s.kl = numbers_from(e.at("kl"));
      s.ln_ppl = numbers_from(e.at("ln_ppl_ratio"));
      s.squared_error = numbers_from(e.at("squared_error"));
      s.hessian_trace = number_from(e.at("hessian_trace"));
      s.hessian_trace_stderr = number_from(e.at("hessian_trace_stderr"));
      s.hawq = numbers_from(e.at("hawq"));
      s.proxy = numbers_from(e.at("proxy"));
      if (e.contains("latency")) s.latency = numbers_from(e.at("latency"));
      if (!s.latency.empty() && s.latency.size() != t.candidates.size())
        throw Error("site " + s.site + " does not list every candidate's latency");
      if (s.shape.size() != 2) throw Error("site " + s.site + ": shape is not [out, in]");
      for (const std::vector<double>* v :
           {&s.bits, &s.kl, &s.ln_ppl, &s.squared_error, &s.hawq, &s.proxy})
        if (v->size() != t.candidates.size())
          throw Error("site " + s.site + " does not list every candidate");
      t.sites.push_back(std::move(s));
    }
    return t;
  } catch (const json::exception& e) {
    throw Error(where + ": not a sensitivity table (" + e.what() + ")");
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

std::string sensitivity_summary(const SensitivityTable& t) {
  std::string out = fmt::format("{:<22} {:>8} {:>12} {:>12} {:>12}   rank corr. with kl (sites)\n",
                                "candidate", "bits/w", "mean kl", "mean hawq", "mean proxy");
  for (size_t c = 0; c < t.candidates.size(); ++c) {
    double kl = 0, hawq = 0, proxy = 0, bits = 0, n = 0;
    for (const SiteSensitivity& s : t.sites) {
      kl += s.kl[c];
      hawq += s.hawq[c];
      proxy += s.proxy[c];
      bits += s.bits[c] * double(s.weights());
      n += double(s.weights());
    }
    const double sites = double(t.sites.size());
    out += fmt::format(
        "{:<22} {:>8.3f} {:>12.5g} {:>12.5g} {:>12.5g}   hessian {:+.3f}  proxy {:+.3f}\n",
        ptq::maybe_scheme_name(t.candidates[c]), bits / n, kl / sites, hawq / sites, proxy / sites,
        t.rank_correlation("hessian", c), t.rank_correlation("proxy", c));
  }
  if (t.latency_tokens > 0) {
    double fastest = 0, slowest = 0;
    for (const SiteSensitivity& s : t.sites) {
      fastest += *std::min_element(s.latency.begin(), s.latency.end());
      slowest += *std::max_element(s.latency.begin(), s.latency.end());
    }
    out += fmt::format("latency of the Linears ({} tokens, {}): {:.3f} to {:.3f} ms\n",
                       t.latency_tokens, t.latency_execution, fastest * 1e3, slowest * 1e3);
  }
  out += fmt::format(
      "rank correlation with the measured kl over every (site, scheme): hessian {:+.3f}, proxy "
      "{:+.3f}\ncost: kl {:.0f} s ({}), Hessian traces {:.0f} s ({} samples of {} tokens), proxy "
      "and weight errors {:.0f} s\n",
      t.rank_correlation("hessian"), t.rank_correlation("proxy"), t.kl_seconds,
      t.text.empty() ? "not measured" : t.text, t.hessian_seconds, t.hutchinson_samples,
      t.hessian_tokens, t.proxy_seconds);
  return out;
}

ptq::AllocationProblem allocation_problem(const SensitivityTable& t, const std::string& score,
                                          double max_bits_per_weight,
                                          const AllocationRules& rules) {
  ptq::AllocationProblem p;
  p.candidates = t.candidates;
  p.max_bits_per_weight = max_bits_per_weight;
  p.fixed_bytes = t.fixed_bits / 8;
  const bool keep_possible =
      std::any_of(t.candidates.begin(), t.candidates.end(), [](const auto& c) { return !c; });
  if (!rules.keep.empty() && !keep_possible)
    throw Error("allocation: --keep needs full precision (fp) among the candidates");
  std::vector<bool> keep_used(rules.keep.size()), min_used(rules.min_bits.size());
  for (const SiteSensitivity& s : t.sites) {
    ptq::AllocationSite site;
    site.name = s.site;
    site.weights = s.weights();
    const std::vector<double>& v = score_of(s, score);
    for (size_t c = 0; c < t.candidates.size(); ++c) {
      if (!std::isfinite(v[c]))
        throw Error("allocation: the sensitivity table has no " + score + " score for " + s.site +
                    " (measure it, or choose another --score)");
      site.score.push_back(v[c]);
      // n · bits per element, as apply_recipe's report sums a tensor's storage.
      site.bits.push_back(double(s.shape[0] * s.shape[1]) * s.bits[c]);
      bool allowed = true;
      for (size_t r = 0; r < rules.keep.size(); ++r)
        if (::fnmatch(rules.keep[r].c_str(), s.site.c_str(), 0) == 0) {
          keep_used[r] = true;
          allowed = allowed && !t.candidates[c];
        }
      for (size_t r = 0; r < rules.min_bits.size(); ++r)
        if (::fnmatch(rules.min_bits[r].first.c_str(), s.site.c_str(), 0) == 0) {
          min_used[r] = true;
          allowed = allowed && s.bits[c] >= rules.min_bits[r].second;
        }
      site.allowed.push_back(allowed);
    }
    site.latency = s.latency;
    p.sites.push_back(std::move(site));
  }
  for (size_t r = 0; r < rules.keep.size(); ++r)
    if (!keep_used[r]) throw Error("allocation: --keep " + rules.keep[r] + " matches no site");
  for (size_t r = 0; r < rules.min_bits.size(); ++r)
    if (!min_used[r])
      throw Error("allocation: --min-bits " + rules.min_bits[r].first + " matches no site");
  return p;
}

std::vector<double> parse_budgets(const std::string& text) {
  const auto number = [&](const std::string& s) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || !(v > 0))
      throw Error("budgets \"" + text +
                  "\": expected first:step:last (4.25:0.25:8) or a list (4.5,6,8) of bits");
    return v;
  };
  std::vector<double> out;
  if (text.find(':') != std::string::npos) {
    const size_t a = text.find(':'), b = text.find(':', a + 1);
    if (b == std::string::npos) number("");  // throws the usage message
    const double first = number(text.substr(0, a)), step = number(text.substr(a + 1, b - a - 1)),
                 last = number(text.substr(b + 1));
    for (int i = 0; first + i * step <= last + 1e-9 * step; ++i) out.push_back(first + i * step);
    if (out.empty()) number("");
    return out;
  }
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    out.push_back(number(text.substr(start, comma - start)));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::vector<ptq::Recipe> allocated_recipes(const SensitivityTable& t, const std::string& score,
                                           const std::vector<double>& budgets,
                                           const std::string& solver, const ptq::Recipe& base,
                                           const AllocationRules& rules) {
  std::vector<ptq::Recipe> out;
  for (double b : budgets) {
    const ptq::AllocationProblem p = allocation_problem(t, score, b, rules);
    const ptq::Allocation a = ptq::allocate(p, solver);
    ptq::Recipe r =
        ptq::allocation_recipe(base, p, a, fmt::format("{} {} {:.2f}", solver, score, b));
    // Neighbouring budgets can give the same allocation: a grid lists each recipe once.
    if (std::none_of(out.begin(), out.end(),
                     [&](const ptq::Recipe& o) { return o.hash() == r.hash(); }))
      out.push_back(std::move(r));
  }
  return out;
}

}  // namespace lowbit::eval
