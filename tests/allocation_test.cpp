// Mixed-precision allocation: on random small problems the integer program's answer is the optimum
// that brute force over every assignment finds, no solver ever exceeds a budget or breaks a rule,
// greedy and random search are never better than the optimum, and the recipe written from an
// allocation stores exactly the bits the allocation predicted.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "error_message.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/allocation.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

using ptq::Allocation;
using ptq::AllocationProblem;
using ptq::AllocationSite;

// `sites` sites of random sizes, `k` candidates of increasing bits whose scores fall with bits
// (with noise, so no candidate is best everywhere), some choices disallowed, optional latencies.
AllocationProblem random_problem(std::mt19937& rng, int sites, int k, bool latency) {
  AllocationProblem p;
  for (int c = 0; c < k; ++c) p.candidates.push_back(std::nullopt);  // only their count matters
  std::uniform_int_distribution<int> size(1, 64);
  std::uniform_real_distribution<double> u(0, 1);
  const double bits_of[] = {3.0, 4.25, 4.5, 6.25, 8.25, 16};
  for (int s = 0; s < sites; ++s) {
    AllocationSite site;
    site.name = "layers." + std::to_string(s) + ".q_proj";
    site.weights = int64_t(size(rng)) * 32;
    const double sensitivity = std::exp(3 * u(rng));
    for (int c = 0; c < k; ++c) {
      site.bits.push_back(double(site.weights) * bits_of[c]);
      site.score.push_back(sensitivity * std::exp2(-bits_of[c]) * (0.5 + u(rng)));
      site.allowed.push_back(c == k - 1 || u(rng) > 0.15);  // the widest always stays allowed
      if (latency) site.latency.push_back(double(site.weights) * (1 + c + u(rng)) * 1e-9);
    }
    p.sites.push_back(site);
  }
  return p;
}

// The optimum by enumerating every assignment (k^sites).
std::optional<Allocation> brute_force(const AllocationProblem& p) {
  const size_t n = p.sites.size(), k = p.candidates.size();
  std::vector<int> choice(n, 0);
  std::optional<Allocation> best;
  for (;;) {
    Allocation a = ptq::evaluate_choice(p, choice);
    if (ptq::fits(p, a) && (!best || a.score < best->score)) best = a;
    size_t i = 0;
    while (i < n && ++choice[i] == int(k)) choice[i++] = 0;
    if (i == n) return best;
  }
}

TEST(Allocation, IntegerProgramFindsTheBruteForceOptimum) {
  std::mt19937 rng(7);
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    AllocationProblem p = random_problem(rng, 6, 4, trial % 3 == 0);
    std::uniform_real_distribution<double> u(0, 1);
    p.max_bits_per_weight = 3.2 + 4 * u(rng);
    if (trial % 4 == 1) {  // a byte budget instead, with a fixed part beside the Linears
      p.max_bits_per_weight = 0;
      double n = 0;
      for (const AllocationSite& s : p.sites) n += double(s.weights);
      p.fixed_bytes = 1000;
      p.max_bytes = p.fixed_bytes + n * (3.5 + 3 * u(rng)) / 8;
    }
    if (!p.sites[0].latency.empty()) {
      double fastest = 0;
      for (const AllocationSite& s : p.sites) fastest += s.latency.front();
      p.max_latency = fastest * (1.5 + u(rng));
    }
    const std::optional<Allocation> want = brute_force(p);
    if (!want) {
      EXPECT_THROW(ptq::allocate_ilp(p), Error) << "trial " << trial;
      continue;
    }
    const Allocation got = ptq::allocate_ilp(p);
    EXPECT_TRUE(ptq::fits(p, got)) << "trial " << trial;
    EXPECT_NEAR(got.score, want->score, 1e-9 * std::abs(want->score)) << "trial " << trial;
    EXPECT_EQ(got.status.rfind("optimal", 0), 0u) << got.status;
    for (const Allocation& baseline : {ptq::allocate_greedy(p), ptq::allocate_random(p, 50, 3)}) {
      EXPECT_TRUE(ptq::fits(p, baseline)) << baseline.solver << ", trial " << trial;
      EXPECT_GE(baseline.score, want->score * (1 - 1e-12)) << baseline.solver;
    }
    ++checked;
  }
  EXPECT_GT(checked, 40);  // most random budgets are feasible: the comparison did run
}

