// The decoder `generate` and `bench` run: the recipe flags applied to the loaded model, the
// full-precision runtime released, the weights packed as --exec says, freed pages given back.
#pragma once

#include <malloc.h>

#include <memory>
#include <string>

#include "lowbit/model/execution.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "recipe_flags.h"

namespace lowbit::cli {

struct RunnableDecoder {
  ptq::Recipe recipe;
  model::Llama llama;
  model::ExecutionPlan plan;  // without a recipe: emulate (the float32 model as loaded)
};

// How generate and bench load the model: without a recipe a bf16 / f16 file's weights stay at 2
// bytes (the model runs as stored). A recipe without methods, executed for real, quantizes each
// weight that has a kernel as it is read, so the float32 model never exists (peak memory near the
// packed model's); anything else quantizes from float32. `recipe` is flags.recipe(), read once
// for both (the loader and apply_recipe must see the same recipe).
inline model::LoadOptions decoder_load_options(const RecipeFlags& flags, const ptq::Recipe& recipe,
                                               const std::string& exec) {
  model::LoadOptions o;
  o.keep_half_precision = !flags.any();
  if (!flags.any() || model::parse_execution(exec) == model::Execution::Emulate) return o;
  o.pack_at_load = ptq::load_time_quantizer(recipe);
  return o;
}

// m must hold a decoder, loaded with decoder_load_options(flags, recipe, exec); its runtime is
// released (the quantized copy keeps what it shares).
inline RunnableDecoder runnable_decoder(model::Model& m, const RecipeFlags& flags,
                                        const ptq::Recipe& recipe, const std::string& exec) {
  const std::unique_ptr<ptq::Calibration> calib =
      flags.any() ? flags.calibration(recipe, m) : nullptr;
  RunnableDecoder d{
      recipe,
      flags.any() ? ptq::apply_recipe(recipe, *m.llama, nullptr, calib.get()) : *m.llama,
      {}};
  m.llama.reset();  // the full-precision weights the recipe replaced are no longer needed
  // Without a recipe the model runs as loaded: float32, or a 2-byte file's weights on the
  // packed kernels (real execution of what the file stores).
  const bool packed_from_file = !flags.any() && d.llama.weights().output.packed_weight();
  d.plan = model::prepare_execution(d.llama, flags.any()        ? model::parse_execution(exec)
                                             : packed_from_file ? model::Execution::Real
                                                                : model::Execution::Emulate);
  malloc_trim(0);  // glibc keeps freed heap pages unless asked to give them back
  return d;
}

}  // namespace lowbit::cli
