// lowbit/ptq/allocation.h — mixed precision: one weight scheme per Linear site, chosen to minimise
// the predicted loss increase (the sum of per-site sensitivity scores) under budgets on the average
// bits per Linear weight, the bytes of the stored weights and the summed per-site latency, with
// rules that pin sites or bound their bits. Solved exactly as a 0-1 integer program (GLPK's
// branch and cut) — a multiple-choice knapsack with extra resource rows — beside a greedy and a
// random-search baseline that show what the solver buys. docs/mixed-precision.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/ptq/recipe.h"

namespace lowbit::ptq {

// One Linear site and what each candidate costs and is predicted to lose there.
struct AllocationSite {
  std::string name;     // "layers.3.down_proj"
  int64_t weights = 0;  // out · in elements
  // Per candidate (AllocationProblem::candidates order); `allowed` false removes a choice.
  std::vector<double> score;    // predicted loss increase (KL, HAWQ, proxy: lower is better)
  std::vector<double> bits;     // total storage bits of the tensor in that candidate (an integer)
  std::vector<double> latency;  // seconds (empty when the problem has no latency budget)
  std::vector<bool> allowed;
};

struct AllocationProblem {
  std::vector<MaybeScheme> candidates;  // nullopt: kept in full precision (16 bits, bf16)
  std::vector<AllocationSite> sites;    // forward order (the order apply_recipe sums bits in)
  // Budgets; 0 (or below) leaves one out. Average bits per Linear weight (Σ bits / Σ weights),
  // bytes of the Linears' stored weights plus `fixed_bytes` (the embedding, head and the rest the
  // allocation does not choose), and the sum of the sites' latencies.
  double max_bits_per_weight = 0;
  double max_bytes = 0, fixed_bytes = 0;
  double max_latency = 0;
};

struct Allocation {
  std::vector<int> choice;  // per site: an index into candidates
  double score = 0, bits_per_weight = 0, bytes = 0, latency = 0;
  std::string solver;  // "ilp", "greedy", "random"
  double seconds = 0;  // the solver's time
  std::string status;  // the solver's words ("optimal", "feasible after 400 trials", ...)
};

// Throws lowbit::Error when the problem is malformed (sizes differ, a site with nothing allowed)
// or no allocation fits the budgets (naming the smallest average bits the rules allow).
void check_problem(const AllocationProblem& p);
// What an assignment costs: score, average bits, bytes, latency (summed in site order).
Allocation evaluate_choice(const AllocationProblem& p, std::vector<int> choice);
// Whether `a` keeps every budget and rule (no tolerance: the sums as evaluate_choice gives them).
bool fits(const AllocationProblem& p, const Allocation& a);

// The optimum, by GLPK's MIP solver (exact within its 1e-9 relative gap). The budget rows are
// re-tightened and the problem re-solved when the solver's feasibility tolerance let a sum end a
// few bits above its budget, so the result always fits().
Allocation allocate_ilp(const AllocationProblem& p);
// From every site at its best-scoring choice, repeatedly take the move to a cheaper candidate at
// one site with the least score added per unit of budget excess removed, until everything fits.
Allocation allocate_greedy(const AllocationProblem& p);
// `trials` uniformly random assignments, each repaired by the greedy moves until it fits; the best.
Allocation allocate_random(const AllocationProblem& p, int trials, uint64_t seed);
// "ilp", "greedy" or "random" (trials 1000, seed 1).
Allocation allocate(const AllocationProblem& p, const std::string& solver);

// `base` with one weight scheme per site: the most frequent choice becomes `weights`, every other
// site gets an exact-name override (sites in forward order), so eval, sweep and export take it.
Recipe allocation_recipe(const Recipe& base, const AllocationProblem& p, const Allocation& a,
                         const std::string& name);

}  // namespace lowbit::ptq
