// The `llmfp4` method: LLM-FP4 (Liu et al. 2023) in full — the format and clipping search of
// `search`, joined with the pre-shifted exponent bias: per input channel j a power-of-two factor
// 2^b_j leaves the activations (x_j / 2^b_j, folded where the input is produced) for the weights
// (column j · 2^b_j), which in a binary floating-point format only moves exponents. Block by
// block (earlier blocks shifted and quantized), for every input site whose channels can be
// folded, the shift vector is chosen among none and SmoothQuant's power-of-two rule at α = 0.25,
// 0.5, 0.75 and 1 by the output error it leaves the site's readers —
//   Σ_readers tr(ΔW'·H'·ΔW'ᵀ) + tr(W'·Σ'·W'ᵀ),
// W' = W·D the shifted weight, ΔW' its quantization error under the reader's scheme, H' =
// D⁻¹·H·D⁻¹ the shifted calibration Hessian and Σ' = 2/N·ΔXᵀΔX the covariance of the shifted
// activations' quantization error under the recipe's activation scheme (the cross term is left
// out) — and then each reader's format and clipping is searched on the shifted weight.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/format_search.h"
#include "lowbit/ptq/gptq.h"
#include "lowbit/ptq/smoothquant.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// The rows each observed Linear reads (the first reader of an input stands for all of them).
class InputRows : public model::LinearProbe {
 public:
  void observe(const model::Linear& lin, const float* x, const float*, int n,
               const float*) override {
    std::vector<float>& rows = rows_[&lin];
    rows.insert(rows.end(), x, x + size_t(n) * size_t(lin.in_features()));
  }
  const std::vector<float>& of(const model::Linear* lin) const { return rows_.at(lin); }

 private:
  std::map<const model::Linear*, std::vector<float>> rows_;
};

// At most this many rows estimate the activation error's covariance (evenly spaced).
constexpr size_t kCovarianceRows = 1024;

// Σ' = 2/N ΔXᵀΔX for the rows x / s quantized by `a`.
std::vector<float> activation_error_covariance(const Scheme& a, const std::vector<float>& x,
                                               size_t in, const std::vector<float>& s) {
  const size_t n = x.size() / in, m = std::min(n, kCovarianceRows);
  std::vector<float> shifted(m * in), q(m * in);
  for (size_t r = 0; r < m; ++r) {
    const size_t from = r * n / m;
    for (size_t j = 0; j < in; ++j) shifted[r * in + j] = x[from * in + j] / s[j];
  }
  fake_quant(a, shifted.data(), {m, in}, q.data());
  for (size_t i = 0; i < q.size(); ++i) q[i] -= shifted[i];
  Hessian h{int(in)};
  h.add(q.data(), int(m));
  const std::vector<double> d = h.matrix();
  return std::vector<float>(d.begin(), d.end());
}

// tr(W·Σ·Wᵀ) for W [out, in].
double quadratic_form(const std::vector<float>& w, int out, int in, const std::vector<float>& s) {
  return output_error(std::vector<float>(w.size(), 0.0f), w, out, in, s);
}

}  // namespace

