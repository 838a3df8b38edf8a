// Weight-error scores of every Linear and candidate scheme (lowbit/ptq/weight_error_scores.h).
#include "lowbit/ptq/weight_error_scores.h"

#include <Eigen/Dense>

#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "ptq/input_hessians.h"

namespace lowbit::ptq {

std::vector<WeightErrorScores> weight_error_scores(const model::Runtime& fp,
                                                   const std::vector<MaybeScheme>& candidates,
                                                   const Calibration* calibration,
                                                   const std::function<void(int, int)>& progress) {
  const std::unique_ptr<model::Runtime> copy = fp.clone();  // the probes attach to its Linears
  const model::Sites sites = copy->sites();
  std::unique_ptr<LayerwiseRunner> runner;
  if (calibration) runner = std::make_unique<LayerwiseRunner>(*copy, *calibration);
  std::vector<WeightErrorScores> out;
  for (int layer = 0; layer < sites.blocks; ++layer) {
    std::unique_ptr<InputHessians> hessians;
    if (runner) {
      hessians = std::make_unique<InputHessians>(sites, layer,
                                                 [](const model::InputSite&) { return true; });
      runner->run_layer(layer, /*advance=*/true);
    }
    for (const model::LinearSite& ls : sites.block(layer)) {
      const model::Linear& lin = *ls.linear;
      const int rows = lin.out_features(), cols = lin.in_features();
      const std::vector<float>& w = lin.weight();
      WeightErrorScores s;
      s.site = lin.name();
      std::vector<double> h;
      if (hessians) h = hessians->of(ls.input).matrix();
      std::vector<float> q(w.size());
      Eigen::MatrixXd delta(rows, cols);  // column-major: each row of ΔW is strided, which is fine
      for (const MaybeScheme& c : candidates) {
        if (!c) {
          s.squared_error.push_back(0);
          if (hessians) s.output_proxy.push_back(0);
          continue;
        }
        try {
          fake_quant(*c, w.data(), {size_t(rows), size_t(cols)}, q.data());
        } catch (const Error& e) {
          throw Error("weight " + s.site + " in " + maybe_scheme_name(c) + ": " + e.what());
        }
        double sq = 0;
        for (int r = 0; r < rows; ++r)
          for (int k = 0; k < cols; ++k) {
            const double d = double(q[size_t(r) * size_t(cols) + size_t(k)]) -
                             double(w[size_t(r) * size_t(cols) + size_t(k)]);
            delta(r, k) = d;
            sq += d * d;
          }
        s.squared_error.push_back(sq);
        if (hessians) {
          const Eigen::Map<const Eigen::MatrixXd> hx(h.data(), cols, cols);  // symmetric
          s.output_proxy.push_back((delta * hx).cwiseProduct(delta).sum());
        }
      }
      out.push_back(std::move(s));
    }
    if (progress) progress(layer + 1, sites.blocks);
  }
  return out;
}

}  // namespace lowbit::ptq
