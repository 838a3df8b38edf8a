// lowbit/eval/sweep.h — the main job: one full-precision baseline, then every recipe of a grid
// evaluated against it (ΔPPL, KL divergence, top-1 agreement, bits per weight, per-layer error),
// with results cached per recipe so an interrupted or sharded sweep never recomputes what it has.
// Reports: terminal table, JSON, Markdown, and a self-contained HTML page with SVG plots.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/evaluate.h"
#include "lowbit/eval/layer_stats.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"

namespace lowbit::eval {

// What every result of a sweep shares. Results are only comparable (and only merged) when their
// setups have the same key().
struct SweepSetup {
  std::string model, model_summary, text;  // paths as given, architecture line
  std::string model_hash;  // model::Model::content_hash: the weights, config and tokenizer
  int64_t parameters = 0;
  int n_ctx = 0;
  int64_t max_tokens = 0;   // the token budget (0: the whole text)
  int64_t text_tokens = 0;  // tokens tokenized: the whole text, or the budget
  int64_t n_windows = 0, n_scored = 0;
  uint64_t tokens_hash = 0;  // of the evaluated tokens (eval::hash_tokens)
  int layer_tokens = 0;      // tokens of the per-layer statistics window (0: none)
  double base_ppl = 0, base_ppl_stderr = 0;
  int threads = 0;  // informational
  // Encoders: n_ctx is the sentence length limit, n_windows the sentences, n_scored the pairs,
  // tokens_hash over the sentences' ids; base_ppl is 0.
  bool encoder = false;
  // 16 hex digits over the model's content hash, n_ctx, tokens_hash (the evaluated token ids,
  // so the text and the tokenizer), layer_tokens and the cache format version. Not over names:
  // a model edited in place is another setup, the same model copied elsewhere the same one.
  std::string key() const;
};

struct SweepReport {
  SweepSetup setup;
  std::vector<RecipeResult> results;  // grid order
  std::vector<std::string> pending;   // labels of grid recipes without a result yet (other shards)
};

struct SweepOptions {
  int n_ctx = 512;
  int64_t max_tokens = 0;
  bool layer_stats = true;  // per-layer statistics on the first window (for the heat map)
  std::string out_dir;      // results, reports and cache/ go here
  int shard_index = 1, shard_count = 1;  // run grid entries i-1, i-1+n, i-1+2n, ... (1-based i)
  int threads = 0;
  // How each recipe's model runs; results of real / auto runs are cached apart from emulated ones.
  model::Execution execution = model::Execution::Emulate;
  // For recipes whose methods need calibration data (nullptr: such recipes are an error). Results
  // of those recipes are cached under the recipe and the calibration data's id together.
  const ptq::Calibration* calibration = nullptr;
  // Called as work advances: (what is running, window units done, units total). A baseline or a
  // recipe is n_windows units; cached ones count as done at once.
  std::function<void(const std::string&, int64_t, int64_t)> progress;
  std::function<void(const std::string&)> log;  // one line per finished or cached item
};

// Runs the sweep. Cached entries (out_dir/cache/<setup key>/) are read, not recomputed; new
// ones are written as each finishes. Every entry (and the baseline) carries a checksum of its
// content and the key it was stored under: a corrupt, truncated or misplaced entry is reported
// through options.log and recomputed, never used. At the end, under a lock on the folder, the
// report is gathered from every grid recipe whose result is in the cache (this shard's and those
// of other shards sharing the folder that have finished) and written to out_dir (results.json,
// report.md, report.html), so the last shard to finish writes the complete report. Returns it;
// `pending` lists the grid recipes not yet done by any shard.
SweepReport run_sweep(const model::Model& model, const std::string& text_path,
                      const std::string& text, const std::vector<ptq::Recipe>& grid,
                      const SweepOptions& options);

// Joins the results.json of several shard folders (same setup key required; a recipe present
// twice is taken once). Throws lowbit::Error naming the folder that does not fit.
SweepReport merge_sweeps(const std::vector<std::string>& dirs);

// results.json (what merge reads), report.md and report.html, written atomically into `dir`.
void write_sweep_outputs(const SweepReport& report, const std::string& dir);
SweepReport read_sweep_results(const std::string& results_json_path);

// The terminal table: one row per recipe, sorted by bits per weight.
std::string sweep_table(const SweepReport& report);
std::string sweep_markdown(const SweepReport& report);
// One self-contained page: Pareto plots (bits per weight vs mean KL and vs ΔPPL, front
// highlighted), the table, a per-layer heat map of output SQNR, and each recipe's canonical form.
std::string sweep_html(const SweepReport& report);

// Recipes sorted by bits per weight (then mean KL), as the tables list them.
std::vector<const RecipeResult*> sorted_by_bits(const SweepReport& report);
// Indices into `points` of the Pareto front: no other point has fewer-or-equal bits and a
// strictly lower error (and vice versa). Points: (bits, error).
std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points);

}  // namespace lowbit::eval
