// libFuzzer target: tokenizer.json parsing, and encoding text with whatever tokenizer it yields.
#include <cstdint>

#include "fuzz_input_file.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lowbit::fuzz::write_input(data, size, "_tokenizer.json");
  try {
    const auto tok = lowbit::model::tokenizer_from_json(path);
    const auto ids = tok->encode("The quick brown fox, 42 times! naïve 😀");
    (void)tok->decode(ids);
  } catch (const lowbit::Error&) {
  }
  return 0;
}
