// The stability lab (lowbit/train/train_sweep.h): the grid of runs, each resumable in its own
// folder, and the results and report read back from those folders.
#include "lowbit/train/train_sweep.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "lowbit/io/atomic_file.h"
#include "lowbit/train/quantized_training.h"
#include "lowbit/util/error.h"
#include "util/files.h"
#include "util/svg_plot.h"

namespace lowbit::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// A folder name for a recipe spelling: long forms carry ';', ':' and '='.
std::string folder_safe(const std::string& s) {
  std::string o;
  for (char c : s)
    o += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ? c : '-';
  return o;
}

TrainRun run_of(const TrainRun& base, const TrainSweepRun& r, const std::string& dir, bool sharp) {
  TrainRun t = base;
  t.recipe = r.recipe;
  t.optimizer.min_lr = base.optimizer.lr > 0 ? r.lr * base.optimizer.min_lr / base.optimizer.lr : 0;
  t.optimizer.lr = r.lr;
  t.seed = r.seed;
  t.out = dir + "/runs/" + r.label;
  t.sharpness_iterations = sharp ? 16 : 0;
  return t;
}

// What a finished run left: summary.json (when its configuration is this grid's) and the log.
void read_run(const TrainRun& t, TrainSweepRun& r) {
  const std::string summary_path = t.out + "/summary.json";
  if (!files::exists(summary_path)) return;
  json s;
  try {
    std::ifstream in(summary_path);
    s = json::parse(in);
  } catch (const std::exception& e) {
    throw Error(summary_path + ": unreadable (" + e.what() +
                "); delete the run's folder to rerun it");
  }
  if (s.value("config_hash", std::string()) != t.hash()) return;  // another grid's run: rerun
  r.finished = true;
  r.diverged = s.value("diverged", std::string());
  r.steps = s.value("steps", int64_t(0));
  r.final_train_loss = s.value("final_train_loss", 0.0);
  r.validation_loss = s.value("validation_loss", 0.0);
  r.tokens_per_s = s.value("tokens_per_s", 0.0);
  if (s.contains("sharpness") && s["sharpness"].is_number())
    r.sharpness = s["sharpness"].get<double>();
  std::ifstream log(t.out + "/log.jsonl");
  std::string line;
  while (std::getline(log, line)) {
    try {
      const json j = json::parse(line);
      const int64_t step = j.at("step").get<int64_t>();
      r.loss.emplace_back(step, j.at("loss").get<double>());
      if (j.contains("val_loss")) r.validation.emplace_back(step, j["val_loss"].get<double>());
    } catch (const std::exception&) {
    }
  }
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                         "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

struct Cell {  // one recipe at one learning rate, over seeds
  int runs = 0, finished = 0, diverged = 0;
  double mean = NAN, stdev = NAN, sharpness = NAN;
};

Cell cell(const std::vector<TrainSweepRun>& runs, const std::string& recipe, double lr) {
  Cell c;
  std::vector<double> v, sh;
  for (const TrainSweepRun& r : runs)
    if (r.recipe == recipe && r.lr == lr) {
      ++c.runs;
      if (!r.finished) continue;
      ++c.finished;
      if (!r.diverged.empty()) {
        ++c.diverged;
        continue;
      }
      v.push_back(r.validation_loss);
      if (r.sharpness) sh.push_back(*r.sharpness);
    }
  if (!v.empty()) {
    double s = 0, ss = 0;
    for (double x : v) s += x;
    c.mean = s / double(v.size());
    for (double x : v) ss += (x - c.mean) * (x - c.mean);
    c.stdev = v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0;
  }
  if (!sh.empty()) {
    double s = 0;
    for (double x : sh) s += x;
    c.sharpness = s / double(sh.size());
  }
  return c;
}

std::string report_html(const TrainRun& base, const TrainSweepGrid& g,
                        const std::vector<TrainSweepRun>& runs) {
  const model::LlamaConfig& c = base.shape;
  std::string h =
      "<!doctype html><html><head><meta charset='utf-8'><title>lowbit train-sweep</title><style>"
      "body{font-family:sans-serif;margin:24px;max-width:1300px}table{border-collapse:collapse;"
      "margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:"
      "#f4f4f4}td:first-child{text-align:left}.plots svg{margin:6px}</style></head><body>";
  h += "<h1>Training stability sweep</h1><p>";
  h += base.init.empty()
           ? "Model: " + std::to_string(c.n_layers) + " layers, dim " + std::to_string(c.dim) +
                 ", " + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) +
                 " heads, SwiGLU " + std::to_string(c.hidden_dim) + ", tokenizer " +
                 util::html_escape(base.tokenizer)
           : "Fine-tuning " + util::html_escape(base.init);
  h += ". " + std::to_string(base.steps) + " steps of " +
       std::to_string(base.batch * base.accumulate) + " × " + std::to_string(base.seq) +
       " tokens; warm-up " + std::to_string(base.optimizer.warmup) + ", cosine to lr/" +
       number(base.optimizer.lr / std::max(1e-30, base.optimizer.min_lr)) + "; text: ";
  for (const std::string& f : base.train_files)
    h += util::html_escape(fs::path(f).filename().string()) + " ";
  h += ". " + std::to_string(g.recipes.size()) + " recipes × " + std::to_string(g.lrs.size()) +
       " learning rates × " + std::to_string(g.seeds.size()) +
       " seeds. Sharpness: λ<sub>max</sub> of "
       "the loss Hessian at the end (Lanczos, docs/training.md).</p>";
  // The table: mean ± sd of the final validation loss, divergences.
  h += "<h2>Final validation loss (mean ± sd over seeds; diverged runs counted, not averaged)</h2>"
       "<table><tr><th>recipe</th>";
  for (double lr : g.lrs) h += "<th>lr " + number(lr) + "</th>";
  h += "<th>diverged</th></tr>";
  for (const std::string& recipe : g.recipes) {
    h += "<tr><td>" + util::html_escape(recipe) + "</td>";
    int div = 0, fin = 0;
    for (double lr : g.lrs) {
      const Cell k = cell(runs, recipe, lr);
      div += k.diverged, fin += k.finished;
      char b[96];
      if (std::isnan(k.mean))
        std::snprintf(b, sizeof b, "%s", k.finished ? "diverged" : "—");
      else
        std::snprintf(b, sizeof b, "%.4f ± %.4f%s", k.mean, k.stdev,
                      k.diverged ? (" (" + std::to_string(k.diverged) + " div.)").c_str() : "");
      h += "<td>" + std::string(b) + "</td>";
    }
    h += "<td>" + std::to_string(div) + "/" + std::to_string(fin) + "</td></tr>";
  }
  h += "</table><div class='plots'>";
  // Final validation loss and divergence rate against the learning rate.
  std::vector<util::PlotSeries> loss_lr, div_lr, sharp_lr;
  for (size_t i = 0; i < g.recipes.size(); ++i) {
    const std::string color = kColors[i % 10];
    util::PlotSeries mean{g.recipes[i], color, {}, true, true},
        rate{g.recipes[i], color, {}, true, true}, sharp{g.recipes[i], color, {}, true, true};
    util::PlotSeries seeds{"", color, {}, false, true, 0.35, false};
    for (double lr : g.lrs) {
      const Cell k = cell(runs, g.recipes[i], lr);
      mean.points.emplace_back(lr, k.mean);
      if (k.finished) rate.points.emplace_back(lr, double(k.diverged) / double(k.finished));
      sharp.points.emplace_back(lr, k.sharpness);
    }
    for (const TrainSweepRun& r : runs)
      if (r.recipe == g.recipes[i] && r.finished && r.diverged.empty())
        seeds.points.emplace_back(r.lr, r.validation_loss);
    loss_lr.push_back(mean);
    loss_lr.push_back(seeds);
    div_lr.push_back(rate);
    sharp_lr.push_back(sharp);
  }
  // Against the learning rate: log x labelled at the grid's rates.
  const auto lr_axes = [&](const std::string& title, const std::string& y, bool log_y) {
    util::PlotOptions o{title, "peak learning rate", y, true, log_y};
    o.x_ticks = g.lrs;
    return o;
  };
  h += util::svg_plot(
      lr_axes("Final validation loss against learning rate", "validation loss (nats)", false),
      loss_lr);
  util::PlotOptions rate_axes = lr_axes("Divergence rate", "diverged runs / runs", false);
  rate_axes.y_min = -0.05, rate_axes.y_max = 1.05;
  h += util::svg_plot(rate_axes, div_lr);
  h += util::svg_plot(lr_axes("Sharpness at the end", "λmax of the loss Hessian", true), sharp_lr);
  h += "</div><h2>Training loss curves</h2><div class='plots'>";
  for (double lr : g.lrs) {
    std::vector<util::PlotSeries> curves;
    for (size_t i = 0; i < g.recipes.size(); ++i) {
      bool first = true;
      for (const TrainSweepRun& r : runs)
        if (r.recipe == g.recipes[i] && r.lr == lr && !r.loss.empty()) {
          util::PlotSeries s{
              first ? g.recipes[i] : "", kColors[i % 10], {}, true, false, 0.7, first};
          for (const auto& [step, loss] : r.loss) s.points.emplace_back(double(step), loss);
          curves.push_back(s);
          first = false;
        }
    }
    h += util::svg_plot(
        {"lr " + number(lr) + " (every seed)", "step", "training loss", false, true, 440, 300},
        curves);
  }
  h += "</div><h2>Every run</h2><table><tr><th>run</th><th>steps</th><th>final train loss</th>"
       "<th>validation loss</th><th>sharpness</th><th>tokens/s</th><th>diverged</th></tr>";
  for (const TrainSweepRun& r : runs) {
    char b[256];
    std::snprintf(b, sizeof b,
                  "<tr><td>%s</td><td>%lld</td><td>%.4f</td><td>%.4f</td><td>%s</td><td>%.0f</td>",
                  util::html_escape(r.label).c_str(), static_cast<long long>(r.steps),
                  r.final_train_loss, r.validation_loss,
                  r.sharpness ? number(*r.sharpness).c_str() : "—", r.tokens_per_s);
    h += r.finished ? std::string(b) + "<td>" + util::html_escape(r.diverged) + "</td></tr>"
                    : "<tr><td>" + util::html_escape(r.label) +
                          "</td><td colspan='6'>not run yet</td></tr>";
  }
  return h + "</table></body></html>\n";
}

}  // namespace

