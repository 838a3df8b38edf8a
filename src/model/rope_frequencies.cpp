#include "model/rope_frequencies.h"

#include <cmath>

namespace lowbit::model {

std::vector<float> rope_inv_freq(int head_dim, double theta) {
  std::vector<float> f(size_t(head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(std::pow(theta, -2.0 * double(i) / head_dim));
  return f;
}

void rope_scale_linear(std::vector<float>& inv_freq, double factor) {
  for (float& f : inv_freq) f = float(f / factor);
}

void rope_scale_llama3(std::vector<float>& inv_freq, double factor, double low_freq_factor,
                       double high_freq_factor, double original_context) {
  const double low_freq_wavelen = original_context / low_freq_factor;
  const double high_freq_wavelen = original_context / high_freq_factor;
  for (float& f : inv_freq) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < high_freq_wavelen) continue;
    if (wavelen > low_freq_wavelen) {
      f = float(f / factor);
    } else {
      const double smooth =
          (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      f = float((1 - smooth) * f / factor + smooth * f);
    }
  }
}

}  // namespace lowbit::model
