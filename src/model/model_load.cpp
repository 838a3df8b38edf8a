// Finding, recognising and loading models: GGUF files and Hugging Face folders.
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <memory>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/model.h"
#include "lowbit/safetensors.h"
#include "util/json_file.h"
#include "model/rope_frequencies.h"

#ifndef LOWBIT_SOURCE_DIR
#define LOWBIT_SOURCE_DIR "."
#endif

namespace lowbit::model {
namespace {

using nlohmann::json;
using files::ends_with;
using files::exists;
using files::is_dir;

std::string folder_of(const std::string& path) {
  return is_dir(path) ? (ends_with(path, "/") ? path : path + "/") : path.substr(0, path.find_last_of('/') + 1);
}

int positive(int64_t v, const std::string& what, const std::string& where) {
  if (v <= 0 || v > (int64_t(1) << 24)) throw Error(where + ": " + what + " = " + std::to_string(v) + " is not a sensible size");
  return int(v);
}

const char* const kLlamaFamily[] = {"llama", "mistral", "qwen2"};
bool is_llama_family(const std::string& arch) {
  for (const char* a : kLlamaFamily)
    if (arch == a) return true;
  return false;
}

// ---- GGUF ----

LlamaConfig llama_config_from_gguf(const GgufFile& g) {
  const std::string arch = g.get_string("general.architecture");
  const std::string& path = g.path();
  if (!is_llama_family(arch))
    throw Error(path + ": architecture '" + arch + "' is not supported (supported: llama, mistral, qwen2; BERT from a "
                "Hugging Face folder)");
  const std::string p = arch + ".";
  LlamaConfig c;
  c.arch = arch;
  c.dim = positive(g.get_int(p + "embedding_length"), "embedding_length", path);
  c.n_layers = positive(g.get_int(p + "block_count"), "block_count", path);
  c.n_heads = positive(g.get_int(p + "attention.head_count"), "attention.head_count", path);
  c.n_kv_heads = positive(g.get_int(p + "attention.head_count_kv", c.n_heads), "attention.head_count_kv", path);
  c.head_dim = positive(g.get_int(p + "attention.key_length", c.dim / c.n_heads), "attention.key_length", path);
  c.hidden_dim = positive(g.get_int(p + "feed_forward_length"), "feed_forward_length", path);
  c.context_length = positive(g.get_int(p + "context_length", 2048), "context_length", path);
  c.norm_eps = float(g.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = float(g.get_float(p + "rope.freq_base", 10000.0));
  if (g.get_int(p + "rope.dimension_count", c.head_dim) != c.head_dim)
    throw Error(path + ": partial rotary embeddings (rope.dimension_count != head dim) are not supported");
  if (c.n_heads % c.n_kv_heads != 0) throw Error(path + ": head_count is not a multiple of head_count_kv");
  const TensorView& emb = g.store().get("token_embd.weight");
  if (emb.shape.size() != 2) throw Error(path + ": token_embd.weight is not a matrix");
  c.vocab_size = positive(emb.shape[0], "vocabulary size", path);
  // llama.cpp's converter permutes wq / wk of llama-style models into adjacent pairs; qwen2 is
  // converted unpermuted and rotated NeoX-style.
  c.rope_style = arch == "qwen2" ? RopeStyle::HalfSplit : RopeStyle::AdjacentPairs;
  c.qkv_bias = g.store().find("blk.0.attn_q.bias") != nullptr;
  c.rope_inv_freq = rope_inv_freq(c.head_dim, c.rope_theta);
  const std::string scaling = g.get_string(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    const double factor = g.get_float(p + "rope.scaling.factor", 1.0);
    rope_scale_linear(c.rope_inv_freq, factor);
    c.rope_scaling = "linear x" + std::to_string(factor);
  } else if (scaling != "none") {
    throw Error(path + ": RoPE scaling '" + scaling + "' is not supported (supported: none, linear, llama3)");
  }
  if (const TensorView* freqs = g.store().find("rope_freqs.weight")) {  // LLaMA-3.1 stores its factors
    if (freqs->numel() != c.head_dim / 2) throw Error(path + ": rope_freqs.weight has the wrong length");
    const std::vector<float> factors = g.store().to_f32(*freqs);
    for (size_t i = 0; i < factors.size(); ++i) c.rope_inv_freq[i] /= factors[i];
    c.rope_scaling = "rope_freqs";
  }
  return c;
}

// ---- Hugging Face folder ----

json read_json(const std::string& path) {
  if (!exists(path)) throw Error(path + ": missing (a Hugging Face model folder needs config.json)");
  return files::read_json(path);
}

int64_t required_int(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) throw Error(path + ": \"" + key + "\" is missing");
  return files::json_int(j[key], path + ": \"" + key + "\"");
}

LlamaConfig llama_config_from_json(const json& j, const std::string& path) {
  LlamaConfig c;
  c.arch = j.at("model_type").get<std::string>();
  c.dim = positive(required_int(j, "hidden_size", path), "hidden_size", path);
  c.n_layers = positive(required_int(j, "num_hidden_layers", path), "num_hidden_layers", path);
  c.n_heads = positive(required_int(j, "num_attention_heads", path), "num_attention_heads", path);
  c.n_kv_heads = positive(files::json_int_or(j, "num_key_value_heads", c.n_heads, path), "num_key_value_heads", path);
  c.head_dim = positive(files::json_int_or(j, "head_dim", c.dim / c.n_heads, path), "head_dim", path);
  c.hidden_dim = positive(required_int(j, "intermediate_size", path), "intermediate_size", path);
  c.vocab_size = positive(required_int(j, "vocab_size", path), "vocab_size", path);
  c.context_length = positive(files::json_int_or(j, "max_position_embeddings", 2048, path), "max_position_embeddings", path);
  c.norm_eps = float(j.value("rms_norm_eps", 1e-6));
  c.rope_theta = float(j.value("rope_theta", 10000.0));
  c.rope_style = RopeStyle::HalfSplit;
  c.qkv_bias = c.arch == "qwen2" || j.value("attention_bias", false);
  if (c.n_heads % c.n_kv_heads != 0) throw Error(path + ": num_attention_heads is not a multiple of num_key_value_heads");
  c.rope_inv_freq = rope_inv_freq(c.head_dim, c.rope_theta);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    const std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
    const double factor = rs.value("factor", 1.0);
    if (type == "linear") {
      rope_scale_linear(c.rope_inv_freq, factor);
    } else if (type == "llama3") {
      rope_scale_llama3(c.rope_inv_freq, factor, rs.value("low_freq_factor", 1.0), rs.value("high_freq_factor", 4.0),
                        rs.value("original_max_position_embeddings", 8192.0));
    } else if (type != "default") {
      throw Error(path + ": rope_scaling type '" + type + "' is not supported (supported: linear, llama3)");
    }
    c.rope_scaling = type;
  }
  return c;
}

BertConfig bert_config_from_json(const json& j, const std::string& path) {
  BertConfig c;
  c.dim = positive(required_int(j, "hidden_size", path), "hidden_size", path);
  c.n_layers = positive(required_int(j, "num_hidden_layers", path), "num_hidden_layers", path);
  c.n_heads = positive(required_int(j, "num_attention_heads", path), "num_attention_heads", path);
  c.hidden_dim = positive(required_int(j, "intermediate_size", path), "intermediate_size", path);
  c.vocab_size = positive(required_int(j, "vocab_size", path), "vocab_size", path);
  c.max_positions = positive(files::json_int_or(j, "max_position_embeddings", 512, path), "max_position_embeddings", path);
  c.type_vocab_size = positive(files::json_int_or(j, "type_vocab_size", 2, path), "type_vocab_size", path);
  c.norm_eps = float(j.value("layer_norm_eps", 1e-12));
  const std::string act = j.value("hidden_act", std::string("gelu"));
  if (act != "gelu") throw Error(path + ": hidden_act '" + act + "' is not supported (BERT with exact GELU only)");
  return c;
}

std::string hf_tokenizer_path(const std::string& folder) {
  const std::string p = folder + "tokenizer.json";
  if (!exists(p)) throw Error(folder + ": tokenizer.json is missing (lowbit reads the tokenizer from it)");
  return p;
}

}  // namespace

