// lowbit/ptq/dfq.h — the two methods of data-free quantization (Nagel et al. 2019):
// empirical bias correction (`biascorrect`) and cross-layer weight equalization (`equalize`).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "lowbit/model/sites.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/methods.h"

namespace lowbit::ptq {

// `base` with every quantized Linear's bias b replaced by b + (W − Q)·E[x]: Q the weight as the
// recipe will quantize it (`prequantized` where a method chose it, else round to nearest by
// `scheme_of`), E[x] the mean of the Linear's calibration inputs with the earlier blocks quantized
// and corrected. The weights stay full precision. Linears without a bias get one.
std::unique_ptr<model::Runtime> bias_correct_model(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const PrequantizedWeights& prequantized, const Calibration& calibration,
    const std::function<void(int, int)>& progress = {});

// `base` with every pair of a Linear whose outputs feed the next one's input channels
// elementwise (up_proj -> down_proj) equalized: producer row j / s_j, reader column j · s_j,
// s_j = sqrt(range of row j / range of column j). The function is unchanged.
std::unique_ptr<model::Runtime> equalize_model(const model::Runtime& base);

}  // namespace lowbit::ptq
