// lowbit/train/checkpoint.h — a training run's state on disk, written so that a run killed at any
// moment resumes from the last complete checkpoint to bit-identical weights:
//   <dir>/model.safetensors      the float32 master weights (Hugging Face names)
//   <dir>/optimizer.safetensors  AdamW's moments, "m.<name>" and "v.<name>"
//   <dir>/state.json             step, data position, the run's config hash, extra state
// The folder is written under a temporary name and swapped in by renames; a reader that finds
// only the previous one (a kill between the renames) takes that.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lowbit/train/optimizer.h"
#include "lowbit/train/train_model.h"

namespace lowbit::train {

struct TrainState {
  int64_t step = 0;                          // optimizer steps done
  int64_t epoch = 0, position = 0;           // where the training batches continue (BatchStream)
  int64_t tokens = 0;                        // training tokens seen
  double first_loss = 0, smoothed_loss = 0;  // what the divergence detector compares
  std::string config_hash;                   // of the run's configuration: a resume must match it
  std::string extra = "{}";  // JSON of whatever else a recipe keeps (scaling history)
};

void write_checkpoint(const std::string& dir, const TrainLlama<float>& model, AdamW& optimizer,
                      const TrainState& state);
// Loads the checkpoint in `dir` into model and optimizer; nullopt when there is none. Throws
// lowbit::Error naming the file when one is there but does not fit the model.
std::optional<TrainState> read_checkpoint(const std::string& dir, TrainLlama<float>& model,
                                          AdamW& optimizer);

}  // namespace lowbit::train
