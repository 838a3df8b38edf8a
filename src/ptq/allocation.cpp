// Mixed-precision allocation (lowbit/ptq/allocation.h): the 0-1 integer program solved by GLPK, and
// the greedy and random-search baselines it is compared with.
#include "lowbit/ptq/allocation.h"

#include <glpk.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "lowbit/util/error.h"
#include "util/splitmix.h"

namespace lowbit::ptq {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t total_weights(const AllocationProblem& p) {
  int64_t n = 0;
  for (const AllocationSite& s : p.sites) n += s.weights;
  return n;
}

// The budgets as resources: how much of each a state uses, and its cap. Greedy and random search
// move between states by changing one site's choice.
struct Resources {
  const AllocationProblem& p;
  double bits_cap = 0, bytes_cap = 0, latency_cap = 0;  // 0: no such budget

  explicit Resources(const AllocationProblem& problem) : p(problem) {
    if (p.max_bits_per_weight > 0) bits_cap = p.max_bits_per_weight * double(total_weights(p));
    if (p.max_bytes > 0) bytes_cap = (p.max_bytes - p.fixed_bytes) * 8;  // in bits, like `bits`
    if (p.max_latency > 0) latency_cap = p.max_latency;
  }
  // Σ_k max(0, use_k − cap_k) / cap_k: zero exactly when every budget holds.
  double excess(double bits, double latency) const {
    double e = 0;
    if (bits_cap > 0) e += std::max(0.0, bits - bits_cap) / bits_cap;
    if (bytes_cap > 0) e += std::max(0.0, bits - bytes_cap) / bytes_cap;
    if (latency_cap > 0) e += std::max(0.0, latency - latency_cap) / latency_cap;
    return e;
  }
};

double latency_of(const AllocationSite& s, int c) {
  return s.latency.empty() ? 0.0 : s.latency[size_t(c)];
}

// The greedy repair: from `choice`, take the single-site move with the least score added per unit
// of excess removed until nothing exceeds a budget. The excess is recomputed from exact sums after
// each move, so floating-point drift cannot leave a state that evaluate_choice rejects.
bool repair(const AllocationProblem& p, std::vector<int>& choice) {
  const Resources res(p);
  for (;;) {
    const Allocation now = evaluate_choice(p, choice);
    if (fits(p, now)) return true;
    double bits = 0, latency = 0;
    for (size_t s = 0; s < p.sites.size(); ++s) {
      bits += p.sites[s].bits[size_t(choice[s])];
      latency += latency_of(p.sites[s], choice[s]);
    }
    const double excess = std::max(res.excess(bits, latency), 1e-300);
    double best_ratio = std::numeric_limits<double>::infinity(), best_cut = 0;
    size_t best_site = 0;
    int best_c = -1;
    for (size_t s = 0; s < p.sites.size(); ++s) {
      const AllocationSite& site = p.sites[s];
      const int cur = choice[s];
      for (int c = 0; c < int(p.candidates.size()); ++c) {
        if (c == cur || !site.allowed[size_t(c)]) continue;
        const double b = bits - site.bits[size_t(cur)] + site.bits[size_t(c)];
        const double l = latency - latency_of(site, cur) + latency_of(site, c);
        const double cut = excess - res.excess(b, l);
        if (cut <= 0) continue;
        const double ratio = (site.score[size_t(c)] - site.score[size_t(cur)]) / cut;
        if (ratio < best_ratio || (ratio == best_ratio && cut > best_cut)) {
          best_ratio = ratio;
          best_cut = cut;
          best_site = s;
          best_c = c;
        }
      }
    }
    if (best_c < 0) return false;
    choice[best_site] = best_c;
  }
}

struct GlpkProblem {
  glp_prob* lp = glp_create_prob();
  ~GlpkProblem() { glp_delete_prob(lp); }
};

}  // namespace

