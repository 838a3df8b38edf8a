// The dyadic method: HAWQ-V3 integer-only execution of every quantized Linear of a decoder
// (lowbit/model/integer_linear.h). After round to nearest it calibrates one static input and one
// static output scale per Linear (absmax over the calibration sequences, run through the
// quantized model as the recipe has it) and replaces each product by int8 codes × weight codes in
// int32, requantized to the output codes by dyadic multipliers.
#include <algorithm>
#include <cmath>
#include <map>

#include "lowbit/model/integer_linear.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// The largest |x| and |y| every Linear sees over the calibration forwards.
struct RangeProbe : model::LinearProbe {
  std::map<const model::Linear*, std::pair<float, float>> ranges;
  void observe(const model::Linear& linear, const float* x, const float*, int n,
               const float* y) override {
    std::pair<float, float>& r = ranges[&linear];
    for (size_t i = 0; i < size_t(n) * size_t(linear.in_features()); ++i)
      r.first = std::max(r.first, std::abs(x[i]));
    for (size_t i = 0; i < size_t(n) * size_t(linear.out_features()); ++i)
      r.second = std::max(r.second, std::abs(y[i]));
  }
};

// Why integer-only execution cannot take this Linear's weight and input schemes, or "".
std::string integer_only_gap(const model::Linear& lin) {
  const Scheme& w = *lin.weight_scheme();
  if (w.element.kind != FormatKind::Int || !w.element.is_signed || w.asymmetric ||
      w.element.int_bits > 8 || w.granularity != Granularity::Channel || w.axis != 0 ||
      w.global_scale || !w.scale_is_f32)
    return "its weights (" + scheme_name(w) +
           ") are not symmetric integers of up to 8 bits with one float32 scale per output "
           "channel (int8:channel, int4:channel)";
  const std::optional<Scheme>& a = lin.input_scheme();
  if (!a || a->element.kind != FormatKind::Int || !a->element.is_signed || a->asymmetric ||
      a->element.int_bits > 8 || a->granularity != Granularity::Tensor)
    return "its activations (" + (a ? scheme_name(*a) : std::string("float")) +
           ") are not symmetric per-tensor integers of up to 8 bits (give --a int8:tensor: the "
           "method replaces the run-time scale by a calibrated one)";
  if (lin.low_rank() || lin.accumulation() || lin.products())
    return "a low-rank term, accumulator or L-Mul emulation has no integer-only form";
  if (!lin.weight_codes()) return "its weight has no codes (the method that set it kept none)";
  return "";
}

// The integer codes and per-row scales of a weight on a symmetric per-channel integer grid.
void weight_codes_of(const model::Linear& lin, model::IntegerLinearSpec& spec) {
  const QTensor& q = *lin.weight_codes();
  const std::vector<float>& w = lin.weight();
  spec.weight_codes.resize(w.size());
  spec.weight_scales.resize(size_t(spec.out));
  for (size_t r = 0; r < size_t(spec.out); ++r) {
    const float s = q.group_scale(r);
    spec.weight_scales[r] = s;
    for (size_t c = 0; c < size_t(spec.in); ++c) {
      const size_t i = r * size_t(spec.in) + c;
      const float code = std::nearbyint(w[i] / s);
      if (!(std::abs(code) <= 128) || code * s != w[i])
        throw Error("dyadic: " + lin.name() + ": weight (" + std::to_string(r) + ", " +
                    std::to_string(c) + ") = " + std::to_string(w[i]) +
                    " is not an integer times its row's scale");
      spec.weight_codes[i] = int8_t(code);
    }
  }
}

}  // namespace

MethodInfo dyadic_method() {
  MethodInfo m;
  m.name = "dyadic";
  m.summary =
      "integer-only Linears: int8 inputs x integer weights summed in int32, requantized by dyadic "
      "multipliers b/2^c with calibrated static scales (HAWQ-V3)";
  m.params = {
      {"out", MethodParam::Kind::Integer, 8, 2, 16, false, "bits of the requantized output codes"},
      {"emulate", MethodParam::Kind::Flag, 0, 0, 1, false,
       "run the float emulation of the same arithmetic instead (float32 products, "
       "rounding to the output grid)"}};
  m.needs_calibration = true;
  m.run = [](MethodRun&) {};  // everything happens on the quantized model
  m.after_quantization = [](MethodRun& r) {
    auto* decoder = dynamic_cast<model::Decoder*>(r.model.get());
    if (!decoder)
      throw Error("dyadic: calibrating the static scales runs a decoder; this " +
                  r.model->architecture() + " model is not one");
    const model::Sites sites = r.model->sites();
    std::vector<model::Linear*> targets;
    for (const model::LinearSite& site : sites.linears) {
      model::Linear& lin = *site.linear;
      if (!lin.weight_scheme()) continue;  // kept: stays a float product
      if (const std::string gap = integer_only_gap(lin); !gap.empty())
        throw Error("dyadic: " + lin.name() + " cannot run integer-only: " + gap +
                    "; keep it (an override with weights \"fp\") or change its schemes");
      targets.push_back(&lin);
    }
    if (targets.empty())
      throw Error("dyadic: no quantized Linear to run integer-only (give --w int8:channel)");

    RangeProbe probe;
    for (model::Linear* lin : targets) lin->set_probe(&probe);
    const std::vector<std::vector<int32_t>>& seqs = r.calibration->sequences;
    {
      const std::unique_ptr<model::Decoder::Pass> pass = decoder->pass(int(seqs.front().size()));
      for (size_t i = 0; i < seqs.size(); ++i) {
        pass->forward(seqs[i].data(), int(seqs[i].size()));
        if (r.progress) r.progress(int(i + 1), int(seqs.size()));
      }
    }
    for (model::Linear* lin : targets) lin->set_probe(nullptr);

    const int out_bits = r.integer("out");
    const bool emulate = r.flag("emulate");
    for (model::Linear* lin : targets) {
      const auto [x_max, y_max] = probe.ranges[lin];
      if (!(x_max > 0) || !(y_max > 0) || !std::isfinite(x_max) || !std::isfinite(y_max))
        throw Error("dyadic: " + lin->name() + " saw no nonzero finite input or output in the " +
                    "calibration data; no static scale can be set");
      model::IntegerLinearSpec spec;
      spec.out = lin->out_features();
      spec.in = lin->in_features();
      spec.weight_bits = lin->weight_scheme()->element.int_bits;
      spec.input_bits = lin->input_scheme()->element.int_bits;
      spec.output_bits = out_bits;
      spec.input_scale = x_max / float((1 << (spec.input_bits - 1)) - 1);
      spec.output_scale = y_max / float((1 << (out_bits - 1)) - 1);
      spec.bias = lin->bias();
      weight_codes_of(*lin, spec);
      try {
        lin->set_integer_only(std::make_shared<const model::IntegerLinear>(std::move(spec)),
                              emulate);
      } catch (const Error& e) {
        throw Error("dyadic: " + lin->name() + ": " + e.what());
      }
    }
  };
  return m;
}

}  // namespace lowbit::ptq
