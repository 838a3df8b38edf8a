// `lowbit train --config run.json`: one training run (lowbit/train/trainer.h) with a progress bar
// (loss, tokens/s, ETA), validation lines at intervals, resume from the run's checkpoint, and
// the trained model written as a Hugging Face folder that every other command loads.
#include <fmt/core.h>

#include <cmath>

#include "commands.h"
#include "lowbit/model/model.h"
#include "lowbit/train/quantized_training.h"
#include "lowbit/train/trainer.h"
#include "lowbit/util/error.h"
#include "progress.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string config, out, recipe, gradients_out;
  int64_t steps = 0;
  double lr = 0;
  int64_t seed = -1;
  int threads = -1;
  bool fresh = false, list = false;
};

void list_recipes() {
  for (const train::TrainingRecipeSpec& p : train::training_presets())
    fmt::print("{:<12} {}\n{:<12} source: {}\n", p.name, p.description, "", p.source);
}

void run(const Args& a) {
  if (a.list) return list_recipes();
  if (a.config.empty()) throw Error("--config: a run configuration (JSON) is required");
  train::TrainRun run = train::parse_train_run(model::read_text_file(a.config), a.config);
  // Flags override the file (what train sweeps and quick experiments vary).
  if (!a.out.empty()) run.out = a.out;
  if (!a.recipe.empty()) {
    train::describe_training_recipe(a.recipe);
    run.recipe = a.recipe;
  }
  if (a.steps > 0) run.steps = a.steps;
  if (a.lr > 0) run.optimizer.lr = a.lr, run.optimizer.min_lr = a.lr / 10;
  if (a.seed >= 0) run.seed = uint64_t(a.seed);
  if (a.threads >= 0) run.threads = a.threads;
  if (!a.gradients_out.empty()) {
    train::write_gradient_check(run, a.gradients_out);
    fmt::print("wrote the first batch's float64 loss and gradients to {}\n", a.gradients_out);
    return;
  }
  fmt::print(stderr, "lowbit: training recipe {}\n", train::describe_training_recipe(run.recipe));
  ProgressBar bar("train", "steps");
  const train::TrainResult r = train::run_training(
      run,
      [&](const train::StepReport& s) {
        if (!s.event.empty() && s.event != "checkpoint") bar.log("lowbit: " + s.event);
        if (s.validation_loss)
          bar.log(
              fmt::format("step {}/{}: loss {:.4f}, validation loss {:.4f} (ppl {:.2f}), "
                          "{:.0f} tokens/s",
                          s.step, s.steps, s.loss, *s.validation_loss, std::exp(*s.validation_loss),
                          s.tokens_per_s));
        bar.set_note(fmt::format("loss {:.3f}, {:.0f} tok/s", s.loss, s.tokens_per_s));
        bar.update(s.step, s.steps);
      },
      a.fresh);
  fmt::print(
      "steps {}, tokens {}, final training loss {:.4f}, validation loss {:.4f} (ppl {:.3f}), "
      "{:.0f} tokens/s\n",
      r.steps, r.tokens, r.final_train_loss, r.validation_loss, r.validation_ppl, r.tokens_per_s);
  if (!r.diverged.empty()) {
    fmt::print("diverged: {}\n", r.diverged);
    throw Error("the run diverged (" + r.diverged + "); its log is " + run.out + "/log.jsonl");
  }
  fmt::print("model: {}\nlog: {}/log.jsonl\n", r.model_dir, run.out);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train or fine-tune a LLaMA-family model, optionally with quantized products and "
      "states (docs/training.md)");
  cmd->add_option("--config,-c", a->config, "The run configuration (JSON; docs/training.md)");
  cmd->add_option("--out,-o", a->out, "The run's folder (overrides \"out\")");
  cmd->add_option("--recipe,-r", a->recipe,
                  "Quantized-training recipe: a preset (--list-recipes) or the long form");
  cmd->add_option("--steps", a->steps, "Optimizer steps (overrides \"steps\")");
  cmd->add_option("--lr", a->lr,
                  "Peak learning rate (overrides the optimizer's lr; min_lr = lr/10)");
  cmd->add_option("--seed", a->seed, "Seed of initialisation, data order and rounding");
  cmd->add_option("--threads,-t", a->threads, "Threads (overrides \"threads\"; 0: all)");
  cmd->add_option("--gradients-out", a->gradients_out,
                  "Write the first batch's float64 loss and gradients at the initial weights (and "
                  "the weights and batch) to this safetensors file, and exit: for checking the "
                  "backward against another framework");
  cmd->add_flag("--fresh", a->fresh, "Start over instead of resuming the run's checkpoint");
  cmd->add_flag("--list-recipes", a->list, "List the quantized-training presets and exit");
  cmd->callback([a] { run(*a); });
}

}  // namespace lowbit::cli