std::vector<TrainSweepRun> train_sweep_runs(const TrainSweepGrid& grid) {
  if (grid.recipes.empty() || grid.lrs.empty() || grid.seeds.empty())
    throw Error("train-sweep: the grid needs at least one recipe, learning rate and seed");
  if (grid.shards < 1 || grid.shard < 0 || grid.shard >= grid.shards)
    throw Error("train-sweep: shard must be i/n with 0 <= i < n");
  std::vector<TrainSweepRun> runs;
  for (const std::string& recipe : grid.recipes)
    for (double lr : grid.lrs)
      for (uint64_t seed : grid.seeds) {
        TrainSweepRun r;
        r.recipe = recipe, r.lr = lr, r.seed = seed;
        r.label = folder_safe(recipe) + "_lr" + number(lr) + "_s" + std::to_string(seed);
        runs.push_back(r);
      }
  return runs;
}

std::vector<TrainSweepRun> write_train_sweep_report(const TrainRun& base,
                                                    const TrainSweepGrid& grid,
                                                    const std::string& dir) {
  std::vector<TrainSweepRun> runs = train_sweep_runs(grid);
  for (TrainSweepRun& r : runs) read_run(run_of(base, r, dir, grid.sharpness), r);
  json results = json::array();
  for (const TrainSweepRun& r : runs)
    results.push_back({{"run", r.label},
                       {"recipe", r.recipe},
                       {"lr", r.lr},
                       {"seed", r.seed},
                       {"finished", r.finished},
                       {"diverged", r.diverged},
                       {"steps", r.steps},
                       {"final_train_loss", r.final_train_loss},
                       {"validation_loss", r.validation_loss},
                       {"sharpness", r.sharpness ? json(*r.sharpness) : json(nullptr)},
                       {"tokens_per_s", r.tokens_per_s}});
  fs::create_directories(dir);
  io::write_file_atomically(dir + "/results.json",
                            [&](std::ostream& o) { o << results.dump(2) << "\n"; });
  io::write_file_atomically(dir + "/report.html",
                            [&](std::ostream& o) { o << report_html(base, grid, runs); });
  return runs;
}

std::vector<TrainSweepRun> run_train_sweep(const TrainRun& base, const TrainSweepGrid& grid,
                                           const std::string& dir,
                                           const std::function<void(const std::string&)>& on_run) {
  std::vector<TrainSweepRun> runs = train_sweep_runs(grid);
  for (const TrainSweepRun& r : runs) describe_training_recipe(r.recipe);  // fail before any run
  for (size_t i = 0; i < runs.size(); ++i) {
    if (int(i % size_t(grid.shards)) != grid.shard) continue;
    const TrainRun t = run_of(base, runs[i], dir, grid.sharpness);
    TrainSweepRun done = runs[i];
    read_run(t, done);
    if (done.finished) continue;
    on_run(std::to_string(i + 1) + "/" + std::to_string(runs.size()) + " " + runs[i].label);
    run_training(t, [](const StepReport&) {});
    write_train_sweep_report(base, grid, dir);  // the report grows as runs finish
  }
  return write_train_sweep_report(base, grid, dir);
}

}  // namespace lowbit::train
