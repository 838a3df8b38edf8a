// Linear: y = x Wᵀ + b with OpenBLAS.
#include "lowbit/model/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <thread>

#include "lowbit/kernels/convert.h"
#include "lowbit/quant/packed_activation.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"

namespace lowbit::model {
namespace {
// Up to this many input rows, float32 products run as one sgemv per row (see forward()).
constexpr int kSgemvRows = 2;
}  // namespace

Linear::Linear(std::string name, int out_features, int in_features,
               std::shared_ptr<std::vector<float>> weight, std::vector<float> bias)
    : name_(std::move(name)),
      out_(out_features),
      in_(in_features),
      weight_(std::move(weight)),
      bias_(std::move(bias)) {
  if (!weight_ || weight_->size() != size_t(out_) * size_t(in_))
    throw Error("Linear '" + name_ + "': weight does not hold out x in = " + std::to_string(out_) +
                " x " + std::to_string(in_) + " values");
  if (!bias_.empty() && bias_.size() != size_t(out_))
    throw Error("Linear '" + name_ + "': bias has " + std::to_string(bias_.size()) +
                " values, expected " + std::to_string(out_));
}

Linear::Linear(std::string name, int out_features, int in_features,
               std::shared_ptr<const kernels::PackedMatrix> packed, std::vector<float> bias)
    : name_(std::move(name)), out_(out_features), in_(in_features), bias_(std::move(bias)) {
  if (!bias_.empty() && bias_.size() != size_t(out_))
    throw Error("Linear '" + name_ + "': bias has " + std::to_string(bias_.size()) +
                " values, expected " + std::to_string(out_));
  if (!packed || packed->rows != size_t(out_) || packed->cols != size_t(in_))
    throw Error("Linear '" + name_ + "': no packed weight of out x in = " + std::to_string(out_) +
                " x " + std::to_string(in_));
  packed_ = std::move(packed);
}

void Linear::forward(const float* x, int n, float* y) const {
  if (n <= 0) return;
  if (products_ && (packed_ || accumulation_))
    throw Error("Linear '" + name_ + "': L-Mul products are emulated on the float32 weight" +
                (packed_ ? " (run with --exec emulate)" : ", without an accumulator emulation"));
  // One buffer per thread: forwards of different Linears never overlap on one thread.
  thread_local std::vector<float> rotated_input, quantized_input;
  if (input_transform_) {
    rotated_input.assign(x, x + size_t(n) * size_t(in_));
    input_transform_->apply(rotated_input.data(), size_t(n));
    x = rotated_input.data();
  }
  if (integer_) {
    if (integer_emulated_)
      integer_->emulate(x, n, y);
    else
      integer_->forward(x, n, y);
    if (probe_) probe_->observe(*this, x, x, n, y);
    return;
  }
  // Quantized activations on the kernels that take them (W8A8, W4A8, W4A4, FP8) for decode
  // batches, and W8A8 int8 prefill where the CPU has VNNI (kernels::MatmulBackend::gemm_i8: exact
  // integer sums). Other prefill (more rows) runs the decoded-tile sgemm on the fake-quantized
  // activations: the same products, summed as emulation sums them. Summing in another order moves
  // activations that sit near a rounding midpoint of a later quantizer across it, which changes a
  // quantized-activation model's output far more than the order itself (docs/kernels.md measures
  // it: FP8 activations 0.06-0.3 % of SmolLM2's perplexity, W8A8 int8 0.4 %).
  const bool integer_prefill = packed_ && input_scheme_ &&
                               kernels::takes_int8_activations(*packed_) &&
                               kernels::default_matmul_backend().gemm_i8 &&
                               activation_coding(*input_scheme_) == ActivationCoding::IntRows;
  if (packed_ && input_scheme_ && (size_t(n) <= kernels::kMaxGemvRows || integer_prefill)) {
    forward_quantized_activations(x, n, y);
    return;
  }
  const float* xq = x;
  if (input_scheme_) {
    quantized_input.resize(size_t(n) * size_t(in_));
    fake_quant(*input_scheme_, x, {size_t(n), size_t(in_)}, quantized_input.data());
    xq = quantized_input.data();
  }
  if (products_) {
    lmul_gemm(n, out_, in_, 1.0f, xq, in_, weight_->data(), in_, true, y, out_,
              products_->mantissa);
  } else if (packed_) {
    kernels::matmul(*packed_, xq, size_t(n), y);
  } else if (accumulation_) {
    multiply_accumulating(xq, n, y);
  } else if (n <= kSgemvRows) {
    // OpenBLAS's sgemm repacks the whole weight on every call, which for a decode step costs
    // several times the product itself; sgemv streams the weight once per input row.
    for (int r = 0; r < n; ++r)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, out_, in_, 1.0f, weight_->data(), in_,
                  xq + size_t(r) * size_t(in_), 1, 0.0f, y + size_t(r) * size_t(out_), 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_, in_, 1.0f, xq, in_,
                weight_->data(), in_, 0.0f, y, out_);
  }
  add_low_rank(xq, n, y);
  add_bias(n, y);
  if (probe_) probe_->observe(*this, x, xq, n, y);
}

