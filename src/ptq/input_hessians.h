// The calibration Hessians H = 2/N Σ xᵀx of the inputs of one block, one per input site (the
// Linears that read the same rows share it), gathered by a probe on each input's first reader.
#pragma once

#include <map>
#include <string>

#include <functional>
#include <vector>
#include "lowbit/model/sites.h"

#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/gptq.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/util/error.h"

namespace lowbit::ptq {

class InputHessians : public model::LinearProbe {
 public:
  // Attaches to the first reader of every input of block `layer` for which `wanted(input)` holds.
  template <class Wanted>
  InputHessians(const model::Sites& sites, int layer, Wanted wanted) {
    for (const model::InputSite& in : sites.inputs)
      if (in.layer == layer && wanted(in)) {
        model::Linear* first = in.readers.front();
        first->set_probe(this);
        input_of_[first] = in.id;
      }
  }
  ~InputHessians() override {
    for (const auto& [lin, id] : input_of_) lin->set_probe(nullptr);
  }
  InputHessians(const InputHessians&) = delete;
  InputHessians& operator=(const InputHessians&) = delete;

  void observe(const model::Linear& lin, const float* x, const float*, int n,
               const float*) override {
    const std::string& id = input_of_.at(const_cast<model::Linear*>(&lin));
    auto it = hessians_.find(id);
    if (it == hessians_.end()) it = hessians_.emplace(id, Hessian(lin.in_features())).first;
    it->second.add(x, n);
  }
  // The Hessian of `input` (lowbit::Error when that input was not observed).
  const Hessian& of(const std::string& input) const;

 private:
  std::map<model::Linear*, std::string> input_of_;
  std::map<std::string, Hessian> hessians_;
};

// Quantizes a model's weights block by block on calibration data (GPTQ, learned rounding): every
// Linear of block l that `scheme_of` gives a scheme is quantized by `quantize_one` with the
// Hessian of its calibration inputs — the blocks before it already quantized — and block l then
// runs quantized to give block l + 1 its inputs. Returns the results by site.
using QuantizeOne = std::function<PrequantizedWeight(const Scheme&, const model::Linear&,
                                                     const std::vector<double>& hessian)>;
PrequantizedWeights quantize_blockwise(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const Calibration& calibration, const QuantizeOne& quantize_one,
    const std::function<void(int, int)>& progress);

inline const Hessian& InputHessians::of(const std::string& input) const {
  const auto it = hessians_.find(input);
  if (it == hessians_.end()) throw Error("internal: no calibration inputs reached " + input);
  return it->second;
}

}  // namespace lowbit::ptq
