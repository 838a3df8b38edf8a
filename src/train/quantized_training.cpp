// Quantized training (lowbit/train/quantized_training.h): the presets, the parser, and the
// products that quantize each operand along its product's reduction dimension.
#include "lowbit/train/quantized_training.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "lowbit/kernels/convert.h"
#include "lowbit/ptq/hadamard.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"
#include "train/learned_fixed_point.h"
#include "util/fnv.h"

namespace lowbit::train {

using json = nlohmann::json;

const char* operand_role_name(OperandRole r) {
  static const char* names[kOperandRoles] = {"fwd_x",   "fwd_w",    "dgrad_dy",
                                             "dgrad_w", "wgrad_dy", "wgrad_x"};
  return names[int(r)];
}

namespace {

TrainingRecipeSpec preset(std::string name, std::string source, std::string description,
                          const char* forward, const char* gradient, const char* other = nullptr) {
  TrainingRecipeSpec s;
  s.name = std::move(name);
  s.source = std::move(source);
  s.description = std::move(description);
  if (forward) s.forward = parse_scheme(forward);
  if (gradient) s.gradient = parse_scheme(gradient);
  if (other) s.backward_other = parse_scheme(other);
  return s;
}

std::vector<TrainingRecipeSpec> make_presets() {
  std::vector<TrainingRecipeSpec> p;
  p.push_back(preset("f32", "the float32 baseline", "every product and state in float32", nullptr,
                     nullptr));
  p.push_back(preset("fp8",
                     "Micikevicius et al. 2022, FP8 Formats for Deep Learning (arXiv:2209.05433); "
                     "Transformer Engine's hybrid format",
                     "E4M3 forward operands, E5M2 gradients, one scale per tensor from its "
                     "current largest magnitude",
                     "e4m3fn:tensor", "e5m2:tensor"));
  p.push_back(p.back());
  p.back().name = "fp8_delayed";
  p.back().description =
      "fp8 with delayed scaling: each tensor's scale from the largest magnitude of its last 16 "
      "steps (Transformer Engine's amax history), so values above it saturate";
  p.back().delayed = true;
  p.push_back(preset("mxfp8",
                     "Mishra et al. 2025, Recipes for Pre-training LLMs with MXFP8 "
                     "(arXiv:2506.08027); OCP MX v1.0",
                     "MXFP8 E4M3 for every operand (gradients too), blocks of 32 along each "
                     "product's reduction, E8M0 scales rounded up so that no block clips",
                     "e4m3fn:g32:scale=e8m0fnu:pow2=ceil", "e4m3fn:g32:scale=e8m0fnu:pow2=ceil"));
  p.push_back(preset("halo",
                     "Ashkboos et al. 2025, HALO: Hadamard-Assisted Lower-Precision Optimization "
                     "(arXiv:2501.02625), HALO-2 with FP8",
                     "Hadamard rotations (blocks up to 256) on both operands of the forward and "
                     "both backward products, then FP8 E4M3 per tensor for all of them",
                     "e4m3fn:tensor", "e4m3fn:tensor"));
  p.back().hadamard = 256;
  p.push_back(preset("halo_int8", "Ashkboos et al. 2025, HALO (arXiv:2501.02625), INT8 variant",
                     "halo with INT8 per tensor instead of FP8", "int8:tensor", "int8:tensor"));
  p.back().hadamard = 256;
  p.push_back(preset("mxfp4", "OCP MX v1.0 MXFP4, round to nearest (the naive FP4 baseline)",
                     "MXFP4 for every operand of every product, nearest rounding, no rotation",
                     "mxfp4", "mxfp4"));
  p.push_back(preset("quartet",
                     "Castro et al. 2025, Quartet: Native FP4 Training Can Be Optimal for LLMs "
                     "(arXiv:2505.14669)",
                     "forward MXFP4 after a Hadamard of 32 with MSE-chosen block scales (QuEST's "
                     "clipping, here by lowbit's MSE search), backward MXFP4 after the Hadamard "
                     "with stochastic rounding for both operands",
                     "e2m1fn:g32:scale=e8m0fnu:mse", "e2m1fn:g32:scale=e8m0fnu:round=sr",
                     "e2m1fn:g32:scale=e8m0fnu:round=sr"));
  p.back().hadamard = 32;
  p.push_back(preset("coat",
                     "Xi et al. 2024, COAT: Compressing Optimizer States and Activation for FP8 "
                     "Training (arXiv:2410.19313)",
                     "fp8's products (per-tensor E4M3 activations, stored as the forward "
                     "quantized them; E5M2 gradients) and AdamW's moments in E4M3 per group of "
                     "128 with dynamic range expansion",
                     "e4m3fn:tensor", "e5m2:tensor"));
  p.back().optimizer_states = parse_scheme("e4m3fn:tensor");
  p.back().range_expansion = true;
  p.push_back(preset("dfp16",
                     "Das et al. 2018, Mixed Precision Training of CNNs using Integer Operations "
                     "(arXiv:1802.00930): dynamic fixed point",
                     "INT16 elements sharing one power-of-two exponent per tensor for every "
                     "operand, products summed exactly as in integer accumulators",
                     "int16:tensor:pow2=ceil", "int16:tensor:pow2=ceil"));
  p.back().exact_sums = true;
  p.push_back(preset("qfx8",
                     "Dai et al. 2024, QFX: Trainable Fixed-Point Quantization for Deep Learning "
                     "Hardware Acceleration",
                     "the forward's activations and weights in INT8 fixed point with the binary "
                     "point of each tensor learned (LSQ-style gradient through 2^-round(f), its "
                     "own Adam); gradients float32",
                     nullptr, nullptr));
  p.back().fixed_point_bits = 8;
  return p;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

std::string preset_list() {
  std::string list;
  for (const TrainingRecipeSpec& p : training_presets())
    list += (list.empty() ? "" : ", ") + p.name;
  return list;
}

// The role a long-form key names ("dgrad_w"), or -1.
int role_index(const std::string& key) {
  for (int r = 0; r < kOperandRoles; ++r)
    if (key == operand_role_name(OperandRole(r))) return r;
  return -1;
}

std::string scheme_or_fp(const std::optional<Scheme>& s) {
  return s ? scheme_name(*s) : "f32";
}

}  // namespace

std::optional<Scheme> TrainingRecipeSpec::scheme_for(OperandRole r) const {
  if (roles[size_t(r)]) return roles[size_t(r)];
  switch (r) {
    case OperandRole::ForwardX:
    case OperandRole::ForwardW:
      return forward;
    case OperandRole::DgradDy:
    case OperandRole::WgradDy:
      return gradient;
    case OperandRole::DgradW:
    case OperandRole::WgradX:
      return backward_other ? backward_other : forward;
  }
  return std::nullopt;
}

bool TrainingRecipeSpec::is_full_precision() const {
  for (int r = 0; r < kOperandRoles; ++r)
    if (scheme_for(OperandRole(r))) return false;
  return fixed_point_bits == 0;
}

const std::vector<TrainingRecipeSpec>& training_presets() {
  static const std::vector<TrainingRecipeSpec> presets = make_presets();
  return presets;
}

TrainingRecipeSpec parse_training_recipe(const std::string& spelling) {
  const std::vector<std::string> parts = split(spelling, ';');
  TrainingRecipeSpec spec;
  size_t first = 0;
  for (const TrainingRecipeSpec& p : training_presets())
    if (p.name == parts[0]) spec = p, first = 1;
  if (first == 0 && parts[0].find('=') == std::string::npos)
    throw Error("unknown training recipe \"" + parts[0] + "\" (presets: " + preset_list() +
                "; or the long form fwd=<scheme>;grad=<scheme>;other=<scheme>;hadamard=<block>;"
                "delayed;exact_sums;states=<element>;expand;master=<format>[:sr];head, or "
                "qfx=<bits>;qfx_lr=<lr>)");
  if (first == 0) spec.name = spelling, spec.source = "custom";
  for (size_t i = first; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const size_t eq = part.find('=');
    const std::string key = part.substr(0, eq),
                      value = eq == std::string::npos ? "" : part.substr(eq + 1);
    try {
      if (key == "fwd")
        spec.forward = parse_scheme(value);
      else if (key == "grad")
        spec.gradient = parse_scheme(value);
      else if (key == "other")
        spec.backward_other = parse_scheme(value);
      else if (key == "states")
        spec.optimizer_states = parse_scheme(value);
      else if (key == "hadamard")
        spec.hadamard = std::stoi(value);
      else if (key == "delayed" && value.empty())
        spec.delayed = true;
      else if (key == "exact_sums" && value.empty())
        spec.exact_sums = true;
      else if (key == "expand" && value.empty())
        spec.range_expansion = true;
      else if (key == "head" && value.empty())
        spec.head = true;
      else if (role_index(key) >= 0)
        spec.roles[size_t(role_index(key))] = parse_scheme(value);
      else if (key == "qfx")
        spec.fixed_point_bits = std::stoi(value);
      else if (key == "qfx_lr")
        spec.binary_point_lr = std::stod(value);
      else if (key == "master") {
        const bool sr = value.size() > 3 && value.compare(value.size() - 3, 3, ":sr") == 0;
        spec.master = parse_format(sr ? value.substr(0, value.size() - 3) : value);
        spec.master_stochastic = sr;
      } else
        throw Error("unknown part \"" + part + "\"");
    } catch (const std::invalid_argument&) {
      throw Error("training recipe " + spelling + ": \"" + part + "\" needs a number");
    } catch (const Error& e) {
      throw Error("training recipe " + spelling + ": " + e.what());
    }
  }
  if (spec.fixed_point_bits != 0 &&
      (spec.fixed_point_bits < 2 || spec.fixed_point_bits > 16 || spec.forward || spec.gradient ||
       spec.backward_other || spec.hadamard || spec.delayed || spec.exact_sums ||
       std::any_of(spec.roles.begin(), spec.roles.end(), [](const auto& r) { return bool(r); })))
    throw Error("training recipe " + spelling +
                ": qfx=<bits> (2..16) learns its own fixed-point formats and takes no schemes, "
                "rotation, delayed scaling or exact sums");
  if (spec.hadamard < 0 || (spec.hadamard & (spec.hadamard - 1)) != 0)
    throw Error("training recipe " + spelling + ": hadamard must be a power of two (or 0)");
  if (spec.optimizer_states && spec.optimizer_states->granularity != Granularity::Tensor)
    throw Error("training recipe " + spelling +
                ": states=<element> takes an element format with one scale per group of 128 "
                "(e.g. states=e4m3fn:tensor, applied to each group)");
  if (spec.delayed)
    for (int r = 0; r < kOperandRoles; ++r)
      if (const std::optional<Scheme> s = spec.scheme_for(OperandRole(r));
          s && s->granularity != Granularity::Tensor)
        throw Error("training recipe " + spelling +
                    ": delayed scaling applies to per-tensor schemes only");
  return spec;
}

std::string describe_training_recipe(const std::string& spelling) {
  const TrainingRecipeSpec s = parse_training_recipe(spelling);
  std::string d = s.name + ": forward " + scheme_or_fp(s.forward) + ", gradients " +
                  scheme_or_fp(s.gradient) + ", other backward operand " +
                  scheme_or_fp(s.backward_other ? s.backward_other : s.forward);
  if (s.fixed_point_bits)
    return s.name + ": forward X and W in INT" + std::to_string(s.fixed_point_bits) +
           " fixed point with learned binary points, gradients f32 (" + s.source + ")";
  for (int r = 0; r < kOperandRoles; ++r)
    if (s.roles[size_t(r)])
      d += std::string(", ") + operand_role_name(OperandRole(r)) + " " +
           scheme_name(*s.roles[size_t(r)]);
  if (s.hadamard) d += ", Hadamard " + std::to_string(s.hadamard);
  if (s.delayed) d += ", delayed scaling";
  if (s.exact_sums) d += ", exact sums";
  if (s.master)
    d +=
        ", master weights " + format_name(*s.master) + (s.master_stochastic ? " (stochastic)" : "");
  if (s.optimizer_states)
    d += ", AdamW moments " + scheme_name(*s.optimizer_states) + " per 128" +
         (s.range_expansion ? " with range expansion" : "");
  return d + " (" + s.source + ")";
}

// ---- the products ----

namespace {

void transpose(const float* src, int rows, int cols, float* dst) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < cols; ++c)
    for (int r = 0; r < rows; ++r) dst[size_t(c) * rows + r] = src[size_t(r) * cols + c];
}

// The largest power of two that divides k and is at most `block`.
int hadamard_block_for(int k, int block) {
  int b = 1;
  while (b * 2 <= block && k % (b * 2) == 0) b *= 2;
  return b;
}

class QuantizedProducts : public LinearProducts<float> {
 public:
  QuantizedProducts(const TrainingRecipeSpec& spec, const model::LlamaConfig& c, uint64_t seed)
      : spec_(spec), seed_(seed), head_site_(kLinearsPerLayer * c.n_layers) {
    for (int r = 0; r < kOperandRoles; ++r) schemes_[size_t(r)] = spec.scheme_for(OperandRole(r));
    for (int l = 0; l < c.n_layers; ++l)
      for (const char* r :
           {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
        site_names_.push_back("layers." + std::to_string(l) + "." + r);
    site_names_.push_back("output");
    site_.resize(site_names_.size());
  }

  void begin_step(int64_t step) {
    step_ = step;
    calls_ = 0;
    for (OperandTelemetry& t : step_telemetry_) t = {};
    for (auto& roles : site_) roles = {};
  }
  void end_step() {
    for (auto& [key, amax] : pending_amax_) {
      std::deque<float>& h = history_[key];
      h.push_back(amax);
      while (h.size() > kHistory) h.pop_front();
    }
    pending_amax_.clear();
  }

  void forward(int site, const float* x, int n, const float* w, int out, int in,
               float* y) override {
    if (skip(site)) return LinearProducts<float>::forward(site, x, n, w, out, in, y);
    // Y[n, out] = X[n, in] · W[out, in]ᵀ, reduction over in.
    const float* a = prepare(site, OperandRole::ForwardX, x, n, in, false, a_);
    const float* b = prepare(site, OperandRole::ForwardW, w, out, in, false, b_);
    multiply(n, out, in, a, b, 0.0f, y);
  }

  void backward(int site, const float* dy, const float* x, int n, const float* w, int out, int in,
                float* dx, bool add_dx, float* dw) override {
    if (skip(site))
      return LinearProducts<float>::backward(site, dy, x, n, w, out, in, dx, add_dx, dw);
    // dX[n, in] = dY[n, out] · W[out, in]: reduction over out; W is taken as Wᵀ [in, out].
    const float* a = prepare(site, OperandRole::DgradDy, dy, n, out, false, a_);
    const float* b = prepare(site, OperandRole::DgradW, w, out, in, true, b_);
    multiply(n, in, out, a, b, add_dx ? 1.0f : 0.0f, dx);
    // dW[out, in] += dYᵀ[out, n] · X[n, in]: reduction over the tokens.
    a = prepare(site, OperandRole::WgradDy, dy, n, out, true, a_);
    b = prepare(site, OperandRole::WgradX, x, n, in, true, b_);
    multiply(out, in, n, a, b, 1.0f, dw);
  }

  const std::vector<OperandTelemetry>& step_telemetry() const { return step_telemetry_; }
  const std::vector<std::array<OperandTelemetry, kOperandRoles>>& site() const { return site_; }
  const std::vector<std::string>& site_names() const { return site_names_; }

  std::string state() const {
    json j = json::array();
    for (const auto& [key, h] : history_)
      j.push_back({{"site", key.first},
                   {"role", key.second},
                   {"amax", std::vector<float>(h.begin(), h.end())}});
    return json{{"amax_history", j}}.dump();
  }
  void restore(const std::string& text) {
    history_.clear();
    const json j = json::parse(text);
    if (!j.contains("amax_history")) return;
    for (const json& e : j["amax_history"]) {
      const std::vector<float> h = e.at("amax").get<std::vector<float>>();
      history_[{e.at("site").get<int>(), e.at("role").get<int>()}] =
          std::deque<float>(h.begin(), h.end());
    }
  }

 private:
  static constexpr size_t kHistory = 16;

  bool skip(int site) const { return site == head_site_ && !spec_.head; }

  // The operand as a [rows', k] matrix with the reduction dimension k last — `src` is
  // [rows, cols], and `transposed` says the reduction runs down its columns (k = rows) — rotated
  // and quantized as the recipe says, in `buffer`.
  const float* prepare(int site, OperandRole role, const float* src, int rows, int cols,
                       bool transposed, std::vector<float>& buffer) {
    const std::optional<Scheme>& scheme = schemes_[int(role)];
    const int m = transposed ? cols : rows, k = transposed ? rows : cols;
    if (!scheme && !spec_.hadamard && !transposed) return src;  // already [m, k], as it is
    buffer.resize(size_t(m) * size_t(k));
    if (transposed)
      transpose(src, rows, cols, buffer.data());
    else
      std::copy_n(src, buffer.size(), buffer.data());
    if (!scheme && !spec_.hadamard) return buffer.data();
    if (spec_.hadamard) {
      const int block = hadamard_block_for(k, spec_.hadamard);
      if (block > 1) rotation(k, block).apply(buffer.data(), size_t(m));
    }
    if (!scheme) return buffer.data();
    Scheme s = *scheme;
    if (s.round.mode == RoundMode::Stochastic) {  // a fresh stream per step, call and operand
      util::Fnv1a h;
      for (uint64_t v : {seed_, uint64_t(step_), uint64_t(calls_), uint64_t(site), uint64_t(role)})
        h.u64_bytes(v);
      s.round.seed = h.h;
    }
    ++calls_;
    const std::vector<size_t> shape = {size_t(m), size_t(k)};
    if (spec_.delayed) {
      float amax = 0;
      for (float v : buffer) amax = std::max(amax, std::abs(v));
      const std::pair<int, int> key{site, int(role)};
      float& pending = pending_amax_[key];
      pending = std::max(pending, amax);
      const auto h = history_.find(key);
      if (h != history_.end() && !h->second.empty()) {
        const float past = *std::max_element(h->second.begin(), h->second.end());
        if (past > 0) {
          s.rule = ScaleRule::Fixed;
          s.fixed_scale = float(past / element_max(s));
        }
      }
    }
    const QTensor q = quantize(s, buffer.data(), shape);
    rounded_.resize(buffer.size());
    dequantize(q, rounded_.data());
    record(site, role, s, q, buffer, rounded_);
    buffer.swap(rounded_);
    return buffer.data();
  }

  // Overflow: |x| / scale at or past the clipping threshold (half a step beyond the largest
  // element); underflow: a nonzero x that became zero.
  void record(int site, OperandRole role, const Scheme& s, const QTensor& q,
              const std::vector<float>& x, const std::vector<float>& values) {
    OperandTelemetry t;
    t.elements = x.size();
    const double clip = clip_threshold(s);
    const size_t rows = q.shape[0], width = q.shape[1];
    std::vector<float> scale(q.group_count());
    for (size_t g = 0; g < scale.size(); ++g) {
      scale[g] = q.group_scale(g);
      if (scale[g] > 0) t.log2_scale_sum += std::log2(double(scale[g])), ++t.scales;
    }
    uint64_t overflow = 0, underflow = 0;
#pragma omp parallel for schedule(static) reduction(+ : overflow, underflow)
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < width; ++c) {
        const size_t i = r * width + c;
        const float sc = scale[quant::matrix_group_of(s, r, c, rows, width)];
        overflow += sc > 0 && std::abs(x[i]) / sc >= clip;
        underflow += x[i] != 0 && values[i] == 0;
      }
    t.overflow = overflow;
    t.underflow = underflow;
    for (OperandTelemetry* into : {&step_telemetry_[int(role)], &site_[size_t(site)][int(role)]}) {
      into->elements += t.elements;
      into->overflow += t.overflow;
      into->underflow += t.underflow;
      into->log2_scale_sum += t.log2_scale_sum;
      into->scales += t.scales;
    }
  }

  const ptq::BlockHadamardTransform& rotation(int k, int block) {
    auto it = rotations_.find({k, block});
    if (it == rotations_.end())
      it = rotations_
               .emplace(std::make_pair(k, block),
                        std::make_unique<ptq::BlockHadamardTransform>(k, block, seed_ + 1))
               .first;
    return *it->second;
  }

  // C[m, p] = beta·C + A[m, k] · B[p, k]ᵀ, in float32 or (exact_sums) float64.
  void multiply(int m, int p, int k, const float* a, const float* b, float beta, float* c) {
    if (!spec_.exact_sums) return gemm<float>(false, true, m, p, k, 1.0f, a, k, b, k, beta, c, p);
    std::vector<double> a64(a, a + size_t(m) * k), b64(b, b + size_t(p) * k), c64(size_t(m) * p);
    gemm<double>(false, true, m, p, k, 1.0, a64.data(), k, b64.data(), k, 0.0, c64.data(), p);
    for (size_t i = 0; i < c64.size(); ++i) c[i] = float(double(beta) * c[i] + c64[i]);
  }

  TrainingRecipeSpec spec_;
  std::array<std::optional<Scheme>, kOperandRoles> schemes_;  // spec_.scheme_for each role
  uint64_t seed_;
  int head_site_;
  int64_t step_ = 0;
  uint64_t calls_ = 0;
  std::vector<float> a_, b_, rounded_;
  std::map<std::pair<int, int>, std::unique_ptr<ptq::BlockHadamardTransform>> rotations_;
  std::map<std::pair<int, int>, std::deque<float>> history_;
  std::map<std::pair<int, int>, float> pending_amax_;
  std::vector<OperandTelemetry> step_telemetry_ = std::vector<OperandTelemetry>(kOperandRoles);
  std::vector<std::array<OperandTelemetry, kOperandRoles>> site_;
  std::vector<std::string> site_names_;
};

// COAT's dynamic range expansion of one group: f(x) = sign(x)·|x|^k with k chosen so that the
// group's range max|x| / min|x| (over nonzero x) becomes the element format's normal range
// max / min_normal; the group is quantized as f(x) with an absmax scale and mapped back by f⁻¹.
void compress_group(const Scheme& element, bool expand, float* x, size_t n,
                    ScaledElementRounder& rounder, std::vector<float>& work) {
  float hi = 0, lo = INFINITY;
  for (size_t i = 0; i < n; ++i)
    if (x[i] != 0) hi = std::max(hi, std::abs(x[i])), lo = std::min(lo, std::abs(x[i]));
  if (hi == 0) return;
  double k = 1;
  if (expand && hi > lo) {
    const double format_range = std::log(max_finite(element.element) / min_normal(element.element));
    k = format_range / std::log(double(hi) / double(lo));
  }
  // Expanded on x / max|x| ∈ [lo/hi, 1], so that |·|^k stays within float whatever k is (a group
  // of nearly equal values has k in the hundreds): f spans [format range⁻¹, 1] exactly.
  work.resize(n);
  for (size_t i = 0; i < n; ++i)
    work[i] = float(std::copysign(std::pow(double(std::abs(x[i])) / double(hi), k), double(x[i])));
  std::vector<float> scales(n, float(1.0 / element_max(element)));
  rounder.round(work.data(), n, scales.data(), nullptr, work.data());
  for (size_t i = 0; i < n; ++i)
    x[i] = float(double(hi) *
                 std::copysign(std::pow(double(std::abs(work[i])), 1.0 / k), double(work[i])));
}

}  // namespace

struct TrainingRecipe::Impl {
  TrainingRecipeSpec spec;
  std::unique_ptr<QuantizedProducts> products;
  std::unique_ptr<LearnedFixedPoint> fixed_point;
  uint64_t seed = 0;  // the run's: stochastic rounding of the master weights draws from it
};

TrainingRecipe::TrainingRecipe(TrainingRecipeSpec spec, const model::LlamaConfig& config,
                               uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = std::move(spec);
  impl_->seed = seed;
  const TrainingRecipeSpec& s = impl_->spec;
  if (s.fixed_point_bits)
    impl_->fixed_point = std::make_unique<LearnedFixedPoint>(
        s.fixed_point_bits, s.binary_point_lr, kLinearsPerLayer * config.n_layers, s.head);
  else if (!s.is_full_precision() || s.hadamard)
    impl_->products = std::make_unique<QuantizedProducts>(s, config, seed);
}
TrainingRecipe::~TrainingRecipe() = default;

const TrainingRecipeSpec& TrainingRecipe::spec() const {
  return impl_->spec;
}
LinearProducts<float>* TrainingRecipe::products() {
  if (impl_->fixed_point) return impl_->fixed_point.get();
  return impl_->products.get();
}
void TrainingRecipe::begin_step(int64_t step) {
  if (impl_->products) impl_->products->begin_step(step);
}
void TrainingRecipe::end_step() {
  if (impl_->products) impl_->products->end_step();
  if (impl_->fixed_point) impl_->fixed_point->end_step();
}

std::vector<std::pair<std::string, double>> TrainingRecipe::step_telemetry() const {
  std::vector<std::pair<std::string, double>> out;
  if (impl_->fixed_point)
    out.emplace_back("qfx_fraction_bits", impl_->fixed_point->mean_fraction_bits());
  if (!impl_->products) return out;
  for (int r = 0; r < kOperandRoles; ++r) {
    const OperandTelemetry& t = impl_->products->step_telemetry()[size_t(r)];
    if (!t.elements) continue;
    const std::string name = operand_role_name(OperandRole(r));
    out.emplace_back(name + "_overflow", double(t.overflow) / double(t.elements));
    out.emplace_back(name + "_underflow", double(t.underflow) / double(t.elements));
    if (t.scales) out.emplace_back(name + "_log2_scale", t.log2_scale_sum / double(t.scales));
  }
  return out;
}

std::vector<TrainingRecipe::SiteTelemetry> TrainingRecipe::site_telemetry() const {
  std::vector<SiteTelemetry> out;
  if (!impl_->products) return out;
  for (size_t s = 0; s < impl_->products->site().size(); ++s)
    for (int r = 0; r < kOperandRoles; ++r)
      if (impl_->products->site()[s][size_t(r)].elements)
        out.push_back({impl_->products->site_names()[s], OperandRole(r),
                       impl_->products->site()[s][size_t(r)]});
  return out;
}

void TrainingRecipe::compress_optimizer_states(AdamW& optimizer) const {
  const std::optional<Scheme>& element = impl_->spec.optimizer_states;
  if (!element) return;
  constexpr size_t kGroup = 128;  // COAT's group size for optimizer states
  ScaledElementRounder rounder(*element);
  std::vector<float> work;
  for (auto* moments : {&optimizer.first_moments(), &optimizer.second_moments()})
    for (std::vector<float>& m : *moments)
      for (size_t g = 0; g < m.size(); g += kGroup)
        compress_group(*element, impl_->spec.range_expansion, m.data() + g,
                       std::min(kGroup, m.size() - g), rounder, work);
}

void TrainingRecipe::round_master_weights(std::vector<Parameter<float>>& params,
                                          int64_t step) const {
  const TrainingRecipeSpec& s = impl_->spec;
  if (!s.master) return;
  for (size_t i = 0; i < params.size(); ++i) {
    RoundOptions opt{s.master_stochastic ? RoundMode::Stochastic : RoundMode::NearestEven,
                     Overflow::Saturate, 0};
    if (s.master_stochastic) {
      util::Fnv1a h;
      for (uint64_t v : {impl_->seed, uint64_t(step), uint64_t(i), uint64_t(0x6d61737465)})
        h.u64_bytes(v);
      opt.seed = h.h;
    }
    std::vector<float>& w = params[i].value;
    fake_quant(*s.master, w.data(), w.size(), w.data(), opt);
  }
}

std::string TrainingRecipe::state() const {
  if (impl_->fixed_point) return impl_->fixed_point->state();
  return impl_->products ? impl_->products->state() : "{}";
}
void TrainingRecipe::restore(const std::string& text) {
  if (impl_->products) impl_->products->restore(text);
  if (impl_->fixed_point) impl_->fixed_point->restore(text);
}

}  // namespace lowbit::train
