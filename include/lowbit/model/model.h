// lowbit/model/model.h — a model loaded from disk: GGUF files and Hugging Face folders (config.json
// + safetensors + tokenizer.json), LLaMA-family decoders and BERT encoders, with their tokenizer.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/model/bert.h"
#include "lowbit/model/llama.h"
#include "lowbit/model/load_options.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit::model {

struct Model {
  std::string path;
  std::string format;  // "gguf" or "safetensors"
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Llama> llama;  // exactly one of llama / bert is set
  std::unique_ptr<Bert> bert;
  // XXH3-128 of the bytes of every file the model was built from (weights, config, tokenizer):
  // what caches key results by. 32 hex digits.
  std::string content_hash;
  // Things the loader accepted but a user should know (e.g. embedding rows past the tokenizer).
  std::vector<std::string> warnings;

  bool is_encoder() const { return bert != nullptr; }
  // The runtime, whichever it is: what recipes, methods and statistics take (lowbit/model/sites.h).
  const Runtime& runtime() const {
    if (llama) return *llama;
    return *bert;
  }
  std::string summary() const;  // architecture line
};

// Loads weights (converted to float32, unless options say otherwise), config and tokenizer.
// `path` is a .gguf file, a folder with config.json, or a name from the models folder (see
// resolve_model_path). Throws lowbit::Error naming the file and what is wrong.
Model load_model(const std::string& path, const LoadOptions& options = {});

// What `lowbit inspect` prints, read without loading the weights.
struct ModelInfo {
  std::string path, format, architecture;
  std::vector<std::pair<std::string, std::string>> metadata;  // key, short value
  struct Tensor {
    std::string name, dtype, shape;
    size_t bytes;
  };
  std::vector<Tensor> tensors;
  std::string tokenizer;  // description and vocabulary size
};
ModelInfo inspect_model(const std::string& path);

// Model names the set-up installs ("smollm2", "minilm") and where the models folder is:
// $LOWBIT_MODELS, else the models/ folder of the source tree lowbit was built from.
std::string models_dir();
std::string resolve_model_path(const std::string& name_or_path);
std::string default_model_name();  // "smollm2"

}  // namespace lowbit::model
