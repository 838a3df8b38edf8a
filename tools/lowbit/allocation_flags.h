// The mixed-precision options `lowbit allocate` and `lowbit sweep --allocate` share: candidates,
// score, solver, rules, and where the sensitivity table comes from (measured, or a saved file).
#pragma once

#include <fmt/core.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "lowbit/eval/sensitivity.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/util/error.h"
#include "progress.h"
#include "util/files.h"

namespace lowbit::cli {

// "a,b,c" → {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

struct AllocationFlags {
  std::string candidates = "mxfp4,nvfp4,int4_g128,e4m3fn:channel,mxfp6_e2m3,fp";
  std::string score = "kl", solver = "ilp", sensitivity;
  std::vector<std::string> keep, min_bits;
  int64_t sensitivity_tokens = 1024;
  int hutchinson_samples = 8, hessian_tokens = 256, sensitivity_ctx = 512;
  int latency_tokens = 1;  // rows of the timed forwards when a latency budget is given
  bool all_scores = false;

  // `solver_list`: --solver takes a comma-separated list (the sweep adds each one's recipes).
  void add_to(CLI::App* cmd, bool solver_list = false) {
    cmd->add_option("--candidates", candidates,
                    "Comma-separated weight schemes a site may take; fp keeps it (bf16)")
        ->default_val(candidates);
    cmd->add_option("--score", score,
                    "Sensitivity that predicts the loss: kl (measured per site), hessian (HAWQ-V2 "
                    "Hutchinson traces), proxy (tr(ΔW H_x ΔWᵀ) from calibration)")
        ->check(CLI::IsMember({"kl", "hessian", "proxy"}))
        ->default_val(score);
    cmd->add_option(
           "--solver", solver,
           std::string("ilp (GLPK, optimal), greedy or random (baselines for comparison)") +
               (solver_list ? "; a comma-separated list adds each one's recipes" : ""))
        ->check([solver_list](const std::string& v) -> std::string {
          const std::vector<std::string> names = split_list(v);
          if (names.empty() || (!solver_list && names.size() > 1))
            return "expected one of ilp, greedy, random";
          for (const std::string& n : names)
            if (n != "ilp" && n != "greedy" && n != "random")
              return "unknown solver " + n + " (ilp, greedy, random)";
          return "";
        })
        ->default_val(solver);
    cmd->add_option("--sensitivity", sensitivity,
                    "Sensitivity table JSON: read when it exists (same model and candidates), "
                    "else measured and written there");
    cmd->add_flag("--all-scores", all_scores,
                  "Measure kl, hessian and proxy all (for their rank correlations), not only "
                  "the one --score needs");
    cmd->add_option("--keep", keep,
                    "Site pattern kept in full precision (repeatable), e.g. 'layers.0.*'");
    cmd->add_option("--min-bits", min_bits,
                    "<pattern>:<bits>: sites that must keep at least that many bits per weight "
                    "(repeatable), e.g. '*.down_proj:6'");
    cmd->add_option("--sensitivity-tokens", sensitivity_tokens,
                    "Tokens of the calibration text the kl score is measured on")
        ->default_val(sensitivity_tokens);
    cmd->add_option("--sensitivity-ctx", sensitivity_ctx, "Window length of the kl measurement")
        ->default_val(sensitivity_ctx)
        ->check(CLI::Range(8, 1 << 20));
    cmd->add_option("--latency-tokens", latency_tokens,
                    "Rows of the timed forward per Linear for --max-latency-ms (1: decoding)")
        ->default_val(latency_tokens)
        ->check(CLI::Range(1, 1 << 16));
    cmd->add_option("--hutchinson", hutchinson_samples, "Hutchinson samples for the hessian score")
        ->default_val(hutchinson_samples)
        ->check(CLI::Range(1, 10000));
    cmd->add_option("--hessian-tokens", hessian_tokens,
                    "Tokens of the first calibration sequence the Hessian traces use")
        ->default_val(hessian_tokens)
        ->check(CLI::Range(2, 1 << 20));
  }

  std::vector<ptq::MaybeScheme> candidate_schemes() const {
    std::vector<ptq::MaybeScheme> out;
    for (const std::string& name : split_list(candidates)) try {
        out.push_back(ptq::parse_maybe_scheme(name));
      } catch (const Error& e) {
        throw Error("--candidates: " + std::string(e.what()));
      }
    return out;
  }