void check_problem(const AllocationProblem& p) {
  const size_t k = p.candidates.size();
  if (k == 0) throw Error("allocation: no candidate schemes");
  if (p.sites.empty()) throw Error("allocation: no sites to allocate");
  double min_bits = 0;
  for (const AllocationSite& s : p.sites) {
    if (s.score.size() != k || s.bits.size() != k || s.allowed.size() != k ||
        (!s.latency.empty() && s.latency.size() != k))
      throw Error("allocation: site " + s.name + " does not list every candidate");
    if (p.max_latency > 0 && s.latency.empty())
      throw Error("allocation: a latency budget needs every site's latencies (" + s.name +
                  " has none)");
    double cheapest = std::numeric_limits<double>::infinity();
    for (size_t c = 0; c < k; ++c) {
      if (!std::isfinite(s.score[c]) && s.allowed[c])
        throw Error("allocation: site " + s.name + " has no score for " +
                    maybe_scheme_name(p.candidates[c]));
      if (s.allowed[c]) cheapest = std::min(cheapest, s.bits[c]);
    }
    if (!std::isfinite(cheapest))
      throw Error("allocation: the rules leave site " + s.name + " no candidate");
    min_bits += cheapest;
  }
  const double n = double(total_weights(p));
  if (p.max_bits_per_weight > 0 && min_bits / n > p.max_bits_per_weight)
    throw Error("allocation: no choice fits " + std::to_string(p.max_bits_per_weight) +
                " bits per weight: the smallest the candidates and rules allow is " +
                std::to_string(min_bits / n));
  if (p.max_bytes > 0 && p.fixed_bytes + min_bits / 8 > p.max_bytes)
    throw Error("allocation: no choice fits " + std::to_string(p.max_bytes) +
                " bytes: the smallest the candidates and rules allow is " +
                std::to_string(p.fixed_bytes + min_bits / 8));
}

Allocation evaluate_choice(const AllocationProblem& p, std::vector<int> choice) {
  Allocation a;
  double bits = 0, count = 0;
  for (size_t s = 0; s < p.sites.size(); ++s) {
    const AllocationSite& site = p.sites[s];
    const size_t c = size_t(choice[s]);
    a.score += site.score[c];
    bits += site.bits[c];  // the order and arithmetic apply_recipe's report sums in
    count += double(site.weights);
    a.latency += latency_of(site, int(c));
  }
  a.bits_per_weight = count > 0 ? bits / count : 0;
  a.bytes = p.fixed_bytes + bits / 8;
  a.choice = std::move(choice);
  return a;
}

bool fits(const AllocationProblem& p, const Allocation& a) {
  for (size_t s = 0; s < p.sites.size(); ++s)
    if (!p.sites[s].allowed[size_t(a.choice[s])]) return false;
  if (p.max_bits_per_weight > 0 && a.bits_per_weight > p.max_bits_per_weight) return false;
  if (p.max_bytes > 0 && a.bytes > p.max_bytes) return false;
  if (p.max_latency > 0 && a.latency > p.max_latency) return false;
  return true;
}

