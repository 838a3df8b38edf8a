// Format and clipping search over the formats of one bit width, scored by the layer's output
// error under the calibration Hessian.
#include "lowbit/ptq/format_search.h"

#include <cblas.h>

#include <limits>

#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/gptq.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "ptq/input_hessians.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {

std::vector<Scheme> search_candidates(const Scheme& base) {
  const int bits = base.element.bits();
  std::vector<Format> elements;
  for (int e = 1; e <= std::min(8, bits - 1); ++e) {
    const int m = bits - 1 - e;
    if (m > 10) continue;
    elements.push_back(
        parse_format("e" + std::to_string(e) + "m" + std::to_string(m) + ":specials=none"));
  }
  if (bits >= 2 && bits <= 16) elements.push_back(Format::integer(bits, true));
  std::vector<Scheme> out;
  for (const Format& f : elements)
    for (const ScaleRule rule : {ScaleRule::AbsMax, ScaleRule::Mse}) {
      Scheme s = base;
      s.element = f;
      s.rule = rule;
      s.asymmetric = false;
      s.preset.clear();
      try {
        validate_scheme(s);
      } catch (const Error&) {
        continue;  // e.g. a scale format that cannot serve this element
      }
      out.push_back(s);
    }
  return out;
}

double output_error(const std::vector<float>& w, const std::vector<float>& q, int out, int in,
                    const std::vector<float>& h) {
  std::vector<float> d(w.size()), dh(w.size());
  for (size_t i = 0; i < w.size(); ++i) d[i] = q[i] - w[i];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, in, 1.0f, d.data(), in, h.data(),
              in, 0.0f, dh.data(), in);
  double e = 0;
  for (size_t i = 0; i < d.size(); ++i) e += double(d[i]) * double(dh[i]);
  return e;
}

SearchedWeight search_weight(const Scheme& base, const std::vector<float>& w, int out, int in,
                             const std::vector<float>& h) {
  double best = std::numeric_limits<double>::infinity();
  SearchedWeight chosen{base, {}};
  std::vector<float> q(w.size());
  for (const Scheme& s : search_candidates(base)) {
    fake_quant(s, w.data(), {size_t(out), size_t(in)}, q.data());
    const double e = output_error(w, q, out, in, h);
    if (e < best) {
      best = e;
      chosen.scheme = s;
      chosen.values = q;
    }
  }
  if (chosen.values.empty()) {  // no candidate: the scheme as it is
    chosen.values.resize(w.size());
    fake_quant(base, w.data(), {size_t(out), size_t(in)}, chosen.values.data());
  }
  return chosen;
}

std::map<std::string, Scheme> search_model(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const Calibration& calibration, const std::function<void(int, int)>& progress) {
  std::map<std::string, Scheme> chosen;
  const std::unique_ptr<model::Runtime> q = base.clone();
  const model::Sites sites = q->sites();
  LayerwiseRunner runner(*q, calibration);
  for (int l = 0; l < sites.blocks; ++l) {
    {
      // Only inputs with a quantized reader are observed.
      InputHessians hessians(sites, l, [&](const model::InputSite& in) {
        for (const model::Linear* lin : in.readers)
          if (scheme_of(lin->name())) return true;
        return false;
      });
      runner.run_layer(l, false);
      for (const model::LinearSite& site : sites.block(l)) {
        model::Linear* lin = site.linear;
        const MaybeScheme s = scheme_of(lin->name());
        if (!s) continue;
        const std::vector<double> hd = hessians.of(site.input).matrix();
        const std::vector<float> h(hd.begin(), hd.end());
        SearchedWeight pick =
            search_weight(*s, lin->weight(), lin->out_features(), lin->in_features(), h);
        lin->set_weight(std::move(pick.values));  // later blocks see this one quantized
        chosen[lin->name()] = pick.scheme;
      }
    }
    runner.run_layer(l, true);
    if (progress) progress(l + 1, sites.blocks);
  }
  return chosen;
}

MethodInfo search_method() {
  MethodInfo m;
  m.name = "search";
  m.summary =
      "format and clipping search per Linear among the formats of a bit width, as in LLM-FP4";
  m.params = {{"bits", MethodParam::Kind::Integer, 0, 0, 16, false,
               "the width searched (0: the scheme's own)"}};
  m.needs_calibration = true;
  m.chooses_weights = true;
  m.run = [](MethodRun& r) {
    const int bits = r.integer("bits");
    const auto of = [&](const std::string& site) -> MaybeScheme {
      MaybeScheme s = r.scheme_of(site);
      if (s && bits > 0) s->element = Format::integer(bits, true);  // only its width matters
      return s;
    };
    if (r.cache && r.cache->restore(r)) return;
    r.chosen = search_model(*r.model, of, *r.calibration, r.progress);
    if (r.cache) r.cache->store(r);
  };
  return m;
}

}  // namespace lowbit::ptq
