// `lowbit sweep`: the full-precision baseline once, then every recipe of a grid against it, with a
// table, JSON, Markdown and an HTML report; `lowbit sweep-merge` joins the folders of shards.
#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>

#include <algorithm>

#include "allocation_flags.h"
#include "commands.h"
#include "lowbit/eval/sweep.h"
#include "lowbit/util/error.h"
#include "progress.h"
#include "recipe_flags.h"
#include "util/files.h"

namespace lowbit::cli {
namespace {

struct SweepArgs {
  std::string model, text, grid, out = "lowbit-sweep", shard = "1/1";
  bool shard_given = false;  // --shard on the command line (else a Slurm array may set it)
  int ctx = 512;
  int64_t max_tokens = 4096;
  int threads = 0;
  std::string exec = "emulate";
  bool no_layers = false, list = false, repair_utf8 = false;
  std::string calib_text;
  int calib_count = 32, calib_length = 512;
  std::string allocate;  // budgets: the allocated recipes join the grid
  AllocationFlags allocation;
};

void parse_shard(const std::string& text, int& index, int& count) {
  const size_t slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("");
    size_t used = 0;
    index = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("");
    count = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw Error("--shard \"" + text + "\": expected i/n, e.g. 2/8 for the second of eight slices");
  }
  if (count < 1 || index < 1 || index > count)
    throw Error("--shard \"" + text + "\": need 1 <= i <= n");
}

// "slurm" (and no --shard at all inside a Slurm job array): the slice Slurm's array variables
// give, whatever the array's first index (--array=0-7 and --array=1-8 are both eight shards).
std::string shard_from_environment(const std::string& given, bool explicit_flag) {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  if (given != "slurm" && (explicit_flag || !id)) return given;
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  if (!id || !count)
    throw Error(
        "--shard slurm: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set "
        "(run it in an sbatch --array job, or give --shard i/n)");
  int task = 0, first = 0;
  try {
    task = std::stoi(id);
    first = min ? std::stoi(min) : 1;
  } catch (const std::exception&) {
    throw Error(std::string("--shard slurm: SLURM_ARRAY_TASK_ID=") + id + " is not a number");
  }
  const std::string shard = std::to_string(task - first + 1) + "/" + count;
  fmt::print("shard {} from Slurm's job array (task {}, first {})\n", shard, task, first);
  return shard;
}

void print_outputs(const eval::SweepReport& r, const std::string& out) {
  fmt::print("\n{}\n", eval::sweep_table(r));
  if (!r.pending.empty())
    fmt::print(
        "{} of {} recipes are still to be done by other shards (the report lists those finished)\n",
        r.pending.size(), r.pending.size() + r.results.size());
  fmt::print(
      "report: {}/report.html (open in a browser; self-contained)\n        {}/report.md, "
      "{}/results.json\n",
      out, out, out);
}

// The default grid, less the KV-cache recipes for an encoder (it has no KV cache).
std::vector<ptq::Recipe> default_grid_for(const model::Model* m) {
  std::vector<ptq::Recipe> grid;
  for (const ptq::Recipe& r : ptq::default_sweep_grid())
    if (!(m && m->is_encoder() && r.kv)) grid.push_back(r);
  return grid;
}

void run_sweep_command(const SweepArgs& a) {
  std::vector<ptq::Recipe> grid =
      a.grid.empty() ? default_grid_for(nullptr) : ptq::read_recipe_grid(a.grid);
  if (a.list) {
    for (const ptq::Recipe& r : grid)
      fmt::print("{:<30} {}  {}\n", r.label(), r.hash_hex(), r.short_form());
    return;
  }
  if (a.text.empty()) throw Error("sweep: --text is required");
  eval::SweepOptions opt;
  parse_shard(shard_from_environment(a.shard, a.shard_given), opt.shard_index, opt.shard_count);
  model::set_num_threads(a.threads);
  const std::string text = model::read_text_file(a.text, a.repair_utf8);
  const model::Model m = model::load_model(a.model);
  print_model_warnings(m);
  if (a.grid.empty()) grid = default_grid_for(&m);
  if (m.llama) warn_if_beyond_trained_context(a.ctx, m.llama->config().context_length, m.path);
  std::unique_ptr<ptq::Calibration> calib;
  if (!a.calib_text.empty())
    calib = std::make_unique<ptq::Calibration>(
        ptq::make_calibration(*m.tokenizer, model::read_text_file(a.calib_text), a.calib_text,
                              a.calib_count, a.calib_length));
  opt.calibration = calib.get();
  if (!a.allocate.empty()) {
    if (!calib)
      throw Error("sweep --allocate: --calib TEXT is required (the sensitivity is measured on it)");
    const std::vector<double> budgets = eval::parse_budgets(a.allocate);
    const eval::SensitivityTable table =
        a.allocation.table(m, a.calib_text, model::read_text_file(a.calib_text), *calib);
    fmt::print("{}\n", eval::sensitivity_summary(table));
    size_t added = 0;
    for (const std::string& solver : split_list(a.allocation.solver))
      for (ptq::Recipe& r : eval::allocated_recipes(table, a.allocation.score, budgets, solver,
                                                    ptq::Recipe{}, a.allocation.rules()))
        if (std::none_of(grid.begin(), grid.end(),
                         [&](const ptq::Recipe& g) { return g.hash() == r.hash(); })) {
          grid.push_back(std::move(r));
          ++added;
        }
    fmt::print("allocated: {} recipes for {} budgets ({}, score {})\n", added, budgets.size(),
               a.allocation.solver, a.allocation.score);
  }
  opt.n_ctx = a.ctx;
  opt.max_tokens = a.max_tokens;
  opt.layer_stats = !a.no_layers;
  opt.out_dir = a.out;
  opt.threads = a.threads;
  opt.execution = model::parse_execution(a.exec);
  fmt::print(
      "model:  {}\n        {}\ngrid:   {} recipes{}; token budget {} (ctx {})\n", m.path,
      m.summary(), grid.size(),
      opt.shard_count > 1 ? fmt::format(" (shard {}/{})", opt.shard_index, opt.shard_count) : "",
      a.max_tokens > 0 ? std::to_string(a.max_tokens) : "the whole text", a.ctx);
  std::fflush(stdout);
  ProgressBar bar("sweep", "windows");
  std::string current;
  opt.progress = [&](const std::string& what, int64_t done, int64_t total) {
    current = what;
    bar.update(done, total);
  };
  opt.log = [&](const std::string& line) { bar.log(line); };
  const eval::SweepReport r =
      eval::run_sweep(m, a.text, text, grid, opt);  // writes the reports too
  print_outputs(r, a.out);
}

}  // namespace

