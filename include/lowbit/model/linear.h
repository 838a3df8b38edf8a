// lowbit/model/linear.h — the one place a model multiplies by a weight matrix. Every matrix product
// of the transformer runtimes goes through a Linear, so quantized weights and activation quantizers
// are swapped in here and nowhere else.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/model/integer_linear.h"
#include "lowbit/model/lmul.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::model {

// Emulation of a narrow matrix-product accumulator: the products of each output are summed
// `every` at a time in float32, and the running total is rounded onto `format` (nearest even)
// after each such partial sum is added. every = 1 rounds after every product.
struct Accumulation {
  Format format;
  int every = 1;
};

class Linear;

// A low-rank term added to a Linear's product, y += (x·V)·Uᵀ (LoRC: the quantization error
// W − Q(W) approximated by U·Vᵀ), its factors already rounded to their storage format.
struct LowRank {
  int rank = 0;
  std::vector<float> u;       // [out, rank]
  std::vector<float> v;       // [in, rank]
  double storage_bits = 0;    // what storing both factors (and their scales) costs
  std::string factor_format;  // how they are stored, for reports ("bf16", "e4m3fn:channel")
};

// An orthogonal transform applied to each row of an activation at run time (the online
// rotations of rotation-based quantization, e.g. a Hadamard transform before down_proj).
class RowTransform {
 public:
  virtual ~RowTransform() = default;
  virtual int size() const = 0;
  virtual void apply(float* x, size_t rows) const = 0;
};

// Sees every forward of the Linears it is attached to (per-layer statistics). `x` is the input
// as given, `xq` what was multiplied (x itself when the input is not quantized), y the output.
class LinearProbe {
 public:
  virtual ~LinearProbe() = default;
  virtual void observe(const Linear& linear, const float* x, const float* xq, int n,
                       const float* y) = 0;
};

class Linear {
 public:
  Linear() = default;
  // weight: [out, in] row-major (as PyTorch and GGUF store it); bias: empty or [out].
  Linear(std::string name, int out_features, int in_features,
         std::shared_ptr<std::vector<float>> weight, std::vector<float> bias = {});
  // A weight held packed from the start (a bf16 / f16 file's weights), with no float32 copy.
  Linear(std::string name, int out_features, int in_features,
         std::shared_ptr<const kernels::PackedMatrix> packed, std::vector<float> bias = {});

  // y[n, out] = x[n, in] · weightᵀ + bias: OpenBLAS on the float32 weight, or the packed-weight
  // kernels (lowbit/kernels/matmul.h) once the weight is packed. With an input scheme, x is
  // fake-quantized first (the whole [n, in] tensor, as a kernel quantizing its activations on the
  // fly would); with an accumulation, the product is summed as Accumulation says.
  void forward(const float* x, int n, float* y) const;

  // An online rotation of the input, applied before the input scheme (the weight must have been
  // rotated to match: W Qᵀ... see ptq/rotate).
  void set_input_transform(std::shared_ptr<const RowTransform> t);
  const std::shared_ptr<const RowTransform>& input_transform() const { return input_transform_; }
  // Run-time emulation (the weight itself is quantized once, by whoever sets it).
  void set_input_scheme(std::optional<Scheme> s) { input_scheme_ = std::move(s); }
  const std::optional<Scheme>& input_scheme() const { return input_scheme_; }
  void set_accumulation(std::optional<Accumulation> a);
  const std::optional<Accumulation>& accumulation() const { return accumulation_; }
  // Products approximated by L-Mul (lowbit/model/lmul.h) instead of multiplied: emulated on the
  // float32 weight (a packed weight or an accumulator emulation is an error in forward()).
  void set_products(std::optional<LMul> p) { products_ = p; }
  const std::optional<LMul>& products() const { return products_; }
  // A low-rank correction added to every product (nullptr: none).
  void set_low_rank(std::shared_ptr<const LowRank> l);
  const std::shared_ptr<const LowRank>& low_rank() const { return low_rank_; }
  // Not owned; nullptr detaches.
  // Integer-only execution (HAWQ-V3, lowbit/model/integer_linear.h): forward() runs `l` on the
  // (transformed) input instead of the float product, its float emulation when `emulated`; the
  // input scheme, bias and weight above are then only what the report shows. nullptr: back to the
  // float product.
  void set_integer_only(std::shared_ptr<const IntegerLinear> l, bool emulated = false) {
    integer_ = std::move(l);
    integer_emulated_ = emulated;
  }
  const std::shared_ptr<const IntegerLinear>& integer_only() const { return integer_; }
  bool integer_only_emulated() const { return integer_emulated_; }

