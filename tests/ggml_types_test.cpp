// GGML block formats decoded from hand-built blocks whose values are worked out in the comments
// from the layouts in ggml-common.h. (tests/gguf_dequant_crosscheck.py compares random blocks of
// every type with gguf-py as an independent oracle.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/quant/ggml_types.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

void put_half(std::vector<uint8_t>& b, size_t at, uint16_t h) {
  b[at] = uint8_t(h & 0xFF);
  b[at + 1] = uint8_t(h >> 8);
}
constexpr uint16_t kHalfOne = 0x3C00, kHalfHalf = 0x3800, kHalfQuarter = 0x3400, kHalfTwo = 0x4000,
                   kHalfMinusOne = 0xBC00;

std::vector<float> decode(GgmlType t, const std::vector<uint8_t>& block, size_t n) {
  std::vector<float> y(n);
  dequantize_ggml(t, block.data(), n, y.data());
  return y;
}

TEST(GgmlTypes, TableMatchesGgml) {
  EXPECT_EQ(ggml_type_info(2)->block_bytes, 18u);    // Q4_0: fp16 + 16 bytes
  EXPECT_EQ(ggml_type_info(3)->block_bytes, 20u);    // Q4_1: 2 x fp16 + 16
  EXPECT_EQ(ggml_type_info(6)->block_bytes, 22u);    // Q5_0: fp16 + 4 + 16
  EXPECT_EQ(ggml_type_info(7)->block_bytes, 24u);    // Q5_1
  EXPECT_EQ(ggml_type_info(8)->block_bytes, 34u);    // Q8_0: fp16 + 32
  EXPECT_EQ(ggml_type_info(12)->block_bytes, 144u);  // Q4_K: 2 fp16 + 12 scales + 128
  EXPECT_EQ(ggml_type_info(13)->block_bytes, 176u);  // Q5_K: + 32 high bits
  EXPECT_EQ(ggml_type_info(14)->block_bytes, 210u);  // Q6_K: 128 + 64 + 16 + fp16
  EXPECT_EQ(ggml_type_info(30)->block_bytes, 2u);    // BF16
  EXPECT_EQ(ggml_type_info(4), nullptr);             // removed Q4_2
  EXPECT_EQ(ggml_type_info(999), nullptr);
}

TEST(GgmlTypes, Q4_0) {
  // d = 0.5; qs[j] = j | (15 - j) << 4  ->  y[j] = (j - 8) / 2, y[j + 16] = (7 - j) / 2.
  std::vector<uint8_t> b(18);
  put_half(b, 0, kHalfHalf);
  for (int j = 0; j < 16; ++j) b[size_t(2 + j)] = uint8_t(j | (15 - j) << 4);
  const auto y = decode(GgmlType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[size_t(j)], (j - 8) * 0.5f);
    EXPECT_EQ(y[size_t(j + 16)], (7 - j) * 0.5f);
  }
}

TEST(GgmlTypes, Q4_1) {
  // d = 0.25, m = -1; qs[j] = j | j << 4  ->  y[j] = y[j + 16] = j / 4 - 1.
  std::vector<uint8_t> b(20);
  put_half(b, 0, kHalfQuarter);
  put_half(b, 2, kHalfMinusOne);
  for (int j = 0; j < 16; ++j) b[size_t(4 + j)] = uint8_t(j | j << 4);
  const auto y = decode(GgmlType::Q4_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[size_t(j)], j * 0.25f - 1);
    EXPECT_EQ(y[size_t(j + 16)], j * 0.25f - 1);
  }
}

TEST(GgmlTypes, Q5_0AndQ5_1) {
  // qh = 0xFFFF0000: the fifth bit is set for elements 16..31 only. qs[j] = 15 for all j.
  // Q5_0 (d = 1): y[j] = 15 - 16 = -1 for j < 16, 31 - 16 = 15 above.
  std::vector<uint8_t> b(22);
  put_half(b, 0, kHalfOne);
  const uint32_t qh = 0xFFFF0000u;
  std::memcpy(&b[2], &qh, 4);
  for (int j = 0; j < 16; ++j) b[size_t(6 + j)] = 0xFF;
  auto y = decode(GgmlType::Q5_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[size_t(j)], -1.0f);
    EXPECT_EQ(y[size_t(j + 16)], 15.0f);
  }
  // Q5_1 (d = 2, m = 0.5): y = 2q + 0.5 with q = 15 or 31.
  std::vector<uint8_t> c(24);
  put_half(c, 0, kHalfTwo);
  put_half(c, 2, kHalfHalf);
  std::memcpy(&c[4], &qh, 4);
  for (int j = 0; j < 16; ++j) c[size_t(8 + j)] = 0xFF;
  y = decode(GgmlType::Q5_1, c, 32);
  EXPECT_EQ(y[0], 30.5f);
  EXPECT_EQ(y[31], 62.5f);
}

TEST(GgmlTypes, Q8_0) {
  // d = 2; qs[j] = j - 16 (int8)  ->  y[j] = 2j - 32.
  std::vector<uint8_t> b(34);
  put_half(b, 0, kHalfTwo);
  for (int j = 0; j < 32; ++j) b[size_t(2 + j)] = uint8_t(int8_t(j - 16));
  const auto y = decode(GgmlType::Q8_0, b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[size_t(j)], float(2 * j - 32));
}