Allocation allocate_ilp(const AllocationProblem& p) {
  check_problem(p);
  const auto t0 = Clock::now();
  const size_t k = p.candidates.size();
  const double n = double(total_weights(p));
  // Columns x[s, c] ∈ {0, 1} for the allowed pairs; rows: Σ_c x[s, c] = 1 per site, then one row
  // per budget. The budget rows' bounds shrink when a solution overshoots (below).
  double bits_cap = p.max_bits_per_weight > 0 ? p.max_bits_per_weight * n : 0;
  double bytes_cap = p.max_bytes > 0 ? (p.max_bytes - p.fixed_bytes) * 8 : 0;
  double latency_cap = p.max_latency > 0 ? p.max_latency : 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    GlpkProblem g;
    glp_set_obj_dir(g.lp, GLP_MIN);
    const int site_rows = int(p.sites.size());
    glp_add_rows(g.lp, site_rows);
    for (int r = 1; r <= site_rows; ++r) glp_set_row_bnds(g.lp, r, GLP_FX, 1, 1);
    int bits_row = 0, bytes_row = 0, latency_row = 0, rows = site_rows;
    if (bits_cap > 0) bits_row = ++rows;
    if (bytes_cap > 0) bytes_row = ++rows;
    if (latency_cap > 0) latency_row = ++rows;
    if (rows > site_rows) glp_add_rows(g.lp, rows - site_rows);
    if (bits_row) glp_set_row_bnds(g.lp, bits_row, GLP_UP, 0, bits_cap);
    if (bytes_row) glp_set_row_bnds(g.lp, bytes_row, GLP_UP, 0, bytes_cap);
    if (latency_row) glp_set_row_bnds(g.lp, latency_row, GLP_UP, 0, latency_cap);

    std::vector<int> ia{0}, ja{0};  // GLPK's arrays are 1-based
    std::vector<double> ar{0};
    std::vector<std::pair<size_t, int>> column_of;  // column j − 1 → (site, candidate)
    for (size_t s = 0; s < p.sites.size(); ++s)
      for (size_t c = 0; c < k; ++c) {
        const AllocationSite& site = p.sites[s];
        if (!site.allowed[c]) continue;
        const int j = glp_add_cols(g.lp, 1);
        column_of.emplace_back(s, int(c));
        glp_set_col_kind(g.lp, j, GLP_BV);
        glp_set_obj_coef(g.lp, j, site.score[c]);
        const auto put = [&](int row, double value) {
          ia.push_back(row);
          ja.push_back(j);
          ar.push_back(value);
        };
        put(int(s) + 1, 1);
        if (bits_row) put(bits_row, site.bits[c]);
        if (bytes_row) put(bytes_row, site.bits[c]);
        if (latency_row) put(latency_row, latency_of(site, int(c)));
      }
    glp_load_matrix(g.lp, int(ia.size()) - 1, ia.data(), ja.data(), ar.data());
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.mip_gap = 1e-9;
    parm.tm_lim = 600 * 1000;  // ms; a problem of a few thousand columns takes well under a second
    const int rc = glp_intopt(g.lp, &parm);
    const int status = glp_mip_status(g.lp);
    if (status == GLP_NOFEAS || (rc == GLP_ENOPFS || rc == GLP_ENODFS))
      throw Error(
          "allocation: no choice of the candidates satisfies every budget and rule together");
    if (rc != 0 && rc != GLP_ETMLIM)
      throw Error("allocation: GLPK's MIP solver failed (glp_intopt returned " +
                  std::to_string(rc) + ")");
    if (status != GLP_OPT && status != GLP_FEAS)
      throw Error("allocation: GLPK found no integer solution within its time limit");
    std::vector<int> choice(p.sites.size(), -1);
    for (size_t j = 0; j < column_of.size(); ++j)
      if (glp_mip_col_val(g.lp, int(j) + 1) > 0.5) choice[column_of[j].first] = column_of[j].second;
    for (int c : choice)
      if (c < 0) throw Error("internal: GLPK's solution leaves a site without a choice");
    Allocation a = evaluate_choice(p, choice);
    if (fits(p, a)) {
      a.solver = "ilp";
      a.status = status == GLP_OPT ? "optimal" : "feasible (time limit)";
      if (attempt > 0) a.status += ", budget rows tightened " + std::to_string(attempt) + "x";
      a.seconds = seconds_since(t0);
      return a;
    }
    // Within GLPK's tolerance but above the budget as summed here: lower the offending bound by
    // the overshoot (and a little more each time) and solve again.
    const double shrink = std::ldexp(1.0, attempt);
    const double bits_used = a.bits_per_weight * n;
    if (bits_cap > 0 && a.bits_per_weight > p.max_bits_per_weight)
      bits_cap -= (bits_used - p.max_bits_per_weight * n) * 2 * shrink + 1;
    if (bytes_cap > 0 && a.bytes > p.max_bytes)
      bytes_cap -= (a.bytes - p.max_bytes) * 16 * shrink + 1;
    if (latency_cap > 0 && a.latency > p.max_latency)
      latency_cap -= (a.latency - p.max_latency) * 2 * shrink + 1e-12 * p.max_latency;
  }
  throw Error("allocation: the solver's answers kept exceeding the budget by rounding");
}