std::unique_ptr<model::Runtime> llm_fp4_model(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const std::function<MaybeScheme(const std::string&)>& activations_of,
    const Calibration& calibration, std::map<std::string, Scheme>& chosen,
    const std::function<void(int, int)>& progress) {
  std::unique_ptr<model::Runtime> out = base.clone();   // shifted, full precision
  std::unique_ptr<model::Runtime> work = base.clone();  // shifted and quantized, for the inputs
  const model::Sites out_sites = out->sites(), sites = work->sites();
  LayerwiseRunner runner(*work, calibration);
  for (int l = 0; l < sites.blocks; ++l) {
    std::vector<size_t> inputs;  // indices into sites.inputs of this block's quantized inputs
    for (size_t i = 0; i < sites.inputs.size(); ++i) {
      if (sites.inputs[i].layer != l) continue;
      for (const model::Linear* lin : sites.inputs[i].readers)
        if (scheme_of(lin->name())) {
          inputs.push_back(i);
          break;
        }
    }
    InputRows rows;
    for (size_t i : inputs) sites.inputs[i].readers.front()->set_probe(&rows);
    runner.run_layer(l, false);
    for (size_t i : inputs) sites.inputs[i].readers.front()->set_probe(nullptr);
    for (size_t i : inputs) {
      const model::InputSite& in_out = out_sites.inputs[i];
      const model::InputSite& in_work = sites.inputs[i];
      const std::vector<float>& x = rows.of(in_work.readers.front());
      const size_t width = size_t(in_work.readers.front()->in_features());
      Hessian hx{int(width)};
      hx.add(x.data(), int(x.size() / width));
      const std::vector<double> hd = hx.matrix();
      const MaybeScheme act = activations_of(in_work.readers.front()->name());
      const bool foldable = (in_out.fold.norm_weight || in_out.fold.rows) &&
                            !in_out.readers.front()->input_transform();
      // The candidate shift vectors: none, and SmoothQuant's power-of-two rule.
      std::vector<std::vector<float>> candidates{std::vector<float>(width, 1.0f)};
      if (foldable && act) {
        std::vector<float> absmax(width, 0.0f);
        for (size_t k = 0; k < x.size(); ++k)
          absmax[k % width] = std::max(absmax[k % width], std::fabs(x[k]));
        const std::vector<const model::Linear*> readers(in_out.readers.begin(),
                                                        in_out.readers.end());
        for (const double alpha : {0.25, 0.5, 0.75, 1.0})
          candidates.push_back(smoothing_scales(absmax, readers, alpha, true));
      }
      const auto shifted_hessian = [&](const std::vector<float>& s) {
        std::vector<float> h(width * width);
        for (size_t a = 0; a < width; ++a)
          for (size_t b = 0; b < width; ++b)
            h[a * width + b] = float(hd[a * width + b] / (double(s[a]) * double(s[b])));
        return h;
      };
      const auto shifted_weight = [&](const model::Linear& lin, const std::vector<float>& s) {
        std::vector<float> w = lin.weight();
        for (size_t k = 0; k < w.size(); ++k) w[k] *= s[k % width];
        return w;
      };
      size_t best = 0;
      if (candidates.size() > 1) {
        double best_error = 0;
        for (size_t c = 0; c < candidates.size(); ++c) {
          const std::vector<float>& s = candidates[c];
          const std::vector<float> h = shifted_hessian(s);
          const std::vector<float> sigma = activation_error_covariance(*act, x, width, s);
          double e = 0;
          for (const model::Linear* lin : in_out.readers) {
            const MaybeScheme ws = scheme_of(lin->name());
            const std::vector<float> w = shifted_weight(*lin, s);
            const int o = lin->out_features();
            if (ws) {
              std::vector<float> q(w.size());
              fake_quant(*ws, w.data(), {size_t(o), width}, q.data());
              e += output_error(w, q, o, int(width), h);
            }
            e += quadratic_form(w, o, int(width), sigma);
          }
          if (c == 0 || e < best_error) best_error = e, best = c;
        }
      }
      const std::vector<float>& s = candidates[best];
      if (best != 0) fold_input_scales(in_out, s);
      const std::vector<float> h = shifted_hessian(s);
      for (size_t r = 0; r < in_out.readers.size(); ++r) {
        const model::Linear& lin = *in_out.readers[r];  // already shifted
        const MaybeScheme ws = scheme_of(lin.name());
        std::vector<float> q = lin.weight();
        if (ws) {
          SearchedWeight pick = search_weight(*ws, lin.weight(), lin.out_features(), int(width), h);
          q = std::move(pick.values);
          chosen[lin.name()] = pick.scheme;
        }
        in_work.readers[r]->set_weight(std::move(q));  // later sites see these quantized
      }
      // The shift's source in the working model: the norm (as folded in `out`), or the producer
      // Linear, quantized again from its shifted weight.
      if (in_work.fold.norm_weight) *in_work.fold.norm_weight = *in_out.fold.norm_weight;
      if (in_work.fold.norm_bias) *in_work.fold.norm_bias = *in_out.fold.norm_bias;
      if (in_work.fold.rows && best != 0) {
        const model::Linear& producer = *in_out.fold.rows;
        std::vector<float> q = producer.weight();
        const auto it = chosen.find(producer.name());
        if (it != chosen.end())
          fake_quant(it->second, producer.weight().data(),
                     {size_t(producer.out_features()), size_t(producer.in_features())}, q.data());
        in_work.fold.rows->set_weight(std::move(q));
        in_work.fold.rows->set_bias(producer.bias());
      }
    }
    runner.run_layer(l, true);
    if (progress) progress(l + 1, sites.blocks);
  }
  return out;
}

MethodInfo llm_fp4_method() {
  MethodInfo m;
  m.name = "llmfp4";
  m.summary =
      "LLM-FP4: pre-shifted exponent biases (power-of-two activation factors in the weights) "
      "searched jointly with each Linear's format and clipping";
  m.needs_calibration = true;
  m.chooses_weights = true;
  m.transforms = true;
  m.run = [](MethodRun& r) {
    r.model = llm_fp4_model(
        *r.model, r.scheme_of,
        [&](const std::string& site) { return r.recipe.resolve(site).activations; }, *r.calibration,
        r.chosen, r.progress);
  };
  return m;
}

}  // namespace lowbit::ptq
