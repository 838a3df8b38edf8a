// The sweep: baseline once, every recipe of a grid against it, a result file per recipe in the
// cache so nothing finished is ever recomputed; shards and their merge; results.json.
#include "lowbit/eval/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "eval/result_json.h"
#include "lowbit/eval/hardware_cost.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/util/error.h"
#include "util/content_hash.h"
#include "util/fnv.h"
#include "util/json_file.h"

namespace lowbit::eval {
namespace {

using util::hex64;

using nlohmann::json;

void make_dirs(const std::string& path) {
  for (size_t at = 1; at != std::string::npos;) {
    at = path.find('/', at + 1);
    const std::string prefix = path.substr(0, at);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      throw Error(prefix + ": cannot create the folder");
  }
}

void write_text(const std::string& path, const std::string& text) {
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

// Cache entries and results.json carry a checksum of their own content: XXH3-128 of the JSON
// without its "checksum" field, dumped compactly (nlohmann's number output round-trips, so a parse
// and a dump give the same text). A truncated, edited or bit-flipped file fails the check.
std::string checksum_of(json j) {
  j.erase("checksum");
  return util::content_hash(j.dump());
}

json with_checksum(json j) {
  j["checksum"] = checksum_of(j);
  return j;
}

// "" when the checksum holds, else what is wrong.
std::string checksum_problem(const json& j) {
  if (!j.is_object() || !j.contains("checksum") || !j["checksum"].is_string())
    return "it has no checksum";
  return checksum_of(j) == j["checksum"].get<std::string>()
             ? ""
             : "its checksum does not match its content";
}

// An exclusive lock on a file for as long as the object lives (flock: released if the process
// dies).
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR, 0644)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0)
      throw Error(path + ": cannot lock the output folder");
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// Bumped when what a cached result means changes (its fields, or the arithmetic behind them).
constexpr int kCacheVersion = 2;

json setup_json(const SweepSetup& s) {
  json j = {{"key", s.key()},
            {"model", s.model},
            {"model_summary", s.model_summary},
            {"model_hash", s.model_hash},
            {"text", s.text},
            {"parameters", s.parameters},
            {"ctx", s.n_ctx},
            {"max_tokens", s.max_tokens},
            {"text_tokens", s.text_tokens},
            {"windows", s.n_windows},
            {"scored_tokens", s.n_scored},
            {"tokens_hash", hex64(s.tokens_hash)},
            {"layer_tokens", s.layer_tokens},
            {"base_ppl", s.base_ppl},
            {"base_ppl_stderr", s.base_ppl_stderr},
            {"threads", s.threads}};
  if (s.encoder) j["encoder"] = true;
  return j;
}

SweepSetup setup_from(const json& j) {
  SweepSetup s;
  s.model = j.at("model").get<std::string>();
  s.model_summary = j.at("model_summary").get<std::string>();
  s.model_hash = j.at("model_hash").get<std::string>();
  s.text = j.at("text").get<std::string>();
  s.parameters = int_field(j, "parameters");
  s.n_ctx = int(int_field(j, "ctx", 1, 1 << 24));
  s.max_tokens = int_field(j, "max_tokens");
  s.text_tokens = int_field(j, "text_tokens");
  s.n_windows = int_field(j, "windows");
  s.n_scored = int_field(j, "scored_tokens");
  const std::string hash = j.at("tokens_hash").get<std::string>();
  if (hash.empty() || hash.size() > 16 ||
      hash.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw Error("\"tokens_hash\" = \"" + hash.substr(0, 20) + "\" is not 1-16 hex digits");
  s.tokens_hash = std::stoull(hash, nullptr, 16);
  s.layer_tokens = int(int_field(j, "layer_tokens", 0, 1 << 24));
  s.base_ppl = j.at("base_ppl").get<double>();
  s.base_ppl_stderr = j.at("base_ppl_stderr").get<double>();
  s.threads = j.contains("threads") ? int(int_field(j, "threads", 0, 1 << 20)) : 0;
  s.encoder = j.value("encoder", false);
  return s;
}

// nlohmann's type errors become lowbit errors naming the file.
template <class F>
auto parsing(const std::string& where, F f) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": not a lowbit sweep file (" + e.what() + ")");
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(where, 0) == 0) throw;
    throw Error(where + ": " + what);
  }
}