std::string Model::summary() const {
  return llama ? llama->config().summary() : bert ? bert->config().summary() : std::string("(empty)");
}

std::string models_dir() {
  if (const char* env = std::getenv("LOWBIT_MODELS")) return env;
  return std::string(LOWBIT_SOURCE_DIR) + "/models";
}

std::string default_model_name() { return "smollm2"; }

std::string resolve_model_path(const std::string& name) {
  static const std::pair<const char*, const char*> kInstalled[] = {
      {"smollm2", "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"},
      {"minilm", "all-minilm-l6-v2"},
  };
  for (const auto& [alias, rel] : kInstalled)
    if (name == alias) {
      const std::string p = models_dir() + "/" + rel;
      if (!exists(p))
        throw Error("model '" + name + "' is not installed at " + p + " (run scripts/install-models.sh, or set LOWBIT_MODELS)");
      return p;
    }
  if (!exists(name))
    throw Error(name + ": no such file or folder, and not an installed model name (installed names: smollm2, minilm)");
  return name;
}

Model load_model(const std::string& name_or_path) {
  Model m;
  m.path = resolve_model_path(name_or_path);
  if (!is_dir(m.path) && !ends_with(m.path, ".json") && !ends_with(m.path, ".safetensors")) {
    GgufFile g(m.path);
    m.format = "gguf";
    m.tokenizer = tokenizer_from_gguf(g);
    m.llama = std::make_unique<Llama>(Llama::load(g.store(), llama_config_from_gguf(g), true));
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
    type = config.value("model_type", "");
    if (type == "bert") bert_config = std::make_unique<BertConfig>(bert_config_from_json(config, config_path));
    else if (is_llama_family(type)) llama_config = std::make_unique<LlamaConfig>(llama_config_from_json(config, config_path));
    else throw Error(config_path + ": model_type '" + type + "' is not supported (supported: llama, mistral, qwen2, bert)");
  } catch (const json::exception& e) {
    throw Error(config_path + ": unexpected structure (" + e.what() + ")");
  }
  TensorStore store = load_safetensors(is_dir(m.path) ? folder : m.path);
  m.format = "safetensors";
  m.tokenizer = tokenizer_from_json(hf_tokenizer_path(folder));
  if (bert_config) m.bert = std::make_unique<Bert>(Bert::load(store, *bert_config));
  else m.llama = std::make_unique<Llama>(Llama::load(store, *llama_config, false));
  store.release_pages();
  return m;
}

ModelInfo inspect_model(const std::string& name_or_path) {
  ModelInfo info;
  info.path = resolve_model_path(name_or_path);
  const auto list_tensors = [&](const TensorStore& store) {
    for (const TensorView& t : store.tensors()) info.tensors.push_back({t.name, t.dtype, t.shape_string(), t.nbytes});
  };
  if (!is_dir(info.path) && !ends_with(info.path, ".json") && !ends_with(info.path, ".safetensors")) {
    GgufFile g(info.path);
    info.format = "GGUF v" + std::to_string(g.version());
    info.architecture = g.get_string("general.architecture", "(unknown)");
    for (const auto& [key, value] : g.metadata()) info.metadata.emplace_back(key, value.to_string());
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
  info.architecture = config.is_object() && config.contains("model_type") ? config["model_type"].dump() : "(unknown)";
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
