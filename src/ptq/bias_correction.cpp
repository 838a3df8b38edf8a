// The `biascorrect` method: empirical bias correction (Nagel et al. 2019, "Data-Free Quantization
// Through Weight Equalization and Bias Correction"; studied for minifloats by Aggarwal et al.
// 2023). Quantizing W to Q shifts a Linear's mean output by (W − Q)·E[x]; adding that to the bias
// gives back the full-precision mean. E[x] is measured on the calibration data with the blocks
// before each one already quantized (as GPTQ sees them), so the correction also absorbs the shift
// that earlier blocks' errors bring. The weights' quantized values are those the recipe will use:
// an earlier method's (GPTQ) or round to nearest by the site's scheme.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/ptq/dfq.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// Sums of the inputs each observed Linear sees, in double.
class InputMeans : public model::LinearProbe {
 public:
  void observe(const model::Linear& lin, const float* x, const float*, int n,
               const float*) override {
    Sum& s = sums_[lin.name()];
    const size_t in = size_t(lin.in_features());
    s.total.resize(in, 0.0);
    for (int r = 0; r < n; ++r)
      for (size_t j = 0; j < in; ++j) s.total[j] += double(x[size_t(r) * in + j]);
    s.rows += size_t(n);
  }
  std::vector<double> mean(const std::string& linear) const {
    const auto it = sums_.find(linear);
    if (it == sums_.end() || it->second.rows == 0)
      throw Error("internal: biascorrect saw no calibration inputs of " + linear);
    std::vector<double> m = it->second.total;
    for (double& v : m) v /= double(it->second.rows);
    return m;
  }

 private:
  struct Sum {
    std::vector<double> total;
    size_t rows = 0;
  };
  std::map<std::string, Sum> sums_;
};

}  // namespace

std::unique_ptr<model::Runtime> bias_correct_model(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const PrequantizedWeights& prequantized, const Calibration& calibration,
    const std::function<void(int, int)>& progress) {
  std::unique_ptr<model::Runtime> out = base.clone();   // full-precision weights, corrected biases
  std::unique_ptr<model::Runtime> work = base.clone();  // quantized block by block, for the inputs
  const model::Sites out_sites = out->sites(), sites = work->sites();
  std::map<std::string, model::Linear*> out_linear;
  for (const model::LinearSite& s : out_sites.linears) out_linear[s.linear->name()] = s.linear;
  LayerwiseRunner runner(*work, calibration);
  for (int l = 0; l < sites.blocks; ++l) {
    const std::vector<model::LinearSite> block = sites.block(l);
    InputMeans means;
    for (const model::LinearSite& s : block) s.linear->set_probe(&means);
    runner.run_layer(l, false);
    for (const model::LinearSite& s : block) s.linear->set_probe(nullptr);
    for (const model::LinearSite& s : block) {
      model::Linear& lin = *s.linear;
      const MaybeScheme scheme = scheme_of(lin.name());
      if (!scheme) continue;
      const size_t rows = size_t(lin.out_features()), cols = size_t(lin.in_features());
      std::vector<float> q(rows * cols);
      const auto pre = prequantized.find(lin.name());
      if (pre != prequantized.end())
        q = pre->second.values;
      else
        fake_quant(*scheme, lin.weight().data(), {rows, cols}, q.data());
      const std::vector<double> mean = means.mean(lin.name());
      std::vector<float> bias = lin.bias();
      bias.resize(rows, 0.0f);
      for (size_t r = 0; r < rows; ++r) {
        double shift = 0;
        for (size_t c = 0; c < cols; ++c)
          shift += (double(lin.weight()[r * cols + c]) - double(q[r * cols + c])) * mean[c];
        bias[r] = float(double(bias[r]) + shift);
      }
      out_linear.at(lin.name())->set_bias(bias);
      lin.set_weight(std::move(q));
      lin.set_bias(std::move(bias));
    }
    runner.run_layer(l, true);  // the next block sees this one quantized and corrected
    if (progress) progress(l + 1, sites.blocks);
  }
  return out;
}

MethodInfo bias_correction_method() {
  MethodInfo m;
  m.name = "biascorrect";
  m.summary =
      "bias correction: the mean output shift of each quantized Linear folded into its bias "
      "(Nagel et al. 2019)";
  m.needs_calibration = true;
  m.transforms = true;  // the biases of the full-precision model change
  m.run = [](MethodRun& r) {
    require_after_weight_methods(r);
    r.model = bias_correct_model(*r.model, r.scheme_of, r.prequantized, *r.calibration, r.progress);
  };
  return m;
}

}  // namespace lowbit::ptq
