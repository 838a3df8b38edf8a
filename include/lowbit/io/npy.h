// lowbit/io/npy.h — reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0), so
// arrays move between lowbit and Python without conversion scripts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

struct NpyArray {
  std::string descr;          // NumPy dtype string as stored, e.g. "<f4", "|u1", "<V2"
  std::vector<size_t> shape;  // C (row-major) order; empty for a 0-d array
  std::vector<uint8_t> data;  // count() * item_size() bytes, little-endian

  size_t count() const;
  size_t item_size() const;  // bytes per element, from descr
};

// Reads a whole .npy file. Throws lowbit::Error naming the file and the problem for anything
// that is not a well-formed, C-ordered, little-endian (or byte-sized) array: bad magic, an
// unsupported version, a malformed header, Fortran order, a truncated payload, or a shape whose
// size overflows.
NpyArray read_npy(const std::string& path);

// Reads a float32, float16 or (ml_dtypes) bfloat16 .npy file as float32 values (exact).
// Other dtypes are an error naming the file and the dtypes accepted.
std::vector<float> read_npy_float32(const std::string& path, std::vector<size_t>& shape);

// Writes a C-ordered array. The file appears complete or not at all: it is written to a
// temporary name in the same folder and renamed into place.
void write_npy(const std::string& path, const std::string& descr, const std::vector<size_t>& shape,
               const void* data, size_t bytes);

}  // namespace lowbit
