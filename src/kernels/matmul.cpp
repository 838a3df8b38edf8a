// The packed-weight matrix product: the layout checks and the drivers that split the work
// between threads (matrix-vector for decode batches, decoded tiles through sgemm for prefill).
#include "lowbit/kernels/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <type_traits>

#include "lowbit/util/error.h"

namespace lowbit::kernels {

size_t PackedMatrix::bytes() const {
  return codes.size() + scales.size() * sizeof(float) + scale_codes.size() +
         offsets.size() * sizeof(float);
}

void validate(const PackedMatrix& m) {
  const auto fail = [&](const std::string& what) {
    throw Error("packed weight (" + m.scheme + ", " + std::to_string(m.rows) + " x " +
                std::to_string(m.cols) + "): " + what);
  };
  if (m.rows == 0 || m.cols == 0) fail("empty");
  if (m.padded_cols != PackedMatrix::padded_width(m.cols))
    fail("rows are not padded to the next multiple of 32");
  if (m.row_bytes != PackedMatrix::row_bytes_of(m.coding, m.padded_cols) ||
      m.codes.size() != m.rows * m.row_bytes)
    fail("the codes do not fill rows x row_bytes");
  if (m.coding == WeightCoding::BF16 || m.coding == WeightCoding::F16) return;
  // The kernels switch scales between whole 32-element blocks, or between their two halves.
  if (m.group == 0 || (m.group != 16 && m.group % PackedMatrix::kBlock != 0) ||
      m.groups_per_row != (m.padded_cols + m.group - 1) / m.group)
    fail("a scale group must be 16 elements or a multiple of 32 (the whole row is one)");
  const size_t groups = m.rows * m.groups_per_row;
  if ((m.scales.size() == groups) == (m.scale_codes.size() == groups))
    fail("give either float32 scales or scale codes, one per group");
  if (!m.offsets.empty() && m.offsets.size() != groups) fail("one zero point per group");
}

namespace {

constexpr size_t kTileRows = 64;           // decoded rows per sgemm tile (a tile stays in L2)
constexpr size_t kParallelWork = 1 << 16;  // weights below which threads cost more than they save

// x's n rows of cols values as the kernels read them: padded_cols each, zero beyond cols, in the
// kernels' element type (x itself when neither padding nor conversion is needed).
template <class Out, class In>
const Out* padded_rows(const PackedMatrix& m, const In* x, size_t n) {
  if constexpr (std::is_same_v<In, Out>)
    if (m.padded_cols == m.cols) return x;
  thread_local std::vector<Out> padded;
  padded.assign(n * m.padded_cols, Out(0));
  for (size_t j = 0; j < n; ++j)
    std::copy_n(x + j * m.cols, m.cols, padded.data() + j * m.padded_cols);
  return padded.data();
}

// Runs kernel(r0, r1, j0, rows) over tiles of weight rows small enough to stay in L1 while every
// batch of up to kMaxGemvRows input rows passes over them (prefill would otherwise re-read the
// weight per batch), tiles split between the OpenMP threads. Tiles are whole multiples of 8 rows,
// so neighbouring threads never share a cache line of the output.
template <class Kernel>
void for_row_tiles(const PackedMatrix& m, size_t n, const Kernel& kernel) {
  const size_t tile = std::max<size_t>(8, (16384 / std::max<size_t>(1, m.row_bytes)) / 8 * 8);
  const size_t tiles = (m.rows + tile - 1) / tile;
  const int threads = m.rows * m.cols * std::min<size_t>(n, kMaxGemvRows) < kParallelWork
                          ? 1
                          : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (size_t t = 0; t < tiles; ++t) {
    const size_t r0 = t * tile, r1 = std::min(m.rows, r0 + tile);
    for (size_t j0 = 0; j0 < n; j0 += kMaxGemvRows)
      kernel(r0, r1, j0, std::min(kMaxGemvRows, n - j0));
  }
}

void run_gemv(const PackedMatrix& m, const float* x, size_t n, float* y,
              const MatmulBackend& backend) {
  const float* xp = padded_rows<float>(m, x, n);
  for_row_tiles(m, n, [&](size_t r0, size_t r1, size_t j0, size_t rows) {
    backend.gemv(m, r0, r1, xp + j0 * m.padded_cols, rows, y + j0 * m.rows, m.rows);
  });
}

void run_tiles(const PackedMatrix& m, const float* x, size_t n, float* y,
               const MatmulBackend& backend) {
  const size_t tiles = (m.rows + kTileRows - 1) / kTileRows;
  const int threads = omp_get_max_threads();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<float> tile(kTileRows * m.padded_cols);
    // OpenBLAS runs single-threaded inside an OpenMP parallel region.
#pragma omp for schedule(static)
    for (size_t t = 0; t < tiles; ++t) {
      const size_t r0 = t * kTileRows, r1 = std::min(m.rows, r0 + kTileRows);
      backend.decode_rows(m, r0, r1, tile.data());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(m.cols), 1.0f,
                  x, int(m.cols), tile.data(), int(m.padded_cols), 0.0f, y + r0, int(m.rows));
    }
  }
}

}  // namespace

void matmul(const PackedMatrix& m, const float* x, size_t n, float* y,
            const MatmulBackend& backend) {
  if (n == 0) return;
  if (n <= kMaxGemvRows)
    run_gemv(m, x, n, y, backend);
  else
    run_tiles(m, x, n, y, backend);
}

bool takes_int8_activations(const PackedMatrix& m) {
  return m.coding == WeightCoding::Lut8 && m.byte_decode == ByteDecode::Signed &&
         m.groups_per_row == 1 && m.offsets.empty();
}

