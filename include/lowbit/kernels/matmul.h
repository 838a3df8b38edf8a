// lowbit/kernels/matmul.h — matrix products with a weight held packed in its quantization scheme:
// y[n, rows] = x[n, cols] · Wᵀ, W decoded on the fly (weight-only kernels, activations float32).
//
// The packed layout (PackedMatrix) is chosen for the kernels; quant/packed_weight.h fills it from a
// QTensor. Each weight decodes to exactly the value dequantize() gives it (the tests check this bit
// for bit), so a fast path differs from the reference only in the order of its float32 sums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::kernels {

// How the codes of a PackedMatrix are laid out and decoded.
enum class WeightCoding : uint8_t {
  // Codes of 4 bits or fewer, two per byte, in blocks of 32 elements: byte j of a block holds
  // element j in its low nibble and element j + 16 in its high nibble (so one 16-byte load yields
  // two runs of 16 consecutive elements). value = lut[code].
  Lut4,
  // Codes of 5 to 8 bits, one byte per element. value = lut[code].
  Lut8,
  // 6-bit codes in the "4+2" split of ZeroQuant(4+2) / FP6-LLM, 24 bytes per 32-element block:
  // bytes 0..15 hold the top 4 bits of each code as Lut4 holds its nibbles (byte j: element j
  // low, element j + 16 high), bytes 16..19 the low 2 bits of elements 0..15 and bytes 20..23
  // those of elements 16..31, element k of a half at bits 2k, 2k + 1 of its little-endian 32-bit
  // word. value = lut[code] (decoded as byte_decode says).
  Split6,
  // bfloat16 weights, one uint16_t (the top half of a float32) per element; no scales.
  BF16,
  // IEEE binary16 weights, one uint16_t per element; no scales.
  F16,
};

// How the Lut8 and Split6 kernels turn a code into lut[code] without the table (a gather is slow):
// the results are the same values, bit for bit (tests/matmul_test.cpp checks it per format).
enum class ByteDecode : uint8_t {
  Table,      // gather from lut
  Signed,     // two's-complement int8: the code is the value
  Unsigned,   // uint8 (asymmetric int8 levels)
  Minifloat,  // sign | E | M with subnormals: E, M placed into float32 fields and rebiased (E = 0:
              // M converted to float, times the subnormal unit; no float32 subnormals anywhere)
};

struct MinifloatDecode {
  int man_bits = 0;              // M
  int magnitude_bits = 0;        // E + M (the sign bit sits just above)
  uint32_t exponent_offset = 0;  // (127 - bias) << 23: E, M placed in float32 fields, rebiased
  float subnormal_unit = 1.0f;   // 2^(1 - bias - M): E = 0 codes are M times this
  int nan_magnitude = -1;        // FN formats: the one NaN magnitude (E and M all ones), else -1
  int special_from = -1;         // IEEE formats: magnitudes from E all ones are inf (M = 0) or NaN
};

// A [rows, cols] row-major weight in a kernel layout. Every row is padded to padded_cols (a
// multiple of kBlock) with codes that decode to a finite value (the inputs there are zero), so the
// kernels never handle a ragged tail. Weight (r, c) with c < cols decodes to
//   (lut[code] - offset(r, g)) * scale(r, g),   g = c / group,
// where offset is 0 unless `offsets` is given (asymmetric integers: the zero point), and
//   scale(r, g) = scales[r * groups_per_row + g]                          (f32 scales), or
//   scale(r, g) = scale_lut[scale_codes[r * groups_per_row + g]] * global  (scale_codes given;
//                 without a global level, `global` is not applied).
// That is the arithmetic of lowbit::dequantize, operation for operation.
struct PackedMatrix {
  static constexpr size_t kBlock = 32;  // elements per Lut4 block; rows pad to a multiple of it
  static constexpr size_t kSplit6BlockBytes = 24;  // 32 codes of 6 bits
  // padded_cols for a row of `cols` weights, and the bytes of one padded row of codes.
  static constexpr size_t padded_width(size_t cols) {
    return (cols + kBlock - 1) / kBlock * kBlock;
  }
  static constexpr size_t row_bytes_of(WeightCoding coding, size_t padded_cols) {
    switch (coding) {
      case WeightCoding::Lut4:
        return padded_cols / 2;
      case WeightCoding::Lut8:
        return padded_cols;
      case WeightCoding::Split6:
        return padded_cols / kBlock * kSplit6BlockBytes;
      case WeightCoding::BF16:
      case WeightCoding::F16:
        break;
    }
    return 2 * padded_cols;
  }

