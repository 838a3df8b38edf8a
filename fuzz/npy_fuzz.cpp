// libFuzzer target: the .npy reader (header dict, dtype, shape, payload length).
#include <cstdint>

#include "fuzz_input_file.h"
#include "lowbit/io/npy.h"
#include "lowbit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lowbit::fuzz::write_input(data, size, ".npy");
  try {
    std::vector<size_t> shape;
    (void)lowbit::read_npy_float32(path, shape);
  } catch (const lowbit::Error&) {
  }
  return 0;
}