// Packs the eight 6-bit (scale, min) pairs of a Q4_K / Q5_K super-block into 12 bytes:
// bytes 0-3 hold sc0..3 (low 6 bits) and the top 2 bits of sc4..7; bytes 4-7 likewise for the
// mins; bytes 8-11 hold the low nibbles of sc4..7 | mins4..7 << 4.
void pack_k_scales(const int sc[8], const int mn[8], uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
    q[j + 4] = uint8_t(mn[j] | (mn[j + 4] >> 4) << 6);
    q[j + 8] = uint8_t((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
  }
}

TEST(GgmlTypes, Q4_K) {
  // d = 1, dmin = 0.5; sub-block s has scale sc[s] and min mn[s] (values above 15 exercise the
  // split high bits). qs byte 32k + l holds element 64k + l (low nibble, sub-block 2k) and
  // 64k + 32 + l (high nibble, sub-block 2k + 1). All nibbles = 3: y = sc * 3 - 0.5 * mn.
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63}, mn[8] = {0, 5, 10, 15, 20, 40, 60, 63};
  std::vector<uint8_t> b(144);
  put_half(b, 0, kHalfOne);
  put_half(b, 2, kHalfHalf);
  pack_k_scales(sc, mn, &b[4]);
  for (int i = 0; i < 128; ++i) b[size_t(16 + i)] = 0x33;
  const auto y = decode(GgmlType::Q4_K, b, 256);
  for (int s = 0; s < 8; ++s)
    for (int l = 0; l < 32; ++l)
      EXPECT_EQ(y[size_t(32 * s + l)], float(sc[s] * 3) - 0.5f * float(mn[s])) << s;
}

TEST(GgmlTypes, Q5_K) {
  // As Q4_K, plus a fifth bit: qh[l] bit 2k is the high bit of element 64k + l, bit 2k + 1 of
  // element 64k + 32 + l. qh[l] = 0b01010101 sets it for the low-nibble sub-blocks only, so
  // q = 3 + 16 = 19 in sub-blocks 0, 2, 4, 6 and 3 in 1, 3, 5, 7.
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63}, mn[8] = {0, 5, 10, 15, 20, 40, 60, 63};
  std::vector<uint8_t> b(176);
  put_half(b, 0, kHalfOne);
  put_half(b, 2, kHalfHalf);
  pack_k_scales(sc, mn, &b[4]);
  for (int l = 0; l < 32; ++l) b[size_t(16 + l)] = 0x55;
  for (int i = 0; i < 128; ++i) b[size_t(48 + i)] = 0x33;
  const auto y = decode(GgmlType::Q5_K, b, 256);
  for (int s = 0; s < 8; ++s) {
    const int q = s % 2 == 0 ? 19 : 3;
    for (int l = 0; l < 32; ++l)
      EXPECT_EQ(y[size_t(32 * s + l)], float(sc[s] * q) - 0.5f * float(mn[s])) << s;
  }
}

TEST(GgmlTypes, Q6_K) {
  // Two halves of 128. In half h, for l < 32: ql[64h + l] low nibble and qh[32h + l] bits 0-1
  // give element 128h + l; ql[64h + 32 + l] low / bits 2-3 give +32; ql[64h + l] high / bits
  // 4-5 give +64; ql[64h + 32 + l] high / bits 6-7 give +96. q - 32 times d times the int8
  // scale of its group of 16: scales[8h + l/16 + 2s] for the s-th quarter.
  // Here ql = 0x21 (low 1, high 2), qh = 0b11100100 (bits pairs 0, 1, 2, 3 -> values 0,1,2,3),
  // so q = 1, 1 + 16, 2 + 32, 2 + 48 for the four quarters; d = 0.5, scales[i] = i - 8.
  std::vector<uint8_t> b(210);
  for (int i = 0; i < 128; ++i) b[size_t(i)] = 0x21;
  for (int i = 0; i < 64; ++i) b[size_t(128 + i)] = 0xE4;
  for (int i = 0; i < 16; ++i) b[size_t(192 + i)] = uint8_t(int8_t(i - 8));
  put_half(b, 208, kHalfHalf);
  const auto y = decode(GgmlType::Q6_K, b, 256);
  const int q[4] = {1, 17, 34, 50};
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int scale = 8 * h + l / 16 + 2 * s - 8;
        EXPECT_EQ(y[size_t(128 * h + 32 * s + l)], 0.5f * float(scale) * float(q[s] - 32))
            << h << " " << s << " " << l;
      }
}

TEST(GgmlTypes, HalfAndBFloat16) {
  const uint16_t halfs[] = {0x3C00, 0xC000, 0x0001, 0x7C00, 0x8000};
  std::vector<uint8_t> b(sizeof halfs);
  std::memcpy(b.data(), halfs, sizeof halfs);
  const auto y = decode(GgmlType::F16, b, 5);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 0x1p-24f);
  EXPECT_TRUE(std::isinf(y[3]));
  EXPECT_TRUE(std::signbit(y[4]));
  const uint16_t bf[] = {0x3F80, 0xC040};
  std::memcpy(b.data(), bf, sizeof bf);
  const auto z = decode(GgmlType::BF16, b, 2);
  EXPECT_EQ(z[0], 1.0f);
  EXPECT_EQ(z[1], -3.0f);
}

TEST(GgmlTypes, EmptyTensorsTouchNothing) {
  // Found by the GGUF fuzzer: a tensor with a zero dimension reached memcpy with null pointers.
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q4_K})
    EXPECT_NO_THROW(dequantize_ggml(t, nullptr, 0, nullptr));
}

TEST(GgmlTypes, UnsupportedAndPartialBlocksAreErrors) {
  std::vector<uint8_t> b(300);
  std::vector<float> y(256);
  EXPECT_THROW(dequantize_ggml(GgmlType::Q2_K, b.data(), 256, y.data()), Error);
  EXPECT_THROW(dequantize_ggml(GgmlType::Q4_0, b.data(), 31, y.data()), Error);
}

}  // namespace
}  // namespace lowbit
