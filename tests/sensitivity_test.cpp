// Per-site sensitivity on a tiny random LLaMA: Hutchinson's per-tensor Hessian traces against the
// exact trace from unit-vector Hessian products, the output proxy against ‖ΔW x‖² over inputs
// recorded from whole forwards, the measured KL (zero for full precision, larger for coarser
// schemes), the table's JSON, rules and rank correlations, and a mixed recipe from the table.
#include <gtest/gtest.h>

#include <cmath>

#include "error_message.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/eval/sensitivity.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/weight_error_scores.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/train/hessian_trace.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"
#include "train/hessian_vector.h"

namespace lowbit::testing {
namespace {

class SensitivityTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama::random(31).write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    for (int i = 0; i < 60; ++i)
      text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
    calibration_ = ptq::make_calibration(*model_.tokenizer, text_, "text", 4, 32);
  }
  model::Model model_;
  std::string text_;
  ptq::Calibration calibration_;
};

TEST_F(SensitivityTest, HutchinsonTraceMatchesTheExactTrace) {
  const std::vector<int32_t>& seq = calibration_.sequences.front();
  const std::vector<int32_t> tokens(seq.begin(), seq.end() - 1),
      targets(seq.begin() + 1, seq.end());
  const int n = int(tokens.size());
  const std::vector<train::ParameterTrace> traces =
      train::hessian_traces(*model_.llama, tokens, targets, 1, n, 400, 9);
  // The exact trace of layers.1.k_proj's block: Σ_i e_iᵀ H e_i over its elements.
  train::HessianVectorProduct hv(*model_.llama, tokens, targets, 1, n);
  size_t offset = 0;
  const train::ParameterTrace* k_proj = nullptr;
  for (const train::ParameterTrace& t : traces) {
    if (t.name == "model.layers.1.self_attn.k_proj.weight") {
      k_proj = &t;
      break;
    }
    offset += size_t(t.size);
  }
  ASSERT_NE(k_proj, nullptr);
  EXPECT_EQ(train::linear_site_of_parameter(k_proj->name), "layers.1.k_proj");
  EXPECT_EQ(train::linear_site_of_parameter("model.norm.weight"), "");
  double exact = 0;
  std::vector<double> e(size_t(hv.size()), 0.0);
  for (int64_t i = 0; i < k_proj->size; ++i) {
    e[offset + size_t(i)] = 1;
    exact += hv(e)[offset + size_t(i)];
    e[offset + size_t(i)] = 0;
  }
  ASSERT_GT(k_proj->stderr_, 0);
  EXPECT_NEAR(k_proj->trace, exact, 4 * k_proj->stderr_ + 1e-9 * std::abs(exact));
  // A small tensor with z over it alone (no cross terms from the rest of the model), against its
  // exact trace, with enough samples that a wrong estimator fails.
  const std::string norm = "model.layers.1.post_attention_layernorm.weight";
  const std::vector<train::ParameterTrace> local =
      train::hessian_traces(*model_.llama, tokens, targets, 1, n, 1000, 9, {}, {norm});
  offset = 0;
  size_t index = 0;
  while (local[index].name != norm) offset += size_t(local[index++].size);
  double norm_exact = 0;
  for (int64_t i = 0; i < local[index].size; ++i) {
    e[offset + size_t(i)] = 1;
    norm_exact += hv(e)[offset + size_t(i)];
    e[offset + size_t(i)] = 0;
  }
  const train::ParameterTrace& own = local[index];
  EXPECT_NEAR(own.trace, norm_exact, 4 * own.stderr_ + 1e-9 * std::abs(norm_exact));
  EXPECT_LT(own.stderr_, 0.1 * std::abs(norm_exact)) << own.trace << " vs " << norm_exact;
  EXPECT_EQ(local.front().trace, 0);  // the embedding: not drawn
}

// Records a Linear's inputs over whole forwards of the calibration sequences.
struct InputRecorder : model::LinearProbe {
  std::vector<float> rows;
  void observe(const model::Linear&, const float* x, const float*, int n, const float*) override {
    rows.insert(rows.end(), x, x + size_t(n) * size_t(in));
  }
  int in = 0;
};

