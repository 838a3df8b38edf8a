// `lowbit bench`: prefill and decode speed of a model under a recipe, in llama-bench's style, with
// the weight memory and the decode's bandwidth beside a read probe of the same bytes.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

#include "commands.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/model/execution.h"
#include "lowbit/model/model.h"
#include "lowbit/util/error.h"
#include "process_memory.h"
#include "recipe_flags.h"
#include "runnable_decoder.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string model;
  int prompt = 512;
  int n = 128;
  std::string threads = "1";
  int repetitions = 3;
  std::string exec = "auto";
  RecipeFlags recipe;
};

std::vector<int> parse_thread_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const int t = std::stoi(item, &used);
      if (used != item.size() || t < 1 || t > model::max_threads()) throw std::invalid_argument("");
      out.push_back(t);
    } catch (const std::logic_error&) {
      throw Error("--threads: \"" + item + "\" is not a thread count in 1 .. " +
                  std::to_string(model::max_threads()) + " (give a list such as 1,2)");
    }
  }
  if (out.empty()) throw Error("--threads: give at least one thread count, e.g. 1,2");
  return out;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Stat {
  double mean = 0, stddev = 0;
};

Stat stat_of(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(s.stddev / double(v.size() - 1)) : 0.0;
  return s;
}

// GB/s of reading `bytes` once with the read probe, best of 5 (as fast as memory gives them).
double probe_gbps(size_t bytes) {
  std::vector<uint8_t> buf((bytes + 63) / 64 * 64, 1);
  volatile uint64_t sink = 0;
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + kernels::read_probe(buf.data(), buf.size());
    best = std::max(best, double(buf.size()) / seconds(t0) / 1e9);
  }
  return best;
}

void run(const Args& a) {
  const std::vector<int> thread_counts = parse_thread_list(a.threads);
  const ptq::Recipe recipe = a.recipe.recipe();
  model::Model m = model::load_model(a.model, decoder_load_options(a.recipe, recipe, a.exec));
  if (!m.llama) throw Error(m.path + " is an encoder; bench times decoder models");
  const RunnableDecoder decoder = runnable_decoder(m, a.recipe, recipe, a.exec);
  const model::Llama& llama = decoder.llama;
  const model::ExecutionPlan& plan = decoder.plan;
  std::fprintf(stderr, "[%s]\n", plan.summary().c_str());
  // What decoding needs is resident now; the peak includes loading (and, where a recipe has
  // methods or sites without a kernel, quantizing from the float32 model).
  std::fprintf(stderr, "[memory: %.1f MiB resident after packing, %.1f MiB peak while loading]\n",
               status_mib("VmRSS"), status_mib("VmHWM"));
  const model::LlamaConfig& c = llama.config();
  if (a.prompt + 1 > c.context_length || a.n + 1 > c.context_length)
    throw Error("-p and -n must stay below the model's context of " +
                std::to_string(c.context_length));

  std::mt19937 rng(42);
  std::vector<int32_t> tokens(size_t(std::max(a.prompt, 1)));
  for (int32_t& t : tokens) t = int32_t(rng() % uint32_t(c.vocab_size));
  std::vector<float> logits(size_t(c.vocab_size));
  // Without a recipe: the file's own precision (a 2-byte file runs packed as it is stored).
  const std::shared_ptr<const kernels::PackedMatrix>& head = llama.weights().output.packed_weight();
  const std::string label = a.recipe.any() ? decoder.recipe.label()
                            : head         ? head->scheme + " (file)"
                                           : std::string("fp32");
  const std::string name = m.path.substr(m.path.find_last_of('/') + 1);

  fmt::print("| {:<28} | {:<14} | {:>7} | {:>10} | {:>7} | {:>6} | {:>18} | {:>22} |\n", "model",
             "recipe", "exec", "weights", "threads", "test", "t/s", "decode GB/s (probe)");
  fmt::print("| {:-<28} | {:-<14} | {:->7} | {:->10} | {:->7} | {:->6} | {:->18} | {:->22} |\n", "",
             "", "", "", "", "", "", "");
  for (const int threads : thread_counts) {
    model::set_num_threads(threads);
    const auto row = [&](const std::string& test, const Stat& s, const std::string& gbps) {
      fmt::print(
          "| {:<28} | {:<14} | {:>7} | {:>6.1f} MiB | {:>7} | {:>6} | {:>9.2f} ± {:>6.2f} | {:>22} "
          "|\n",
          name.substr(0, 28), label.substr(0, 14), model::execution_name(plan.mode),
          double(plan.weight_bytes) / (1 << 20), threads, test, s.mean, s.stddev, gbps);
      std::fflush(stdout);
    };
    if (a.prompt > 0) {
      std::vector<double> rates;
      for (int r = 0; r < a.repetitions + 1; ++r) {  // the first is a warm-up
        model::LlamaRunState state(c, a.prompt, a.prompt);
        const auto t0 = std::chrono::steady_clock::now();
        llama.forward(tokens.data(), a.prompt, 0, state);
        llama.logits(state, a.prompt - 1, 1, logits.data());
        if (r > 0) rates.push_back(double(a.prompt) / seconds(t0));
      }
      row("pp" + std::to_string(a.prompt), stat_of(rates), "");
    }
    if (a.n > 0) {
      std::vector<double> rates;
      for (int r = 0; r < a.repetitions + 1; ++r) {
        model::LlamaRunState state(c, 1, a.n);
        int32_t next = tokens[0];
        const auto t0 = std::chrono::steady_clock::now();
        for (int pos = 0; pos < a.n; ++pos) {
          llama.forward(&next, 1, pos, state);
          llama.logits(state, 0, 1, logits.data());
          next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
        if (r > 0) rates.push_back(double(a.n) / seconds(t0));
      }
      const Stat s = stat_of(rates);
      // Every Linear's weight is read once per decoded token.
      const double gbps = s.mean * double(plan.weight_bytes) / 1e9;
      const double probe = probe_gbps(plan.weight_bytes);
      row("tg" + std::to_string(a.n), s,
          fmt::format("{:.1f} ({:.1f}, {:.0f}%)", gbps, probe, 100.0 * gbps / probe));
    }
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Prefill and decode tokens/s of a model under a recipe (llama-bench style)");
  cmd->add_option("--model,-m", args->model,
                  "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("-p,--prompt-tokens", args->prompt, "Prompt tokens to prefill (0: skip)")
      ->default_val(512)
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-n,--gen-tokens", args->n, "Tokens to decode one at a time (0: skip)")
      ->default_val(128)
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--threads,-t", args->threads, "Thread counts to run, comma-separated (e.g. 1,2)")
      ->default_val("1");
  cmd->add_option("-r,--repetitions", args->repetitions, "Timed runs per test (after a warm-up)")
      ->default_val(3)
      ->check(CLI::Range(1, 1000));
  add_exec_option(cmd, args->exec, "auto");
  args->recipe.add_to(cmd);
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
