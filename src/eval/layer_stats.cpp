// Per-Linear statistics of a quantized model against the full-precision one, gathered by probes
// attached to every Linear of a (shallow) copy of the model during one forward.
#include "lowbit/eval/layer_stats.h"

#include <cmath>

#include "lowbit/util/error.h"
#include "util/memory.h"

namespace lowbit::eval {
namespace {

// Copies of every Linear's output.
class Recorder : public model::LinearProbe {
 public:
  explicit Recorder(std::map<std::string, std::vector<float>>& out) : out_(out) {}
  void observe(const model::Linear& lin, const float*, const float*, int n,
               const float* y) override {
    out_[lin.name()].assign(y, y + size_t(n) * size_t(lin.out_features()));
  }

 private:
  std::map<std::string, std::vector<float>>& out_;
};

class Collector : public model::LinearProbe {
 public:
  Collector(const ReferenceOutputs& ref, std::map<std::string, LayerRow>& rows)
      : ref_(ref), rows_(rows) {}
  void observe(const model::Linear& lin, const float* x, const float* xq, int n,
               const float* y) override {
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
    if (!want || want->size() != out_n)
      throw Error("layer statistics: no reference output for " + lin.name());
    double signal = 0, noise = 0;
    for (size_t i = 0; i < out_n; ++i) {
      const double d = double(y[i]) - double((*want)[i]);
      signal += double((*want)[i]) * double((*want)[i]);
      noise += d * d;
    }
    r.output_sqnr_db =
        noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
  }

 private:
  const ReferenceOutputs& ref_;
  std::map<std::string, LayerRow>& rows_;
};

// Runs the block Linears of a copy of `m` over `window` with `probe` attached (the head is not
// observed), through the block runner: embedding and every block, as a forward computes them.
void run_probed(const model::Runtime& m, const std::vector<int32_t>& window,
                model::LinearProbe* probe) {
  const std::unique_ptr<model::Runtime> copy = m.clone();
  const model::Sites sites = copy->sites();
  for (const model::LinearSite& s : sites.linears) s.linear->set_probe(probe);
  const int n = int(window.size());
  const std::unique_ptr<model::BlockRunner> runner = copy->block_runner(n);
  std::vector<float> stream(size_t(n) * runner->width());
  runner->embed(window.data(), n, stream.data());
  for (int b = 0; b < sites.blocks; ++b) runner->run_block(b, n, stream.data());
}

}  // namespace

ReferenceOutputs::ReferenceOutputs(const model::Runtime& fp, std::vector<int32_t> window)
    : window_(std::move(window)) {
  if (window_.empty()) throw Error("layer statistics need at least one token");
  // Every block Linear's output over the window is kept (the head's is not recorded).
  double floats = 0;
  for (const model::LinearSite& s : const_cast<model::Runtime&>(fp).sites().linears)
    floats += double(s.linear->out_features());
  util::require_memory(4.0 * floats * double(window_.size()),
                       "the per-layer statistics' reference outputs over " +
                           std::to_string(window_.size()) + " tokens",
                       "use a shorter context, or turn the per-layer statistics off");
  Recorder recorder(outputs_);
  run_probed(fp, window_, &recorder);
}

const std::vector<float>* ReferenceOutputs::find(const std::string& site) const {
  const auto it = outputs_.find(site);
  return it == outputs_.end() ? nullptr : &it->second;
}

std::vector<LayerRow> layer_statistics(const model::Runtime& quantized,
                                       const ReferenceOutputs& reference,
                                       const ptq::ApplyReport& applied) {
  std::map<std::string, LayerRow> by_site;
  Collector collector(reference, by_site);
  run_probed(quantized, reference.window(), &collector);

  std::vector<LayerRow> rows;
  for (const model::LinearSite& site : const_cast<model::Runtime&>(quantized).sites().linears) {
    const model::Linear& lin = *site.linear;
    LayerRow r = by_site.at(lin.name());
    r.site = lin.name();
    r.layer = site.layer;
    r.role = site.role;
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
