// The public bulk API (lowbit/convert.h): argument checks, the plan, chunking and threads.
#include "lowbit/kernels/convert.h"

#include <omp.h>

#include <algorithm>
#include <string>

#include "lowbit/kernels/convert_backend.h"
#include "lowbit/kernels/convert_run.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace kernels {
namespace {

// Calls fn(begin, count, first_index + begin) over [0, n), in parallel for large n. Pieces never
// straddle a multiple of 2^32 in the stochastic counter (see ConvertBackend).
template <class Fn>
void for_each_chunk(size_t n, uint64_t first_index, Fn fn) {
  const auto run_piece = [&](size_t begin, size_t count) {
    while (count > 0) {
      const uint64_t index = first_index + begin;
      const uint64_t room = (uint64_t(1) << 32) - (index & 0xFFFFFFFFu);
      const size_t take = size_t(std::min<uint64_t>(count, room));
      fn(begin, take, index);
      begin += take;
      count -= take;
    }
  };
  if (n < kParallelMinimum || omp_get_max_threads() == 1) {
    run_piece(0, n);
    return;
  }
  const auto chunks = int64_t((n + kChunkElements - 1) / kChunkElements);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = size_t(c) * kChunkElements;
    run_piece(begin, std::min(kChunkElements, n - begin));
  }
}

size_t source_size(SourceType t) {
  return t == SourceType::F32 ? 4 : 2;
}

}  // namespace

void run_encode(const ConvertBackend& b, const ConvertPlan& p, const void* in, SourceType type,
                size_t n, uint64_t first_index, void* codes, int code_bytes) {
  for_each_chunk(n, first_index, [&](size_t begin, size_t count, uint64_t index) {
    b.encode(p, static_cast<const char*>(in) + begin * source_size(type), type, count, index,
             static_cast<char*>(codes) + begin * size_t(code_bytes), code_bytes);
  });
}

void run_decode(const ConvertBackend& b, const ConvertPlan& p, const void* codes, int code_bytes,
                size_t n, float* out) {
  for_each_chunk(n, 0, [&](size_t begin, size_t count, uint64_t) {
    b.decode(p, static_cast<const char*>(codes) + begin * size_t(code_bytes), code_bytes, count,
             out + begin);
  });
}

void run_fake_quant(const ConvertBackend& b, const ConvertPlan& p, const void* in, SourceType type,
                    size_t n, uint64_t first_index, float* out) {
  for_each_chunk(n, first_index, [&](size_t begin, size_t count, uint64_t index) {
    b.fake_quant(p, static_cast<const char*>(in) + begin * source_size(type), type, count, index,
                 out + begin);
  });
}

namespace {
// The part of `run` that starts at element `begin`.
ScaleRun sub_run(const ScaleRun& run, size_t begin) {
  const size_t at = run.phase + begin;
  return {run.scales + at / run.group_len, run.group_len, at % run.group_len, run.clamp};
}
}  // namespace

void run_encode_scaled(const ConvertBackend& b, const ConvertPlan& p, const float* x, size_t n,
                       const ScaleRun& run, uint64_t first_index, void* codes, int code_bytes) {
  for_each_chunk(n, first_index, [&](size_t begin, size_t count, uint64_t index) {
    b.encode_scaled(p, x + begin, count, sub_run(run, begin), index,
                    static_cast<char*>(codes) + begin * size_t(code_bytes), code_bytes);
  });
}

void run_decode_scaled(const ConvertBackend& b, const ConvertPlan& p, const void* codes,
                       int code_bytes, size_t n, const ScaleRun& run, float* out) {
  for_each_chunk(n, 0, [&](size_t begin, size_t count, uint64_t) {
    b.decode_scaled(p, static_cast<const char*>(codes) + begin * size_t(code_bytes), code_bytes,
                    count, sub_run(run, begin), out + begin);
  });
}

void run_fake_quant_scaled(const ConvertBackend& b, const ConvertPlan& p, const float* x, size_t n,
                           const ScaleRun& run, uint64_t first_index, float* out) {
  for_each_chunk(n, first_index, [&](size_t begin, size_t count, uint64_t index) {
    b.fake_quant_scaled(p, x + begin, count, sub_run(run, begin), index, out + begin);
  });
}

}  // namespace kernels

namespace {

template <class S>
constexpr kernels::SourceType source_type() {
  if constexpr (std::is_same_v<S, float>)
    return kernels::SourceType::F32;
  else if constexpr (std::is_same_v<S, BF16>)
    return kernels::SourceType::BF16;
  else
    return kernels::SourceType::FP16;
}

void check_code_width(const Format& f, size_t have) {
  if (int(have) < code_bytes(f))
    throw Error("format " + format_name(f) + " has " + std::to_string(f.bits()) +
                "-bit codes; they need " + std::to_string(code_bytes(f)) + "-byte storage, not " +
                std::to_string(have));
}

}  // namespace

int code_bytes(const Format& f) {
  const int bits = f.bits();
  return bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
}

template <class Source, class Code>
void encode(const Format& f, const Source* in, size_t n, Code* codes, const RoundOptions& opt,
            uint64_t first_index) {
  validate_format(f);
  check_code_width(f, sizeof(Code));
  const kernels::ConvertPlan plan = kernels::make_convert_plan(f, opt);
  kernels::run_encode(kernels::default_convert_backend(), plan, in, source_type<Source>(), n,
                      first_index, codes, int(sizeof(Code)));
}

template <class Code>
void decode(const Format& f, const Code* codes, size_t n, float* out) {
  validate_format(f);
  check_code_width(f, sizeof(Code));
  const kernels::ConvertPlan plan = kernels::make_convert_plan(f, {});
  kernels::run_decode(kernels::default_convert_backend(), plan, codes, int(sizeof(Code)), n, out);
}

template <class Source>
void fake_quant(const Format& f, const Source* in, size_t n, float* out, const RoundOptions& opt,
                uint64_t first_index) {
  validate_format(f);
  const kernels::ConvertPlan plan = kernels::make_convert_plan(f, opt);
  kernels::run_fake_quant(kernels::default_convert_backend(), plan, in, source_type<Source>(), n,
                          first_index, out);
}

const char* active_simd_target() {
  return kernels::default_convert_backend().name.c_str();
}

#define LOWBIT_INSTANTIATE_ENCODE(S, C) \
  template void encode<S, C>(const Format&, const S*, size_t, C*, const RoundOptions&, uint64_t);
#define LOWBIT_INSTANTIATE_FOR_SOURCE(S)                                                    \
  LOWBIT_INSTANTIATE_ENCODE(S, uint8_t)                                                     \
  LOWBIT_INSTANTIATE_ENCODE(S, uint16_t)                                                    \
  LOWBIT_INSTANTIATE_ENCODE(S, uint32_t)                                                    \
  template void fake_quant<S>(const Format&, const S*, size_t, float*, const RoundOptions&, \
                              uint64_t);
LOWBIT_INSTANTIATE_FOR_SOURCE(float)
LOWBIT_INSTANTIATE_FOR_SOURCE(BF16)
LOWBIT_INSTANTIATE_FOR_SOURCE(FP16)
template void decode<uint8_t>(const Format&, const uint8_t*, size_t, float*);
template void decode<uint16_t>(const Format&, const uint16_t*, size_t, float*);
template void decode<uint32_t>(const Format&, const uint32_t*, size_t, float*);

}  // namespace lowbit
