// The packed-weight kernels against their reference, on every compiled SIMD target this CPU runs:
// each weight decodes bit for bit to what dequantize() gives it, and every product lies within
// the float32 summation bound of the exact (float64) one.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/matmul_reference.h"
#include "lowbit/format/reference.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/quant/packed_weight.h"
#include "lowbit/quant/packing.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

using kernels::MatmulBackend;
using kernels::PackedMatrix;

const char* const kSchemes[] = {"int8:channel", "e4m3fn:channel", "e4m3fn:tensor", "e5m2:channel",
                                "mxfp8_e4m3",   "mxfp8_e5m2",     "mxfp6_e2m3",    "mxfp6_e3m2",
                                "int4:g128",    "int4_g128",      "nf4_g64",       "e2m1fn:g32",
                                "mxfp4",        "nvfp4",          "mxint8",        "msfp12",
                                "fp8_block128", "int4:g64:asym",  "e3m4:g32",      "int3:channel"};

// Shapes with ragged rows (cols not a multiple of 32) and rows not a multiple of 8.
const std::pair<size_t, size_t> kShapes[] = {{1, 1},   {3, 7},    {7, 31},   {9, 32},
                                             {17, 33}, {13, 100}, {40, 257}, {33, 576}};

std::vector<float> random_weights(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(n);
  for (float& v : w) v = normal(rng);
  for (size_t i = 0; i < n; i += 97) w[i] *= 20.0f;  // outliers, as real weights have
  return w;
}

// gamma_k * sum |w x| over row r: the float32 rounding bound of a summation tree k deep.
double gamma_bound(const PackedMatrix& m, size_t r, const float* x, size_t depth) {
  const double u = std::ldexp(1.0, -24), k = double(depth);
  double sum_abs = 0;
  for (size_t c = 0; c < m.cols; ++c)
    sum_abs += std::fabs(double(kernels::packed_weight(m, r, c)) * double(x[c]));
  return k * u / (1 - k * u) * sum_abs;
}

// The kernels' tree: two partial sums per lane, each a chain over padded / (2 lanes) columns,
// then the reduction, plus the final rounding of the float64 reference; byte codes with one scale
// per row take the scale after the sum (w = fl(code * scale) differs from code * scale by one
// rounding, and the final multiply is another): two more.
double summation_bound(const PackedMatrix& m, const MatmulBackend& b, size_t r, const float* x) {
  const size_t lanes = 2 * b.lanes;
  const bool scale_after =
      m.coding == kernels::WeightCoding::Lut8 && m.groups_per_row == 1 && m.offsets.empty();
  return gamma_bound(m, r, x,
                     (m.padded_cols + lanes - 1) / lanes + size_t(std::ceil(std::log2(lanes))) +
                         (scale_after ? 4 : 2));
}

// The same bound for any summation order (OpenBLAS's tiles): depth = cols + 1.
double any_order_bound(const PackedMatrix& m, size_t r, const float* x) {
  return gamma_bound(m, r, x, m.cols + 1);
}

TEST(PackedMatmul, BackendsCoverTheCpu) {
  const auto& backends = kernels::matmul_backends();
  ASSERT_GE(backends.size(), 2u) << "no Highway target registered";
  EXPECT_EQ(backends.front().name, "reference");
  for (const MatmulBackend& b : backends) std::printf("matmul backend: %s\n", b.name.c_str());
}

TEST(PackedMatmul, DecodesExactlyWhatDequantizeGives) {
  for (const char* name : kSchemes)
    for (const auto& [rows, cols] : kShapes) {
      const Scheme s = parse_scheme(name);
      if (!packed_kernel_gap(s, rows, cols).empty()) continue;  // e.g. blocks wider than the row
      const std::vector<float> w = random_weights(rows * cols, uint32_t(rows * 131 + cols));
      const QTensor q = quantize(s, w.data(), {rows, cols});
      std::vector<float> expected(rows * cols);
      dequantize(q, expected.data());
      const PackedMatrix m = pack_weight(q);
      for (const MatmulBackend& b : kernels::matmul_backends()) {
        std::vector<float> got(rows * m.padded_cols);
        b.decode_rows(m, 0, rows, got.data());
        for (size_t r = 0; r < rows; ++r)
          for (size_t c = 0; c < m.padded_cols; ++c) {
            const float v = got[r * m.padded_cols + c];
            if (c >= cols) {
              ASSERT_TRUE(std::isfinite(v)) << name << " padding " << b.name;
              continue;
            }
            const float e = expected[r * cols + c];
            ASSERT_EQ(std::memcmp(&v, &e, 4), 0)
                << name << " " << rows << "x" << cols << " (" << r << ", " << c << ") on " << b.name
                << ": " << v << " != " << e;
          }
      }
    }
}

