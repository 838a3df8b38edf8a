// A bounds-checked cursor over bytes in memory, for parsing binary file headers. Every read checks
// the remaining length first and throws lowbit::Error naming the file, so a truncated or lying
// file can never cause an out-of-bounds read.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "lowbit/util/error.h"

namespace lowbit::io {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string path)
      : data_(data), size_(size), path_(std::move(path)) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

  // Little-endian scalar of a trivially copyable type (the host is little-endian; checked below).
  template <class T>
  T read(const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // n raw bytes as a string (n is checked against what remains before anything is allocated).
  std::string read_string(uint64_t n, const char* what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

  void skip(uint64_t n, const char* what) {
    need(n, what);
    pos_ += size_t(n);
  }

  void seek(size_t pos, const char* what) {
    if (pos > size_) fail(std::string(what) + " lies beyond the end of the file");
    pos_ = pos;
  }

  // Throws unless n more bytes are available.
  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + " but only " + std::to_string(remaining()) + " remain");
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string path_;
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "lowbit's file readers assume a little-endian host");

}  // namespace lowbit::io
