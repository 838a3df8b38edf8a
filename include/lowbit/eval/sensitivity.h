// lowbit/eval/sensitivity.h — how much each Linear site of a decoder is hurt by each candidate
// weight scheme, three ways, and the allocation problem built from them:
//   kl       measured: the mean KL divergence from the full-precision model (and the ln PPL ratio)
//            on the sensitivity text when only that site's weights take that scheme;
//   hessian  HAWQ-V2: tr(H_s)/n_s · ‖Q(W_s) − W_s‖², the Hessian trace of the loss with respect to
//            the site's weights by Hutchinson's estimator (lowbit/train/hessian_trace.h);
//   proxy    tr(ΔW H_x ΔWᵀ) from the calibration Hessians of the Linear's inputs, no backward.
// Measurements leave everything but the one site's weights in full precision, so the sum over
// sites is a first-order prediction of a mixed recipe's loss. docs/mixed-precision.md.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/model/model.h"
#include "lowbit/ptq/allocation.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"

namespace lowbit::eval {

constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

struct SiteSensitivity {
  std::string site;  // "layers.3.down_proj"
  int layer = -1;
  std::string role;
  std::vector<size_t> shape;          // [out, in]
  std::vector<double> bits;           // per candidate: bits per element stored
  std::vector<double> kl, ln_ppl;     // measured (NaN when not measured)
  std::vector<double> squared_error;  // ‖Q(W) − W‖²
  double hessian_trace = kNotMeasured, hessian_trace_stderr = kNotMeasured;  // tr(H_s)
  std::vector<double> hawq;     // tr(H_s)/n_s · ‖Q(W) − W‖² (NaN without traces)
  std::vector<double> proxy;    // tr(ΔW H_x ΔWᵀ) (NaN without calibration)
  std::vector<double> latency;  // seconds of one forward per candidate (empty: not measured)
  int64_t weights() const { return int64_t(shape[0] * shape[1]); }
};

struct SensitivityTable {
  std::string model_hash;   // model::Model::content_hash
  std::string text;         // what kl was measured on: "<path>: 2 windows of 512 tokens"
  std::string calibration;  // the proxy's and the traces' data description
  // What the scores depend on besides the model and candidates (sensitivity_setup): a table is
  // reused only for the same setup.
  std::string setup;
  std::vector<ptq::MaybeScheme> candidates;
  std::vector<SiteSensitivity> sites;  // forward order
  int hutchinson_samples = 0, hessian_tokens = 0;
  double kl_seconds = 0, hessian_seconds = 0, proxy_seconds = 0;
  int latency_tokens = 0;         // rows of the timed forwards (0: no latencies)
  std::string latency_execution;  // what ran them: "real where a kernel exists (auto)" ...
  double fixed_bits = 0;  // the embedding's (and an untied head's) stored bits, all kept (16 bits)

  std::vector<std::string> candidate_names() const;
  // Spearman rank correlation of one score with the measured KL over every (site, quantized
  // candidate) pair; NaN when either is missing. score: "hessian" or "proxy" (or "kl": 1).
  double rank_correlation(const std::string& score) const;
  // The same within one candidate, across sites.
  double rank_correlation(const std::string& score, size_t candidate) const;
};

struct SensitivityOptions {
  std::vector<ptq::MaybeScheme> candidates;
  bool kl = true, hessian = false, proxy = true;  // which scores to compute
  int n_ctx = 512;
  int64_t max_tokens = 1024;  // of the sensitivity text, for kl (whole windows of n_ctx)
  int hutchinson_samples = 8;
  int hessian_tokens = 256;  // one sequence of the calibration data, for the traces
  uint64_t seed = 1;
  // (what, done, total) as work advances.
  std::function<void(const std::string&, int64_t, int64_t)> progress;
};

// Times one forward of `tokens` rows through each Linear in each candidate, as real execution runs
// it (model::Execution::Auto: the packed kernels where one exists, else float32 products on the
// fake-quantized weight, as in `eval --exec auto`); sites of one shape share one measurement (the
// median of `repeats`). Fills every site's `latency`.
void measure_site_latencies(SensitivityTable& t, const model::Runtime& fp, int tokens, int repeats);

// The calibration data's id (its text's content hash, count, length) and every option the scores
// depend on (kl windows and token budget, Hutchinson samples, trace tokens, seed).
std::string sensitivity_setup(const ptq::Calibration* calibration, const SensitivityOptions& o);

// Measures a decoder's sensitivity table: kl on `text` (named `text_name`), hessian and proxy on
// `calibration` (required for them). Throws lowbit::Error for an encoder, or for hessian on a
// model the backward does not cover.
SensitivityTable measure_sensitivity(const model::Model& m, const std::string& text,
                                     const std::string& text_name,
                                     const ptq::Calibration* calibration,
                                     const SensitivityOptions& options);

std::string sensitivity_json(const SensitivityTable& t);
SensitivityTable sensitivity_from_json(const std::string& json_text, const std::string& where);
// A terminal summary: per candidate the mean of each score, the rank correlations, the costs.
std::string sensitivity_summary(const SensitivityTable& t);

// What the allocation may do beyond the candidates: pin sites to full precision (`keep`: name
// patterns; full precision must be among the candidates), and bound the bits at matching sites
// (`min_bits`: pattern → the fewest bits per element allowed there).
struct AllocationRules {
  std::vector<std::string> keep;
  std::vector<std::pair<std::string, double>> min_bits;
};

// The problem for ptq::allocate with `score` "kl", "hessian" or "proxy" (lowbit::Error when the
// table lacks it) and the average-bits budget (0: none); the sites' latencies when the table has
// them. Bytes and latency budgets are set by the caller on the result.
ptq::AllocationProblem allocation_problem(const SensitivityTable& t, const std::string& score,
                                          double max_bits_per_weight,
                                          const AllocationRules& rules = {});

// Parses "4.25:0.25:8" (first:step:last, inclusive) or a comma list "4.5,5,6" into budgets.
std::vector<double> parse_budgets(const std::string& text);

// The allocated recipes for each budget, named "<solver> <score> <budget>" (e.g. "ilp kl 4.50").
std::vector<ptq::Recipe> allocated_recipes(const SensitivityTable& t, const std::string& score,
                                           const std::vector<double>& budgets,
                                           const std::string& solver, const ptq::Recipe& base,
                                           const AllocationRules& rules = {});

}  // namespace lowbit::eval
