// GPTQ with any lowbit scheme as the quantizer; Cholesky factorisations by Eigen, the lazy batch
// updates by OpenBLAS.
#include "lowbit/ptq/gptq.h"

#include <cblas.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "ptq/input_hessians.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

using MatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// How many consecutive columns (along `in`) share scales, for a [out, in] weight: the group is
// fixed when its first column is reached. `in` means "the whole row or tensor at once".
int scale_width(const Scheme& s, int in) {
  const int rank = 2;
  const int axis = s.axis < 0 ? s.axis + rank : s.axis;
  switch (s.granularity) {
    case Granularity::Group:
      return axis == 1 ? std::min(s.group, in) : 1;
    case Granularity::Block2D:
      return std::min(s.block_cols, in);
    case Granularity::Channel:
      return axis == 1 ? 1 : in;
    case Granularity::Tensor:
    case Granularity::Token:
      return in;
  }
  return in;
}

// Scales (and zero points) for columns [c0, c0 + width) of w, fixed from w's current values.
struct ColumnScales {
  std::vector<float> scale;      // [width][out] (column-major: one column's rows together)
  std::vector<uint32_t> stored;  // same: the stored scale code each effective scale comes from
  std::vector<uint8_t> zero;     // same, asymmetric schemes
};

ColumnScales fix_scales(const Scheme& s, const std::vector<float>& w, int out, int in, int c0,
                        int width, float global) {
  std::vector<float> block(size_t(out) * size_t(width));
  for (int r = 0; r < out; ++r)
    std::copy_n(w.begin() + int64_t(r) * in + c0, width, block.begin() + int64_t(r) * width);
  const QTensor q = quantize(s, block.data(), {size_t(out), size_t(width)}, global);
  // QTensor::group_scale decodes one stored scale per call: decode each group's once.
  std::vector<float> group_scales(q.scales.size());
  for (size_t g = 0; g < group_scales.size(); ++g) group_scales[g] = q.group_scale(g);
  ColumnScales cs;
  cs.scale.resize(block.size());
  cs.stored.resize(block.size());
  if (s.asymmetric) cs.zero.resize(block.size());
  for (int c = 0; c < width; ++c)
    for (int r = 0; r < out; ++r) {
      const size_t g = quant::matrix_group_of(s, size_t(r), size_t(c), size_t(out), size_t(width));
      if (g >= q.scales.size())
        throw Error("internal: GPTQ group index out of range for scheme " + scheme_name(s));
      cs.scale[size_t(c) * size_t(out) + size_t(r)] = group_scales[g];
      cs.stored[size_t(c) * size_t(out) + size_t(r)] = q.scales[g];
      if (s.asymmetric) cs.zero[size_t(c) * size_t(out) + size_t(r)] = q.zero_points[g];
    }
  return cs;
}

// The scheme GPTQ rounds with: the scheme itself, or for a ggml_* block type the lowbit scheme on
// the same grid (ggml's scale rules choose a block's scale for round to nearest; GPTQ fixes each
// block's scale by lowbit's absmax rule instead and keeps to the type's levels and scale format,
// so its results export to that type).
Scheme gptq_grid(const Scheme& s, int in) {
  if (!s.ggml) return s;
  if (std::optional<Scheme> grid = ggml_lowbit_grid(s, size_t(in))) return *grid;
  throw Error(scheme_name(s) + ": GPTQ has no grid for GGML type " +
              ggml_type_info(uint32_t(ggml_storage_type(s, size_t(in))))->name +
              " yet (its scales and minimums are fitted inside the quantizer); use ggml_q4_0, "
              "ggml_q5_0, ggml_q8_0, ggml_mxfp4 or ggml_nvfp4, or round to nearest");
}

}  // namespace

Hessian::Hessian(int n)
    : n_(n), sum_(size_t(n) * size_t(n), 0.0), chunk_(size_t(n) * size_t(n), 0.0f) {}

