// Real execution: every quantized Linear's weight packed for the kernels (lowbit/execution.h).
#include "lowbit/model/execution.h"

#include <cstring>
#include <memory>

#include "lowbit/quant/packed_activation.h"
#include "lowbit/quant/packed_weight.h"
#include "lowbit/util/error.h"

namespace lowbit::model {

Execution parse_execution(std::string_view text) {
  if (text == "emulate") return Execution::Emulate;
  if (text == "real") return Execution::Real;
  if (text == "auto") return Execution::Auto;
  throw Error("execution \"" + std::string(text) +
              "\": expected emulate (float32 on fake-quantized weights), real (packed kernels "
              "everywhere) or auto (real where a kernel exists)");
}

const char* execution_name(Execution e) {
  switch (e) {
    case Execution::Emulate:
      return "emulate";
    case Execution::Real:
      return "real";
    case Execution::Auto:
      return "auto";
  }
  return "?";
}

std::string ExecutionPlan::summary() const {
  char buf[160];
  std::snprintf(
      buf, sizeof buf, "%s: %d Linears packed, %d float32, %zu emulated; %.1f MiB of weights",
      execution_name(mode), packed, float32, emulated.size(), double(weight_bytes) / (1 << 20));
  std::string s = buf;
  if (embedding_released) s += "; embedding rows read from the packed head";
  for (const std::string& e : emulated) s += "\n  emulated " + e;
  return s;
}

std::string execution_gap(const Scheme& w, const std::optional<Scheme>& a, bool accumulation,
                          size_t rows, size_t cols) {
  if (accumulation) return "the narrow-accumulator emulation has no kernel";
  const std::string gap = packed_kernel_gap(w, rows, cols);
  if (!gap.empty()) return "weights " + scheme_name(w) + ": " + gap;
  if (!a) return "";
  if (const std::string agap = activation_kernel_gap(*a); !agap.empty()) return agap;
  // FP8-style activations (float codes, a scale per row) multiply any packed weight.
  if (activation_coding(*a) == ActivationCoding::FloatRows) return "";
  const bool int8_weights =
      w.element == formats::int8 && !w.asymmetric &&
      (w.granularity == Granularity::Channel || w.granularity == Granularity::Tensor) &&
      w.axis == 0;
  // Symmetric 4-bit weights whose values are integers times a power of two (int4, e2m1: fp4,
  // mxfp4, nvfp4) take integer activations with a scale per row (W4A8) or per block (W4A4).
  const bool int4_weights = !w.asymmetric && w.element.bits() <= 4 &&
                            (w.element == formats::e2m1fn || w.element.kind == FormatKind::Int);
  if (int4_weights) return "";
  if (int8_weights && activation_coding(*a) == ActivationCoding::IntRows) return "";
  return "its activations are integer (" + scheme_name(*a) + ") and the integer kernels take " +
         "int8:channel weights with int8:token / int8:tensor activations (W8A8), or int4 / e2m1 " +
         "weights (int4:g32, mxfp4, nvfp4) with per-token or block-scaled activations (W4A8, "
         "W4A4); float activations (e4m3fn:token) multiply any packed weight";
}

namespace {

// Why this Linear cannot run packed, or "".
std::string kernel_gap(const Linear& lin) {
  return execution_gap(*lin.weight_scheme(), lin.input_scheme(), lin.accumulation().has_value(),
                       size_t(lin.out_features()), size_t(lin.in_features()));
}

// The packed weight, or "" in `why` when the weight does not re-quantize to itself.
std::shared_ptr<const kernels::PackedMatrix> pack(const Linear& lin, std::string& why) {
  const Scheme& s = *lin.weight_scheme();
  const std::vector<float>& w = lin.weight();
  if (const std::shared_ptr<const QTensor>& codes = lin.weight_codes())
    return std::make_shared<const kernels::PackedMatrix>(pack_weight(*codes));
  // Without the codes (a method such as GPTQ quantized it), re-quantize the values, which gives
  // them back exactly when the scheme's rule finds the same scales.
  const std::optional<QTensor> q =
      requantize_exactly(s, w.data(), {size_t(lin.out_features()), size_t(lin.in_features())},
                         lin.weight_global_scale());
  if (!q) {
    why = "its weights do not re-quantize to themselves in " + scheme_name(s) +
          " (a method chose scales the scheme's rule would not, and did not keep its codes)";
    return nullptr;
  }
  return std::make_shared<const kernels::PackedMatrix>(pack_weight(*q));
}

}  // namespace

ExecutionPlan prepare_execution(Runtime& model, Execution mode) {
  ExecutionPlan plan;
  plan.mode = mode;
  const Sites sites = model.sites();
  std::vector<Linear*> linears;
  for (const LinearSite& site : sites.linears) linears.push_back(site.linear);
  if (sites.head) linears.push_back(sites.head);
  // The tied head holds the embedding's own values (quantized alike, or both kept): once it is
  // packed, the runtime can read embedding rows from it and the float32 table can go.
  const bool head_is_table = sites.head && sites.head_tied && sites.embedding_reads_packed_head &&
                             sites.embedding.values && *sites.embedding.values &&
                             sites.head->weight_ptr() == *sites.embedding.values;
  for (Linear* lin : linears) {
    if (mode != Execution::Emulate && lin->weight_scheme() && !lin->packed_weight()) {
      std::string why = kernel_gap(*lin);
      std::shared_ptr<const kernels::PackedMatrix> packed;
      if (why.empty()) packed = pack(*lin, why);
      if (packed) {
        lin->set_packed_weight(std::move(packed));
      } else if (mode == Execution::Real) {
        throw Error("real execution: " + lin->name() + ": " + why +
                    " (auto execution runs such sites emulated)");
      } else {
        plan.emulated.push_back(lin->name() + ": " + why);
      }
    }
    if (lin->packed_weight())
      ++plan.packed;
    else if (!lin->weight_scheme())
      ++plan.float32;
    plan.weight_bytes += lin->weight_bytes();
  }
  if (head_is_table && sites.head->packed_weight()) {
    sites.embedding.values->reset();
    plan.embedding_released = true;
  }
  return plan;
}

}  // namespace lowbit::model
