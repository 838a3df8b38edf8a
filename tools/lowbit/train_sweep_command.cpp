// `lowbit train-sweep`: the stability lab (lowbit/train/train_sweep.h) — recipes × learning
// rates × seeds from one base configuration, sharded and resumable, with its HTML report.
#include <fmt/core.h>

#include "commands.h"
#include "lowbit/model/model.h"
#include "lowbit/train/train_sweep.h"
#include "lowbit/util/error.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string config, out, shard = "0/1";
  std::vector<std::string> recipes = {"f32", "fp8", "mxfp4"}, formats;
  std::vector<double> lrs = {1e-3, 3e-3, 1e-2, 3e-2};
  std::vector<uint64_t> seeds = {1, 2, 3};
  int64_t steps = 0;
  bool no_sharpness = false, report_only = false;
};

void run(const Args& a) {
  if (a.config.empty()) throw Error("--config: the base run configuration (JSON) is required");
  if (a.out.empty()) throw Error("--out: the sweep's folder is required");
  train::TrainRun base = train::parse_train_run(model::read_text_file(a.config), a.config);
  if (a.steps > 0) base.steps = a.steps;
  train::TrainSweepGrid g;
  g.recipes = a.recipes;
  // Simulated bit reduction: every operand of every product in one element format, per tensor.
  for (const std::string& f : a.formats)
    g.recipes.push_back("fwd=" + f + ":tensor;grad=" + f + ":tensor");
  g.lrs = a.lrs;
  g.seeds = a.seeds;
  g.sharpness = !a.no_sharpness;
  if (std::sscanf(a.shard.c_str(), "%d/%d", &g.shard, &g.shards) != 2)
    throw Error("--shard: expected i/n (e.g. 0/2), got " + a.shard);
  const std::vector<train::TrainSweepRun> runs =
      a.report_only ? train::write_train_sweep_report(base, g, a.out)
                    : train::run_train_sweep(base, g, a.out, [](const std::string& what) {
                        fmt::print(stderr, "lowbit: run {}\n", what);
                      });
  int finished = 0, diverged = 0;
  for (const train::TrainSweepRun& r : runs)
    finished += r.finished, diverged += !r.diverged.empty();
  fmt::print(
      "{} of {} runs finished ({} diverged); report: {}/report.html, results: {}/results.json\n",
      finished, runs.size(), diverged, a.out, a.out);
}

}  // namespace

void add_train_sweep_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("train-sweep",
                         "Train one run per recipe x learning rate x seed and report stability "
                         "(docs/training.md)");
  cmd->add_option("--config,-c", a->config, "The base run configuration (JSON)");
  cmd->add_option("--out,-o", a->out, "The sweep's folder (runs/, results.json, report.html)");
  cmd->add_option("--recipes", a->recipes, "Training recipes (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--formats", a->formats,
                  "Simulated bit reductions: element formats (e4m3fn,e3m4,e3m3,...) each run as "
                  "every operand in it per tensor")
      ->delimiter(',');
  cmd->add_option("--lrs", a->lrs, "Peak learning rates")->delimiter(',')->capture_default_str();
  cmd->add_option("--seeds", a->seeds, "Seeds")->delimiter(',')->capture_default_str();
  cmd->add_option("--steps", a->steps, "Steps of every run (overrides the configuration)");
  cmd->add_option("--shard", a->shard, "Run every n-th run starting at i (i/n)")
      ->capture_default_str();
  cmd->add_flag("--no-sharpness", a->no_sharpness, "Skip the sharpness measure at the end of runs");
  cmd->add_flag("--report-only", a->report_only,
                "Only read the run folders (all shards') and write results.json and report.html");
  cmd->callback([a] { run(*a); });
}

}  // namespace lowbit::cli
