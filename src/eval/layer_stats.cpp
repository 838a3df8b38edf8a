// Per-Linear statistics of a quantized model against the full-precision one, gathered by probes
// attached to every Linear of a (shallow) copy of the model during one forward.
#include "lowbit/layer_stats.h"

#include <cmath>

#include "lowbit/error.h"
#include "util/memory.h"

namespace lowbit::eval {
namespace {

constexpr int kLinearsPerLayer = 7;

// Copies of every Linear's output.
class Recorder : public model::LinearProbe {
 public:
  explicit Recorder(std::map<std::string, std::vector<float>>& out) : out_(out) {}
  void observe(const model::Linear& lin, const float*, const float*, int n, const float* y) override {
    out_[lin.name()].assign(y, y + size_t(n) * size_t(lin.out_features()));
  }

 private:
  std::map<std::string, std::vector<float>>& out_;
};

class Collector : public model::LinearProbe {
 public:
  Collector(const ReferenceOutputs& ref, std::map<std::string, LayerRow>& rows) : ref_(ref), rows_(rows) {}
  void observe(const model::Linear& lin, const float* x, const float* xq, int n, const float* y) override {
    LayerRow& r = rows_[lin.name()];
    const size_t m = size_t(n) * size_t(lin.in_features());
    double sum = 0, absmax = 0;
    for (size_t i = 0; i < m; ++i) {
      sum += x[i];
      absmax = std::max(absmax, double(std::fabs(x[i])));
    }
    const double mean = sum / double(m);
    double m2 = 0, m4 = 0;
    for (size_t i = 0; i < m; ++i) {
      const double d = double(x[i]) - mean, d2 = d * d;
      m2 += d2;
      m4 += d2 * d2;
    }
    m2 /= double(m);
    m4 /= double(m);
    r.input_absmax = absmax;
    r.input_kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0;
    if (xq != x) {
      r.input = ErrorStats();
      r.input.add_values(x, xq, m);
    }
    const std::vector<float>* want = ref_.find(lin.name());
    const size_t out_n = size_t(n) * size_t(lin.out_features());
    if (!want || want->size() != out_n) throw Error("layer statistics: no reference output for " + lin.name());
    double signal = 0, noise = 0;
    for (size_t i = 0; i < out_n; ++i) {
      const double d = double(y[i]) - double((*want)[i]);
      signal += double((*want)[i]) * double((*want)[i]);
      noise += d * d;
    }
    r.output_sqnr_db = noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
  }

 private:
  const ReferenceOutputs& ref_;
  std::map<std::string, LayerRow>& rows_;
};

// A shallow copy of `llama` whose layer Linears report to `probe` (the output head does not).
model::Llama probed_copy(const model::Llama& llama, model::LinearProbe* probe) {
  model::Llama copy = llama;
  for (model::Linear* lin : copy.linears())
    if (lin->name() != "output") lin->set_probe(probe);
  return copy;
}

}  // namespace

ReferenceOutputs::ReferenceOutputs(const model::Llama& fp, std::vector<int32_t> window) : window_(std::move(window)) {
  if (window_.empty()) throw Error("layer statistics need at least one token");
  // Every layer Linear's output over the window is kept (the head's is not recorded).
  double floats = 0;
  const std::vector<const model::Linear*> linears = fp.linears();
  for (size_t i = 0; i + 1 < linears.size(); ++i) floats += double(linears[i]->out_features());
  util::require_memory(4.0 * floats * double(window_.size()),
                       "the per-layer statistics' reference outputs over " + std::to_string(window_.size()) + " tokens",
                       "use a smaller --ctx, or skip them (--no-layers in sweep, no --layers in eval)");
  Recorder recorder(outputs_);
  const model::Llama probed = probed_copy(fp, &recorder);
  model::LlamaRunState state(fp.config(), int(window_.size()), int(window_.size()));
  probed.forward(window_.data(), int(window_.size()), 0, state);
}

const std::vector<float>* ReferenceOutputs::find(const std::string& site) const {
  const auto it = outputs_.find(site);
  return it == outputs_.end() ? nullptr : &it->second;
}

std::vector<LayerRow> layer_statistics(const model::Llama& quantized, const ReferenceOutputs& reference,
                                       const ptq::ApplyReport& applied) {
  std::map<std::string, LayerRow> by_site;
  Collector collector(reference, by_site);
  const model::Llama probed = probed_copy(quantized, &collector);
  const std::vector<int32_t>& window = reference.window();
  model::LlamaRunState state(quantized.config(), int(window.size()), int(window.size()));
  probed.forward(window.data(), int(window.size()), 0, state);

  std::vector<LayerRow> rows;
  const std::vector<const model::Linear*> linears = quantized.linears();
  for (size_t i = 0; i + 1 < linears.size(); ++i) {  // the last is the output head
    const model::Linear& lin = *linears[i];
    LayerRow r = by_site.at(lin.name());
    r.site = lin.name();
    r.layer = int(i) / kLinearsPerLayer;
    r.role = r.site.substr(r.site.rfind('.') + 1);
    r.input_scheme = ptq::maybe_scheme_name(lin.input_scheme());
    r.weight_scheme = "fp";
    for (const ptq::WeightReport& w : applied.weights)
      if (w.site == r.site) {
        r.weight_scheme = w.scheme;
        r.weight = w.error;
      }
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace lowbit::eval
