// libFuzzer targets hand the parsers a real file, since they memory-map their input: write the
// bytes to a per-process file in /dev/shm (RAM) and return its path.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace lowbit::fuzz {

inline std::string write_input(const uint8_t* data, size_t size, const char* suffix) {
  const std::string path = "/dev/shm/lowbit_fuzz_" + std::to_string(::getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return path;
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

}  // namespace lowbit::fuzz
