// Scale rules (see scale_picker.h and docs/quantization.md).
#include "quant/scale_picker.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>

#include "lowbit/format/reference.h"
#include "lowbit/util/error.h"
#include "util/float_bits.h"

namespace lowbit::quant {
namespace {

constexpr float kF32MinNormal = 0x1p-126f;

// Half the smallest positive magnitude of a grid that holds zero (every float and integer
// format; a lookup table only when it lists 0), else 0.
double zero_rounding_threshold(const Format& f) {
  if (f.kind != FormatKind::Lut) return min_positive(f) / 2;
  double smallest = 0;
  bool zero = false;
  for (int i = 0; i < f.lut_size; ++i) {
    const double m = std::fabs(double(f.lut[i]));
    zero = zero || m == 0;
    if (m > 0 && (smallest == 0 || m < smallest)) smallest = m;
  }
  return zero ? smallest / 2 : 0;
}

}  // namespace

// What a ScalePicker needs of its scale format, built once per format and shared by every picker:
// a picker is made per quantize() call (activations: every forward) and per
// QTensor::group_scale(), and building these (a few hundred reference encodes and decodes) cost
// more than quantizing a decode step's activations.
struct ScaleTables {
  int pow2_min = 0, pow2_max = 0;     // exponents a power-of-two scale may take
  std::vector<float> decode_table;    // scale code -> value, for scale formats up to 12 bits
  std::vector<uint32_t> pow2_codes;   // exponent - pow2_min -> stored code
  kernels::ConvertPlan scale_plan{};  // RNE, saturating: raw scales -> scale-format codes
  uint32_t min_positive_code = 0;
};

namespace {

ScaleTables build_scale_tables(bool scale_is_f32, const Format& f) {
  ScaleTables t;
  if (scale_is_f32) {
    t.pow2_min = -126;
    t.pow2_max = 127;
  } else if (f == formats::e8m0fnu) {
    t.pow2_min = -127;  // the OCP range; an exponent above 127 is NaN
    t.pow2_max = 127;
  } else {
    t.pow2_min = std::ilogb(min_positive(f));
    t.pow2_max = std::ilogb(max_finite(f));
  }
  if (!scale_is_f32) {
    t.scale_plan = kernels::make_convert_plan(f, {RoundMode::NearestEven, Overflow::Saturate, 0});
    t.min_positive_code = ref::round_to_code(f, float(min_positive(f)), {});
    if (f.bits() <= 12) {
      t.decode_table.resize(code_count(f));
      for (uint32_t c = 0; c < t.decode_table.size(); ++c) t.decode_table[c] = ref::decode(f, c);
    }
  }
  for (int e = t.pow2_min; e <= t.pow2_max; ++e) {
    const float v = std::ldexp(1.0f, e);
    t.pow2_codes.push_back(scale_is_f32 ? float_bits(v) : ref::encode_exact(f, v));
  }
  return t;
}

const ScaleTables& scale_tables(const Scheme& s) {
  static std::mutex mutex;
  static std::vector<std::pair<Format, std::unique_ptr<const ScaleTables>>> cache[2];
  const std::lock_guard<std::mutex> lock(mutex);
  auto& list = cache[s.scale_is_f32 ? 1 : 0];
  const Format key = s.scale_is_f32 ? formats::e8m0fnu : s.scale_format;  // f32: one entry
  for (const auto& [format, tables] : list)
    if (format == key) return *tables;
  list.emplace_back(key,
                    std::make_unique<const ScaleTables>(build_scale_tables(s.scale_is_f32, key)));
  return *list.back().second;
}

}  // namespace

ScalePicker::ScalePicker(const Scheme& s, float global_scale)
    : s_(s),
      global_(global_scale),
      element_max_(float(lowbit::element_max(s))),
      element_emax_(s.asymmetric ? 0 : element_emax(s.element)),
      tables_(&scale_tables(s_)) {
  if (s.rule == ScaleRule::Sweep) zero_threshold_ = float(zero_rounding_threshold(s.element));
}

float ScalePicker::effective_of(uint32_t stored) const {
  float base;
  if (s_.scale_is_f32)
    base = bits_float(stored);
  else if (!tables_->decode_table.empty())
    base = tables_->decode_table[stored & (tables_->decode_table.size() - 1)];
  else
    base = ref::decode(s_.scale_format, stored);
  return s_.global_scale ? with_global(base) : base;
}

uint32_t ScalePicker::pow2_exponent_code(int e) const {
  return tables_->pow2_codes[size_t(e - tables_->pow2_min)];
}

GroupScale ScalePicker::finish(uint32_t stored) const {
  GroupScale g;
  g.stored = stored;
  g.effective = effective_of(stored);
  return g;
}

uint32_t ScalePicker::store_not_finite() const {
  if (s_.scale_is_f32) return float_bits(std::numeric_limits<float>::quiet_NaN());
  if (has_nan(s_.scale_format)) return ref::nan_code(s_.scale_format, false);
  return max_magnitude_code(s_.scale_format);  // no NaN to say it with: saturate
}

uint32_t ScalePicker::store_pow2(int e) const {
  if (e > tables_->pow2_max) {
    // E8M0 follows the OCP reference: an exponent past 127 is NaN. Other formats saturate.
    if (!s_.scale_is_f32 && s_.scale_format == formats::e8m0fnu) return store_not_finite();
    e = tables_->pow2_max;
  }
  return pow2_exponent_code(std::max(e, tables_->pow2_min));
}

uint32_t ScalePicker::store_rounded(float scale) const {
  if (s_.pow2) {
    // Nearest power of two, ties up (how a cast to E8M0 rounds).
    int e = std::ilogb(scale);
    if (std::ldexp(scale, -e) >= 1.5f) ++e;
    return store_pow2(scale > 0 ? e : tables_->pow2_min);
  }
  if (s_.scale_is_f32) return float_bits(scale > 0 ? scale : kF32MinNormal);
  const RoundOptions rne{RoundMode::NearestEven, Overflow::Saturate, 0};
  const uint32_t code = ref::round_to_code(s_.scale_format, scale, rne);
  return ref::decode(s_.scale_format, code) > 0
             ? code
             : tables_->min_positive_code;  // underflow: the smallest
}

// Two lower bounds on a candidate scale's squared error make the sweep finite and exact (it
// returns the best stored scale there is). Above the absmax scale nothing clips, and an element
// whose scaled magnitude is below zero_threshold_ rounds to zero: its error is x²; that sum only
// grows with the scale, so once it reaches the best error found, no larger scale can beat it.
// Below, elements beyond element_max · scale are clamped there (symmetric schemes use the
// largest magnitude both signs reach: ±7 for int4) with error (|x| − max · scale)², a sum that
// only grows as the scale shrinks. A small margin keeps the bounds on the safe side of float
// rounding in x / scale.
GroupScale ScalePicker::sweep(const float* x, size_t n, GroupScale start,
                              const ErrorFn& error_of) const {
  GroupScale best = start;
  double best_error = error_of(best);
  const uint32_t top = max_magnitude_code(s_.scale_format);
  const uint32_t bottom = tables_->min_positive_code;
  for (uint32_t c = start.stored + 1; c <= top && best_error > 0; ++c) {
    const GroupScale g = finish(c);
    const float zero_below = zero_threshold_ * g.effective * (1 - 0x1p-20f);
    double bound = 0;
    for (size_t i = 0; i < n; ++i)
      if (std::fabs(x[i]) < zero_below) bound += double(x[i]) * double(x[i]);
    if (bound >= best_error) break;
    const double e = error_of(g);
    if (e < best_error) best_error = e, best = g;
  }
  for (uint32_t c = start.stored; c > bottom && best_error > 0;) {
    const GroupScale g = finish(--c);
    const float clip_above = element_max_ * g.effective * (1 + 0x1p-20f);
    double bound = 0;
    for (size_t i = 0; i < n; ++i) {
      const double over = double(std::fabs(x[i])) - double(clip_above);
      if (over > 0) bound += over * over;
    }
    if (bound >= best_error) break;
    const double e = error_of(g);
    if (e < best_error) best_error = e, best = g;
  }
  return best;
}

GroupScale ScalePicker::from_amax(float amax) const {
  if (!std::isfinite(amax)) return finish(store_not_finite());
  if (s_.pow2 && !s_.global_scale) {
    // Powers of two: from the exponent of amax. An all-zero group counts as 2^-126 (as the OCP
    // reference implementation does), so its scale is defined.
    const float a = amax > 0 ? amax : kF32MinNormal;
    int e = 0;
    switch (s_.pow2_rounding) {
      case Pow2Rounding::Floor:  // OCP MX: floor(log2(amax)) - emax(element)
        e = std::ilogb(a) - element_emax_;
        break;
      case Pow2Rounding::Ceil: {  // the smallest 2^e with element_max * 2^e >= amax
        e = std::ilogb(a) - element_emax_;
        while (std::ldexp(double(element_max_), e) < double(a)) ++e;
        while (std::ldexp(double(element_max_), e - 1) >= double(a)) --e;
        break;
      }
      case Pow2Rounding::Nearest:
        return finish(store_rounded(a / element_max_));
    }
    return finish(store_pow2(e));
  }
  // Everything else: amax / element max (/ the global scale), rounded into the scale format.
  float scale = amax / element_max_;
  if (s_.global_scale) scale = before_global(scale);
  return finish(store_rounded(scale));
}

void ScalePicker::zero_point_for(float lo, GroupScale& g) const {
  const float z = std::nearbyint(-lo / g.effective);
  g.zero_point = uint8_t(std::clamp(z, 0.0f, element_max_));
}

GroupScale ScalePicker::from_range(float lo, float hi) const {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return finish(store_not_finite());
  GroupScale g = finish(store_rounded((hi - lo) / element_max_));
  zero_point_for(lo, g);
  return g;
}

void ScalePicker::pick_batch(const float* x, size_t n, size_t group_len,
                             const kernels::ConvertBackend& backend, GroupScale* out) {
  const size_t groups = (n + group_len - 1) / group_len;
  raw_.resize(groups);
  flags_.assign(groups, 0);  // 1: a NaN or inf in the group
  std::vector<float> lows;
  if (s_.asymmetric) lows.resize(groups);
  tops_.resize(groups);
  backend.max_abs_bits(x, n, group_len, tops_.data());  // every group's amax in one SIMD pass
  if (s_.rule == ScaleRule::AbsMax && !s_.asymmetric && batch_fast_paths(groups, backend, out))
    return;
  for (size_t g = 0; g < groups; ++g) {
    const float* v = x + g * group_len;
    const size_t m = std::min(group_len, n - g * group_len);
    const uint32_t top = tops_[g];
    flags_[g] =
        top >= 0x7F800000u && s_.rule != ScaleRule::Fixed;  // a fixed scale ignores the values
    if (s_.rule == ScaleRule::Fixed) {
      raw_[g] = s_.fixed_scale;
    } else if (s_.asymmetric) {
      float lo = 0, hi = 0;
      for (size_t i = 0; i < m; ++i) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
      }
      lows[g] = lo;
      raw_[g] = (hi - lo) / element_max_;
    } else {
      // The same arithmetic as from_amax().
      const float amax = bits_float(top);
      if (s_.pow2 && !s_.global_scale) {
        if (s_.pow2_rounding == Pow2Rounding::Floor && top >= 0x00800000u && top < 0x7F800000u) {
          // OCP MX, for a normal amax: its exponent field minus the bias is floor(log2(amax)).
          out[g] = finish(store_pow2(int(top >> 23) - 127 - element_emax_));
          raw_[g] = -1;  // marks "done"
          continue;
        }
        if (s_.pow2_rounding != Pow2Rounding::Nearest) {
          out[g] = from_amax(amax);
          raw_[g] = -1;
          continue;
        }
        raw_[g] = (amax > 0 ? amax : kF32MinNormal) / element_max_;
      } else {
        raw_[g] = amax / element_max_;
        if (s_.global_scale) raw_[g] = before_global(raw_[g]);
      }
    }
  }
  // Round every remaining scale into the scale format at once.
  if (!s_.scale_is_f32 && !s_.pow2) {
    codes_.resize(groups);
    backend.encode(tables_->scale_plan, raw_.data(), kernels::SourceType::F32, groups, 0,
                   codes_.data(), 4);
  }
  for (size_t g = 0; g < groups; ++g) {
    if (flags_[g]) {
      out[g] = finish(store_not_finite());
      continue;
    }
    if (raw_[g] == -1.0f) continue;
    uint32_t stored;
    if (s_.pow2 || s_.scale_is_f32) {
      stored = store_rounded(raw_[g]);
    } else {
      const float value = tables_->decode_table.empty() ? ref::decode(s_.scale_format, codes_[g])
                                                        : tables_->decode_table[codes_[g]];
      stored = value > 0 ? codes_[g] : tables_->min_positive_code;
    }
    out[g] = finish(stored);
    if (s_.asymmetric) zero_point_for(lows[g], out[g]);
  }
}