TEST(Allocation, BudgetsHoldOnLargeProblemsAndTheSolverBeatsTheBaselines) {
  std::mt19937 rng(11);
  AllocationProblem p = random_problem(rng, 200, 6, false);
  double greedy_gap = 0;
  for (double budget = 3.25; budget <= 8; budget += 0.25) {
    p.max_bits_per_weight = budget;
    const Allocation ilp = ptq::allocate_ilp(p), greedy = ptq::allocate_greedy(p),
                     random = ptq::allocate_random(p, 20, 5);
    for (const Allocation* a : {&ilp, &greedy, &random}) {
      EXPECT_LE(a->bits_per_weight, budget) << a->solver;
      EXPECT_TRUE(ptq::fits(p, *a)) << a->solver;
      EXPECT_GE(a->score, ilp.score * (1 - 1e-9)) << a->solver << " at " << budget;
    }
    greedy_gap += greedy.score - ilp.score;
  }
  EXPECT_GT(greedy_gap, 0);  // on this instance greedy is measurably worse somewhere
}

TEST(Allocation, RulesAndImpossibleBudgetsAreErrors) {
  std::mt19937 rng(3);
  AllocationProblem p = random_problem(rng, 5, 3, false);
  p.max_bits_per_weight = 2;  // below every candidate
  EXPECT_NE(error_of([&] { ptq::allocate_ilp(p); }).find("smallest the candidates and rules allow"),
            std::string::npos);
  p.max_bits_per_weight = 16;
  p.sites[2].allowed.assign(3, false);
  EXPECT_NE(error_of([&] { ptq::allocate_ilp(p); }).find("leave site layers.2.q_proj no candidate"),
            std::string::npos);
  p.sites[2].allowed = {false, false, true};  // pinned to the widest
  p.max_bits_per_weight = 5;
  const Allocation a = ptq::allocate_ilp(p);
  EXPECT_EQ(a.choice[2], 2);
  EXPECT_NE(error_of([&] { ptq::allocate(p, "anneal"); }).find("unknown solver"),
            std::string::npos);
}

class AllocationRecipeTest : public TempDirTest {};

TEST_F(AllocationRecipeTest, RecipeReproducesThePredictedBitsExactly) {
  TinyLlama::random(5).write_gguf(path("tiny.gguf"));
  const model::Model m = model::load_model(path("tiny.gguf"));
  const model::Llama& fp = *m.llama;
  model::Llama probe = fp;
  const model::Sites sites = probe.sites();
  AllocationProblem p;
  p.candidates = {ptq::parse_maybe_scheme("int4:g16"), ptq::parse_maybe_scheme("e4m3fn:channel"),
                  ptq::parse_maybe_scheme("mxfp6_e2m3"), std::nullopt};
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  for (const model::LinearSite& ls : sites.linears) {
    AllocationSite s;
    s.name = ls.linear->name();
    const std::vector<size_t> shape{size_t(ls.linear->out_features()),
                                    size_t(ls.linear->in_features())};
    s.weights = int64_t(shape[0] * shape[1]);
    for (const ptq::MaybeScheme& c : p.candidates) {
      s.bits.push_back(double(s.weights) * ptq::weight_bits_per_element(c, shape));
      s.score.push_back(u(rng) / ptq::weight_bits_per_element(c, shape));
      s.allowed.push_back(true);
    }
    p.sites.push_back(s);
  }
  for (double budget : {6.1, 7.0, 8.5, 10.0}) {
    p.max_bits_per_weight = budget;
    const Allocation a = ptq::allocate_ilp(p);
    const ptq::Recipe r = ptq::allocation_recipe(ptq::Recipe{}, p, a, "allocated");
    // Through the recipe's JSON, as `lowbit allocate` writes it and eval reads it.
    const ptq::Recipe back = ptq::parse_recipe_json(r.canonical(), "allocated.json");
    ptq::ApplyReport report;
    ptq::apply_recipe(back, fp, &report);
    EXPECT_EQ(report.bits_per_linear_weight, a.bits_per_weight) << "budget " << budget;
    EXPECT_LE(report.bits_per_linear_weight, budget);
    for (size_t s = 0; s < p.sites.size(); ++s)
      EXPECT_EQ(ptq::maybe_scheme_name(back.resolve(p.sites[s].name).weights),
                ptq::maybe_scheme_name(p.candidates[size_t(a.choice[s])]));
  }
}

}  // namespace
}  // namespace lowbit::testing
