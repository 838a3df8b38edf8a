// SmoothQuant: per-channel scales from calibration activations, folded into norms and weights.
#include "lowbit/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "lowbit/error.h"

namespace lowbit::ptq {
namespace {

// The largest |x_j| per input channel of each observed Linear.
class AbsMaxProbe : public model::LinearProbe {
 public:
  void observe(const model::Linear& lin, const float* x, const float*, int n, const float*) override {
    std::vector<float>& m = absmax[lin.name()];
    const int in = lin.in_features();
    m.resize(size_t(in), 0.0f);
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < in; ++j) m[size_t(j)] = std::max(m[size_t(j)], std::fabs(x[size_t(r) * size_t(in) + size_t(j)]));
  }
  std::map<std::string, std::vector<float>> absmax;
};

// s_j for the Linears sharing one input.
std::vector<float> smoothing_scales(const std::vector<float>& act, const std::vector<const model::Linear*>& linears, double alpha,
                                    bool pow2) {
  const size_t in = act.size();
  std::vector<float> w(in, 0.0f), s(in);
  for (const model::Linear* lin : linears)
    for (size_t r = 0; r < size_t(lin->out_features()); ++r)
      for (size_t j = 0; j < in; ++j) w[j] = std::max(w[j], std::fabs(lin->weight()[r * in + j]));
  for (size_t j = 0; j < in; ++j) {
    const double a = std::max(double(act[j]), 1e-5), b = std::max(double(w[j]), 1e-5);
    const double v = std::pow(a, alpha) / std::pow(b, 1.0 - alpha);
    s[j] = pow2 ? float(std::exp2(std::round(std::log2(v)))) : float(v);
  }
  return s;
}

void scale_columns(model::Linear& lin, const std::vector<float>& s) {
  std::vector<float> w = lin.weight();
  const size_t in = s.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] *= s[i % in];
  lin.set_weight(std::move(w));
}

}  // namespace

model::Llama smooth_model(const model::Llama& base, const Calibration& calibration, const SmoothQuantOptions& o) {
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw Error("smoothquant: alpha must be in [0, 1]");
  model::Llama m = base;
  AbsMaxProbe probe;
  for (model::LlamaLayer& l : m.weights().layers)
    for (model::Linear* lin : {&l.wq, &l.w_gate, &l.w_down}) lin->set_probe(&probe);
  const int n = int(calibration.sequences.at(0).size());
  model::LlamaRunState state(m.config(), n, n);
  for (const std::vector<int32_t>& seq : calibration.sequences) m.forward(seq.data(), n, 0, state);
  for (model::LlamaLayer& l : m.weights().layers) {
    for (model::Linear* lin : {&l.wq, &l.w_gate, &l.w_down}) lin->set_probe(nullptr);
    // q/k/v read attn_norm's output.
    const std::vector<float> s_qkv = smoothing_scales(probe.absmax.at(l.wq.name()), {&l.wq, &l.wk, &l.wv}, o.alpha, o.pow2);
    for (size_t j = 0; j < s_qkv.size(); ++j) l.attn_norm[j] /= s_qkv[j];
    for (model::Linear* lin : {&l.wq, &l.wk, &l.wv}) scale_columns(*lin, s_qkv);
    // gate/up read ffn_norm's output.
    const std::vector<float> s_ffn = smoothing_scales(probe.absmax.at(l.w_gate.name()), {&l.w_gate, &l.w_up}, o.alpha, o.pow2);
    for (size_t j = 0; j < s_ffn.size(); ++j) l.ffn_norm[j] /= s_ffn[j];
    for (model::Linear* lin : {&l.w_gate, &l.w_up}) scale_columns(*lin, s_ffn);
    // down_proj reads silu(gate) * up: divide up_proj's row j by s_j.
    if (!l.w_down.input_transform()) {
      const std::vector<float> s_down = smoothing_scales(probe.absmax.at(l.w_down.name()), {&l.w_down}, o.alpha, o.pow2);
      std::vector<float> up = l.w_up.weight();
      const size_t in = size_t(l.w_up.in_features());
      for (size_t r = 0; r < s_down.size(); ++r)
        for (size_t c = 0; c < in; ++c) up[r * in + c] /= s_down[r];
      l.w_up.set_weight(std::move(up));
      scale_columns(l.w_down, s_down);
    }
  }
  return m;
}

}  // namespace lowbit::ptq