// The two shapes nearly every block-scaled preset has, as straight loops over the groups (the same
// arithmetic as from_amax() and store_rounded()):
//  * OCP MX: power-of-two scales by the floor rule, from the exponent field of each amax;
//  * a narrow scale format (E4M3 for NVFP4, ...): amax / max [/ global], rounded by one bulk
//    conversion, a zero scale replaced by the smallest positive one.
bool ScalePicker::batch_fast_paths(size_t groups, const kernels::ConvertBackend& backend,
                                   GroupScale* out) {
  const uint32_t not_finite = store_not_finite();
  if (s_.pow2 && !s_.global_scale && s_.pow2_rounding == Pow2Rounding::Floor) {
    for (size_t g = 0; g < groups; ++g) {
      const uint32_t top = tops_[g];
      if (top < 0x00800000u) {  // zero or a float32 subnormal amax: the general rule
        out[g] = from_amax(bits_float(top));
        continue;
      }
      out[g] = top >= 0x7F800000u ? finish(not_finite)
                                  : finish(store_pow2(int(top >> 23) - 127 - element_emax_));
    }
    return true;
  }
  if (s_.pow2 || s_.scale_is_f32 || tables_->decode_table.empty()) return false;
  for (size_t g = 0; g < groups; ++g) {
    const float scale = bits_float(tops_[g]) / element_max_;
    raw_[g] = s_.global_scale ? before_global(scale) : scale;
  }
  codes_.resize(groups);
  backend.encode(tables_->scale_plan, raw_.data(), kernels::SourceType::F32, groups, 0,
                 codes_.data(), 4);
  const size_t mask = tables_->decode_table.size() - 1;
  for (size_t g = 0; g < groups; ++g) {
    uint32_t c = codes_[g];
    c = tables_->decode_table[c & mask] > 0 ? c : tables_->min_positive_code;
    c = tops_[g] >= 0x7F800000u ? not_finite : c;
    out[g].stored = c;
    const float base = tables_->decode_table[c & mask];
    out[g].effective = s_.global_scale ? with_global(base) : base;
    out[g].zero_point = 0;
  }
  return true;
}