Allocation allocate_greedy(const AllocationProblem& p) {
  check_problem(p);
  const auto t0 = Clock::now();
  std::vector<int> choice(p.sites.size());
  for (size_t s = 0; s < p.sites.size(); ++s) {
    const AllocationSite& site = p.sites[s];
    int best = -1;
    for (int c = 0; c < int(p.candidates.size()); ++c) {
      if (!site.allowed[size_t(c)]) continue;
      if (best < 0 || site.score[size_t(c)] < site.score[size_t(best)] ||
          (site.score[size_t(c)] == site.score[size_t(best)] &&
           site.bits[size_t(c)] < site.bits[size_t(best)]))
        best = c;
    }
    choice[s] = best;
  }
  if (!repair(p, choice))
    throw Error("allocation: the greedy moves found no choice that satisfies every budget");
  Allocation a = evaluate_choice(p, choice);
  a.solver = "greedy";
  a.status = "fits";
  a.seconds = seconds_since(t0);
  return a;
}

Allocation allocate_random(const AllocationProblem& p, int trials, uint64_t seed) {
  check_problem(p);
  if (trials < 1) throw Error("allocation: random search needs at least one trial");
  const auto t0 = Clock::now();
  uint64_t state = seed;
  std::optional<Allocation> best;
  int fitted = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<int> choice(p.sites.size());
    for (size_t s = 0; s < p.sites.size(); ++s) {
      std::vector<int> allowed;
      for (int c = 0; c < int(p.candidates.size()); ++c)
        if (p.sites[s].allowed[size_t(c)]) allowed.push_back(c);
      choice[s] = allowed[size_t(util::splitmix64(state) % allowed.size())];
    }
    if (!repair(p, choice)) continue;
    ++fitted;
    Allocation a = evaluate_choice(p, choice);
    if (!best || a.score < best->score) best = std::move(a);
  }
  if (!best) throw Error("allocation: no random trial could be repaired to fit the budgets");
  best->solver = "random";
  best->status = "best of " + std::to_string(trials) + " trials (" + std::to_string(fitted) +
                 " repaired to fit)";
  best->seconds = seconds_since(t0);
  return *best;
}

Allocation allocate(const AllocationProblem& p, const std::string& solver) {
  if (solver == "ilp") return allocate_ilp(p);
  if (solver == "greedy") return allocate_greedy(p);
  if (solver == "random") return allocate_random(p, 1000, 1);
  throw Error("allocation: unknown solver \"" + solver + "\" (ilp, greedy, random)");
}

Recipe allocation_recipe(const Recipe& base, const AllocationProblem& p, const Allocation& a,
                         const std::string& name) {
  if (a.choice.size() != p.sites.size())
    throw Error("internal: the allocation does not fit the problem");
  std::map<int, int> uses;
  for (int c : a.choice) ++uses[c];
  int common = a.choice.front();
  for (const auto& [c, count] : uses)
    if (count > uses[common]) common = c;
  Recipe r = base;
  r.name = name;
  r.weights = p.candidates[size_t(common)];
  for (size_t s = 0; s < p.sites.size(); ++s) {
    if (a.choice[s] == common) continue;
    RecipeOverride o;
    o.match = p.sites[s].name;
    o.weights = p.candidates[size_t(a.choice[s])];
    r.overrides.push_back(std::move(o));
  }
  return r;
}

}  // namespace lowbit::ptq
