// Quantize and dequantize a 4096 x 4096 float32 matrix (the shape of a 7B model's attention
// projection) with the block-scaled presets, on one thread, beside memcpy of the same matrix.
// Before timing, each scheme's result on the first 64 rows is checked bit for bit against the
// engine run with the scalar reference backend.
//
//   build/bench/bench_quantize --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/kernels/convert_backend.h"
#include "lowbit/quant/qtensor.h"
#include "quant/engine.h"

namespace lowbit {
namespace {

constexpr size_t kRows = 4096, kCols = 4096;
const char* const kSchemes[] = {"mxfp8_e4m3", "mxfp4",   "nvfp4",
                                "int4_g128",  "nf4_g64", "mxfp6_e2m3"};

// Weight-like values: Student-t with 4 degrees of freedom (heavier tails than a normal).
const std::vector<float>& matrix() {
  static const std::vector<float> x = [] {
    std::vector<float> v(kRows * kCols);
    std::mt19937 rng(7);
    std::student_t_distribution<float> t(4.0f);
    for (float& e : v) e = 0.02f * t(rng);
    return v;
  }();
  return x;
}

void check_against_reference(const Scheme& s) {
  const std::vector<size_t> shape = {64, kCols};
  const quant::GroupLayout layout = quant::make_group_layout(s, shape);
  const float global = quantize(s, matrix().data(), shape).global_scale;
  std::vector<float> fast(64 * kCols), slow(64 * kCols);
  quant::EngineOutputs f, r;
  f.dequantized = fast.data();
  r.dequantized = slow.data();
  quant::run_engine(kernels::default_convert_backend(), s, layout, matrix().data(), global, f);
  quant::run_engine(kernels::reference_convert_backend(), s, layout, matrix().data(), global, r);
  if (std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)) != 0) {
    std::fprintf(stderr, "bench_quantize: %s differs from the reference backend\n",
                 scheme_name(s).c_str());
    std::exit(1);
  }
}

void BM_Quantize(benchmark::State& state) {
  omp_set_num_threads(int(state.range(1)));
  const Scheme s = parse_scheme(kSchemes[state.range(0)]);
  check_against_reference(s);
  const std::vector<size_t> shape = {kRows, kCols};
  for (auto _ : state) {
    QTensor q = quantize(s, matrix().data(), shape);
    benchmark::DoNotOptimize(q.codes.data());
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kRows * kCols));
  state.SetBytesProcessed(int64_t(state.iterations() * kRows * kCols * sizeof(float)));
  state.SetLabel(scheme_name(s));
}

void BM_Dequantize(benchmark::State& state) {
  omp_set_num_threads(int(state.range(1)));
  const Scheme s = parse_scheme(kSchemes[state.range(0)]);
  const std::vector<size_t> shape = {kRows, kCols};
  const QTensor q = quantize(s, matrix().data(), shape);
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    dequantize(q, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kRows * kCols));
  state.SetBytesProcessed(int64_t(state.iterations() * kRows * kCols * sizeof(float)));
  state.SetLabel(scheme_name(s));
}

void BM_FakeQuant(benchmark::State& state) {
  omp_set_num_threads(int(state.range(1)));
  const Scheme s = parse_scheme(kSchemes[state.range(0)]);
  const std::vector<size_t> shape = {kRows, kCols};
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    fake_quant(s, matrix().data(), shape, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kRows * kCols));
  state.SetLabel(scheme_name(s));
}

// The baseline: copying the float32 matrix once.
void BM_MemcpyMatrix(benchmark::State& state) {
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    std::memcpy(out.data(), matrix().data(), out.size() * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kRows * kCols));
  state.SetBytesProcessed(int64_t(state.iterations() * kRows * kCols * sizeof(float)));
  state.SetLabel("memcpy of the float32 matrix");
}

void schemes(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (int64_t i = 0; i < int64_t(std::size(kSchemes)); ++i) b->Args({i, threads});
  b->ArgNames({"scheme", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Quantize)->Apply(schemes);
BENCHMARK(BM_Dequantize)->Apply(schemes);
BENCHMARK(BM_FakeQuant)->Apply(schemes);
BENCHMARK(BM_MemcpyMatrix)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace lowbit

BENCHMARK_MAIN();