// A cached result, if the entry at `path` is intact and was stored for this key and setup;
// otherwise nullopt and `problem` says why.
std::optional<RecipeResult> read_cached(const std::string& path, const std::string& key,
                                        const std::string& setup_key, std::string& problem) {
  try {
    const json j = files::read_json(path);
    problem = checksum_problem(j);
    if (problem.empty() && (!j.contains("cache_key") || j["cache_key"] != key))
      problem = "it was stored under another key (" +
                (j.contains("cache_key") ? j["cache_key"].dump() : "none") +
                "): a copy of another recipe's result";
    if (problem.empty() && (!j.contains("setup_key") || j["setup_key"] != setup_key))
      problem = "it belongs to another setup";
    if (!problem.empty()) return std::nullopt;
    return parsing(path, [&] { return result_from(j, path); });
  } catch (const Error& e) {
    problem = e.what();
    return std::nullopt;
  }
}

}  // namespace

std::string SweepSetup::key() const {
  const std::string id = "lowbit sweep cache " + std::to_string(kCacheVersion) +
                         (encoder ? " encoder" : "") + "\n" + model_hash + "\n" +
                         std::to_string(n_ctx) + "\n" + hex64(tokens_hash) + "\n" +
                         std::to_string(layer_tokens);
  return util::content_hash(id).substr(0, 16);
}

