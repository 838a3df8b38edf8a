// Bit packing: documented byte layouts, and round trips for every width and ragged length.
#include <gtest/gtest.h>

#include <random>

#include "lowbit/quant/packing.h"

namespace lowbit {
namespace {

TEST(Packing, DocumentedLayouts) {
  const uint8_t nibbles[3] = {0x1, 0x2, 0xF};
  uint8_t out[2] = {0xAA, 0xAA};
  pack_codes(nibbles, 3, 4, out);
  EXPECT_EQ(out[0], 0x21);  // element 0 in the low nibble
  EXPECT_EQ(out[1], 0x0F);  // unused high bits are zero
  const uint8_t six[4] = {0x3F, 0x00, 0x15, 0x2A};
  uint8_t packed6[3];
  pack_codes(six, 4, 6, packed6);
  // LSB-first stream: 111111 000000 010101 101010 -> bytes 0x3F, 0x50, 0xA9
  EXPECT_EQ(packed6[0], 0x3F);
  EXPECT_EQ(packed6[1], 0x50);
  EXPECT_EQ(packed6[2], 0xA9);
  uint8_t high2[1], low4[2];
  pack_fp6_split(six, 4, high2, low4);
  EXPECT_EQ(high2[0], uint8_t((0x3 << 0) | (0x0 << 2) | (0x1 << 4) | (0x2 << 6)));
  EXPECT_EQ(low4[0], uint8_t(0xF | (0x0 << 4)));
  EXPECT_EQ(low4[1], uint8_t(0x5 | (0xA << 4)));
  EXPECT_EQ(packed_bytes(5, 3), 2u);
  EXPECT_EQ(packed_bytes(8, 7), 7u);
}

TEST(Packing, RoundTripsEveryWidthAndLength) {
  std::mt19937 rng(5);
  for (int bits = 1; bits <= 16; ++bits) {
    for (size_t n : {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1001}) {
      std::vector<uint16_t> codes(n), back(n);
      for (auto& c : codes) c = uint16_t(rng() & ((1u << bits) - 1));
      std::vector<uint8_t> packed(packed_bytes(n, bits) + 1, 0xEE);
      pack_codes(codes.data(), n, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xEE) << "wrote past the end, bits " << bits << " n " << n;
      unpack_codes(packed.data(), n, bits, back.data());
      ASSERT_EQ(codes, back) << "bits " << bits << " n " << n;
      if (bits <= 8) {
        std::vector<uint8_t> narrow(codes.begin(), codes.end()), narrow_back(n);
        std::vector<uint8_t> packed8(packed_bytes(n, bits));
        pack_codes(narrow.data(), n, bits, packed8.data());
        EXPECT_TRUE(std::equal(packed8.begin(), packed8.end(), packed.begin())) << bits;
        unpack_codes(packed8.data(), n, bits, narrow_back.data());
        ASSERT_EQ(narrow, narrow_back);
      }
    }
  }
}

TEST(Packing, Fp6SplitRoundTrips) {
  std::mt19937 rng(6);
  for (size_t n : {1, 2, 3, 4, 5, 63, 64, 65}) {
    std::vector<uint8_t> codes(n), back(n);
    for (auto& c : codes) c = uint8_t(rng() & 0x3F);
    std::vector<uint8_t> high2(packed_bytes(n, 2)), low4(packed_bytes(n, 4));
    pack_fp6_split(codes.data(), n, high2.data(), low4.data());
    unpack_fp6_split(high2.data(), low4.data(), n, back.data());
    EXPECT_EQ(codes, back);
  }
}

}  // namespace
}  // namespace lowbit