// Every code of every format of 5 to 8 bits, NaN and inf included, on each backend's table-free
// decode (one byte per code, or the FP6 4+2 split), against dequantize() of the same codes.
TEST(PackedMatmul, EveryCodeDecodesAsDequantizeDoes) {
  for (const char* name : {"e4m3fn:channel", "e5m2:channel", "e4m3:channel", "e3m4:channel",
                           "int8:channel", "int8:channel:asym", "e2m3fn:channel", "e3m2fn:channel",
                           "int6:channel", "e4m3fnuz:channel"}) {
    const Scheme s = parse_scheme(name);
    const int bits = s.element.bits();
    const std::vector<float> w = random_weights(256, 5);
    QTensor q = quantize(s, w.data(), {1, 256});
    std::vector<uint8_t> codes(256);
    for (size_t c = 0; c < 256; ++c) codes[c] = uint8_t(c % (size_t(1) << bits));
    pack_codes(codes.data(), codes.size(), bits, q.codes.data());
    std::vector<float> expected(256);
    dequantize(q, expected.data());
    const PackedMatrix m = pack_weight(q);
    ASSERT_EQ(m.coding, bits == 6 ? kernels::WeightCoding::Split6 : kernels::WeightCoding::Lut8)
        << name;
    for (const MatmulBackend& b : kernels::matmul_backends()) {
      std::vector<float> got(m.padded_cols);
      b.decode_rows(m, 0, 1, got.data());
      for (size_t c = 0; c < 256; ++c) {
        const float e = expected[c];
        if (std::isnan(e)) {
          EXPECT_TRUE(std::isnan(got[c])) << name << " code " << c << " on " << b.name;
        } else {
          EXPECT_EQ(std::memcmp(&got[c], &e, 4), 0) << name << " code " << int(codes[c]) << " on "
                                                    << b.name << ": " << got[c] << " != " << e;
        }
      }
    }
  }
}

// The FP6 4+2 split stores 6 bits per weight: 24 bytes per 32.
TEST(PackedMatmul, Fp6SplitTakesSixBitsPerWeight) {
  const std::vector<float> w = random_weights(4 * 96, 9);
  const PackedMatrix m = pack_weight(quantize(parse_scheme("mxfp6_e3m2"), w.data(), {4, 96}));
  EXPECT_EQ(m.coding, kernels::WeightCoding::Split6);
  EXPECT_EQ(m.codes.size(), 4u * 96 * 6 / 8);
}

void check_products(const PackedMatrix& m, const char* what) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (size_t n : {1, 2, 3, 5, 8, 9, 33}) {
    std::vector<float> x(n * m.cols);
    for (float& v : x) v = normal(rng);
    // The reference, row by row of x.
    std::vector<float> expected(n * m.rows);
    const MatmulBackend& ref = kernels::matmul_backends().front();
    std::vector<float> padded(m.padded_cols, 0.0f);
    for (size_t j = 0; j < n; ++j) {
      std::copy_n(x.data() + j * m.cols, m.cols, padded.data());
      ref.gemv(m, 0, m.rows, padded.data(), 1, expected.data() + j * m.rows, m.rows);
    }
    for (const MatmulBackend& b : kernels::matmul_backends())
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        std::vector<float> y(n * m.rows, NAN);
        kernels::matmul(m, x.data(), n, y.data(), b);
        for (size_t j = 0; j < n; ++j)
          for (size_t r = 0; r < m.rows; ++r) {
            const float* xr = x.data() + j * m.cols;
            const double bound = n <= kernels::kMaxGemvRows ? summation_bound(m, b, r, xr)
                                                            : any_order_bound(m, r, xr);
            ASSERT_LE(std::fabs(double(y[j * m.rows + r]) - double(expected[j * m.rows + r])),
                      bound)
                << what << " " << m.rows << "x" << m.cols << " n=" << n << " threads=" << threads
                << " row " << r << " on " << b.name;
          }
      }
  }
  omp_set_num_threads(omp_get_num_procs());
}