SweepReport run_sweep(const model::Model& m, const std::string& text_path, const std::string& text,
                      const std::vector<ptq::Recipe>& grid, const SweepOptions& opt) {
  if (opt.shard_count < 1 || opt.shard_index < 1 || opt.shard_index > opt.shard_count)
    throw Error("the shard must be i of n with 1 <= i <= n");
  if (opt.out_dir.empty()) throw Error("sweep: an output folder is required");
  std::set<std::string> seen;
  for (const ptq::Recipe& r : grid) {
    if (!seen.insert(r.hash_hex()).second)
      throw Error("the grid lists the recipe " + r.short_form() + " twice");
    if (r.needs_calibration() && !opt.calibration)
      throw Error("the recipe " + r.label() + " uses a method that needs calibration data");
  }
  // Decoders are measured on windows of the text against a recorded baseline; encoders on its
  // lines against the full-precision embeddings of them.
  const bool encoder = m.is_encoder();
  const model::Runtime& fp = m.runtime();
  std::optional<TextWindows> windows;
  std::optional<Sentences> sentences;
  if (encoder)
    sentences = make_sentences(*m.tokenizer, text, text_path, m.bert->max_sequence_tokens());
  else
    windows = make_windows(*m.tokenizer, text, text_path, opt.n_ctx, opt.max_tokens);

  SweepReport report;
  SweepSetup& s = report.setup;
  s.model = m.path;
  s.model_summary = m.summary();
  s.model_hash = m.content_hash;
  if (s.model_hash.empty())
    throw Error("sweep: the model has no content hash (load it with model::load_model)");
  s.text = text_path;
  s.parameters = fp.parameter_count();
  s.encoder = encoder;
  if (encoder) {
    s.n_ctx = m.bert->max_sequence_tokens();
    for (const std::vector<int32_t>& t : sentences->tokens) s.text_tokens += int64_t(t.size());
    s.n_windows = int64_t(sentences->tokens.size());
    s.n_scored = s.n_windows * (s.n_windows - 1) / 2;  // pairs
    s.tokens_hash = sentences->hash;
    s.layer_tokens = opt.layer_stats ? int(sentences->tokens.front().size()) : 0;
  } else {
    s.n_ctx = opt.n_ctx;
    s.max_tokens = opt.max_tokens;
    s.text_tokens = int64_t(windows->tokens.size());
    s.n_windows = windows->n_windows;
    s.tokens_hash = windows->hash;
    s.layer_tokens = opt.layer_stats ? opt.n_ctx : 0;
  }
  s.threads = opt.threads;
  const std::string cache = opt.out_dir + "/cache/" + s.key();
  make_dirs(cache);

  int64_t todo = 0, done = 0;  // progress in windows
  std::vector<size_t> mine;
  for (size_t i = 0; i < grid.size(); ++i)
    if (int(i % size_t(opt.shard_count)) == opt.shard_index - 1) mine.push_back(i);
  const std::string baseline_path = cache + "/baseline.bin";
  const auto note = [&](const std::string& line) {
    if (opt.log) opt.log(line);
  };
  Baseline baseline;
  std::unique_ptr<Reference> reference;
  if (encoder) {
    todo = int64_t(mine.size()) * s.n_windows;
    note("baseline: the full-precision embeddings of " + std::to_string(s.n_windows) +
         " sentences");
    reference = std::make_unique<Reference>(*m.bert, *sentences, embed_all(*m.bert, *sentences),
                                            opt.layer_stats);
  } else {
    // A cached baseline is used only when its checksum holds and it fits this setup; otherwise it
    // is reported and recorded again.
    bool have_baseline = false;
    if (files::exists(baseline_path)) {
      try {
        baseline = Baseline::load(baseline_path);
        if (baseline.tokens_hash != s.tokens_hash || baseline.n_ctx != s.n_ctx ||
            baseline.n_windows != s.n_windows)
          throw Error(baseline_path + ": recorded for another text or budget");
        have_baseline = true;
      } catch (const Error& e) {
        note(std::string("baseline: the cached file is unusable (") + e.what() +
             "); recomputing it");
      }
    }
    todo = (have_baseline ? 0 : s.n_windows) + int64_t(mine.size()) * s.n_windows;

    PerplexityOptions popt;  // the windows give the context and the budget
    if (have_baseline) {
      note("baseline: cached (" + baseline_path + ")");
    } else {
      popt.record = true;
      popt.progress = [&](int64_t w, int64_t) {
        if (opt.progress) opt.progress("full-precision baseline", done + w, todo);
      };
      PerplexityResult base =
          perplexity(*m.llama, *windows, m.path + " (" + m.summary() + ")", popt);
      done += s.n_windows;
      base.recorded.save(baseline_path);
      baseline = std::move(base.recorded);
      note("baseline: PPL computed in " + std::to_string(int(base.seconds + 0.5)) + " s");
      popt.record = false;
    }
    double sum = 0, sum2 = 0;
    for (double v : baseline.nll) {
      sum += v;
      sum2 += v * v;
    }
    const double n = double(baseline.nll.size()), mean = sum / n;
    s.n_scored = int64_t(baseline.nll.size());
    s.base_ppl = std::exp(mean);
    s.base_ppl_stderr =
        n > 1 ? s.base_ppl * std::sqrt(std::max(0.0, sum2 / n - mean * mean) / (n - 1)) : 0;
    reference = std::make_unique<Reference>(*m.llama, *windows, &baseline, opt.layer_stats);
  }

  ptq::MethodCache method_cache;  // GPTQ / search results shared between recipes
  const std::string setup_key = s.key();
  // Recipes with calibrated methods are cached per calibration data too.
  const auto cache_key = [&](const ptq::Recipe& recipe) {
    if (!recipe.needs_calibration() && opt.execution == model::Execution::Emulate)
      return recipe.hash_hex();
    util::Fnv1a f{recipe.hash()};
    if (recipe.needs_calibration()) f.bytes(opt.calibration->id);
    if (opt.execution != model::Execution::Emulate)
      f.bytes(std::string("exec=") + model::execution_name(opt.execution));
    return hex64(f.h);
  };
  std::map<std::string, RecipeResult> finished;  // this shard's results by cache key
  for (size_t i : mine) {
    const ptq::Recipe& recipe = grid[i];
    const std::string key = cache_key(recipe);
    const std::string path = cache + "/" + key + ".json";
    if (files::exists(path)) {
      std::string problem;
      if (std::optional<RecipeResult> cached = read_cached(path, key, setup_key, problem)) {
        cached->mac_cost = recipe_mac_cost(recipe, fp);  // a model of the recipe, not measured
        finished.emplace(key, std::move(*cached));
        done += s.n_windows;
        if (opt.progress) opt.progress(recipe.label(), done, todo);
        note(recipe.label() + ": cached");
        continue;
      }
      note(recipe.label() + ": the cache entry " + path + " is unusable (" + problem +
           "); recomputing it");
    }
    EvaluateOptions eopt;
    eopt.calibration = opt.calibration;
    eopt.cache = &method_cache;
    eopt.execution = opt.execution;
    eopt.progress = [&](const std::string& what, int64_t step, int64_t steps) {
      if (!opt.progress) return;
      if (what == "eval")
        opt.progress(recipe.label(), done + step, todo);
      else
        opt.progress(recipe.label() + " (" + what + " " + std::to_string(step) + "/" +
                         std::to_string(steps) + ")",
                     done, todo);
    };
    RecipeResult r = evaluate_recipe(recipe, fp, *reference, eopt);
    done += s.n_windows;
    json entry = result_to_json(r);
    entry["cache_key"] = key;
    entry["setup_key"] = setup_key;
    write_text(path, with_checksum(std::move(entry)).dump(1));
    char line[256];
    std::snprintf(line, sizeof line, ": ΔPPL %+.4f, KLD %.5f, %.2f bits/weight (%.0f s)",
                  r.delta_ppl, r.kld.mean, r.bits_per_weight, r.seconds);
    note(recipe.label() + line);
    finished.emplace(key, std::move(r));
  }

  // The report: this shard's results and every other grid recipe with an intact result in the
  // cache, gathered and written under the folder's lock, so that of shards sharing the folder the
  // last to finish sees all results.
  FileLock lock(opt.out_dir + "/.lock");
  for (const ptq::Recipe& recipe : grid) {
    const std::string key = cache_key(recipe);
    std::string problem;
    std::optional<RecipeResult> r;
    if (auto it = finished.find(key); it != finished.end())
      r = std::move(it->second);
    else if (files::exists(cache + "/" + key + ".json"))
      r = read_cached(cache + "/" + key + ".json", key, setup_key, problem);
    if (!r) {
      report.pending.push_back(recipe.label());
      continue;
    }
    r->recipe.name = recipe.name;  // the name is a label, not part of the identity
    report.results.push_back(std::move(*r));
  }
  write_sweep_outputs(report, opt.out_dir);
  return report;
}

