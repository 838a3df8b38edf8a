// The bitswitch method: every quantized Linear's weight derived from one stored set of wider
// integer codes (lowbit/quant/bit_switching.h), instead of rounded to its scheme directly — what a
// model that switches widths at run time from one stored copy computes at that width.
#include "lowbit/quant/bit_switching.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {

MethodInfo bit_switch_method() {
  MethodInfo m;
  m.name = "bitswitch";
  m.summary =
      "bit switching: weights derived from one stored set of wider integer codes with nested "
      "scales (Double Rounding; Nearly Lossless Adaptive Bit Switching)";
  m.params = {{"from", MethodParam::Kind::Integer, 8, 2, 8, false, "stored width B of the codes"},
              {"anchor", MethodParam::Kind::Integer, 0, 0, 8, false,
               "width whose grid the stored scale fits by absmax (0: the stored width B)"}};
  m.chooses_weights = true;
  m.run = [](MethodRun& r) {
    const int from = r.integer("from"), anchor = r.integer("anchor") ? r.integer("anchor") : from;
    if (anchor > from)
      throw Error("bitswitch: anchor " + std::to_string(anchor) + " is wider than the stored " +
                  std::to_string(from) + " bits");
    const model::Sites sites = r.model->sites();
    int done = 0;
    for (const model::LinearSite& site : sites.linears) {
      const model::Linear& lin = *site.linear;
      const MaybeScheme scheme = r.scheme_of(lin.name());
      if (r.progress) r.progress(++done, int(sites.linears.size()));
      if (!scheme) continue;
      const size_t rows = size_t(lin.out_features()), cols = size_t(lin.in_features());
      int group = 0;
      try {
        group = nested_group_of(*scheme, rows, cols);
      } catch (const Error& e) {
        throw Error("bitswitch: " + lin.name() + ": " + e.what());
      }
      const int bits = scheme->element.int_bits;
      if (bits > from)
        throw Error("bitswitch: " + lin.name() + " is in " + std::to_string(bits) +
                    " bits, wider than the stored " + std::to_string(from));
      const NestedIntWeights stored =
          nest_weights(lin.weight().data(), rows, cols, from, std::min(anchor, from), group);
      auto codes = std::make_shared<QTensor>();
      PrequantizedWeight w;
      w.values = derive_weights(stored, bits, codes.get(), &*scheme);
      w.codes = std::move(codes);
      r.prequantized[lin.name()] = std::move(w);
    }
  };
  return m;
}

}  // namespace lowbit::ptq
