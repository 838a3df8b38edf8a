// libFuzzer target: model configuration files. The input is a Hugging Face config.json beside a
// small valid checkpoint (the tests' tiny LLaMA, safetensors + tokenizer.json), so every field
// reader, value check, tying and unused-tensor rule runs on hostile configs; a second folder
// takes the input as sentence-transformers' 1_Pooling/config.json beside a BERT config.
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "fuzz_input_file.h"
#include "lowbit/model/model.h"
#include "lowbit/util/error.h"
#include "tiny_models.h"

namespace {

std::string make_folder() {
  const std::string dir = "/dev/shm/lowbit_fuzz_config_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  lowbit::testing::TinyLlama::random(1).write_hf(dir);
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = make_folder();
  std::ofstream(dir + "/config.json", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), std::streamsize(size));
  try {
    const lowbit::model::Model m = lowbit::model::load_model(dir);
    if (m.llama) {
      const int32_t token = 1;
      lowbit::model::LlamaRunState s(m.llama->config(), 1, 1);
      m.llama->forward(&token, 1, 0, s);
    }
  } catch (const lowbit::Error&) {
  }
  return 0;
}
