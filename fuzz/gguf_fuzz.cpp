// libFuzzer target: the GGUF reader, and everything that interprets what it read (tensor
// dequantization, tokenizer metadata, LLaMA config). Any input must either load or throw
// lowbit::Error; sanitizers catch out-of-bounds reads.
#include <cstdint>

#include "fuzz_input_file.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lowbit::fuzz::write_input(data, size, ".gguf");
  try {
    const lowbit::model::GgufFile g(path);
    for (const auto& t : g.store().tensors())
      if (t.type && t.nbytes < (1 << 20)) {
        try {
          (void)g.store().to_f32(t);
        } catch (const lowbit::Error&) {
        }
      }
    (void)lowbit::model::tokenizer_from_gguf(g)->encode("Hello world, 123 héllo!");
  } catch (const lowbit::Error&) {
  }
  return 0;
}
