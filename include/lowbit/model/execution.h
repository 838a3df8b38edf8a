// lowbit/model/execution.h — emulated or real execution of a quantized model. Emulation runs
// every product in float32 on fake-quantized weights (the definition of what a recipe computes);
// real execution packs each Linear's weight in its scheme and runs the packed-weight kernels,
// which differ from emulation only in the order of the float32 sums.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/sites.h"

namespace lowbit::model {

enum class Execution {
  Emulate,  // float32 products on fake-quantized weights
  Real,     // packed weights and kernels at every quantized site, else an error naming the site
  Auto,     // real where a kernel exists, emulated elsewhere (the plan says where and why)
};

Execution parse_execution(std::string_view text);  // "emulate", "real", "auto"
const char* execution_name(Execution e);

struct ExecutionPlan {
  Execution mode = Execution::Emulate;
  int packed = 0;                     // Linears running packed kernels
  int float32 = 0;                    // Linears with a kept (unquantized) weight: float32 products
  std::vector<std::string> emulated;  // "site: why" for each quantized Linear left emulated
  size_t weight_bytes = 0;            // bytes of every Linear's weight as stored now
  bool embedding_released = false;    // the float32 table freed: rows come from the packed head

  // One line for the log: "real: 211 Linears packed (62.1 MiB of weights), ...".
  std::string summary() const;
};

// Why a Linear with weights in `w` ([rows, cols]), activations in `a` and (or not) an accumulator
// emulation cannot run on the packed kernels, or "" when it can.
std::string execution_gap(const Scheme& w, const std::optional<Scheme>& a, bool accumulation,
                          size_t rows, size_t cols);

// Packs the weight of every Linear (block Linears and the head) whose weight lies on a scheme
// (Linear::weight_scheme) and that a kernel can run: weights in a scheme packed_kernel_gap takes,
// with no input scheme, float activations (FP8: any packed weight), or integer activations on
// the integer kernels (W8A8 int8, W4A8, W4A4); accumulator emulation has no kernel.
// Real throws lowbit::Error naming the first such site and what would run; Auto leaves them
// emulated; Emulate changes nothing. A weight that does not re-quantize to itself exactly (a
// method chose scales the scheme's rule would not) is treated the same way.
ExecutionPlan prepare_execution(Runtime& model, Execution mode);

}  // namespace lowbit::model
