// NumPy .npy reader and writer
// (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html). The header is a Python
// dict literal; we parse only the three keys the format defines and reject everything else, so a
// malformed file is an error and never an out-of-bounds read.
#include "lowbit/io/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "lowbit/format/reference.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kMaxHeader = size_t(1) << 20;  // real headers are < 1 KiB

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(path + ": not a usable .npy file: " + what);
}

// A tiny scanner over the header dict text.
struct Scanner {
  const std::string& text;
  const std::string& path;
  size_t pos = 0;

  void skip_space() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\t')) ++pos;
  }
  bool consume(char c) {
    skip_space();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c))
      bad(path,
          std::string("malformed header: expected '") + c + "' at offset " + std::to_string(pos));
  }
  std::string quoted() {
    skip_space();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"'))
      bad(path, "malformed header: expected a string");
    const char quote = text[pos++];
    const size_t end = text.find(quote, pos);
    if (end == std::string::npos) bad(path, "malformed header: unterminated string");
    std::string s = text.substr(pos, end - pos);
    pos = end + 1;
    return s;
  }
  size_t integer() {
    skip_space();
    size_t v = 0;
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      const size_t digit = size_t(text[pos++] - '0');
      if (v > (std::numeric_limits<size_t>::max() - digit) / 10)
        bad(path, "shape dimension too large");
      v = v * 10 + digit;
    }
    if (pos == start) bad(path, "malformed header: expected a dimension");
    return v;
  }
  bool word(const char* w) {
    skip_space();
    if (text.compare(pos, std::strlen(w), w) == 0) {
      pos += std::strlen(w);
      return true;
    }
    return false;
  }
};

void parse_header(const std::string& header, const std::string& path, NpyArray& out) {
  Scanner sc{header, path};
  bool have_descr = false, have_order = false, have_shape = false;
  sc.expect('{');
  while (!sc.consume('}')) {
    const std::string key = sc.quoted();
    sc.expect(':');
    if (key == "descr") {
      out.descr = sc.quoted();
      have_descr = true;
    } else if (key == "fortran_order") {
      if (sc.word("True"))
        bad(path, "Fortran-ordered (non-contiguous) array; save it with np.ascontiguousarray");
      if (!sc.word("False")) bad(path, "malformed header: fortran_order is not True or False");
      have_order = true;
    } else if (key == "shape") {
      sc.expect('(');
      while (!sc.consume(')')) {
        out.shape.push_back(sc.integer());
        sc.consume(',');
      }
      have_shape = true;
    } else {
      bad(path, "unknown header key '" + key + "'");
    }
    sc.consume(',');
  }
  if (!have_descr || !have_order || !have_shape)
    bad(path, "header lacks descr, fortran_order or shape");
}

}  // namespace

size_t NpyArray::item_size() const {
  if (descr.size() < 3) return 0;
  return size_t(std::strtoul(descr.c_str() + 2, nullptr, 10));
}

size_t NpyArray::count() const {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  return n;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  const auto file_size = size_t(in.tellg());
  in.seekg(0);
  char prefix[12] = {};
  if (file_size < 10 || !in.read(prefix, 10)) bad(path, "shorter than the 10-byte preamble");
  if (std::memcmp(prefix, kMagic, kMagicSize) != 0) bad(path, "wrong magic (expected \\x93NUMPY)");
  const int major = static_cast<unsigned char>(prefix[6]);
  size_t header_len = 0, preamble = 10;
  if (major == 1) {
    header_len = size_t(static_cast<unsigned char>(prefix[8])) |
                 size_t(static_cast<unsigned char>(prefix[9])) << 8;
  } else if (major == 2 || major == 3) {
    if (file_size < 12 || !in.read(prefix + 10, 2)) bad(path, "shorter than the 12-byte preamble");
    for (int i = 0; i < 4; ++i)
      header_len |= size_t(static_cast<unsigned char>(prefix[8 + i])) << (8 * i);
    preamble = 12;
  } else {
    bad(path, "unsupported format version " + std::to_string(major));
  }
  if (header_len > kMaxHeader || preamble + header_len > file_size)
    bad(path, "header length runs past the end of the file");
  std::string header(header_len, '\0');
  in.read(header.data(), std::streamsize(header_len));

  NpyArray arr;
  parse_header(header, path, arr);
  const std::string& d = arr.descr;
  if (d.size() < 3 || (d[0] != '<' && d[0] != '|' && d[0] != '=') || arr.item_size() == 0)
    bad(path, "unsupported dtype '" + d + "' (little-endian or byte-sized types only)");
  if (d[0] == '|' && arr.item_size() != 1 && d[1] != 'V')
    bad(path, "unsupported dtype '" + d + "'");
  size_t count = 1;
  for (size_t dim : arr.shape) {
    if (dim != 0 && count > std::numeric_limits<size_t>::max() / dim) bad(path, "shape overflows");
    count *= dim;
  }
  const size_t payload = file_size - preamble - header_len;
  if (count > payload / arr.item_size() || count * arr.item_size() != payload) {
    bad(path, "payload is " + std::to_string(payload) + " bytes but shape and dtype need " +
                  std::to_string(count) + " x " + std::to_string(arr.item_size()) +
                  " (truncated or padded file)");
  }
  arr.data.resize(payload);
  if (payload > 0 && !in.read(reinterpret_cast<char*>(arr.data.data()), std::streamsize(payload)))
    bad(path, "read failed");
  return arr;
}

std::vector<float> read_npy_float32(const std::string& path, std::vector<size_t>& shape) {
  const NpyArray a = read_npy(path);
  shape = a.shape;
  std::vector<float> out(a.count());
  if (a.descr == "<f4") {
    if (!a.data.empty())
      std::memcpy(out.data(), a.data.data(), a.data.size());  // empty: both may be null
  } else if (a.descr == "<f2" || a.descr == "<V2" || a.descr == "|V2") {
    for (size_t i = 0; i < out.size(); ++i) {
      const uint32_t bits = uint32_t(a.data[2 * i]) | uint32_t(a.data[2 * i + 1]) << 8;
      if (a.descr == "<f2") {
        out[i] = ref::decode(formats::fp16, bits);
      } else {
        const uint32_t wide = bits << 16;  // bfloat16: the top half of a float32
        std::memcpy(&out[i], &wide, 4);
      }
    }
  } else {
    throw Error(path +
                ": expected float32 ('<f4'), float16 ('<f2') or ml_dtypes bfloat16 ('<V2') values, "
                "not dtype '" +
                a.descr + "'");
  }
  return out;
}

void write_npy(const std::string& path, const std::string& descr, const std::vector<size_t>& shape,
               const void* data, size_t bytes) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)
    dict += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
  dict += "), }";
  // Pad with spaces so that data starts on a 64-byte boundary, then a newline (format 1.0).
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw Error(path + ": shape too long for a .npy 1.0 header");

  io::write_file_atomically(path, [&](std::ostream& out) {
    const char preamble[10] = {
        '\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, char(dict.size() & 0xFF), char(dict.size() >> 8)};
    out.write(preamble, 10);
    out.write(dict.data(), std::streamsize(dict.size()));
    out.write(static_cast<const char*>(data), std::streamsize(bytes));
  });
}

}  // namespace lowbit
