// Bit packing (see lowbit/packing.h for the layouts). The 4- and 8-bit cases, by far the most
// common, have their own loops; everything else goes through the generic bit stream.
#include "lowbit/packing.h"

#include <cstring>

#include "lowbit/error.h"

namespace lowbit {
namespace {

template <class Code>
void pack_generic(const Code* codes, size_t n, int bits, uint8_t* out) {
  std::memset(out, 0, packed_bytes(n, bits));
  const uint32_t mask = (uint32_t(1) << bits) - 1;
  size_t bit = 0;
  for (size_t i = 0; i < n; ++i, bit += size_t(bits)) {
    uint32_t v = (uint32_t(codes[i]) & mask) << (bit % 8);  // at most 16 + 7 bits
    for (size_t byte = bit / 8; v != 0; ++byte, v >>= 8) out[byte] |= uint8_t(v);
  }
}

template <class Code>
void unpack_generic(const uint8_t* packed, size_t n, int bits, Code* codes) {
  const uint32_t mask = (uint32_t(1) << bits) - 1;
  size_t bit = 0;
  const size_t bytes = packed_bytes(n, bits);
  for (size_t i = 0; i < n; ++i, bit += size_t(bits)) {
    uint32_t v = 0;
    const size_t first = bit / 8;
    for (size_t k = 0; k < 3 && first + k < bytes; ++k) v |= uint32_t(packed[first + k]) << (8 * k);
    codes[i] = Code((v >> (bit % 8)) & mask);
  }
}

template <class Code>
void pack_any(const Code* codes, size_t n, int bits, uint8_t* out) {
  if (bits < 1 || bits > 16) throw Error("codes are 1..16 bits, not " + std::to_string(bits));
  if (bits == 8) {
    for (size_t i = 0; i < n; ++i) out[i] = uint8_t(codes[i]);
  } else if (bits == 4) {
    for (size_t i = 0; i + 1 < n; i += 2) out[i / 2] = uint8_t((codes[i] & 0xF) | ((codes[i + 1] & 0xF) << 4));
    if (n % 2) out[n / 2] = uint8_t(codes[n - 1] & 0xF);
  } else {
    pack_generic(codes, n, bits, out);
  }
}

template <class Code>
void unpack_any(const uint8_t* packed, size_t n, int bits, Code* codes) {
  if (bits < 1 || bits > 16) throw Error("codes are 1..16 bits, not " + std::to_string(bits));
  if (bits == 8) {
    for (size_t i = 0; i < n; ++i) codes[i] = packed[i];
  } else if (bits == 4) {
    for (size_t i = 0; i < n; ++i) codes[i] = Code((packed[i / 2] >> (4 * (i % 2))) & 0xF);
  } else {
    unpack_generic(packed, n, bits, codes);
  }
}

}  // namespace

void pack_codes(const uint16_t* codes, size_t n, int bits, uint8_t* out) { pack_any(codes, n, bits, out); }
void pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* out) {
  if (bits > 8) throw Error("codes of more than 8 bits need 16-bit storage");
  pack_any(codes, n, bits, out);
}
void unpack_codes(const uint8_t* packed, size_t n, int bits, uint16_t* codes) { unpack_any(packed, n, bits, codes); }
void unpack_codes(const uint8_t* packed, size_t n, int bits, uint8_t* codes) {
  if (bits > 8) throw Error("codes of more than 8 bits need 16-bit storage");
  unpack_any(packed, n, bits, codes);
}

void pack_fp6_split(const uint8_t* codes, size_t n, uint8_t* high2, uint8_t* low4) {
  std::memset(high2, 0, packed_bytes(n, 2));
  std::memset(low4, 0, packed_bytes(n, 4));
  for (size_t i = 0; i < n; ++i) {
    high2[i / 4] |= uint8_t(((codes[i] >> 4) & 0x3) << (2 * (i % 4)));
    low4[i / 2] |= uint8_t((codes[i] & 0xF) << (4 * (i % 2)));
  }
}

void unpack_fp6_split(const uint8_t* high2, const uint8_t* low4, size_t n, uint8_t* codes) {
  for (size_t i = 0; i < n; ++i)
    codes[i] = uint8_t((((high2[i / 4] >> (2 * (i % 4))) & 0x3) << 4) | ((low4[i / 2] >> (4 * (i % 2))) & 0xF));
}

}  // namespace lowbit
