// SmoothQuant: per-channel scales from calibration activations, folded into norms and weights.
#include "lowbit/ptq/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// The largest |x_j| per input channel of each observed Linear.
class AbsMaxProbe : public model::LinearProbe {
 public:
  void observe(const model::Linear& lin, const float* x, const float*, int n,
               const float*) override {
    std::vector<float>& m = absmax[lin.name()];
    const int in = lin.in_features();
    m.resize(size_t(in), 0.0f);
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < in; ++j)
        m[size_t(j)] = std::max(m[size_t(j)], std::fabs(x[size_t(r) * size_t(in) + size_t(j)]));
  }
  std::map<std::string, std::vector<float>> absmax;
};

}  // namespace

std::vector<float> smoothing_scales(const std::vector<float>& act,
                                    const std::vector<const model::Linear*>& linears, double alpha,
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

void fold_input_scales(const model::InputSite& in, const std::vector<float>& s) {
  if (in.fold.norm_weight) {
    for (size_t j = 0; j < s.size(); ++j) (*in.fold.norm_weight)[j] /= s[j];
    if (in.fold.norm_bias)
      for (size_t j = 0; j < s.size(); ++j) (*in.fold.norm_bias)[j] /= s[j];
  } else if (in.fold.rows) {  // the producer's output rows (and bias) are divided
    model::Linear& producer = *in.fold.rows;
    std::vector<float> w = producer.weight();
    const size_t cols = size_t(producer.in_features());
    for (size_t r = 0; r < s.size(); ++r)
      for (size_t c = 0; c < cols; ++c) w[r * cols + c] /= s[r];
    std::vector<float> bias = producer.bias();
    for (size_t r = 0; r < bias.size(); ++r) bias[r] /= s[r];
    producer.set_weight(std::move(w));
    producer.set_bias(std::move(bias));
  } else {
    throw Error("internal: " + in.id + " has no place to fold per-channel factors into");
  }
  for (model::Linear* lin : in.readers) scale_columns(*lin, s);
}

std::unique_ptr<model::Runtime> smooth_model(const model::Runtime& base,
                                             const Calibration& calibration,
                                             const SmoothQuantOptions& o) {
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw Error("smoothquant: alpha must be in [0, 1]");
  std::unique_ptr<model::Runtime> m = base.clone();
  const model::Sites sites = m->sites();
  // An input can be smoothed where its channels can be scaled where it is produced, and not when
  // its reader rotates it online (after a Hadamard rotation the channels are mixed, and the
  // rotation already spreads outliers).
  std::vector<const model::InputSite*> smoothed;
  for (const model::InputSite& in : sites.inputs) {
    const bool foldable = in.fold.norm_weight || in.fold.rows;
    if (foldable && !in.readers.front()->input_transform()) smoothed.push_back(&in);
  }
  AbsMaxProbe probe;
  for (const model::InputSite* in : smoothed) in->readers.front()->set_probe(&probe);
  {
    LayerwiseRunner runner(*m, calibration);
    for (int l = 0; l < sites.blocks; ++l) runner.run_layer(l, true);
  }
  for (const model::InputSite* in : smoothed) {
    model::Linear* first = in->readers.front();
    first->set_probe(nullptr);
    const std::vector<const model::Linear*> readers(in->readers.begin(), in->readers.end());
    const std::vector<float> s =
        smoothing_scales(probe.absmax.at(first->name()), readers, o.alpha, o.pow2);
    fold_input_scales(*in, s);
  }
  return m;
}

MethodInfo smoothquant_method() {
  MethodInfo m;
  m.name = "smoothquant";
  m.summary = "SmoothQuant: activation outliers moved into the weights (Xiao et al. 2023)";
  m.params = {
      {"alpha", MethodParam::Kind::Number, 0.5, 0, 1, false, "migration strength"},
      {"pow2", MethodParam::Kind::Flag, 0, 0, 0, false,
       "power-of-two factors (LLM-FP4's pre-shifted exponent bias: exact in binary formats)"}};
  m.needs_calibration = true;
  m.transforms = true;
  m.run = [](MethodRun& r) {
    r.model = smooth_model(*r.model, *r.calibration,
                           SmoothQuantOptions{r.number("alpha"), r.flag("pow2")});
  };
  return m;
}

}  // namespace lowbit::ptq
