// RoPE inverse frequencies theta^(-2i/d) with the scalings real checkpoints declare.
#pragma once

#include <string>
#include <vector>

#include "lowbit/model/llama.h"  // rope_inv_freq

namespace lowbit::model {

// Linear ("position interpolation"): every frequency divided by factor.
void rope_scale_linear(std::vector<float>& inv_freq, double factor);
// LLaMA-3.1: long wavelengths divided by factor, short ones kept, a smooth blend in between.
void rope_scale_llama3(std::vector<float>& inv_freq, double factor, double low_freq_factor,
                       double high_freq_factor, double original_context);

}  // namespace lowbit::model
