// Bit packing (see lowbit/packing.h for the layouts). The 4- and 8-bit cases, by far the most
// common, have their own loops; everything else goes through the generic bit stream.
#include "lowbit/quant/packing.h"

#include <cstring>

#include "lowbit/util/error.h"

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
    const Code* __restrict c = codes;
    uint8_t* __restrict o = out;
    for (size_t j = 0; j < n / 2; ++j)
      o[j] = uint8_t((c[2 * j] & 0xF) | ((c[2 * j + 1] & 0xF) << 4));
    if (n % 2) o[n / 2] = uint8_t(c[n - 1] & 0xF);
  } else if (bits == 6) {
    // Eight codes (one byte each) -> six bytes, by folding the 6-bit fields together in a 64-bit
    // word: pairs into 12 bits, pairs of those into 24, then 48.
    const Code* __restrict c = codes;
    uint8_t* __restrict o = out;
    size_t j = 0;
    for (; j + 8 <= n; j += 8, o += 6) {
      uint64_t w = 0;
      if constexpr (sizeof(Code) == 1) {
        std::memcpy(&w, c + j, 8);  // the eight code bytes as one little-endian word
        w &= 0x3F3F3F3F3F3F3F3Full;
      } else {
        for (int k = 0; k < 8; ++k) w |= uint64_t(c[j + size_t(k)] & 0x3F) << (8 * k);
      }
      w = (w & 0x003F003F003F003Full) | ((w & 0x3F003F003F003F00ull) >> 2);
      w = (w & 0x00000FFF00000FFFull) | ((w & 0x0FFF00000FFF0000ull) >> 4);
      w = (w & 0x0000000000FFFFFFull) | ((w & 0x00FFFFFF00000000ull) >> 8);
      std::memcpy(o, &w, 6);  // little-endian: the low six bytes
    }
    if (j < n) pack_generic(c + j, n - j, bits, o);
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
    const uint8_t* __restrict p = packed;
    Code* __restrict c = codes;
    for (size_t j = 0; j < n / 2; ++j) {
      c[2 * j] = Code(p[j] & 0xF);
      c[2 * j + 1] = Code(p[j] >> 4);
    }
    if (n % 2) c[n - 1] = Code(p[n / 2] & 0xF);
  } else if (bits == 6) {
    // Six bytes -> eight codes: the folding of pack_codes, undone.
    const uint8_t* __restrict p = packed;
    Code* __restrict c = codes;
    size_t j = 0;
    // Whole 8-byte loads (two bytes past this group's six, which the next group holds: hence
    // j + 16 <= n) avoid the slow store-to-load forwarding of a 6-byte copy.
    for (; j + 16 <= n; j += 8, p += 6) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      w &= 0x0000FFFFFFFFFFFFull;
      w = (w & 0x0000000000FFFFFFull) | ((w << 8) & 0x00FFFFFF00000000ull);
      w = (w & 0x00000FFF00000FFFull) | ((w << 4) & 0x0FFF00000FFF0000ull);
      w = (w & 0x003F003F003F003Full) | ((w << 2) & 0x3F003F003F003F00ull);
      if constexpr (sizeof(Code) == 1) {
        std::memcpy(c + j, &w, 8);
      } else {
        for (int k = 0; k < 8; ++k) c[j + size_t(k)] = Code((w >> (8 * k)) & 0xFF);
      }
    }
    if (j < n) unpack_generic(p, n - j, bits, c + j);
  } else {
    unpack_generic(packed, n, bits, codes);
  }
}

}  // namespace

void pack_codes(const uint16_t* codes, size_t n, int bits, uint8_t* out) {
  pack_any(codes, n, bits, out);
}
void pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* out) {
  if (bits > 8) throw Error("codes of more than 8 bits need 16-bit storage");
  pack_any(codes, n, bits, out);
}
void unpack_codes(const uint8_t* packed, size_t n, int bits, uint16_t* codes) {
  unpack_any(packed, n, bits, codes);
}
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
    codes[i] = uint8_t((((high2[i / 4] >> (2 * (i % 4))) & 0x3) << 4) |
                       ((low4[i / 2] >> (4 * (i % 2))) & 0xF));
}

}  // namespace lowbit