void write_sweep_outputs(const SweepReport& report, const std::string& dir) {
  make_dirs(dir);
  json results = json::array();
  for (const RecipeResult& r : report.results) results.push_back(result_to_json(r));
  const json all = {{"lowbit_sweep", 2},
                    {"setup", setup_json(report.setup)},
                    {"results", results},
                    {"pending", report.pending}};
  write_text(dir + "/results.json", with_checksum(all).dump(1));
  write_text(dir + "/report.md", sweep_markdown(report));
  write_text(dir + "/report.html", sweep_html(report));
}

SweepReport read_sweep_results(const std::string& path) {
  return parsing(path, [&] {
    const json j = files::read_json(path);
    if (!j.is_object() || !j.contains("lowbit_sweep"))
      throw Error(path + ": not a lowbit sweep results.json");
    if (j["lowbit_sweep"] != 2)
      throw Error(path + ": written by another version of lowbit; run the sweep again");
    if (const std::string problem = checksum_problem(j); !problem.empty())
      throw Error(path + ": " + problem +
                  " (truncated or edited); run the sweep again to rewrite it");
    SweepReport r;
    r.setup = setup_from(j.at("setup"));
    if (j.at("setup").at("key").get<std::string>() != r.setup.key())
      throw Error(path + ": the setup's key does not match its fields (edited by hand?)");
    for (const json& e : j.at("results")) r.results.push_back(result_from(e, path));
    if (j.contains("pending")) r.pending = j["pending"].get<std::vector<std::string>>();
    return r;
  });
}

SweepReport merge_sweeps(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw Error("sweep-merge: give the shard folders to merge");
  SweepReport merged;
  std::set<std::string> have;
  for (size_t d = 0; d < dirs.size(); ++d) {
    const std::string path = dirs[d] + "/results.json";
    SweepReport part = read_sweep_results(path);
    if (d == 0) {
      merged.setup = part.setup;
    } else if (part.setup.key() != merged.setup.key()) {
      throw Error(path +
                  ": a different setup (model, text, context, token budget or layer window) than " +
                  dirs[0] + "; only shards of the same sweep can be merged");
    }
    for (RecipeResult& r : part.results)
      if (have.insert(r.hash).second) merged.results.push_back(std::move(r));
    merged.pending.insert(merged.pending.end(), part.pending.begin(), part.pending.end());
  }
  // Pending in one shard's report but finished in another's: not pending.
  std::set<std::string> done_labels;
  for (const RecipeResult& r : merged.results) done_labels.insert(r.recipe.label());
  std::vector<std::string> pending;
  for (const std::string& p : merged.pending)
    if (!done_labels.count(p) && std::find(pending.begin(), pending.end(), p) == pending.end())
      pending.push_back(p);
  merged.pending = pending;
  return merged;
}

}  // namespace lowbit::eval