GroupScale ScalePicker::pick(const float* x, size_t n, float* scratch,
                             const ErrorFn& error_of) const {
  if (s_.rule == ScaleRule::Fixed) {
    GroupScale g = finish(store_rounded(s_.fixed_scale));
    if (s_.asymmetric) g.zero_point = uint8_t(std::nearbyint(element_max_ / 2));  // mid-range
    return g;
  }
  // Largest magnitude (or range), NaN and inf poisoning the group.
  float amax = 0, lo = 0, hi = 0;
  bool finite = true;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    finite = finite && std::isfinite(v);
    amax = std::max(amax, std::fabs(v));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!finite) return finish(store_not_finite());
  if (s_.rule == ScaleRule::Percentile && n > 0) {
    for (size_t i = 0; i < n; ++i) scratch[i] = std::fabs(x[i]);
    const auto k = size_t(std::ceil(double(s_.percentile) / 100.0 * double(n)));
    const size_t rank = std::min(n, std::max<size_t>(k, 1)) - 1;
    std::nth_element(scratch, scratch + rank, scratch + n);
    amax = scratch[rank];
  }
  const auto candidate = [&](float ratio) {
    return s_.asymmetric ? from_range(lo * ratio, hi * ratio) : from_amax(amax * ratio);
  };
  GroupScale best = candidate(1.0f);
  if (s_.rule == ScaleRule::Sweep && n > 0 && amax > 0) return sweep(x, n, best, error_of);
  if (s_.rule == ScaleRule::FourOverSix && n > 0) {
    // amax * 6/4 mapped to 6 is amax mapped to 4.
    const GroupScale four = candidate(element_max_ / 4.0f);
    return error_of(four) < error_of(best) ? four : best;
  }
  if (s_.rule != ScaleRule::Mse || n == 0) return best;
  // MSE: clip ratios from 1 down to mse_min_ratio; absmax (ratio 1) wins ties. Power-of-two
  // scales also try the next power up, since the OCP floor rule itself may clip.
  double best_error = error_of(best);
  uint32_t previous = best.stored;
  const bool try_up = s_.pow2 && !s_.global_scale;
  for (int k = try_up ? 0 : 1; k < s_.mse_steps; ++k) {
    const auto ratio =
        k == 0
            ? 2.0f
            : float(1.0 - double(k) * (1.0 - double(s_.mse_min_ratio)) / double(s_.mse_steps - 1));
    const GroupScale c = candidate(ratio);
    if (c.stored == previous && c.zero_point == best.zero_point) continue;
    previous = c.stored;
    const double err = error_of(c);
    if (err < best_error) {
      best_error = err;
      best = c;
    }
  }
  return best;
}

float two_level_global_scale(const Scheme& s, const float* x, size_t n,
                             const kernels::ConvertBackend& backend) {
  uint32_t top = 0;
  if (n > 0) backend.max_abs_bits(x, n, n, &top);
  if (top >= 0x7F800000u) return std::numeric_limits<float>::quiet_NaN();  // a NaN or inf
  const float amax = bits_float(top);
  if (amax == 0) return 1.0f;
  const float denominator = float(element_max(s)) * float(max_finite(s.scale_format));
  return s.global_divides ? denominator / amax : amax / denominator;
}

}  // namespace lowbit::quant
