// lowbit/train/train_sweep.h — the stability lab: one training run per recipe × learning rate ×
// seed from a base configuration, each in its own folder under the sweep's (so that a killed
// sweep resumes every unfinished run from its checkpoint and skips finished ones), sharded like
// `lowbit sweep`; then results.json and a self-contained HTML report: loss curves, final
// validation loss against learning rate per recipe, the divergence rate, and the loss landscape's
// sharpness at the end of each run (docs/training.md says which measure and why).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/train/trainer.h"

namespace lowbit::train {

struct TrainSweepGrid {
  std::vector<std::string> recipes;  // training recipes (presets or long forms)
  std::vector<double> lrs;           // peak learning rates (min_lr = lr / 10)
  std::vector<uint64_t> seeds;
  int shard = 0, shards = 1;  // run the runs with index % shards == shard
  bool sharpness = true;      // measure it at the end of each finished run
};

// One run of the grid.
struct TrainSweepRun {
  std::string label;  // folder name: "<recipe>_lr<lr>_s<seed>"
  std::string recipe;
  double lr = 0;
  uint64_t seed = 0;
  bool finished = false;  // summary.json present
  std::string diverged;   // why it stopped ("" when it did not)
  int64_t steps = 0;
  double final_train_loss = 0, validation_loss = 0, tokens_per_s = 0;
  std::optional<double> sharpness;  // λ_max of the loss Hessian at the end
  std::vector<std::pair<int64_t, double>> loss, validation;  // (step, value) from the log
};

// The runs of the grid in order (recipe-major, then lr, then seed).
std::vector<TrainSweepRun> train_sweep_runs(const TrainSweepGrid& grid);

// Runs this shard's unfinished runs of the grid into `dir` (the base's "out" is replaced by
// dir/runs/<label>), then reads every run folder there (all shards') and writes dir/results.json
// and dir/report.html. on_run is called before each run starts ("3/36 fp8_lr0.01_s2").
std::vector<TrainSweepRun> run_train_sweep(const TrainRun& base, const TrainSweepGrid& grid,
                                           const std::string& dir,
                                           const std::function<void(const std::string&)>& on_run);
// Reads the run folders and writes results.json and report.html again (after shards finish).
std::vector<TrainSweepRun> write_train_sweep_report(const TrainRun& base,
                                                    const TrainSweepGrid& grid,
                                                    const std::string& dir);

}  // namespace lowbit::train
