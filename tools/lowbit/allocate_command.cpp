// `lowbit allocate`: per-site sensitivity of a decoder to each candidate weight scheme, then the
// scheme per site that minimises the predicted loss under a bits / bytes budget, written as an
// ordinary recipe with per-site overrides (docs/mixed-precision.md).
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "allocation_flags.h"
#include "commands.h"
#include "lowbit/eval/sensitivity.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/ptq/allocation.h"
#include "lowbit/util/error.h"
#include "recipe_flags.h"

namespace lowbit::cli {
namespace {

struct AllocateArgs {
  std::string model, out;
  double budget = 0, max_bytes = 0, max_latency_ms = 0;
  bool compare = false;
  int threads = 0;
  AllocationFlags allocation;
  RecipeFlags recipe;
};

void print_allocation(const ptq::AllocationProblem& p, const ptq::Allocation& a) {
  fmt::print(
      "{:<7} predicted loss {:.6g}, {:.4f} bits per Linear weight, {:.1f} MiB of weights, "
      "{}{} ({:.2f} s)\n",
      a.solver, a.score, a.bits_per_weight, a.bytes / (1 << 20),
      p.max_latency > 0 ? fmt::format("{:.3f} ms of Linears, ", a.latency * 1e3) : "", a.status,
      a.seconds);
  std::vector<int> uses(p.candidates.size(), 0);
  for (int c : a.choice) ++uses[size_t(c)];
  std::string line = "        sites:";
  for (size_t c = 0; c < p.candidates.size(); ++c)
    if (uses[c]) line += fmt::format(" {} {}", ptq::maybe_scheme_name(p.candidates[c]), uses[c]);
  fmt::print("{}\n", line);
}

void run_allocate(const AllocateArgs& a) {
  if (a.recipe.calib_text.empty())
    throw Error(
        "allocate: --calib TEXT is required (the sensitivity is measured on it; evaluate "
        "the result on another text)");
  if (a.budget <= 0 && a.max_bytes <= 0 && a.max_latency_ms <= 0)
    throw Error(
        "allocate: give --budget (bits per Linear weight), --max-bytes or --max-latency-ms");
  model::set_num_threads(a.threads);
  const model::Model m = model::load_model(a.model);
  print_model_warnings(m);
  const std::string calib_text = model::read_text_file(a.recipe.calib_text);
  const ptq::Calibration calibration = ptq::make_calibration(
      *m.tokenizer, calib_text, a.recipe.calib_text, a.recipe.calib_count, a.recipe.calib_length);
  const eval::SensitivityTable table =
      a.allocation.table(m, a.recipe.calib_text, calib_text, calibration, a.max_latency_ms > 0);
  fmt::print("\n{}\n", eval::sensitivity_summary(table));

  ptq::AllocationProblem p =
      eval::allocation_problem(table, a.allocation.score, a.budget, a.allocation.rules());
  p.max_bytes = a.max_bytes;
  p.max_latency = a.max_latency_ms * 1e-3;
  const ptq::Allocation chosen = ptq::allocate(p, a.allocation.solver);
  print_allocation(p, chosen);
  if (a.compare)
    for (const char* other : {"ilp", "greedy", "random"})
      if (a.allocation.solver != other) print_allocation(p, ptq::allocate(p, other));

  const std::string name = fmt::format("{} {} {}", a.allocation.solver, a.allocation.score,
                                       a.budget > 0 ? fmt::format("{:.2f} bits", a.budget)
                                                    : fmt::format("{:.0f} bytes", a.max_bytes));
  const ptq::Recipe r = ptq::allocation_recipe(a.recipe.recipe(), p, chosen, name);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(r.canonical());
  nlohmann::ordered_json out;
  out["name"] = name;
  for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value();
  io::write_file_atomically(a.out, [&](std::ostream& s) { s << out.dump(1) << "\n"; });
  fmt::print("recipe: {} ({} per-site overrides; predicted {:.4f} bits per Linear weight)\n", a.out,
             r.overrides.size(), chosen.bits_per_weight);
}

}  // namespace

void add_allocate_command(CLI::App& app) {
  auto a = std::make_shared<AllocateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "allocate",
      "Mixed precision: choose a weight scheme per Linear under a bits budget (writes a recipe)");
  cmd->add_option("--model,-m", a->model, "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--budget", a->budget, "Average bits per Linear weight (e.g. 4.5)");
  cmd->add_option("--max-bytes", a->max_bytes,
                  "Bytes of all stored weights (the embedding and head as the recipe keeps them)");
  cmd->add_option("--max-latency-ms", a->max_latency_ms,
                  "Summed forward time of the Linears, each timed in each candidate as real "
                  "execution runs it (--latency-tokens rows)");
  cmd->add_option("--out,-o", a->out, "Recipe JSON to write")->required();
  cmd->add_flag("--compare", a->compare, "Also solve with the other solvers and print theirs");
  add_threads_option(cmd, a->threads);
  a->allocation.add_to(cmd);
  a->recipe.add_to(cmd);  // the base: activations, KV cache, embedding, head; --calib
  cmd->callback([a] { run_allocate(*a); });
}

}  // namespace lowbit::cli
