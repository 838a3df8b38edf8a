// Finding, recognising and loading models: GGUF files and Hugging Face folders.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lowbit/model/gguf.h"
#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/util/error.h"
#include "model/compressed_tensors.h"
#include "model/model_configs.h"
#include "util/content_hash.h"
#include "util/json_file.h"

#ifndef LOWBIT_SOURCE_DIR
#define LOWBIT_SOURCE_DIR "."
#endif

namespace lowbit::model {
namespace {

using files::ends_with;
using files::exists;
using files::is_dir;
using nlohmann::json;

std::string folder_of(const std::string& path) {
  return is_dir(path) ? (ends_with(path, "/") ? path : path + "/")
                      : path.substr(0, path.find_last_of('/') + 1);
}

json read_json(const std::string& path) {
  if (!exists(path))
    throw Error(path + ": missing (a Hugging Face model folder needs config.json)");
  return files::read_json(path);
}

std::string hf_tokenizer_path(const std::string& folder) {
  const std::string p = folder + "tokenizer.json";
  if (!exists(p))
    throw Error(folder + ": tokenizer.json is missing (lowbit reads the tokenizer from it)");
  return p;
}

}  // namespace

std::string Model::summary() const {
  return llama  ? llama->config().summary()
         : bert ? bert->config().summary()
                : std::string("(empty)");
}

std::string models_dir() {
  if (const char* env = std::getenv("LOWBIT_MODELS")) return env;
  return std::string(LOWBIT_SOURCE_DIR) + "/models";
}

std::string default_model_name() {
  return "smollm2";
}

std::string resolve_model_path(const std::string& name) {
  static const std::pair<const char*, const char*> kInstalled[] = {
      {"smollm2", "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"},
      {"minilm", "all-minilm-l6-v2"},
      {"gemma3", "gemma3-270m/gemma-3-270m-q4_k_m.gguf"},
  };
  for (const auto& [alias, rel] : kInstalled)
    if (name == alias) {
      const std::string p = models_dir() + "/" + rel;
      if (!exists(p))
        throw Error("model '" + name + "' is not installed at " + p +
                    " (run scripts/install-models.sh, or set LOWBIT_MODELS)");
      return p;
    }
  if (!exists(name))
    throw Error(name +
                ": no such file or folder, and not an installed model name (installed names: "
                "smollm2, minilm, gemma3)");
  return name;
}

namespace {

// XXH3-128 over the bytes of every file a model is built from (with names relative to the model's
// folder, so a copy elsewhere hashes the same; a single GGUF file by its bytes alone).
// Memory-mapped: about 25 ms for SmolLM2's 96 MB GGUF when cached.
std::string hash_files(const std::vector<std::string>& paths, const std::string& folder) {
  util::ContentHash h;
  for (const std::string& p : paths) {
    if (!folder.empty())
      h.text(p.rfind(folder, 0) == 0 ? p.substr(folder.size()) : p.substr(p.find_last_of('/') + 1));
    // h.text(file contents), read a chunk at a time: a mapping of the whole file would make all
    // of it resident at once (as large as a quantized model's packed weights).
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error(p + ": cannot be read");
    in.seekg(0, std::ios::end);
    const uint64_t size = uint64_t(in.tellg());
    in.seekg(0);
    h.bytes(&size, sizeof size);
    std::vector<char> chunk(size_t(1) << 20);
    for (uint64_t done = 0; done < size;) {
      const size_t n = size_t(std::min<uint64_t>(chunk.size(), size - done));
      if (!in.read(chunk.data(), std::streamsize(n)))
        throw Error(p + ": read failed at byte " + std::to_string(done));
      h.bytes(chunk.data(), n);
      done += n;
    }
  }
  return h.hex();
}

// The tokenizer must not produce ids the embedding has no row for. GGUF: equal sizes, as llama.cpp
// requires; Hugging Face checkpoints often pad the embedding past the tokenizer (rows never
// produced as input; their logits stay in the softmax as in the reference), which is reported.
void check_vocabulary(Model& m, int embedding_rows) {
  const int tokens = m.tokenizer->vocab_size();
  if (tokens > embedding_rows)
    throw Error(m.path + ": the tokenizer has " + std::to_string(tokens) +
                " tokens but the embedding only " + std::to_string(embedding_rows) +
                " rows: ids past " + std::to_string(embedding_rows - 1) +
                " would have no embedding; the tokenizer does not belong to these weights");
  if (tokens < embedding_rows) {
    if (m.format == "gguf")
      throw Error(m.path + ": the tokenizer has " + std::to_string(tokens) +
                  " tokens but token_embd.weight has " + std::to_string(embedding_rows) +
                  " rows (llama.cpp requires them equal)");
    m.warnings.push_back(
        "the embedding has " + std::to_string(embedding_rows - tokens) +
        " rows past the tokenizer's " + std::to_string(tokens) +
        " tokens (padding): they are never input, and their logits take part in the softmax as in "
        "the reference implementation");
  }
}

}  // namespace

Model load_model(const std::string& name_or_path, const LoadOptions& options) {
  Model m;
  m.path = resolve_model_path(name_or_path);
  if (!is_dir(m.path) && !ends_with(m.path, ".json") && !ends_with(m.path, ".safetensors")) {
    GgufFile g(m.path);
    m.format = "gguf";
    m.tokenizer = tokenizer_from_gguf(g);
    LlamaConfig config = llama_config_from_gguf(g);
    g.drop_metadata("tokenizer.ggml.");  // built into m.tokenizer: free it before the weights
    m.llama = std::make_unique<Llama>(Llama::load(g.store(), std::move(config), true, options));
    g.store().require_all_used("the " + m.llama->config().arch + " runtime");
    check_vocabulary(m, m.llama->config().vocab_size);
    m.content_hash = hash_files({m.path}, "");
    g.store().release_pages();
    return m;
  }
  const std::string folder = folder_of(m.path);
  const std::string config_path = folder + "config.json";
  const json config = read_json(config_path);
  std::string type;
  std::unique_ptr<LlamaConfig> llama_config;
  std::unique_ptr<BertConfig> bert_config;
  try {  // a field of the wrong JSON type surfaces as json::exception
    if (!config.is_object()) throw Error(config_path + ": not a JSON object");
    type = config.contains("model_type") && config["model_type"].is_string()
               ? config["model_type"].get<std::string>()
               : "";
    if (type == "bert")
      bert_config = std::make_unique<BertConfig>(bert_config_from_json(config, config_path));
    else if (is_llama_family(type))
      llama_config = std::make_unique<LlamaConfig>(llama_config_from_json(config, config_path));
    else
      throw Error(config_path + ": model_type '" + type +
                  "' is not supported (supported: llama, mistral, qwen2, bert)");
  } catch (const json::exception& e) {
    throw Error(config_path + ": unexpected structure (" + e.what() + ")");
  }
  if (bert_config) read_sentence_pipeline(folder, *bert_config);
  std::vector<std::string> weight_files;
  TensorStore store = load_safetensors(is_dir(m.path) ? folder : m.path, &weight_files);
  m.format = "safetensors";
  if (config.contains("quantization_config")) {
    decompress_compressed_tensors(store, config["quantization_config"], config_path);
    m.format = "compressed-tensors";
    const json groups = config["quantization_config"].value("config_groups", json::object());
    for (const auto& [name, group] : groups.items())
      if (group.contains("input_activations") && !group["input_activations"].is_null())
        m.warnings.push_back("compressed-tensors " + name +
                             " quantizes its activations; lowbit reads the weights and runs the "
                             "activations as the recipe says (--a to emulate them)");
  }
  const std::string tokenizer_path = hf_tokenizer_path(folder);
  m.tokenizer = tokenizer_from_json(tokenizer_path);
  if (bert_config) {
    m.bert = std::make_unique<Bert>(Bert::load(store, *bert_config));
    // BertModel's buffers and its [CLS] pooler: sentence embeddings pool the hidden states by mean.
    for (const char* unused :
         {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"})
      for (const char* prefix : {"", "bert."}) store.mark_used(std::string(prefix) + unused);
    store.require_all_used("the BERT encoder (mean-pooled sentence embeddings)");
    check_vocabulary(m, bert_config->vocab_size);
  } else {
    m.llama = std::make_unique<Llama>(Llama::load(store, *llama_config, false, options));
    // Older checkpoints saved RoPE's inverse frequencies as a buffer; they are recomputed from the
    // config.
    for (const TensorView& t : store.tensors())
      if (ends_with(t.name, ".rotary_emb.inv_freq")) store.mark_used(t.name);
    store.require_all_used("the " + llama_config->arch + " runtime with this config.json");
    check_vocabulary(m, llama_config->vocab_size);
  }
  std::vector<std::string> inputs = {config_path, tokenizer_path};
  for (const char* extra : {"tokenizer_config.json", "1_Pooling/config.json", "modules.json",
                            "sentence_bert_config.json"})
    if (exists(folder + extra)) inputs.push_back(folder + extra);
  inputs.insert(inputs.end(), weight_files.begin(), weight_files.end());
  m.content_hash = hash_files(inputs, folder);
  store.release_pages();
  return m;
}

ModelInfo inspect_model(const std::string& name_or_path) {
  ModelInfo info;
  info.path = resolve_model_path(name_or_path);
  const auto list_tensors = [&](const TensorStore& store) {
    for (const TensorView& t : store.tensors())
      info.tensors.push_back({t.name, t.dtype, t.shape_string(), t.nbytes});
  };
  if (!is_dir(info.path) && !ends_with(info.path, ".json") &&
      !ends_with(info.path, ".safetensors")) {
    GgufFile g(info.path);
    info.format = "GGUF v" + std::to_string(g.version());
    info.architecture = g.get_string("general.architecture", "(unknown)");
    for (const auto& [key, value] : g.metadata())
      info.metadata.emplace_back(key, value.to_string());
    list_tensors(g.store());
    try {
      auto tok = tokenizer_from_gguf(g);
      info.tokenizer = tok->description() + ", " + std::to_string(tok->vocab_size()) + " tokens";
    } catch (const Error& e) {
      info.tokenizer = std::string("(unavailable: ") + e.what() + ")";
    }
    return info;
  }
  const std::string folder = folder_of(info.path);
  const json config = read_json(folder + "config.json");
  info.format = "safetensors";
  info.architecture = config.is_object() && config.contains("model_type")
                          ? config["model_type"].dump()
                          : "(unknown)";
  for (const auto& [key, value] : config.items()) info.metadata.emplace_back(key, value.dump());
  list_tensors(load_safetensors(is_dir(info.path) ? folder : info.path));
  try {
    auto tok = tokenizer_from_json(hf_tokenizer_path(folder));
    info.tokenizer = tok->description() + ", " + std::to_string(tok->vocab_size()) + " tokens";
  } catch (const Error& e) {
    info.tokenizer = std::string("(unavailable: ") + e.what() + ")";
  }
  return info;
}

}  // namespace lowbit::model