void Hessian::add(const float* x, int rows) {
  if (rows <= 0) return;
  // One float syrk per batch (exact enough for a batch), summed into doubles across batches.
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n_, rows, 1.0f, x, n_, 0.0f, chunk_.data(),
              n_);
  for (int i = 0; i < n_; ++i)
    for (int j = i; j < n_; ++j)
      sum_[size_t(i) * size_t(n_) + size_t(j)] += chunk_[size_t(i) * size_t(n_) + size_t(j)];
  samples_ += rows;
}

std::vector<double> Hessian::matrix() const {
  std::vector<double> h(sum_.size());
  const double k = samples_ > 0 ? 2.0 / double(samples_) : 0.0;
  for (int i = 0; i < n_; ++i)
    for (int j = i; j < n_; ++j)
      h[size_t(i) * size_t(n_) + size_t(j)] = h[size_t(j) * size_t(n_) + size_t(i)] =
          k * sum_[size_t(i) * size_t(n_) + size_t(j)];
  return h;
}

std::vector<float> gptq_quantize(const Scheme& requested, const std::vector<float>& w_in, int out,
                                 int in, const std::vector<double>& h_in, const GptqOptions& opt,
                                 QTensor* codes) {
  validate_scheme(requested);
  const Scheme scheme = gptq_grid(requested, in);
  if (w_in.size() != size_t(out) * size_t(in) || h_in.size() != size_t(in) * size_t(in))
    throw Error("gptq: weight and Hessian shapes do not match");
  const float global = tensor_global_scale(scheme, w_in.data(), w_in.size());
  std::vector<float> w = w_in;
  MatrixXd h = Eigen::Map<const MatrixXd>(h_in.data(), in, in);
  // Inputs that never fired carry no information: their weights are free (zeroed, as GPTQ does).
  for (int i = 0; i < in; ++i)
    if (h(i, i) == 0) {
      h(i, i) = 1;
      for (int r = 0; r < out; ++r) w[size_t(r) * size_t(in) + size_t(i)] = 0;
    }
  std::vector<int> perm(static_cast<size_t>(in));
  std::iota(perm.begin(), perm.end(), 0);
  const int width = scale_width(scheme, in);
  const bool static_scales = opt.act_order && width < in;
  ColumnScales fixed;  // static scales for act-order: from the original weights
  if (static_scales) fixed = fix_scales(scheme, w, out, in, 0, in, global);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) { return h(a, a) > h(b, b); });
    MatrixXd hp(in, in);
    for (int i = 0; i < in; ++i)
      for (int j = 0; j < in; ++j) hp(i, j) = h(perm[size_t(i)], perm[size_t(j)]);
    h = hp;
  }
  // U = the upper Cholesky factor of H⁻¹ (after damping); raise the damping if H is singular.
  const double mean_diag = h.diagonal().mean();
  MatrixXd u;
  for (double damp = opt.damp;; damp *= 10) {
    MatrixXd hd = h;
    hd.diagonal().array() += damp * mean_diag;
    Eigen::LLT<MatrixXd> llt(hd);
    if (llt.info() == Eigen::Success) {
      const MatrixXd hinv = llt.solve(MatrixXd::Identity(in, in));
      Eigen::LLT<MatrixXd> llt_inv(hinv);
      if (llt_inv.info() == Eigen::Success) {
        u = llt_inv.matrixU();
        break;
      }
    }
    if (damp > 1e3)
      throw Error("gptq: the calibration Hessian is not positive definite even with damping " +
                  std::to_string(damp));
  }
  // Work on the permuted columns: wp[r][i] = w[r][perm[i]].
  std::vector<float> wp(w.size());
  for (int r = 0; r < out; ++r)
    for (int i = 0; i < in; ++i)
      wp[size_t(r) * size_t(in) + size_t(i)] = w[size_t(r) * size_t(in) + size_t(perm[size_t(i)])];
  std::vector<float> uf(size_t(in) * size_t(in));
  for (int i = 0; i < in; ++i)
    for (int j = 0; j < in; ++j) uf[size_t(i) * size_t(in) + size_t(j)] = float(u(i, j));

  int block = std::max(1, opt.block);
  if (!static_scales && width < in)
    block = (block + width - 1) / width * width;  // a group never spans two batches
  std::vector<float> q(w.size()), col(static_cast<size_t>(out)), qcol(static_cast<size_t>(out)),
      err(size_t(out) * size_t(block));
  ColumnScales current;
  int current_start = -1;
  // The stored scale (and zero point) each element was rounded with, by original position.
  std::vector<uint32_t> stored_at(codes ? w.size() : 0);
  std::vector<uint8_t> zero_at(codes && scheme.asymmetric ? w.size() : 0);
  ScaledElementRounder rounder(scheme);
  for (int i1 = 0; i1 < in; i1 += block) {
    const int i2 = std::min(in, i1 + block), count = i2 - i1;
    for (int i = i1; i < i2; ++i) {
      const int orig = perm[size_t(i)];
      const float* sc;
      const uint32_t* stored = nullptr;
      const uint8_t* zp = nullptr;
      if (static_scales) {
        sc = fixed.scale.data() + size_t(orig) * size_t(out);
        stored = fixed.stored.data() + size_t(orig) * size_t(out);
        if (scheme.asymmetric) zp = fixed.zero.data() + size_t(orig) * size_t(out);
      } else {
        if (i % width ==
            0) {  // the first column of a group: fix its scales from the current weights
          current = fix_scales(scheme, wp, out, in, i, std::min(width, in - i), global);
          current_start = i;
        }
        sc = current.scale.data() + size_t(i - current_start) * size_t(out);
        stored = current.stored.data() + size_t(i - current_start) * size_t(out);
        if (scheme.asymmetric) zp = current.zero.data() + size_t(i - current_start) * size_t(out);
      }
      for (int r = 0; r < out; ++r) col[size_t(r)] = wp[size_t(r) * size_t(in) + size_t(i)];
      rounder.round(col.data(), size_t(out), sc, zp, qcol.data());
      for (int r = 0; codes && r < out; ++r) {
        stored_at[size_t(r) * size_t(in) + size_t(orig)] = stored[r];
        if (zp) zero_at[size_t(r) * size_t(in) + size_t(orig)] = zp[r];
      }
      const float d = uf[size_t(i) * size_t(in) + size_t(i)];
      for (int r = 0; r < out; ++r) {
        q[size_t(r) * size_t(in) + size_t(i)] = qcol[size_t(r)];
        const float e = (col[size_t(r)] - qcol[size_t(r)]) / d;
        err[size_t(r) * size_t(block) + size_t(i - i1)] = e;
        // Spread the error over the rest of this batch.
        float* row = wp.data() + size_t(r) * size_t(in);
        const float* urow = uf.data() + size_t(i) * size_t(in);
        for (int j = i + 1; j < i2; ++j) row[j] -= e * urow[j];
      }
    }
    // Lazy update of every later column at once: W[:, i2:] -= Err · U[i1:i2, i2:].
    if (i2 < in)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in - i2, count, -1.0f, err.data(),
                  block, uf.data() + size_t(i1) * size_t(in) + size_t(i2), in, 1.0f, wp.data() + i2,
                  in);
  }
  // Back to the original column order.
  std::vector<float> result(w.size());
  for (int r = 0; r < out; ++r)
    for (int i = 0; i < in; ++i)
      result[size_t(r) * size_t(in) + size_t(perm[size_t(i)])] =
          q[size_t(r) * size_t(in) + size_t(i)];
  if (codes) {
    // One stored scale per group of the whole [out, in] weight (every element of a group was
    // rounded with the same one), then the codes of the values on that grid.
    const size_t groups = quant::make_group_layout(scheme, {size_t(out), size_t(in)}).group_count;
    std::vector<uint32_t> scales(groups);
    std::vector<uint8_t> zeros(scheme.asymmetric ? groups : 0);
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) {
        const size_t k = size_t(r) * size_t(in) + size_t(c);
        const size_t g =
            quant::matrix_group_of(scheme, size_t(r), size_t(c), size_t(out), size_t(in));
        scales.at(g) = stored_at[k];
        if (scheme.asymmetric) zeros.at(g) = zero_at[k];
      }
    *codes = qtensor_on_grid(scheme, result.data(), {size_t(out), size_t(in)}, std::move(scales),
                             std::move(zeros), global);
  }
  return result;
}

