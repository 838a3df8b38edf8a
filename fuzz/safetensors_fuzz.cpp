// libFuzzer target: the safetensors reader (header JSON, dtypes, shapes, offsets) and the
// conversion of what it accepts.
#include <cstdint>

#include "fuzz_input_file.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lowbit::fuzz::write_input(data, size, ".safetensors");
  try {
    const lowbit::model::TensorStore s = lowbit::model::load_safetensors(path);
    for (const auto& t : s.tensors())
      if (t.type && t.nbytes < (1 << 20)) (void)s.to_f32(t);
  } catch (const lowbit::Error&) {
  }
  return 0;
}
