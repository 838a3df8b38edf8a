// Reading a model's configuration into the runtime's config: GGUF metadata of the LLaMA family,
// Hugging Face config.json (LLaMA family and BERT) and sentence-transformers' files beside it.
// Every field or key is applied, checked or known not to change the arithmetic; anything else is
// an error naming it (docs/model-config.md lists them all).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/model/bert.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/llama.h"

namespace lowbit::model {

bool is_llama_family(const std::string& arch);  // llama, mistral, qwen2
LlamaConfig llama_config_from_gguf(const GgufFile& g);
LlamaConfig llama_config_from_json(const nlohmann::json& config, const std::string& path);
BertConfig bert_config_from_json(const nlohmann::json& config, const std::string& path);
// sentence_bert_config.json (max_seq_length), 1_Pooling/config.json and modules.json in `folder`
// (ending in '/'), when present.
void read_sentence_pipeline(const std::string& folder, BertConfig& c);

}  // namespace lowbit::model
