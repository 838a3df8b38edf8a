// lowbit/train/trainer.h — one training run from a JSON configuration (`lowbit train --config`):
// model (random initialisation or a model to fine-tune), tokenizer, data, optimizer, schedule,
// quantized-training recipe; the loop with validation at intervals, checkpoints and resume, a
// JSON log, the divergence detector; and the trained model written as a Hugging Face folder.
// docs/training.md describes every field.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/train/optimizer.h"

namespace lowbit::train {

struct TrainRun {
  // The model: `init` = a model path or name to fine-tune, or empty for a random initialisation
  // of `shape` (dim, layers, heads, kv_heads, hidden, context, tied, rope_theta).
  std::string init;
  model::LlamaConfig shape;
  double init_std = 0.02;
  // Whose tokenizer encodes the text (a GGUF file, a Hugging Face folder or a model name); for a
  // fine-tuning run, the model's own.
  std::string tokenizer = "smollm2";
  std::vector<std::string> train_files, validation_files;  // no validation files: a held-out split
  double validation_fraction = 0.05;                       // ... of the training stream's end
  int64_t max_train_tokens = 0;                            // 0: all of the text
  int seq = 128, batch = 8, accumulate = 1;
  int64_t steps = 100;
  AdamWOptions optimizer;
  uint64_t seed = 1;
  int threads = 0;
  int64_t eval_every = 50, checkpoint_every = 50;
  int eval_batches = 8;
  std::string recipe = "f32";  // the quantized-training recipe (lowbit/train/quantized_training.h)
  std::string out;             // the run's folder
  // Power-iteration steps of the sharpness measure at the end (lowbit/train/sharpness.h), on the
  // first validation batch; 0: not measured. Not part of the configuration's identity.
  int sharpness_iterations = 0;

  // The canonical JSON of everything that determines the numbers (not out, not threads'
  // effect on speed — threads are included: OpenBLAS sums differ with them).
  std::string canonical() const;
  std::string hash() const;
};

// Parses a run configuration (docs/training.md); `where` names it in errors. Unknown keys are
// errors, so that a typo is not a silently ignored setting.
TrainRun parse_train_run(const std::string& json_text, const std::string& where);

struct StepReport {
  int64_t step = 0, steps = 0;  // steps done after this one, and in all
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0, elapsed_s = 0;
  std::optional<double> validation_loss;
  std::string event;  // "resumed from step N", "checkpoint", "diverged: ..." — news for the user
};

struct TrainResult {
  int64_t steps = 0, tokens = 0;
  double final_train_loss = 0;  // mean of the last steps' losses
  double validation_loss = 0, validation_ppl = 0;
  double tokens_per_s = 0;          // training throughput of this process's steps
  std::string diverged;             // why the run stopped early ("" when it did not)
  std::optional<double> sharpness;  // λ_max at the end, when measured
  std::string model_dir;            // the Hugging Face folder written
};

// The first training batch's loss and float64 gradients at the initial weights, written to a
// safetensors file with the weights ("<name>", "grad.<name>", F64), the batch ("tokens",
// "targets", I32) and the model's shape (metadata "lowbit.gradient_check"): for checking the
// backward against another framework (tests/train_jax_crosscheck.py does, with JAX).
void write_gradient_check(const TrainRun& run, const std::string& path);

// Runs (or resumes, unless `fresh`) the run; calls on_step after every step.
TrainResult run_training(const TrainRun& run, const std::function<void(const StepReport&)>& on_step,
                         bool fresh = false);

}  // namespace lowbit::train