  void set_probe(LinearProbe* probe) { probe_ = probe; }

  const std::string& name() const { return name_; }
  int in_features() const { return in_; }
  int out_features() const { return out_; }
  // The float32 weight; a lowbit::Error once it was dropped for a packed one (set_packed_weight).
  const std::vector<float>& weight() const;
  const std::vector<float>& bias() const { return bias_; }
  const std::shared_ptr<std::vector<float>>& weight_ptr() const { return weight_; }
  // Replaces the weight (same shape); a tied weight stops being shared.
  void set_weight(std::vector<float> weight);
  void set_weight_shared(std::shared_ptr<std::vector<float>> weight);
  // Replaces the bias (empty, or out_features values).
  void set_bias(std::vector<float> bias);
  // The scheme the weight's values lie on (set by ptq::apply_recipe; nullopt: kept as it was).
  // Two-level schemes (NVFP4) also record the per-tensor scale, which the quantized values alone
  // do not determine.
  // `codes`, when given, is the weight quantized (dequantize(*codes) == weight()): what real
  // execution packs, since some schemes' scales (asymmetric ranges) cannot be recovered from the
  // quantized values alone.
  void set_weight_scheme(std::optional<Scheme> s, float global_scale = 1.0f,
                         std::shared_ptr<const QTensor> codes = nullptr) {
    weight_scheme_ = std::move(s);
    weight_global_scale_ = global_scale;
    weight_codes_ = std::move(codes);
  }
  const std::shared_ptr<const QTensor>& weight_codes() const { return weight_codes_; }
  const std::optional<Scheme>& weight_scheme() const { return weight_scheme_; }
  float weight_global_scale() const { return weight_global_scale_; }
  // Real execution: forward() runs the packed kernels on this weight, which must decode to the
  // float32 weight exactly; the float32 copy is released (other holders of a shared weight keep
  // theirs). nullptr goes back to the float32 weight, if it was kept.
  void set_packed_weight(std::shared_ptr<const kernels::PackedMatrix> packed);
  const std::shared_ptr<const kernels::PackedMatrix>& packed_weight() const { return packed_; }
  // Bytes the weight occupies as stored now (packed, or float32).
  size_t weight_bytes() const;
  // Multiply-adds one forward performs per input row.
  double flops_per_row() const { return 2.0 * in_ * out_; }

 private:
  std::string name_;
  int out_ = 0, in_ = 0;
  std::shared_ptr<std::vector<float>> weight_;
  std::vector<float> bias_;
  std::shared_ptr<const RowTransform> input_transform_;
  std::optional<Scheme> input_scheme_;
  std::optional<Accumulation> accumulation_;
  std::optional<LMul> products_;
  std::shared_ptr<const LowRank> low_rank_;
  std::optional<Scheme> weight_scheme_;
  float weight_global_scale_ = 1.0f;
  std::shared_ptr<const QTensor> weight_codes_;
  std::shared_ptr<const kernels::PackedMatrix> packed_;
  std::shared_ptr<const IntegerLinear> integer_;
  bool integer_emulated_ = false;
  LinearProbe* probe_ = nullptr;

  void multiply_accumulating(const float* x, int n, float* y) const;
  void forward_quantized_activations(const float* x, int n, float* y) const;
  void add_bias(int n, float* y) const;
  void add_low_rank(const float* xq, int n, float* y) const;
};

// Sets the threads OpenBLAS and the runtimes' own OpenMP loops use (0: all cores).
// Threads for OpenBLAS and OpenMP: 1 .. max_threads(), or 0 for all of them; anything else is a
// lowbit::Error (more threads than the hardware has is never faster, and huge counts crash
// libgomp).
void set_num_threads(int threads);
int max_threads();  // the machine's hardware threads (at least 1)

}  // namespace lowbit::model