TEST(PackedMatmul, ProductsWithinTheSummationBound) {
  for (const char* name : kSchemes)
    for (const auto& [rows, cols] : kShapes) {
      const Scheme s = parse_scheme(name);
      if (!packed_kernel_gap(s, rows, cols).empty()) continue;
      const std::vector<float> w = random_weights(rows * cols, uint32_t(rows + cols));
      check_products(pack_weight(quantize(s, w.data(), {rows, cols})), name);
    }
}

TEST(PackedMatmul, LargeEnoughToThread) {
  // 300 x 600 = 180k weights: above the size where matmul splits rows between threads.
  const std::vector<float> w = random_weights(300 * 600, 3);
  check_products(pack_weight(quantize(parse_scheme("mxfp4"), w.data(), {300, 600})), "mxfp4");
  check_products(pack_bf16(w.data(), 300, 600), "bf16");
}

// W8A8 int8: the integer sums equal the exact ones on every backend; the scaled outputs follow.
TEST(PackedMatmul, Int8ActivationSumsAreExact) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> code(-128, 127);
  for (const auto& [rows, cols] :
       {std::pair<size_t, size_t>{1, 1}, {7, 31}, {9, 33}, {40, 257}, {300, 600}}) {
    const std::vector<float> w = random_weights(rows * cols, uint32_t(rows * cols));
    const PackedMatrix m =
        pack_weight(quantize(parse_scheme("int8:channel"), w.data(), {rows, cols}));
    ASSERT_TRUE(kernels::takes_int8_activations(m));
    for (size_t n : {1, 3, 8, 13, 40}) {  // more than 8: the prefill kernel (gemm_i8)
      std::vector<int8_t> x(n * cols);
      for (int8_t& v : x) v = int8_t(code(rng));
      x[0] = -128;  // the extreme codes too
      std::vector<float> scale(n);
      for (size_t j = 0; j < n; ++j) scale[j] = 0.01f * float(j + 1);
      for (const MatmulBackend& b : kernels::matmul_backends())
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          std::vector<float> y(n * rows);
          kernels::matmul_w8a8(m, x.data(), scale.data(), n, y.data(), b);
          for (size_t j = 0; j < n; ++j)
            for (size_t r = 0; r < rows; ++r) {
              int64_t exact = 0;
              for (size_t c = 0; c < cols; ++c)
                exact += int64_t(x[j * cols + c]) * int64_t(int8_t(kernels::packed_code(m, r, c)));
              const float expected = float(exact) * scale[j] * m.scale(r, 0);
              ASSERT_EQ(y[j * rows + r], expected)
                  << rows << "x" << cols << " n=" << n << " row " << r << " on " << b.name;
            }
        }
    }
  }
  omp_set_num_threads(omp_get_num_procs());
  const std::vector<float> w = random_weights(8 * 64, 2);
  EXPECT_FALSE(kernels::takes_int8_activations(
      pack_weight(quantize(parse_scheme("int8:g32"), w.data(), {8, 64}))));
  bool gemm = false;  // the VNNI target's prefill kernel, where this CPU runs it
  for (const MatmulBackend& b : kernels::matmul_backends()) gemm = gemm || b.gemm_i8 != nullptr;
  std::printf("W8A8 prefill kernel (gemm_i8) on this CPU: %s\n", gemm ? "yes" : "no");
  EXPECT_FALSE(kernels::takes_int8_activations(
      pack_weight(quantize(parse_scheme("e4m3fn:channel"), w.data(), {8, 64}))));
}