  WeightCoding coding = WeightCoding::Lut4;
  size_t rows = 0, cols = 0, padded_cols = 0;
  size_t group = 0;  // elements per scale along a row: 16, or a multiple of 32 (padded_cols: one)
  size_t groups_per_row = 0;
  size_t row_bytes = 0;          // bytes of one row of codes
  std::vector<uint8_t> codes;    // rows * row_bytes
  std::array<float, 256> lut{};  // Lut4: the first 16 entries; Split6: 64; Lut8: all 256
  ByteDecode byte_decode = ByteDecode::Table;  // Lut8, Split6: how the kernels compute lut[code]
  // Lut4 tables whose values are small integers times a power of two (int4: lut = -8..7,
  // e2m1: lut = k / 2 for k in -12..12): lut[c] = lut_int[c] * int_unit exactly. What the W4A8
  // kernels multiply in integers.
  bool has_int_lut = false;
  std::array<int8_t, 16> lut_int{};
  float int_unit = 1.0f;
  MinifloatDecode minifloat;  // ByteDecode::Minifloat
  // Lut8 sign-magnitude formats whose every value is a bfloat16 (fp8 e4m3 / e5m2 / e3m4): the
  // bf16 bits of lut[m] for each magnitude m < 128 (lut[m | 128] = -lut[m]). AVX-512 decodes 32
  // codes with two 64-entry word permutes instead of the field arithmetic.
  bool has_bf16_magnitudes = false;
  std::array<uint16_t, 128> bf16_magnitudes{};
  std::vector<float> scales;           // f32 scales, rows * groups_per_row ...
  std::vector<uint8_t> scale_codes;    // ... or 8-bit scale codes decoded by scale_lut
  std::array<float, 256> scale_lut{};  //
  bool has_global = false;             // scale_codes only: multiply by `global`
  float global = 1.0f;                 //
  std::vector<float> offsets;          // empty, or rows * groups_per_row zero points
  std::string scheme;                  // the scheme's name (for messages and reports)

  // Bytes the packed weight occupies (codes, scales, zero points).
  size_t bytes() const;
  // The scale of group g of row r, as the kernels compute it.
  float scale(size_t r, size_t g) const {
    if (!scale_codes.empty()) {
      const float base = scale_lut[scale_codes[r * groups_per_row + g]];
      return has_global ? base * global : base;
    }
    return scales.empty() ? 1.0f : scales[r * groups_per_row + g];
  }
  float offset(size_t r, size_t g) const {
    return offsets.empty() ? 0.0f : offsets[r * groups_per_row + g];
  }
};

// Throws lowbit::Error when the fields do not describe a consistent packed matrix.
void validate(const PackedMatrix& m);

// One backend's operations on rows [r0, r1) of a packed matrix.
struct MatmulBackend {
  std::string name;        // "reference", "hwy:AVX3", ...
  int64_t hwy_target = 0;  // the Highway target bit, 0 for the reference
  // Float32 lanes one vector holds (1 for the reference): the sums' order depends on it.
  size_t lanes = 1;
  // Decodes rows [r0, r1) into out[(r - r0) * padded_cols + c] (padding included).
  void (*decode_rows)(const PackedMatrix& m, size_t r0, size_t r1, float* out);
  // y[j * ldy + r] = sum_c x[j * padded_cols + c] * W(r, c) for j < n, r in [r0, r1). x holds n
  // rows of padded_cols floats, zero beyond cols. n is 1 .. kMaxGemvRows.
  void (*gemv)(const PackedMatrix& m, size_t r0, size_t r1, const float* x, size_t n, float* y,
               size_t ldy);
  // W8A8: acc[j * ldacc + r] = sum_c x[j * padded_cols + c] * code(r, c) in exact integer
  // arithmetic, for a Lut8 matrix with ByteDecode::Signed codes (int8 weights). x holds n rows
  // of int8 activation codes widened to int16, zero beyond cols; n is 1 .. kMaxGemvRows.
  void (*gemv_i8)(const PackedMatrix& m, size_t r0, size_t r1, const int16_t* x, size_t n,
                  int32_t* acc, size_t ldacc);
  // W8A8 for many input rows (prefill), where a target has a matrix-matrix kernel (else null):
  // the same exact sums as gemv_i8 for any n, x given as n rows of padded_cols activation codes
  // plus 128 (unsigned bytes, what unsigned-by-signed dot products take; zero codes beyond cols).
  // Exact for cols up to 65536.
  void (*gemm_i8)(const PackedMatrix& m, size_t r0, size_t r1, const uint8_t* x_biased, size_t n,
                  int32_t* acc, size_t ldacc);
  // W4A8 / W4A4: y[j * ldy + r] = sum_h (scale(r, g(h)) * int_unit * xs(j, h)) * sum_{c in h}
  // lut_int[code] * x[j, c] over the 16-element runs h of the row, for a symmetric Lut4 matrix
  // with has_int_lut; x holds n rows of padded_cols int8 activation levels (zero beyond cols),
  // n 1 .. kMaxGemvRows; xs(j, h) = x_scales[j * padded_cols / 16 + h], or 1 when x_scales is
  // null (W4A8: the row's scale is applied after the sum). The products and the sums of each run
  // of 4 consecutive elements are exact integers; the scales multiply those partial sums in
  // float32.
  void (*gemv_w4a8)(const PackedMatrix& m, size_t r0, size_t r1, const int8_t* x,
                    const float* x_scales, size_t n, float* y, size_t ldy);
  // The read-bandwidth probe: the sum of bytes [0, n) as 64-bit words (n a multiple of 8), read
  // with this target's widest loads. What a memory-bound kernel's speed is measured against.
  uint64_t (*read_bytes)(const uint8_t* p, size_t n);
};