TEST_F(SensitivityTest, OutputProxyIsTwiceTheMeanSquaredOutputError) {
  const std::vector<ptq::MaybeScheme> candidates = {ptq::parse_maybe_scheme("int4:g16"),
                                                    std::nullopt};
  const std::vector<ptq::WeightErrorScores> scores =
      ptq::weight_error_scores(*model_.llama, candidates, &calibration_, {});
  model::Llama copy = *model_.llama;
  model::Sites sites = copy.sites();
  ASSERT_EQ(scores.size(), sites.linears.size());
  for (size_t s : {size_t(2), sites.linears.size() - 1}) {  // layers.0.v_proj, layers.1.down_proj
    model::Linear& lin = *sites.linears[s].linear;
    ASSERT_EQ(scores[s].site, lin.name());
    InputRecorder rec;
    rec.in = lin.in_features();
    lin.set_probe(&rec);
    auto pass = copy.pass(32);
    for (const std::vector<int32_t>& seq : calibration_.sequences)
      pass->forward(seq.data(), int(seq.size()));
    lin.set_probe(nullptr);
    const std::vector<float>& w = lin.weight();
    std::vector<float> q(w.size());
    fake_quant(*candidates[0], w.data(), {size_t(lin.out_features()), size_t(lin.in_features())},
               q.data());
    const size_t tokens = rec.rows.size() / size_t(rec.in);
    double sum = 0, sq = 0;
    for (size_t t = 0; t < tokens; ++t)
      for (int o = 0; o < lin.out_features(); ++o) {
        double d = 0;
        for (int k = 0; k < rec.in; ++k) {
          const size_t wi = size_t(o) * size_t(rec.in) + size_t(k);
          d += (double(q[wi]) - double(w[wi])) * double(rec.rows[t * size_t(rec.in) + size_t(k)]);
        }
        sum += d * d;
      }
    for (size_t i = 0; i < w.size(); ++i) sq += (double(q[i]) - w[i]) * (double(q[i]) - w[i]);
    EXPECT_NEAR(scores[s].output_proxy[0], 2 * sum / double(tokens), 1e-4 * (2 * sum / tokens))
        << lin.name();
    EXPECT_NEAR(scores[s].squared_error[0], sq, 1e-9 * sq);
    EXPECT_EQ(scores[s].output_proxy[1], 0);
    EXPECT_EQ(scores[s].squared_error[1], 0);
  }
}

