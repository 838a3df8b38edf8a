// Matrix-vector products with packed weights (the decode step of generation) at real model
// shapes, beside a read-bandwidth probe of the same bytes measured in the same benchmark, and
// OpenBLAS sgemv on the float32 weight. Each case first checks the kernel against the reference
// on a few rows and aborts if it is off.
//
//   build/bench/bench_matmul --benchmark_counters_tabular=true [--benchmark_filter=mxfp4]
//
// Counters: GB/s (packed weight bytes read per second, mean), best_GB/s and probe_GB/s (the best
// pass of the kernel and of the probe reading as many bytes, timed alike), of_probe (their ratio).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "lowbit/kernels/matmul.h"
#include "lowbit/quant/packed_weight.h"

namespace lowbit {
namespace {

const char* const kWeights[] = {"f32",          "bf16",          "int8:channel", "e4m3fn:channel",
                                "e5m2:channel", "e4m3fn:tensor", "int4:g128",    "int4_g128",
                                "nf4_g64",      "e2m1fn:g32",    "mxfp4",        "mxfp6_e2m3",
                                "mxfp6_e3m2",   "mxfp8_e4m3",    "nvfp4"};
// [out, in]: SmolLM2's down_proj and gate/up_proj, Llama-3-8B's down_proj and gate/up_proj.
const std::pair<size_t, size_t> kShapes[] = {
    {576, 1536}, {1536, 576}, {4096, 14336}, {14336, 4096}};

struct Case {
  std::vector<float> w;  // f32 only
  std::unique_ptr<kernels::PackedMatrix> packed;
  size_t bytes = 0;
};

const Case& get_case(size_t weight, size_t shape) {
  static std::map<std::pair<size_t, size_t>, Case> cache;
  auto it = cache.find({weight, shape});
  if (it != cache.end()) return it->second;
  const auto [rows, cols] = kShapes[shape];
  std::mt19937 rng(uint32_t(rows + cols));
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(rows * cols);
  for (float& v : w) v = normal(rng);
  Case c;
  const std::string name = kWeights[weight];
  if (name == "f32") {
    c.bytes = w.size() * 4;
    c.w = std::move(w);
  } else {
    c.packed = std::make_unique<kernels::PackedMatrix>(
        name == "bf16" ? pack_bf16(w.data(), rows, cols)
                       : pack_weight(quantize(parse_scheme(name), w.data(), {rows, cols})));
    c.bytes = c.packed->bytes();
  }
  return cache.emplace(std::make_pair(weight, shape), std::move(c)).first->second;
}

// Aborts unless the kernel's first rows agree with the reference (relative 1e-4 of sum |w x|).
void check(const kernels::PackedMatrix& m, const float* x, const float* y) {
  const auto& ref = kernels::matmul_backends().front();
  const size_t rows = std::min<size_t>(8, m.rows);
  std::vector<float> padded(m.padded_cols, 0.0f), expected(m.rows), w(rows * m.padded_cols);
  std::copy_n(x, m.cols, padded.data());
  ref.gemv(m, 0, rows, padded.data(), 1, expected.data(), m.rows);
  ref.decode_rows(m, 0, rows, w.data());
  for (size_t r = 0; r < rows; ++r) {
    double sum_abs = 0;
    for (size_t c = 0; c < m.cols; ++c)
      sum_abs += std::fabs(double(w[r * m.padded_cols + c]) * x[c]);
    if (std::fabs(double(y[r]) - expected[r]) > 1e-4 * sum_abs + 1e-30) {
      std::fprintf(stderr, "%s: row %zu is %g, the reference %g\n", m.scheme.c_str(), r, y[r],
                   expected[r]);
      std::abort();
    }
  }
}

// GB/s of `bytes` read by f, best of passes repeated for about 0.2 s (the kernel and the probe
// are timed the same way, one after the other).
template <class F>
double best_gbps(size_t bytes, const F& f) {
  double best = 0, total = 0;
  for (int i = 0; i < 1000 && total < 0.2; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += s;
    best = std::max(best, double(bytes) / s / 1e9);
  }
  return best;
}

double probe_gbps(size_t bytes) {
  static std::map<size_t, std::vector<uint8_t>> buffers;
  std::vector<uint8_t>& buf = buffers[bytes];
  if (buf.empty()) buf.assign((bytes + 63) / 64 * 64, 1);
  volatile uint64_t sink = 0;
  return best_gbps(buf.size(), [&] { sink = sink + kernels::read_probe(buf.data(), buf.size()); });
}

void BM_Gemv(benchmark::State& state) {
  const size_t weight = size_t(state.range(0)), shape = size_t(state.range(1));
  const int threads = int(state.range(2));
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  const Case& c = get_case(weight, shape);
  const auto [rows, cols] = kShapes[shape];
  std::vector<float> x(cols), y(rows);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  const auto run = [&] {
    if (c.packed)
      kernels::matmul(*c.packed, x.data(), 1, y.data());
    else
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(rows), int(cols), 1.0f, c.w.data(), int(cols),
                  x.data(), 1, 0.0f, y.data(), 1);
  };
  run();
  if (c.packed) check(*c.packed, x.data(), y.data());
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double gbps = double(c.bytes) * double(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(gbps / 1e9, benchmark::Counter::kIsRate);
  state.counters["weights/s"] = benchmark::Counter(double(rows * cols) * double(state.iterations()),
                                                   benchmark::Counter::kIsRate);
  const double kernel = best_gbps(c.bytes, run), probe = probe_gbps(c.bytes);
  state.counters["best_GB/s"] = kernel;
  state.counters["probe_GB/s"] = probe;
  state.counters["of_probe"] = kernel / probe;
  state.SetLabel(std::string(kWeights[weight]) + " " + std::to_string(rows) + "x" +
                 std::to_string(cols) + " t" + std::to_string(threads) + " " +
                 std::to_string(c.bytes >> 10) + " KiB");
}

void Args(benchmark::internal::Benchmark* b) {
  for (size_t w = 0; w < std::size(kWeights); ++w)
    for (size_t s = 0; s < std::size(kShapes); ++s)
      for (int t : {1, 2}) b->Args({int64_t(w), int64_t(s), t});
}
BENCHMARK(BM_Gemv)->Apply(Args)->UseRealTime()->MinTime(0.2);

}  // namespace
}  // namespace lowbit

BENCHMARK_MAIN();