void matmul_i8_sums(const PackedMatrix& m, const int8_t* x_codes, size_t n, int32_t* out,
                    const MatmulBackend& backend) {
  if (!takes_int8_activations(m))
    throw Error("W8A8: the packed weight (" + m.scheme +
                ") is not int8 with one scale per output row");
  if (n > kMaxGemvRows && backend.gemm_i8) {
    // Biased codes once per call; tiles of kGemmRows weight rows split between the threads, all
    // input rows inside each (the tile's weights stay in L1 while every input passes).
    thread_local std::vector<uint8_t> biased;
    biased.resize(n * m.padded_cols);
    uint8_t* xb = biased.data();
#pragma omp parallel for schedule(static) if (omp_get_max_threads() > 1)
    for (size_t j = 0; j < n; ++j) {
      const int8_t* from = x_codes + j * m.cols;
      uint8_t* to = xb + j * m.padded_cols;
      for (size_t c = 0; c < m.cols; ++c) to[c] = uint8_t(from[c]) ^ 0x80u;  // code + 128
      std::fill(to + m.cols, to + m.padded_cols, uint8_t(128));              // code 0
    }
    constexpr size_t kGemmRows = 32;
    const size_t tiles = (m.rows + kGemmRows - 1) / kGemmRows;
#pragma omp parallel for schedule(dynamic, 1) if (omp_get_max_threads() > 1)
    for (size_t t = 0; t < tiles; ++t)
      backend.gemm_i8(m, t * kGemmRows, std::min(m.rows, (t + 1) * kGemmRows), xb, n, out, m.rows);
  } else {
    const int16_t* x = padded_rows<int16_t>(m, x_codes, n);
    for_row_tiles(m, n, [&](size_t r0, size_t r1, size_t j0, size_t rows) {
      backend.gemv_i8(m, r0, r1, x + j0 * m.padded_cols, rows, out + j0 * m.rows, m.rows);
    });
  }
}

void matmul_w8a8(const PackedMatrix& m, const int8_t* x_codes, const float* x_scale, size_t n,
                 float* y, const MatmulBackend& backend) {
  thread_local std::vector<int32_t> acc;
  acc.resize(n * m.rows);
  int32_t* out = acc.data();
  matmul_i8_sums(m, x_codes, n, out, backend);
  thread_local std::vector<float> row_scales;
  row_scales.resize(m.rows);
  for (size_t r = 0; r < m.rows; ++r) row_scales[r] = m.scale(r, 0);
  const float* ws = row_scales.data();
#pragma omp parallel for schedule(static) if (n > kMaxGemvRows && omp_get_max_threads() > 1)
  for (size_t j = 0; j < n; ++j) {
    const int32_t* sums = out + j * m.rows;
    float* row = y + j * m.rows;
    const float xs = x_scale[j];
    for (size_t r = 0; r < m.rows; ++r) row[r] = float(sums[r]) * xs * ws[r];
  }
}

bool takes_w4a8(const PackedMatrix& m) {
  return m.coding == WeightCoding::Lut4 && m.has_int_lut && m.offsets.empty();
}

namespace {

void run_w4a8(const PackedMatrix& m, const int8_t* x_codes, const float* x_block_scale, size_t n,
              float* y, const MatmulBackend& backend) {
  if (!takes_w4a8(m))
    throw Error("W4A8 / W4A4: the packed weight (" + m.scheme +
                ") is not 4-bit with an integer table and no zero points");
  const int8_t* x = padded_rows<int8_t>(m, x_codes, n);
  const size_t blocks = m.cols / 16 + (m.cols % 16 != 0), padded_blocks = m.padded_cols / 16;
  // Padded rows of scales (the padding's inputs are zero: any scale works there). The worker
  // threads read this thread's buffer through the pointer.
  thread_local std::vector<float> block_scales;
  const float* xs = nullptr;
  if (x_block_scale) {
    block_scales.assign(n * padded_blocks, 0.0f);
    for (size_t j = 0; j < n; ++j)
      std::copy_n(x_block_scale + j * blocks, blocks, block_scales.data() + j * padded_blocks);
    xs = block_scales.data();
  }
  for_row_tiles(m, n, [&](size_t r0, size_t r1, size_t j0, size_t rows) {
    backend.gemv_w4a8(m, r0, r1, x + j0 * m.padded_cols, xs ? xs + j0 * padded_blocks : nullptr,
                      rows, y + j0 * m.rows, m.rows);
  });
}

}  // namespace

void matmul_w4a8(const PackedMatrix& m, const int8_t* x_codes, const float* x_scale, size_t n,
                 float* y, const MatmulBackend& backend) {
  run_w4a8(m, x_codes, nullptr, n, y, backend);
  for (size_t j = 0; j < n; ++j)
    for (size_t r = 0; r < m.rows; ++r) y[j * m.rows + r] *= x_scale[j];
}

void matmul_w4a4(const PackedMatrix& m, const int8_t* x_levels, const float* x_block_scale,
                 size_t n, float* y, const MatmulBackend& backend) {
  if (!x_block_scale) throw Error("W4A4: no activation block scales");
  run_w4a8(m, x_levels, x_block_scale, n, y, backend);
}

uint64_t read_probe(const uint8_t* p, size_t n) {
  const MatmulBackend& b = default_matmul_backend();
  const int threads = omp_get_max_threads();
  const size_t lines = n / 64, per = (lines + size_t(threads) - 1) / size_t(threads);
  uint64_t sum = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : sum) if (threads > 1)
  for (int t = 0; t < threads; ++t) {
    const size_t begin = std::min(lines, size_t(t) * per), end = std::min(lines, begin + per);
    sum += b.read_bytes(p + begin * 64, (end - begin) * 64);
  }
  return sum;
}

}  // namespace lowbit::kernels
