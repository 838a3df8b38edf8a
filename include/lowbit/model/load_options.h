// lowbit/model/load_options.h — how a model's weights are held as the file is read: float32 (the
// default, what recipes and methods start from), as stored (2-byte files), or quantized and
// packed for the kernels straight from the file, so the float32 model never exists.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "lowbit/quant/scheme.h"

namespace lowbit::model {

struct LoadOptions {
  // Decoder weights stored as bf16 / f16 stay at 2 bytes per weight (packed for the kernels, no
  // float32 copy; a tied embedding reads its rows from the head). For running the model as it
  // is: a recipe needs the float32 weights, so leave this off to quantize.
  bool keep_half_precision = false;
  // The scheme to quantize a decoder weight with as it is read (round to nearest, packed for the
  // kernels, the Linear's weight_scheme set), or nullopt to load it as float32. Called with the
  // recipe site ("layers.3.q_proj", "output", "embedding") and the weight's [rows, cols]. A tied
  // embedding is packed once, as the head, when both sites get the same scheme. For real
  // execution of a recipe without methods (methods need the float32 model).
  std::function<std::optional<Scheme>(const std::string& site, size_t rows, size_t cols)>
      pack_at_load;
};

}  // namespace lowbit::model
