// The quantization engine (see engine.h and docs/quantization.md).
//
// Work is organised in spans: a contiguous run of values that forms consecutive groups (a row of
// a contiguous layout, or one gathered box). For a span: pick every group's scale, divide the
// values by their group's scale in float32, convert them all with one bulk call of the element
// format's kernel, and multiply back. Rows and boxes run in parallel.
#include "quant/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "lowbit/kernels/convert_run.h"
#include "lowbit/util/error.h"
#include "quant/scale_picker.h"

namespace lowbit::quant {
namespace {

using kernels::SourceType;

// Per-thread worker: the plans, the scale picker and the scratch buffers.
class SpanQuantizer {
 public:
  SpanQuantizer(const kernels::ConvertBackend& backend, const Scheme& s, float global_scale)
      : backend_(backend),
        s_(s),
        picker_(s, global_scale),
        element_plan_(kernels::make_convert_plan(s.element, s.round)),
        // Asymmetric elements: round x / scale to an integer first, then add the zero point.
        int_plan_(kernels::make_convert_plan(Format::integer(16, true), s.round)),
        code_bytes_(code_bytes(s.element)),
        max_(picker_.element_max()),
        clip_at_(float(clip_threshold(s))) {}

  // x[0..n) are groups of group_len (the last may be short), the first being group first_group,
  // whose element j draws stochastic index first_group * capacity + j.
  void run(const float* x, size_t n, size_t group_len, size_t first_group, size_t capacity,
           const EngineOutputs& out, uint8_t* codes, float* dequantized) {
    const size_t groups = (n + group_len - 1) / group_len;
    scales_.resize(groups);
    const uint64_t first_index = uint64_t(first_group) * capacity;
    if (picker_.batchable()) {
      picker_.pick_batch(x, n, group_len, backend_, scales_.data());
    } else {
      for (size_t g = 0; g < groups; ++g) {
        const size_t begin = g * group_len, m = std::min(group_len, n - begin);
        scratch_.resize(std::max(scratch_.size(), m));
        scales_[g] = picker_.pick(x + begin, m, scratch_.data(), [&](const GroupScale& c) {
          return group_error(x + begin, m, c, first_index + begin);
        });
      }
    }
    for (size_t g = 0; g < groups; ++g) {
      if (out.scales) out.scales[first_group + g] = scales_[g].stored;
      if (out.zero_points) out.zero_points[first_group + g] = scales_[g].zero_point;
    }
    ErrorStats* stats = out.group_stats ? out.group_stats + first_group : nullptr;
    if (stats) std::fill(stats, stats + groups, ErrorStats{});
    effective_.resize(groups);
    zero_points_.resize(groups);
    for (size_t g = 0; g < groups; ++g) {
      effective_[g] = scales_[g].effective;
      zero_points_[g] = scales_[g].zero_point;
    }
    if (s_.asymmetric) {
      // Round x / scale to integers, then add the zero point (encode()).
      values_.resize(n);
      divide(x, n, group_len);
      codes_.resize(n * size_t(code_bytes_));
      uint8_t* c = codes != nullptr ? codes : codes_.data();
      encode(values_.data(), n, group_len, first_index, c, stats);
      if (dequantized)
        dequantize_span(c, n, group_len, effective_.data(), zero_points_.data(), dequantized);
    } else {
      // One pass per operation: the kernels divide by each group's scale, clamp and round (and
      // multiply back).
      const kernels::ScaleRun run_scales{effective_.data(), group_len, 0, max_};
      if (stats) count_clipped(x, n, group_len, stats);
      if (codes != nullptr) {
        kernels::run_encode_scaled(backend_, element_plan_, x, n, run_scales, first_index, codes,
                                   code_bytes_);
        if (dequantized)
          dequantize_span(codes, n, group_len, effective_.data(), nullptr, dequantized);
      } else if (dequantized) {
        kernels::run_fake_quant_scaled(backend_, element_plan_, x, n, run_scales, first_index,
                                       dequantized);
      }
    }
    if (stats && dequantized) measure_groups(x, dequantized, n, group_len, stats);
  }

  // The element step alone: x[i] in a group of one whose effective scale (and zero point) are
  // given, by the same arithmetic run() uses once it has picked the scales.
  void run_given_scales(const float* x, size_t n, const float* effective,
                        const uint8_t* zero_points, float* dequantized) {
    effective_.assign(effective, effective + n);
    zero_points_.assign(n, 0);
    scales_.assign(n, GroupScale{});
    for (size_t i = 0; i < n; ++i) {
      scales_[i].effective = effective[i];
      if (zero_points) scales_[i].zero_point = zero_points_[i] = zero_points[i];
    }
    if (s_.asymmetric) {
      values_.resize(n);
      divide(x, n, 1);
      codes_.resize(n * size_t(code_bytes_));
      encode(values_.data(), n, 1, 0, codes_.data(), nullptr);
      dequantize_span(codes_.data(), n, 1, effective_.data(), zero_points_.data(), dequantized);
    } else {
      const kernels::ScaleRun run_scales{effective_.data(), 1, 0, max_};
      kernels::run_fake_quant_scaled(backend_, element_plan_, x, n, run_scales, 0, dequantized);
    }
  }