// y (every scale 1) must be the exact integer sum of lut_int[code] * x; ys (the scales, the
// activation's as x_scale(j, c) gives it) within gamma_depth * sum |w x| of the exact product.
template <class XScale>
void check_integer_sums(const PackedMatrix& m, const int8_t* x, size_t n,
                        const std::vector<float>& y, const std::vector<float>& ys,
                        const XScale& x_scale, size_t depth, const std::string& what) {
  const size_t rows = m.rows, cols = m.cols;
  for (size_t j = 0; j < n; ++j)
    for (size_t r = 0; r < rows; ++r) {
      int64_t exact = 0;
      double scaled = 0, sum_abs = 0;
      for (size_t c = 0; c < cols; ++c) {
        exact += int64_t(m.lut_int[kernels::packed_code(m, r, c)]) * x[j * cols + c];
        const double t = double(kernels::packed_weight(m, r, c)) * x[j * cols + c] * x_scale(j, c);
        scaled += t;
        sum_abs += std::fabs(t);
      }
      ASSERT_EQ(y[j * rows + r], float(exact))
          << what << " " << rows << "x" << cols << " row " << r << " input " << j;
      ASSERT_LE(std::fabs(ys[j * rows + r] - scaled),
                double(depth) * std::ldexp(1.0, -24) * sum_abs * 1.001)
          << what << " scaled, row " << r << " input " << j;
    }
}

// W4A8: with every scale 1 the result is the exact integer sum (below 2^24, so float32 holds it);
// with the scheme's scales it lies within the summation bound of the exact product.
TEST(PackedMatmul, W4A8SumsAreExactIntegers) {
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> code(-127, 127);
  for (const char* name : {"int4:g32", "mxfp4", "nvfp4", "int4:g128", "e2m1fn:g64", "int4:channel"})
    for (const auto& [rows, cols] :
         {std::pair<size_t, size_t>{1, 1}, {7, 31}, {9, 64}, {17, 96}, {40, 257}, {300, 600}}) {
      const std::vector<float> w = random_weights(rows * cols, uint32_t(rows + 7 * cols));
      PackedMatrix m = pack_weight(quantize(parse_scheme(name), w.data(), {rows, cols}));
      ASSERT_TRUE(kernels::takes_w4a8(m)) << name;
      for (size_t n : {1, 2, 5, 8, 11}) {
        std::vector<int8_t> x(n * cols);
        for (int8_t& v : x) v = int8_t(code(rng));
        const std::vector<float> ones(n, 1.0f);
        PackedMatrix unit = m;  // every group scale 1 (times the table's unit)
        unit.scales.assign(unit.rows * unit.groups_per_row, 1.0f / unit.int_unit);
        unit.scale_codes.clear();
        for (const MatmulBackend& b : kernels::matmul_backends())
          for (int threads : {1, 2}) {
            omp_set_num_threads(threads);
            std::vector<float> y(n * rows), ys(n * rows);
            kernels::matmul_w4a8(unit, x.data(), ones.data(), n, y.data(), b);
            kernels::matmul_w4a8(m, x.data(), ones.data(), n, ys.data(), b);
            // 4-element integer runs, then float32 sums scaled per run.
            check_integer_sums(
                m, x.data(), n, y, ys, [](size_t, size_t) { return 1.0; }, cols / 4 + 8,
                std::string(name) + " n=" + std::to_string(n) + " on " + b.name);
          }
      }
    }
  omp_set_num_threads(omp_get_num_procs());
  const std::vector<float> w = random_weights(8 * 64, 2);
  EXPECT_FALSE(
      kernels::takes_w4a8(pack_weight(quantize(parse_scheme("nf4_g64"), w.data(), {8, 64}))));
  EXPECT_THROW(kernels::matmul_w4a4(pack_weight(quantize(parse_scheme("mxfp4"), w.data(), {8, 64})),
                                    std::vector<int8_t>(64).data(), nullptr, 1,
                                    std::vector<float>(8).data()),
               Error);
  EXPECT_FALSE(
      kernels::takes_w4a8(pack_weight(quantize(parse_scheme("int4_g128"), w.data(), {8, 64}))));
}

