// The `lorc` method: low-rank compensation (LoRC, ZeroQuant-V2 / ZeroQuant-FP, Yao et al. 2023).
// The quantization error E = W − Q(W) of every quantized Linear is approximated by its best
// rank-r factorization (SVD by Eigen): E ≈ U·Vᵀ with U = U_r·Σ_r^½ and V = V_r·Σ_r^½, the factors
// rounded to their storage format (FP8 E4M3 with one scale per rank component, or BF16), and
// added to the Linear's product at run time. Q is the weight the recipe will use — an earlier
// method's (GPTQ) or round to nearest by the site's scheme. The factors' storage counts towards
// the Linear's bits per weight.
#include <Eigen/Core>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/kernels/convert.h"
#include "lowbit/ptq/lorc.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// Rounds factor columns (rank components) to the storage format; returns the storage bits of a
// [rows, rank] factor.
double round_factor(std::vector<float>& f, size_t rows, int rank, int bits) {
  if (bits == 16) {  // BF16: float32's exponent range, 7 mantissa bits
    const std::vector<float> raw = f;
    fake_quant(formats::bf16, raw.data(), raw.size(), f.data());
    return 16.0 * double(rows) * rank;
  }
  // FP8 E4M3 with one float32 scale per rank component: transpose to [rank, rows] so that each
  // component is one channel.
  std::vector<float> t(f.size()), q(f.size());
  for (size_t i = 0; i < rows; ++i)
    for (int k = 0; k < rank; ++k) t[size_t(k) * rows + i] = f[i * size_t(rank) + size_t(k)];
  fake_quant(parse_scheme("e4m3fn:channel"), t.data(), {size_t(rank), rows}, q.data());
  for (size_t i = 0; i < rows; ++i)
    for (int k = 0; k < rank; ++k) f[i * size_t(rank) + size_t(k)] = q[size_t(k) * rows + i];
  return 8.0 * double(rows) * rank + 32.0 * rank;
}

}  // namespace

std::shared_ptr<const model::LowRank> low_rank_correction(const std::vector<float>& w,
                                                          const std::vector<float>& q, int rows,
                                                          int cols, int rank, int bits) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Matrix e(rows, cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      e(r, c) = w[size_t(r) * size_t(cols) + size_t(c)] - q[size_t(r) * size_t(cols) + size_t(c)];
  const int k = std::min({rank, rows, cols});
  const Eigen::BDCSVD<Matrix> svd(e, Eigen::ComputeThinU | Eigen::ComputeThinV);
  auto out = std::make_shared<model::LowRank>();
  out->rank = k;
  out->u.resize(size_t(rows) * size_t(k));
  out->v.resize(size_t(cols) * size_t(k));
  for (int j = 0; j < k; ++j) {
    const float root = std::sqrt(svd.singularValues()(j));
    for (int r = 0; r < rows; ++r)
      out->u[size_t(r) * size_t(k) + size_t(j)] = svd.matrixU()(r, j) * root;
    for (int c = 0; c < cols; ++c)
      out->v[size_t(c) * size_t(k) + size_t(j)] = svd.matrixV()(c, j) * root;
  }
  out->storage_bits =
      round_factor(out->u, size_t(rows), k, bits) + round_factor(out->v, size_t(cols), k, bits);
  out->factor_format = bits == 16 ? "bf16" : "e4m3fn:channel";
  return out;
}

MethodInfo lorc_method() {
  MethodInfo m;
  m.name = "lorc";
  m.summary = "LoRC: low-rank compensation of each weight's quantization error (Yao et al. 2023)";
  m.params = {
      {"rank", MethodParam::Kind::Integer, 8, 1, 1 << 16, false, "rank of the correction U·Vᵀ"},
      {"bits", MethodParam::Kind::Integer, 8, 8, 16, false,
       "storage of the factors: 8 (FP8 E4M3, a scale per component) or 16 (BF16)"}};
  m.transforms = true;  // adds a term to the model's Linears
  m.run = [](MethodRun& r) {
    const int rank = r.integer("rank"), bits = r.integer("bits");
    if (bits != 8 && bits != 16)
      throw Error("lorc: bits must be 8 or 16, not " + std::to_string(bits));
    require_after_weight_methods(r);
    std::unique_ptr<model::Runtime> out = r.model->clone();
    const model::Sites sites = out->sites();
    int done = 0;
    for (const model::LinearSite& site : sites.linears) {
      model::Linear& lin = *site.linear;
      const MaybeScheme scheme = r.scheme_of(lin.name());
      if (scheme) {
        const size_t rows = size_t(lin.out_features()), cols = size_t(lin.in_features());
        std::vector<float> q(rows * cols);
        const auto pre = r.prequantized.find(lin.name());
        if (pre != r.prequantized.end())
          q = pre->second.values;
        else
          fake_quant(*scheme, lin.weight().data(), {rows, cols}, q.data());
        lin.set_low_rank(low_rank_correction(lin.weight(), q, int(rows), int(cols), rank, bits));
      }
      if (r.progress) r.progress(++done, int(sites.linears.size()));
    }
    r.model = std::move(out);
  };
  return m;
}

}  // namespace lowbit::ptq