  // Decodes codes and applies each group's scale (and zero point, for asymmetric schemes).
  void dequantize_span(const uint8_t* codes, size_t n, size_t group_len, const float* effective,
                       const uint8_t* zero_points, float* out) {
    if (s_.asymmetric) {
      for (size_t i = 0; i < n; ++i) {
        const size_t g = i / group_len;
        out[i] = float(int(codes[i]) - int(zero_points[g])) * effective[g];
      }
      return;
    }
    const kernels::ScaleRun run_scales{effective, group_len, 0, max_};
    kernels::run_decode_scaled(backend_, element_plan_, codes, code_bytes_, n, run_scales, out);
  }

 private:
  // values_ = x / scale for asymmetric schemes (no clamp: the zero point is added after rounding).
  void divide(const float* x, size_t n, size_t group_len) {
    float* __restrict v = values_.data();
    for (size_t begin = 0, g = 0; begin < n; begin += group_len, ++g) {
      const size_t end = std::min(n, begin + group_len);
      const float scale = effective_[g];
      for (size_t i = begin; i < end; ++i) v[i] = x[i] / scale;
    }
  }

  // Symmetric schemes: how many |x / scale| reach the clip threshold (clip_threshold()).
  void count_clipped(const float* x, size_t n, size_t group_len, ErrorStats* stats) const {
    for (size_t begin = 0, g = 0; begin < n; begin += group_len, ++g) {
      const size_t end = std::min(n, begin + group_len);
      size_t clipped = 0;
      for (size_t i = begin; i < end; ++i) clipped += std::fabs(x[i] / effective_[g]) >= clip_at_;
      stats[g].clipped = clipped;
    }
  }

  // Codes of values[0..n) (span order) into `codes`. Asymmetric: clipped = codes that the
  // [0, qmax] range cut.
  void encode(const float* values, size_t n, size_t group_len, uint64_t first_index, uint8_t* codes,
              ErrorStats* stats) {
    if (!s_.asymmetric) {
      kernels::run_encode(backend_, element_plan_, values, SourceType::F32, n, first_index, codes,
                          code_bytes_);
      return;
    }
    ints_.resize(n);
    kernels::run_encode(backend_, int_plan_, values, SourceType::F32, n, first_index, ints_.data(),
                        2);
    const int qmax = int(max_);
    for (size_t i = 0; i < n; ++i) {
      const int z = scales_[i / group_len].zero_point;
      const int q = int(int16_t(ints_[i])) + z;
      if (stats && (q < 0 || q > qmax)) ++stats[i / group_len].clipped;
      codes[i] = uint8_t(std::clamp(q, 0, qmax));
    }
  }

  // Squared error of one group under a candidate scale (the MSE rule).
  double group_error(const float* x, size_t m, const GroupScale& c, uint64_t first_index) {
    trial_.resize(m);
    trial_out_.resize(m);
    for (size_t i = 0; i < m; ++i) {
      float v = x[i] / c.effective;
      if (!s_.asymmetric) v = v > max_ ? max_ : v < -max_ ? -max_ : v;
      trial_[i] = v;
    }
    if (s_.asymmetric) {
      ints_.resize(m);
      kernels::run_encode(backend_, int_plan_, trial_.data(), SourceType::F32, m, first_index,
                          ints_.data(), 2);
      const int qmax = int(max_);
      for (size_t i = 0; i < m; ++i) {
        const int q = std::clamp(int(int16_t(ints_[i])) + int(c.zero_point), 0, qmax);
        trial_out_[i] = float(q - int(c.zero_point)) * c.effective;
      }
    } else {
      kernels::run_fake_quant(backend_, element_plan_, trial_.data(), SourceType::F32, m,
                              first_index, trial_out_.data());
      for (size_t i = 0; i < m; ++i) trial_out_[i] *= c.effective;
    }
    double sse = 0;
    for (size_t i = 0; i < m; ++i) {
      const double d = double(x[i]) - double(trial_out_[i]);
      sse += d * d;
    }
    return sse;
  }

  void measure_groups(const float* x, const float* dq, size_t n, size_t group_len,
                      ErrorStats* stats) const {
    for (size_t begin = 0, g = 0; begin < n; begin += group_len, ++g)
      stats[g].add_values(x + begin, dq + begin, std::min(n, begin + group_len) - begin);
  }