constexpr size_t kMaxGemvRows = 8;  // decode batches up to this many rows use gemv

// The reference first (float64 products and sums, rounded once), then every Highway target
// compiled in and supported here, best last.
const std::vector<MatmulBackend>& matmul_backends();
const MatmulBackend& default_matmul_backend();

// y[n, rows] = x[n, cols] · Wᵀ (y row-major, ldy = rows). Up to kMaxGemvRows rows run the
// matrix-vector kernel, threaded over output channels; more run tiles of decoded rows through
// OpenBLAS sgemm, threaded over tiles (OpenBLAS runs single-threaded inside lowbit's OpenMP
// threads, so the two never compete for cores). Threads: the OpenMP setting.
void matmul(const PackedMatrix& m, const float* x, size_t n, float* y,
            const MatmulBackend& backend = default_matmul_backend());

// Whether matmul_w8a8 takes this matrix: int8 codes (ByteDecode::Signed), one scale per row.
bool takes_int8_activations(const PackedMatrix& m);

// acc[j * rows + r] = sum_c x_codes[j, c] * code(r, c), exact in int32 (cols up to 65536), for a
// matrix matmul_w8a8 takes: the integer products alone, for integer-only execution that
// requantizes the sums itself (lowbit/model/integer_linear.h).
void matmul_i8_sums(const PackedMatrix& m, const int8_t* x_codes, size_t n, int32_t* acc,
                    const MatmulBackend& backend = default_matmul_backend());

// W8A8 int8: y[n, rows] = (x_scale[j] * scale(r)) * sum_c x_codes[j, c] * code(r, c), the sums
// exact in int32 (what the tests hold them to), the two scales applied in float32 after them.
// x_codes: n rows of cols int8 activation codes; x_scale: one per row. More than kMaxGemvRows
// rows run the backend's gemm_i8 where it has one.
void matmul_w8a8(const PackedMatrix& m, const int8_t* x_codes, const float* x_scale, size_t n,
                 float* y, const MatmulBackend& backend = default_matmul_backend());

// Whether matmul_w4a8 takes this matrix: 4-bit codes with an integer table, no zero points.
bool takes_w4a8(const PackedMatrix& m);

// W4A8: y[n, rows] = x_scale[j] * (the gemv_w4a8 sum), x_codes n rows of cols int8 codes.
void matmul_w4a8(const PackedMatrix& m, const int8_t* x_codes, const float* x_scale, size_t n,
                 float* y, const MatmulBackend& backend = default_matmul_backend());

// W4A4 (and W4A8 with block-scaled activations): x_levels n rows of cols integer levels (e2m1
// significands as 2 * value, int4 codes ...), x_block_scale n rows of ceil(cols / 16) scales,
// one per 16 activations (the activation group's scale times its table unit). y is the
// gemv_w4a8 sum with those scales; more than kMaxGemvRows rows run it kMaxGemvRows at a time.
void matmul_w4a4(const PackedMatrix& m, const int8_t* x_levels, const float* x_block_scale,
                 size_t n, float* y, const MatmulBackend& backend = default_matmul_backend());

// Reads n bytes (a multiple of 64) once with the best backend, split between the OpenMP threads
// as matmul splits a weight's rows; returns the checksum (so the reads cannot be optimized away).
uint64_t read_probe(const uint8_t* p, size_t n);

// Registers a backend (once per compiled Highway target, from kernels/cpu/matmul_hwy.cpp).
void register_matmul_backend(const MatmulBackend& backend);

}  // namespace lowbit::kernels