PrequantizedWeights quantize_blockwise(
    const model::Runtime& base, const std::function<MaybeScheme(const std::string&)>& scheme_of,
    const Calibration& calibration, const QuantizeOne& quantize_one,
    const std::function<void(int, int)>& progress) {
  PrequantizedWeights result;
  const std::unique_ptr<model::Runtime> q =
      base.clone();  // shares weights until quantized ones replace them
  const model::Sites sites = q->sites();
  LayerwiseRunner runner(*q, calibration);
  for (int l = 0; l < sites.blocks; ++l) {
    {
      InputHessians hessians(sites, l, [](const model::InputSite&) { return true; });
      runner.run_layer(l, false);
      for (const model::LinearSite& site : sites.block(l)) {
        model::Linear* lin = site.linear;
        const MaybeScheme scheme = scheme_of(lin->name());
        if (!scheme) continue;
        PrequantizedWeight w;
        try {
          w = quantize_one(*scheme, *lin, hessians.of(site.input).matrix());
        } catch (const Error& e) {
          throw Error(lin->name() + ": " + e.what());
        }
        lin->set_weight(w.values);
        result[lin->name()] = std::move(w);
      }
    }
    runner.run_layer(l, true);  // the next block sees this one quantized
    if (progress) progress(l + 1, sites.blocks);
  }
  return result;
}