 private:
  const kernels::ConvertBackend& backend_;
  const Scheme& s_;
  ScalePicker picker_;
  kernels::ConvertPlan element_plan_, int_plan_;
  int code_bytes_;
  float max_;
  float clip_at_;
  std::vector<GroupScale> scales_;
  std::vector<float> effective_;
  std::vector<uint8_t> zero_points_;
  std::vector<float> values_, scratch_, trial_, trial_out_;
  std::vector<uint8_t> codes_;
  std::vector<uint16_t> ints_;
};

// Runs fn(quantizer, item) for items [0, count) on all threads, one SpanQuantizer each.
template <class Fn>
void parallel_items(const kernels::ConvertBackend& backend, const Scheme& s, float global_scale,
                    size_t count, Fn fn) {
  if (count <= 1 || omp_get_max_threads() == 1) {
    SpanQuantizer q(backend, s, global_scale);
    for (size_t i = 0; i < count; ++i) fn(q, i);
    return;
  }
#pragma omp parallel
  {
    SpanQuantizer q(backend, s, global_scale);
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < int64_t(count); ++i) fn(q, size_t(i));
  }
}

// Copies a box of the tensor into `dst` (row-major within the box) or back.
template <class T>
void gather(const T* src, const Box& b, size_t elem, T* dst) {
  for (size_t r = 0; r < b.run_count; ++r)
    std::memcpy(dst + r * b.run_length * elem, src + (b.offset + r * b.stride) * elem,
                b.run_length * elem * sizeof(T));
}
template <class T>
void scatter(const T* src, const Box& b, size_t elem, T* dst) {
  for (size_t r = 0; r < b.run_count; ++r)
    std::memcpy(dst + (b.offset + r * b.stride) * elem, src + r * b.run_length * elem,
                b.run_length * elem * sizeof(T));
}

}  // namespace

void run_engine(const kernels::ConvertBackend& backend, const Scheme& s, const GroupLayout& layout,
                const float* x, float global_scale, const EngineOutputs& out) {
  const size_t cb = size_t(code_bytes(s.element));
  if (layout.contiguous) {
    parallel_items(backend, s, global_scale, layout.rows, [&](SpanQuantizer& q, size_t row) {
      const size_t offset = row * layout.row_len;
      q.run(x + offset, layout.row_len, layout.group_len, row * layout.groups_per_row,
            layout.group_capacity, out, out.codes ? out.codes + offset * cb : nullptr,
            out.dequantized ? out.dequantized + offset : nullptr);
    });
    return;
  }
  parallel_items(backend, s, global_scale, layout.group_count, [&](SpanQuantizer& q, size_t k) {
    const Box b = layout.box(k);
    thread_local std::vector<float> xs, dq;
    thread_local std::vector<uint8_t> codes;
    xs.resize(b.size());
    gather(x, b, 1, xs.data());
    if (out.codes) codes.resize(b.size() * cb);
    if (out.dequantized) dq.resize(b.size());
    q.run(xs.data(), b.size(), std::max<size_t>(b.size(), 1), k, layout.group_capacity, out,
          out.codes ? codes.data() : nullptr, out.dequantized ? dq.data() : nullptr);
    if (out.codes) scatter(codes.data(), b, cb, out.codes);
    if (out.dequantized) scatter(dq.data(), b, 1, out.dequantized);
  });
}

struct GivenScaleQuantizer::Impl {
  SpanQuantizer q;
};

GivenScaleQuantizer::GivenScaleQuantizer(const kernels::ConvertBackend& backend, const Scheme& s)
    : impl_(new Impl{SpanQuantizer(backend, s, 1.0f)}) {}
GivenScaleQuantizer::~GivenScaleQuantizer() = default;

void GivenScaleQuantizer::run(const float* x, size_t n, const float* scales,
                              const uint8_t* zero_points, float* out) {
  impl_->q.run_given_scales(x, n, scales, zero_points, out);
}

void dequantize_codes(const kernels::ConvertBackend& backend, const Scheme& s,
                      const GroupLayout& layout, const uint8_t* codes, const uint32_t* scales,
                      const uint8_t* zero_points, float global_scale, float* out) {
  const size_t cb = size_t(code_bytes(s.element));
  // Every group's effective scale first, in one pass.
  std::vector<float> effective(layout.group_count);
  {
    const ScalePicker picker(s, global_scale);
    for (size_t g = 0; g < effective.size(); ++g) effective[g] = picker.effective_of(scales[g]);
  }
  if (layout.contiguous) {
    parallel_items(backend, s, global_scale, layout.rows, [&](SpanQuantizer& q, size_t row) {
      const size_t offset = row * layout.row_len, first_group = row * layout.groups_per_row;
      q.dequantize_span(codes + offset * cb, layout.row_len, layout.group_len,
                        effective.data() + first_group,
                        zero_points ? zero_points + first_group : nullptr, out + offset);
    });
    return;
  }
  parallel_items(backend, s, global_scale, layout.group_count, [&](SpanQuantizer& q, size_t k) {
    const Box b = layout.box(k);
    thread_local std::vector<uint8_t> cs;
    thread_local std::vector<float> dq;
    cs.resize(b.size() * cb);
    dq.resize(b.size());
    gather(codes, b, cb, cs.data());
    q.dequantize_span(cs.data(), b.size(), std::max<size_t>(b.size(), 1), effective.data() + k,
                      zero_points ? zero_points + k : nullptr, dq.data());
    scatter(dq.data(), b, 1, out);
  });
}

}  // namespace lowbit::quant