// W4A4: activation levels with a scale per 16 elements (e2m1 significands, int4 codes). With
// every scale 1 the result is the exact integer sum; with scales, within the summation bound of
// the exact product (one more rounding: the weight and activation scales multiplied first).
TEST(PackedMatmul, W4A4BlockSumsAreExactIntegers) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> level(-12, 12);  // e2m1 significands times 2
  std::uniform_int_distribution<int> exponent(-6, 3);
  for (const char* name : {"mxfp4", "nvfp4", "int4:g32", "e2m1fn:g64"})
    for (const auto& [rows, cols] :
         {std::pair<size_t, size_t>{1, 1}, {7, 31}, {9, 64}, {17, 100}, {300, 600}}) {
      const std::vector<float> w = random_weights(rows * cols, uint32_t(rows + 3 * cols));
      const PackedMatrix m = pack_weight(quantize(parse_scheme(name), w.data(), {rows, cols}));
      PackedMatrix unit = m;
      unit.scales.assign(unit.rows * unit.groups_per_row, 1.0f / unit.int_unit);
      unit.scale_codes.clear();
      const size_t blocks = (cols + 15) / 16;
      for (size_t n : {1, 3, 8, 10}) {
        std::vector<int8_t> x(n * cols);
        for (int8_t& v : x) v = int8_t(level(rng));
        std::vector<float> ones(n * blocks, 1.0f), scales(n * blocks);
        for (float& v : scales) v = std::ldexp(1.0f, exponent(rng));
        for (const MatmulBackend& b : kernels::matmul_backends())
          for (int threads : {1, 2}) {
            omp_set_num_threads(threads);
            std::vector<float> y(n * rows), ys(n * rows);
            kernels::matmul_w4a4(unit, x.data(), ones.data(), n, y.data(), b);
            kernels::matmul_w4a4(m, x.data(), scales.data(), n, ys.data(), b);
            // One rounding more than W4A8: the two block scales multiplied first.
            check_integer_sums(
                m, x.data(), n, y, ys,
                [&](size_t j, size_t c) { return double(scales[j * blocks + c / 16]); },
                cols / 4 + 9, std::string(name) + " n=" + std::to_string(n) + " on " + b.name);
          }
      }
    }
  omp_set_num_threads(omp_get_num_procs());
}

// Packing a weight read a chunk of rows at a time gives the bytes of packing it whole, for every
// kind of scale layout (per channel, groups, NVFP4's tensor scale, 2-D blocks, per tensor).
TEST(PackedMatmul, PackingRowByRowEqualsPackingWhole) {
  for (const char* name : {"mxfp4", "nvfp4", "int8:channel", "int4:g64:asym", "fp8_block128",
                           "e4m3fn:tensor", "mxfp6_e2m3", "nf4_g64"})
    for (const auto& [rows, cols] : {std::pair<size_t, size_t>{1000, 600}, {7, 31}}) {
      const Scheme s = parse_scheme(name);
      if (!packed_kernel_gap(s, rows, cols).empty()) continue;
      std::vector<float> w = random_weights(rows * cols, uint32_t(rows + cols));
      w[rows * cols - 5] = 40.0f;  // the tensor's largest magnitude in the last chunk
      const PackedMatrix whole = pack_weight(quantize(s, w.data(), {rows, cols}));
      size_t reads = 0;
      float global = 0;
      const PackedMatrix streamed = pack_weight_rows(
          s, rows, cols,
          [&](size_t r0, size_t r1, float* out) {
            ++reads;
            std::copy(w.begin() + long(r0 * cols), w.begin() + long(r1 * cols), out);
          },
          &global);
      EXPECT_EQ(streamed.rows, whole.rows) << name;
      EXPECT_EQ(streamed.codes, whole.codes) << name << " " << rows << "x" << cols;
      EXPECT_EQ(streamed.scales, whole.scales) << name;
      EXPECT_EQ(streamed.scale_codes, whole.scale_codes) << name;
      EXPECT_EQ(streamed.offsets, whole.offsets) << name;
      EXPECT_EQ(streamed.global, whole.global) << name;
      EXPECT_EQ(global, s.global_scale ? whole.global : 1.0f) << name;
      if (rows == 1000 && s.granularity != Granularity::Tensor) {
        EXPECT_GT(reads, 1u) << name;  // in chunks
      }
    }
}

