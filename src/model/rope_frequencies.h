// RoPE inverse frequencies theta^(-2i/d) with the scalings real checkpoints declare.
#pragma once

#include <string>
#include <vector>

namespace lowbit::model {

std::vector<float> rope_inv_freq(int head_dim, double theta);
// Linear ("position interpolation"): every frequency divided by factor.
void rope_scale_linear(std::vector<float>& inv_freq, double factor);
// LLaMA-3.1: long wavelengths divided by factor, short ones kept, a smooth blend in between.
void rope_scale_llama3(std::vector<float>& inv_freq, double factor, double low_freq_factor,
                       double high_freq_factor, double original_context);

}  // namespace lowbit::model
