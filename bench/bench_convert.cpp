// Throughput of bulk encode, decode and fake-quant, single-threaded on the best SIMD backend,
// beside memcpy of the same bytes and the scalar reference. Every benchmark first checks its output
// against the reference on the same data and aborts if they differ.
//
//   build/bench/bench_convert --benchmark_counters_tabular=true
//
// Reports elements/s ("items_per_second") and bytes/s of input + output.
#include <benchmark/benchmark.h>
#include <hwy/base.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/format/reference.h"
#include "lowbit/io/npy.h"
#include "lowbit/kernels/convert.h"
#include "lowbit/kernels/convert_backend.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

using kernels::ConvertBackend;
using kernels::SourceType;

// Formats timed: the OCP ones, a generic ExMy no named table knows, and one that takes the
// kernels' general (not common_float) path.
const char* const kFormats[] = {
    "e4m3fn", "e5m2", "e2m3fn", "e2m1fn", "e3m3:bias=5:specials=none", "e5m2:subnormals=off"};

// Activations-like data: normal, scaled so the format's range is used. With LOWBIT_BENCH_INPUT
// set to a float32 .npy file, that array is used instead (bench/compare_ml_dtypes.py times
// ml_dtypes on the very same array).
std::vector<float> make_input(const Format& f, size_t n) {
  if (const char* path = std::getenv("LOWBIT_BENCH_INPUT")) {
    const NpyArray a = read_npy(path);
    if (a.descr != "<f4") throw Error(std::string(path) + ": LOWBIT_BENCH_INPUT must be float32");
    std::vector<float> x(a.count());
    std::memcpy(x.data(), a.data.data(), a.data.size());
    return x;
  }
  std::mt19937 rng(123);
  std::normal_distribution<float> normal(0.0f, float(max_finite(f)) / 8);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

const ConvertBackend& backend(int which) {
  const auto& all = kernels::convert_backends();
  return which < 0 ? all.back() : all[size_t(which)];
}

[[noreturn]] void mismatch(const char* what, const Format& f, size_t i) {
  std::fprintf(stderr, "bench_convert: %s of %s differs from the reference at element %zu\n", what,
               format_name(f).c_str(), i);
  std::exit(1);
}

// Checks a backend's three operations against the reference on `x`.
void validate(const ConvertBackend& b, const kernels::ConvertPlan& p, const std::vector<float>& x) {
  const size_t n = std::min<size_t>(x.size(), 1 << 16);
  std::vector<uint8_t> codes(n);
  std::vector<float> out(n);
  b.encode(p, x.data(), SourceType::F32, n, 0, codes.data(), 1);
  for (size_t i = 0; i < n; ++i)
    if (codes[i] != ref::round_to_code(p.format, x[i], p.options, i))
      mismatch("encode", p.format, i);
  b.decode(p, codes.data(), 1, n, out.data());
  for (size_t i = 0; i < n; ++i) {
    const float want = ref::decode(p.format, codes[i]);
    if (std::memcmp(&out[i], &want, sizeof want) != 0) mismatch("decode", p.format, i);
  }
  b.fake_quant(p, x.data(), SourceType::F32, n, 0, out.data());
  for (size_t i = 0; i < n; ++i)
    if (out[i] != ref::round_to_value(p.format, x[i], p.options, i))
      mismatch("fake-quant", p.format, i);
}

void set_counters(benchmark::State& state, size_t n, size_t bytes_per_element) {
  state.SetItemsProcessed(int64_t(state.iterations() * n));
  state.SetBytesProcessed(int64_t(state.iterations() * n * bytes_per_element));
}

// One benchmark's inputs: format, backend, data and plan, validated against the reference.
struct Case {
  Format format;
  const ConvertBackend& backend;
  std::vector<float> x;
  kernels::ConvertPlan plan;
  size_t n() const { return x.size(); }
};

// args: format index, element count, backend (-1 = best SIMD, 0 = reference)
Case setup(const benchmark::State& state, const RoundOptions& options = {}) {
  const Format f = parse_format(kFormats[state.range(0)]);
  Case c{f, backend(int(state.range(2))), make_input(f, size_t(state.range(1))),
         kernels::make_convert_plan(f, options)};
  validate(c.backend, c.plan, c.x);
  return c;
}

void BM_Encode(benchmark::State& state) {
  const Case c = setup(state);
  std::vector<uint8_t> codes(c.n());
  for (auto _ : state) {
    c.backend.encode(c.plan, c.x.data(), SourceType::F32, c.n(), 0, codes.data(), 1);
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c.n(), 5);
  state.SetLabel(format_name(c.format) + " " + c.backend.name);
}

void BM_Decode(benchmark::State& state) {
  const Case c = setup(state);
  std::vector<uint8_t> codes(c.n());
  std::vector<float> out(c.n());
  c.backend.encode(c.plan, c.x.data(), SourceType::F32, c.n(), 0, codes.data(), 1);
  for (auto _ : state) {
    c.backend.decode(c.plan, codes.data(), 1, c.n(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c.n(), 5);
  state.SetLabel(format_name(c.format) + " " + c.backend.name);
}

void BM_FakeQuant(benchmark::State& state) {
  const Case c = setup(state);
  std::vector<float> out(c.n());
  for (auto _ : state) {
    c.backend.fake_quant(c.plan, c.x.data(), SourceType::F32, c.n(), 0, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c.n(), 8);
  state.SetLabel(format_name(c.format) + " " + c.backend.name);
}

// Stochastic rounding pays for its random stream; shown for e4m3fn.
void BM_FakeQuantStochastic(benchmark::State& state) {
  const Case c = setup(state, {RoundMode::Stochastic, Overflow::Default, 1});
  std::vector<float> out(c.n());
  for (auto _ : state) {
    c.backend.fake_quant(c.plan, c.x.data(), SourceType::F32, c.n(), 0, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, c.n(), 8);
  state.SetLabel(format_name(c.format) + " stochastic " + c.backend.name);
}

// The baselines: copying the float32 array an encode reads (or a decode writes), with std::memcpy
// and with a plain loop the compiler vectorizes (glibc's memcpy uses `rep movsb` at these sizes,
// which is slow on some AMD Zen parts; the loop shows the bandwidth the kernels compete with).
void BM_Memcpy(benchmark::State& state) {
  const size_t n = size_t(state.range(1));
  std::vector<float> src(n, 1.0f), dst(n);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, 8);
  state.SetLabel("std::memcpy of the float32 array");
}

void BM_CopyLoop(benchmark::State& state) {
  const size_t n = size_t(state.range(1));
  std::vector<float> src(n, 1.0f), dst(n);
  for (auto _ : state) {
    const float* HWY_RESTRICT s = src.data();
    float* HWY_RESTRICT d = dst.data();
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, 8);
  state.SetLabel("vectorized copy loop of the float32 array");
}

void args(benchmark::internal::Benchmark* b, bool with_reference) {
  for (int64_t n : {int64_t(1) << 16, int64_t(1) << 24})
    for (int64_t f = 0; f < int64_t(std::size(kFormats)); ++f) {
      b->Args({f, n, -1});
      if (with_reference && n == (1 << 16)) b->Args({f, n, 0});
    }
}

BENCHMARK(BM_Encode)->Apply([](auto* b) { args(b, true); }) -> ArgNames({"fmt", "n", "backend"});
BENCHMARK(BM_Decode)->Apply([](auto* b) { args(b, false); }) -> ArgNames({"fmt", "n", "backend"});
BENCHMARK(BM_FakeQuant)
    ->Apply([](auto* b) { args(b, false); }) -> ArgNames({"fmt", "n", "backend"});
BENCHMARK(BM_FakeQuantStochastic)->Args({0, 1 << 16, -1})->ArgNames({"fmt", "n", "backend"});
BENCHMARK(BM_Memcpy)->Args({0, 1 << 16})->Args({0, 1 << 24})->ArgNames({"fmt", "n"});
BENCHMARK(BM_CopyLoop)->Args({0, 1 << 16})->Args({0, 1 << 24})->ArgNames({"fmt", "n"});

}  // namespace
}  // namespace lowbit

BENCHMARK_MAIN();