// Real execution with an input scheme: the activations quantized (the codes fake_quant rounds
// them to), multiplied with the packed weight as their coding says, the scales applied to the
// sums. Bias and probe as forward().
void Linear::forward_quantized_activations(const float* x, int n, float* y) const {
  const QTensor q = quantize(*input_scheme_, x, {size_t(n), size_t(in_)});
  const PackedActivations a = pack_activations(q);
  const kernels::PackedMatrix& w = *packed_;
  switch (a.coding) {
    case ActivationCoding::IntRows:
      if (kernels::takes_int8_activations(w))
        kernels::matmul_w8a8(w, a.levels.data(), a.row_scales.data(), size_t(n), y);
      else
        kernels::matmul_w4a8(w, a.levels.data(), a.row_scales.data(), size_t(n), y);
      break;
    case ActivationCoding::IntBlocks:
      kernels::matmul_w4a4(w, a.levels.data(), a.block_scales.data(), size_t(n), y);
      break;
    case ActivationCoding::FloatRows:
      // Float products of the unscaled codes, the activation's scale after the sum (as an FP8
      // GEMM applies it).
      kernels::matmul(w, a.values.data(), size_t(n), y);
      for (int r = 0; r < n; ++r)
        for (int c = 0; c < out_; ++c)
          y[size_t(r) * size_t(out_) + size_t(c)] *= a.row_scales[size_t(r)];
      break;
  }
  std::vector<float> xq;  // what was multiplied, for the low-rank term and the probe
  if (probe_ || low_rank_) {
    xq.resize(size_t(n) * size_t(in_));
    dequantize(q, xq.data());
    add_low_rank(xq.data(), n, y);
  }
  add_bias(n, y);
  if (probe_) probe_->observe(*this, x, xq.data(), n, y);
}

void Linear::set_low_rank(std::shared_ptr<const LowRank> l) {
  if (l && (l->rank < 1 || l->u.size() != size_t(out_) * size_t(l->rank) ||
            l->v.size() != size_t(in_) * size_t(l->rank)))
    throw Error("Linear '" + name_ + "': low-rank factors do not match [out, rank] and [in, rank]");
  low_rank_ = std::move(l);
}

// y += (xq·V)·Uᵀ on the same (quantized) input the main product took.
void Linear::add_low_rank(const float* xq, int n, float* y) const {
  if (!low_rank_) return;
  const int r = low_rank_->rank;
  thread_local std::vector<float> t;
  t.resize(size_t(n) * size_t(r));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, r, in_, 1.0f, xq, in_,
              low_rank_->v.data(), r, 0.0f, t.data(), r);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_, r, 1.0f, t.data(), r,
              low_rank_->u.data(), r, 1.0f, y, out_);
}

void Linear::add_bias(int n, float* y) const {
  if (bias_.empty()) return;
  for (int r = 0; r < n; ++r) {
    float* row = y + size_t(r) * size_t(out_);
    for (int c = 0; c < out_; ++c) row[c] += bias_[size_t(c)];
  }
}