PrequantizedWeights gptq_model(const model::Runtime& base,
                               const std::function<MaybeScheme(const std::string&)>& scheme_of,
                               const Calibration& calibration, const GptqOptions& opt,
                               const std::function<void(int, int)>& progress) {
  const QuantizeOne one = [&](const Scheme& scheme, const model::Linear& lin,
                              const std::vector<double>& h) {
    // Codes for lowbit's own schemes (exports need them); a ggml_* scheme's codes would be GGML
    // blocks, which exports recover from the values on GPTQ's lowbit grid instead.
    std::shared_ptr<QTensor> codes = scheme.ggml ? nullptr : std::make_shared<QTensor>();
    try {
      std::vector<float> w = gptq_quantize(scheme, lin.weight(), lin.out_features(),
                                           lin.in_features(), h, opt, codes.get());
      return PrequantizedWeight{std::move(w), std::move(codes)};
    } catch (const Error& e) {
      throw Error(std::string("gptq: ") + e.what());
    }
  };
  return quantize_blockwise(base, scheme_of, calibration, one, progress);
}

MethodInfo gptq_method() {
  MethodInfo m;
  m.name = "gptq";
  m.summary =
      "GPTQ: second-order rounding with error compensation, block by block (Frantar et al. 2022)";
  m.params = {{"damp", MethodParam::Kind::Number, 0.01, 0, 1e300, true,
               "added to the Hessian's diagonal, times its mean"},
              {"block", MethodParam::Kind::Integer, 128, 1, 1 << 20, false,
               "columns per lazy batch update"},
              {"act_order", MethodParam::Kind::Flag, 0, 0, 0, false,
               "columns in order of decreasing Hessian diagonal"}};
  m.needs_calibration = true;
  m.chooses_weights = true;
  m.run = [](MethodRun& r) {
    GptqOptions o;
    o.damp = r.number("damp");
    o.block = r.integer("block");
    o.act_order = r.flag("act_order");
    if (r.cache && r.cache->restore(r)) return;
    r.prequantized = gptq_model(*r.model, r.scheme_of, *r.calibration, o, r.progress);
    if (r.cache) r.cache->store(r);
  };
  return m;
}

}  // namespace lowbit::ptq