TEST_F(SensitivityTest, TableScoresRulesAndAMixedRecipe) {
  eval::SensitivityOptions opt;
  opt.candidates = {ptq::parse_maybe_scheme("int3:g16"), ptq::parse_maybe_scheme("int8:channel"),
                    std::nullopt};
  opt.kl = opt.hessian = opt.proxy = true;
  opt.n_ctx = 32;
  opt.max_tokens = 96;
  opt.hutchinson_samples = 4;
  opt.hessian_tokens = 31;
  const eval::SensitivityTable t =
      eval::measure_sensitivity(model_, text_, "text", &calibration_, opt);
  ASSERT_EQ(t.sites.size(), 14u);
  int coarser_hurts_more = 0;
  for (const eval::SiteSensitivity& s : t.sites) {
    EXPECT_EQ(s.kl[2], 0);  // full precision is the model itself
    EXPECT_GT(s.kl[0], 0) << s.site;
    coarser_hurts_more += s.kl[0] > s.kl[1];
    EXPECT_TRUE(std::isfinite(s.hessian_trace)) << s.site;
    EXPECT_GE(s.hawq[0], s.hawq[1]);  // same curvature, larger error
    EXPECT_GT(s.proxy[0], s.proxy[1]);
  }
  EXPECT_EQ(coarser_hurts_more, 14);
  // Each single-site evaluation resumes at the site's layer from recorded inputs: exactly what the
  // whole forward of the recipe that quantizes only that site gives.
  const eval::TextWindows windows = eval::make_windows(*model_.tokenizer, text_, "text", 32, 96);
  eval::PerplexityOptions popt;
  popt.record = true;
  const eval::PerplexityResult base = eval::perplexity(*model_.llama, windows, "", popt);
  popt.record = false;
  popt.compare_to = &base.recorded;
  for (size_t i : {size_t(0), size_t(9), t.sites.size() - 1}) {
    ptq::Recipe only;
    ptq::RecipeOverride o;
    o.match = t.sites[i].site;
    o.weights = opt.candidates[0];
    only.overrides.push_back(o);
    const model::Llama q = ptq::apply_recipe(only, *model_.llama);
    const eval::PerplexityResult whole = eval::perplexity(q, windows, "", popt);
    EXPECT_EQ(t.sites[i].kl[0], whole.kld.mean) << t.sites[i].site;
    EXPECT_EQ(t.sites[i].ln_ppl[0], whole.ln_ppl_ratio) << t.sites[i].site;
  }
  EXPECT_GT(t.rank_correlation("proxy"), 0.3);  // the proxy ranks sites much as the KL does
  EXPECT_TRUE(std::isfinite(t.rank_correlation("hessian")));

  // JSON round trip.
  const eval::SensitivityTable back =
      eval::sensitivity_from_json(eval::sensitivity_json(t), "t.json");
  EXPECT_EQ(eval::sensitivity_json(back), eval::sensitivity_json(t));
  EXPECT_THROW(eval::sensitivity_from_json("{}", "t.json"), Error);

  // Rules: kept sites take only full precision; bounded sites only wide enough schemes.
  eval::AllocationRules rules;
  rules.keep = {"layers.0.q_proj"};
  rules.min_bits = {{"*.down_proj", 8}};
  const ptq::AllocationProblem p = eval::allocation_problem(t, "kl", 7, rules);
  for (const ptq::AllocationSite& s : p.sites) {
    if (s.name == "layers.0.q_proj") {
      EXPECT_EQ(s.allowed, (std::vector<bool>{false, false, true}));
    }
    if (s.name.find("down_proj") != std::string::npos) {
      EXPECT_FALSE(s.allowed[0]);
    }
  }
  rules.keep = {"layers.9.*"};
  EXPECT_NE(error_of([&] { eval::allocation_problem(t, "kl", 7, rules); }).find("matches no site"),
            std::string::npos);

  // The allocated recipes keep their budgets when applied, and cost less predicted KL than the
  // uniform recipe of the same or more bits.
  const std::vector<ptq::Recipe> recipes =
      eval::allocated_recipes(t, "kl", {5.5, 7, 9}, "ilp", ptq::Recipe{});
  ASSERT_FALSE(recipes.empty());
  for (const ptq::Recipe& r : recipes) {
    ptq::ApplyReport report;
    ptq::apply_recipe(r, *model_.llama, &report);
    EXPECT_LE(report.bits_per_linear_weight, std::stod(r.name.substr(7)) + 1e-12) << r.name;
  }
  // Latencies: timed per shape and candidate, carried into the problem, kept by the solver.
  eval::SensitivityTable timed = t;
  eval::measure_site_latencies(timed, *model_.llama, 4, 3);
  for (const eval::SiteSensitivity& s : timed.sites) {
    ASSERT_EQ(s.latency.size(), 3u);
    for (double l : s.latency) EXPECT_GT(l, 0) << s.site;
    if (s.shape == timed.sites[0].shape) {
      EXPECT_EQ(s.latency, timed.sites[0].latency);
    }
  }
  ptq::AllocationProblem lp = eval::allocation_problem(timed, "kl", 0);
  double slowest = 0, fastest = 0;
  for (const ptq::AllocationSite& s : lp.sites) {
    slowest += *std::max_element(s.latency.begin(), s.latency.end());
    fastest += *std::min_element(s.latency.begin(), s.latency.end());
  }
  lp.max_latency = (slowest + fastest) / 2;
  const ptq::Allocation fast = ptq::allocate_ilp(lp);
  EXPECT_LE(fast.latency, lp.max_latency);
  const eval::SensitivityTable timed_back =
      eval::sensitivity_from_json(eval::sensitivity_json(timed), "t.json");
  EXPECT_EQ(timed_back.sites[3].latency, timed.sites[3].latency);

  EXPECT_EQ(eval::parse_budgets("4.25:0.25:5"), (std::vector<double>{4.25, 4.5, 4.75, 5}));
  EXPECT_EQ(eval::parse_budgets("4.5,6"), (std::vector<double>{4.5, 6}));
  EXPECT_THROW(eval::parse_budgets("4.5:8"), Error);
}

}  // namespace
}  // namespace lowbit::testing