// Splits the reduction into slices of `every` columns: each slice's products are one sgemm
// (float32 sums of `every` products), added to the running total, which is then rounded onto the
// accumulator format. The addition itself is float32, so a total is rounded twice (to float32,
// then to the format); for formats of 16 bits or fewer this differs from one exact rounding only
// when the float32 sum lands exactly on a midpoint of the narrow format.
void Linear::multiply_accumulating(const float* x, int n, float* y) const {
  const Accumulation& a = *accumulation_;
  const size_t count = size_t(n) * size_t(out_);
  thread_local std::vector<float> slice;
  slice.resize(count);
  std::fill_n(y, count, 0.0f);
  for (int k0 = 0; k0 < in_; k0 += a.every) {
    const int k = std::min(a.every, in_ - k0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_, k, 1.0f, x + k0, in_,
                weight_->data() + k0, in_, 0.0f, slice.data(), out_);
    for (size_t i = 0; i < count; ++i) y[i] += slice[i];
    lowbit::fake_quant(a.format, y, count, y,
                       RoundOptions{RoundMode::NearestEven, Overflow::Default, 0});
  }
}

const std::vector<float>& Linear::weight() const {
  if (!weight_)
    throw Error("Linear '" + name_ + "': its float32 weight was released when it was packed (" +
                packed_->scheme + "); read the packed weight, or keep execution emulated");
  return *weight_;
}

void Linear::set_packed_weight(std::shared_ptr<const kernels::PackedMatrix> packed) {
  if (!packed) {
    if (!weight_) throw Error("Linear '" + name_ + "': no float32 weight to go back to");
    packed_.reset();
    return;
  }
  if (packed->rows != size_t(out_) || packed->cols != size_t(in_))
    throw Error("Linear '" + name_ + "': a packed weight of " + std::to_string(packed->rows) +
                " x " + std::to_string(packed->cols) + " for " + std::to_string(out_) + " x " +
                std::to_string(in_));
  if (accumulation_)
    throw Error("Linear '" + name_ + "': the accumulator emulation needs the float32 weight");
  packed_ = std::move(packed);
  weight_.reset();
  weight_codes_.reset();  // the packed weight holds them now
}

size_t Linear::weight_bytes() const {
  return packed_ ? packed_->bytes() : size_t(out_) * size_t(in_) * sizeof(float);
}

void Linear::set_input_transform(std::shared_ptr<const RowTransform> t) {
  if (t && t->size() != in_)
    throw Error("Linear '" + name_ + "': an input transform of size " + std::to_string(t->size()) +
                " for " + std::to_string(in_) + " inputs");
  input_transform_ = std::move(t);
}

void Linear::set_accumulation(std::optional<Accumulation> a) {
  if (a && packed_)
    throw Error("Linear '" + name_ + "': the accumulator emulation needs the float32 weight");
  if (a && (a->every < 1 || a->format.kind != FormatKind::Float))
    throw Error("Linear '" + name_ +
                "': an accumulator needs a floating-point format and every >= 1");
  accumulation_ = std::move(a);
}

void Linear::set_weight(std::vector<float> weight) {
  if (weight.size() != size_t(out_) * size_t(in_))
    throw Error("Linear '" + name_ + "': replacement weight has the wrong size");
  weight_ = std::make_shared<std::vector<float>>(std::move(weight));
  packed_.reset();
}

void Linear::set_bias(std::vector<float> bias) {
  if (!bias.empty() && bias.size() != size_t(out_))
    throw Error("Linear '" + name_ + "': bias has " + std::to_string(bias.size()) +
                " values, expected " + std::to_string(out_));
  bias_ = std::move(bias);
}

void Linear::set_weight_shared(std::shared_ptr<std::vector<float>> weight) {
  if (!weight || weight->size() != size_t(out_) * size_t(in_))
    throw Error("Linear '" + name_ + "': replacement weight has the wrong size");
  weight_ = std::move(weight);
  packed_.reset();
}

int max_threads() {
  return std::max(1, int(std::thread::hardware_concurrency()));
}

void set_num_threads(int threads) {
  // More threads than hardware threads is never faster here, and absurd counts crash libgomp.
  if (threads < 0 || threads > max_threads())
    throw Error("threads: " + std::to_string(threads) + " is outside 0 .. " +
                std::to_string(max_threads()) + " (0 means all " + std::to_string(max_threads()) +
                " hardware threads of this machine)");
  if (threads == 0) threads = max_threads();
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
}

}  // namespace lowbit::model