void add_sweep_commands(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sweep",
      "Evaluate a grid of recipes against the full-precision model; table and HTML report");
  cmd->add_option("--model,-m", a->model, "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--text", a->text, "Evaluation text (UTF-8)");
  cmd->add_option(
      "--grid", a->grid,
      "Grid JSON file: an array of recipes (default: the built-in grid, docs/recipes.md)");
  cmd->add_option("--ctx", a->ctx, "Window length in tokens")
      ->default_val(512)
      ->check(CLI::Range(8, 1 << 20));
  add_max_tokens_option(cmd, a->max_tokens, "Token budget per recipe (0: the whole text)", 4096);
  cmd->add_option("--out,-o", a->out, "Output folder: results.json, report.md, report.html, cache/")
      ->default_val("lowbit-sweep");
  CLI::Option* shard = cmd->add_option(
      "--shard", a->shard,
      "Run slice i of n of the grid (i/n); 'slurm', or no --shard in a Slurm job array: the "
      "array's task; join with sweep-merge");
  shard->default_val("1/1");
  add_threads_option(cmd, a->threads);
  add_exec_option(cmd, a->exec, "emulate");
  cmd->add_flag("--no-layers", a->no_layers, "Skip the per-layer statistics (and the heat map)");
  cmd->add_flag("--list", a->list, "Print the grid's recipes and exit");
  add_repair_utf8_flag(cmd, a->repair_utf8);
  RecipeFlags::add_calibration_to(cmd, a->calib_text, a->calib_count, a->calib_length);
  cmd->add_option("--allocate", a->allocate,
                  "Add mixed-precision recipes allocated for these budgets of bits per Linear "
                  "weight: first:step:last (4.25:0.25:8) or a list; --solver may list several");
  a->allocation.add_to(cmd, /*solver_list=*/true);
  cmd->callback([a, shard] {
    a->shard_given = shard->count() > 0;
    run_sweep_command(*a);
  });

  auto dirs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  CLI::App* merge =
      app.add_subcommand("sweep-merge", "Join the output folders of sweep shards into one report");
  merge->add_option("folders", *dirs, "Output folders of `lowbit sweep --shard i/n` runs")
      ->required();
  merge->add_option("--out,-o", *out, "Folder for the joined results.json and reports")->required();
  merge->callback([dirs, out] {
    const eval::SweepReport r = eval::merge_sweeps(*dirs);
    eval::write_sweep_outputs(r, *out);
    fmt::print("merged {} results from {} folders\n", r.results.size(), dirs->size());
    print_outputs(r, *out);
  });
}

}  // namespace lowbit::cli