TEST(PackedMatmul, Bf16RoundsToNearestEven) {
  const float w[] = {1.0f, 1.00390625f /* tie: to 1 */, 1.01171875f /* tie: up */, -3.1f, 0.0f};
  const PackedMatrix m = pack_bf16(w, 1, 5);
  EXPECT_EQ(kernels::packed_weight(m, 0, 0), 1.0f);
  EXPECT_EQ(kernels::packed_weight(m, 0, 1), 1.0f);
  EXPECT_EQ(kernels::packed_weight(m, 0, 2), 1.015625f);
  EXPECT_EQ(kernels::packed_weight(m, 0, 3), -3.09375f);
  check_products(m, "bf16");
}

// A 2-byte file's weights: every binary16 and bfloat16 pattern decodes exactly (F16C's
// conversion, or the portable one) on every backend, and the products hold the bound.
TEST(PackedMatmul, HalfPrecisionWeightsDecodeEveryPattern) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  for (const auto& [coding, format] : {std::pair{kernels::WeightCoding::F16, formats::fp16},
                                       std::pair{kernels::WeightCoding::BF16, formats::bf16}}) {
    const PackedMatrix m = pack_half(all.data(), 1, all.size(), coding);
    for (const MatmulBackend& b : kernels::matmul_backends()) {
      std::vector<float> got(m.padded_cols);
      b.decode_rows(m, 0, 1, got.data());
      for (size_t c = 0; c < all.size(); ++c) {
        const float e = ref::decode(format, uint32_t(c));
        if (std::isnan(e))
          ASSERT_TRUE(std::isnan(got[c])) << m.scheme << " " << c << " on " << b.name;
        else
          ASSERT_EQ(std::memcmp(&got[c], &e, 4), 0)
              << m.scheme << " pattern " << c << " on " << b.name << ": " << got[c];
      }
    }
    const std::vector<float> w = random_weights(37 * 70, 4);
    std::vector<uint16_t> bits(w.size());
    encode(format, w.data(), w.size(), bits.data());
    check_products(pack_half(bits.data(), 37, 70, coding), m.scheme.c_str());
  }
}

TEST(PackedMatmul, SchemesWithoutAKernelSayWhatWouldWork) {
  EXPECT_NE(packed_kernel_gap(parse_scheme("e4m3fn:g24"), 8, 96).find("e4m3fn:g32"),
            std::string::npos);
  EXPECT_NE(packed_kernel_gap(parse_scheme("int8:channel:axis=1"), 8, 96).find("int8:channel"),
            std::string::npos);
  EXPECT_NE(packed_kernel_gap(parse_scheme("bf16:tensor"), 8, 96).find("16 bits"),
            std::string::npos);
  const std::vector<float> w = random_weights(8 * 96, 1);
  EXPECT_THROW(pack_weight(quantize(parse_scheme("e4m3fn:g24"), w.data(), {8, 96})), Error);
}

TEST(PackedMatmul, InconsistentLayoutsAreRejected) {
  const std::vector<float> w = random_weights(4 * 64, 1);
  PackedMatrix m = pack_weight(quantize(parse_scheme("mxfp4"), w.data(), {4, 64}));
  kernels::validate(m);
  PackedMatrix short_codes = m;
  short_codes.codes.pop_back();
  EXPECT_THROW(kernels::validate(short_codes), Error);
  PackedMatrix odd_group = m;
  odd_group.group = 24;
  EXPECT_THROW(kernels::validate(odd_group), Error);
  PackedMatrix both = m;
  both.scales.assign(both.scale_codes.size(), 1.0f);
  EXPECT_THROW(kernels::validate(both), Error);
}

}  // namespace
}  // namespace lowbit