  eval::SensitivityOptions options(const std::vector<ptq::MaybeScheme>& cands) const {
    eval::SensitivityOptions opt;
    opt.candidates = cands;
    opt.kl = all_scores || score == "kl";
    opt.hessian = all_scores || score == "hessian";
    opt.proxy = true;  // cheap beside the others
    opt.max_tokens = sensitivity_tokens;
    opt.n_ctx = sensitivity_ctx;
    opt.hutchinson_samples = hutchinson_samples;
    opt.hessian_tokens = hessian_tokens;
    return opt;
  }

  eval::AllocationRules rules() const {
    eval::AllocationRules r;
    r.keep = keep;
    for (const std::string& m : min_bits) {
      const size_t colon = m.rfind(':');
      double bits = 0;
      size_t used = 0;
      try {
        if (colon != std::string::npos) bits = std::stod(m.substr(colon + 1), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (colon == std::string::npos || used == 0 || used != m.size() - colon - 1)
        throw Error("--min-bits \"" + m + "\": expected <pattern>:<bits>, e.g. '*.down_proj:6'");
      r.min_bits.emplace_back(m.substr(0, colon), bits);
    }
    return r;
  }

  // The table: from --sensitivity when it fits this model and these candidates, else measured on
  // the calibration text (and saved there).
  // With `latency`, the table also holds every site's measured forward times (measured now and
  // saved when a read table lacks them).
  eval::SensitivityTable table(const model::Model& m, const std::string& calib_path,
                               const std::string& calib_text, const ptq::Calibration& calibration,
                               bool latency = false) const {
    eval::SensitivityTable t = table_without_latency(m, calib_path, calib_text, calibration);
    if (latency && t.latency_tokens != latency_tokens) {
      fmt::print("latency: timing every Linear shape in every candidate ({} tokens)\n",
                 latency_tokens);
      eval::measure_site_latencies(t, m.runtime(), latency_tokens, 9);
      save(t);
    }
    return t;
  }

  void save(const eval::SensitivityTable& t) const {
    if (sensitivity.empty()) return;
    io::write_file_atomically(sensitivity,
                              [&](std::ostream& out) { out << eval::sensitivity_json(t); });
    fmt::print("sensitivity: written to {}\n", sensitivity);
  }

  eval::SensitivityTable table_without_latency(const model::Model& m, const std::string& calib_path,
                                               const std::string& calib_text,
                                               const ptq::Calibration& calibration) const {
    const std::vector<ptq::MaybeScheme> cands = candidate_schemes();
    if (!sensitivity.empty() && files::exists(sensitivity)) {
      eval::SensitivityTable t =
          eval::sensitivity_from_json(files::read_all(sensitivity), sensitivity);
      std::vector<std::string> names;
      for (const ptq::MaybeScheme& c : cands) names.push_back(ptq::maybe_scheme_name(c));
      if (t.model_hash != m.content_hash)
        throw Error(sensitivity + ": measured on another model; delete it or give another file");
      if (t.candidate_names() != names)
        throw Error(sensitivity + ": measured for the candidates " +
                    fmt::format("{}", fmt::join(t.candidate_names(), ",")) +
                    ", not these; delete it or give another file");
      if (const std::string want = eval::sensitivity_setup(&calibration, options(cands));
          t.setup != want)
        throw Error(sensitivity + ": measured with other data or settings (" + t.setup + "; now " +
                    want + "); delete it or give another file");
      fmt::print("sensitivity: read {}\n", sensitivity);
      return t;
    }
    eval::SensitivityOptions opt = options(cands);
    ProgressBar bar("sensitivity", "steps");
    std::string current;
    opt.progress = [&](const std::string& what, int64_t done, int64_t total) {
      if (what != current) {
        if (!current.empty()) bar.log(current + ": done");
        current = what;
        bar.set_note(what);
      }
      bar.update(done, total);
    };
    eval::SensitivityTable t =
        eval::measure_sensitivity(m, calib_text, calib_path, &calibration, opt);
    bar.log(current + ": done");
    save(t);
    return t;
  }
};

}  // namespace lowbit::cli
