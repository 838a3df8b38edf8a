// The `kvreorder` method: KV-cache outlier channel reordering for block formats (Trukhanov &
// Soloveychik 2024, "Accurate Block Quantization in LLMs with Outliers"). A few key and value
// channels carry most of the magnitude; in a block format every block that holds one gets a
// large scale and its other elements round to zero. Sorting each head's channels by their
// calibration magnitude puts the outliers together in the same blocks. Values: the permutation is
// folded into v_proj's rows and o_proj's columns (softmax·v is linear in v, so the attention
// output comes out permuted and o_proj reads it so). Keys: RoPE rotates fixed channel pairs at
// fixed frequencies, so a permutation folded into q_proj / k_proj would not commute with it; the
// keys and queries are permuted after RoPE instead (a gather, in the q/k slot of the rotation
// plan), one permutation per layer for all heads. q·k and the function stay the same.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "lowbit/ptq/calibration.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {
namespace {

// y[i] = x[order[i]] for every row of order.size() elements.
class ChannelPermutation : public model::RowTransform {
 public:
  explicit ChannelPermutation(std::vector<int> order) : order_(std::move(order)) {}
  int size() const override { return int(order_.size()); }
  void apply(float* x, size_t rows) const override {
    std::vector<float> row(order_.size());
    for (size_t r = 0; r < rows; ++r) {
      float* v = x + r * order_.size();
      for (size_t i = 0; i < order_.size(); ++i) row[i] = v[order_[i]];
      std::copy(row.begin(), row.end(), v);
    }
  }

 private:
  std::vector<int> order_;
};

// Largest |key| and |value| of every channel of every layer: [layer][kv_head * head_dim + j].
class KvMagnitudes : public model::KvProbe {
 public:
  KvMagnitudes(int layers, size_t kv_width)
      : keys(size_t(layers), std::vector<float>(kv_width, 0.0f)),
        values(size_t(layers), std::vector<float>(kv_width, 0.0f)) {}
  void observe(int layer, const float* k, const float* v, int tokens) override {
    std::vector<float>& mk = keys[size_t(layer)];
    std::vector<float>& mv = values[size_t(layer)];
    const size_t w = mk.size();
    for (size_t t = 0; t < size_t(tokens); ++t)
      for (size_t j = 0; j < w; ++j) {
        mk[j] = std::max(mk[j], std::fabs(k[t * w + j]));
        mv[j] = std::max(mv[j], std::fabs(v[t * w + j]));
      }
  }
  std::vector<std::vector<float>> keys, values;
};

// Channel indices ordered by decreasing magnitude (stable: ties keep their order).
std::vector<int> by_magnitude(const std::vector<float>& magnitude) {
  std::vector<int> order(magnitude.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return magnitude[size_t(a)] > magnitude[size_t(b)]; });
  return order;
}

}  // namespace

std::unique_ptr<model::Runtime> reorder_kv_channels(const model::Runtime& base,
                                                    const Calibration& calibration) {
  std::unique_ptr<model::Runtime> out = base.clone();
  const model::Sites sites = out->sites();
  std::optional<model::RotationPlan> plan = out->rotation_plan();
  if (!plan || sites.kv.empty() || sites.kv.front().probe == nullptr ||
      plan->qk.size() != sites.kv.size() || plan->heads.size() != sites.kv.size())
    throw Error("kvreorder: the " + out->architecture() +
                " runtime does not expose its attention's keys, values and heads");
  for (std::shared_ptr<const model::RowTransform>* slot : plan->qk)
    if (*slot)
      throw Error(
          "kvreorder: queries and keys are already rotated after RoPE (hadamard), which mixes "
          "their channels; use one of the two");
  const size_t d = size_t(plan->head_width);
  const size_t kv_width = size_t(plan->heads.front().values->out_features());
  const size_t kv_heads = kv_width / d;
  KvMagnitudes magnitudes(sites.blocks, kv_width);
  for (const model::KvSite& kv : sites.kv) *kv.probe = &magnitudes;
  {
    LayerwiseRunner runner(*out, calibration);
    for (int l = 0; l < sites.blocks; ++l) runner.run_layer(l, true);
  }
  for (const model::KvSite& kv : sites.kv) *kv.probe = nullptr;
  for (size_t l = 0; l < size_t(sites.blocks); ++l) {
    // Keys: one order per layer, by each channel's largest magnitude over the kv heads.
    std::vector<float> key_channel(d, 0.0f);
    for (size_t h = 0; h < kv_heads; ++h)
      for (size_t j = 0; j < d; ++j)
        key_channel[j] = std::max(key_channel[j], magnitudes.keys[l][h * d + j]);
    *plan->qk[l] = std::make_shared<ChannelPermutation>(by_magnitude(key_channel));
    // Values: an order per kv head, folded into v_proj's rows and the o_proj columns that read
    // the query heads of its group.
    model::Linear& wv = *plan->heads[l].values;
    model::Linear& wo = *plan->heads[l].output;
    const size_t dim = size_t(wv.in_features()), q_heads = size_t(wo.in_features()) / d;
    const size_t group = q_heads / kv_heads, wo_rows = size_t(wo.out_features());
    std::vector<float> v = wv.weight(), bias = wv.bias(), o = wo.weight();
    for (size_t h = 0; h < kv_heads; ++h) {
      const std::vector<float> head(magnitudes.values[l].begin() + long(h * d),
                                    magnitudes.values[l].begin() + long((h + 1) * d));
      const std::vector<int> order = by_magnitude(head);
      for (size_t i = 0; i < d; ++i) {
        const size_t from = h * d + size_t(order[i]), to = h * d + i;
        std::copy_n(wv.weight().begin() + long(from * dim), dim, v.begin() + long(to * dim));
        if (!bias.empty()) bias[to] = wv.bias()[from];
        for (size_t qh = h * group; qh < (h + 1) * group; ++qh)
          for (size_t r = 0; r < wo_rows; ++r)
            o[r * q_heads * d + qh * d + i] =
                wo.weight()[r * q_heads * d + qh * d + size_t(order[i])];
      }
    }
    wv.set_weight(std::move(v));
    wv.set_bias(std::move(bias));
    wo.set_weight(std::move(o));
  }
  return out;
}

MethodInfo kv_reorder_method() {
  MethodInfo m;
  m.name = "kvreorder";
  m.summary =
      "KV-cache channels sorted by calibration magnitude so outliers share blocks (Trukhanov & "
      "Soloveychik 2024)";
  m.needs_calibration = true;
  m.transforms = true;
  m.run = [](MethodRun& r) { r.model = reorder_kv_channels(*r.model, *r.calibration); };
  return m;
}

}  // namespace lowbit::ptq
