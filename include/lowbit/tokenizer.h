// lowbit/tokenizer.h — text to token ids and back, exactly as the model's reference tokenizer
// does it: byte-level BPE (GPT-2, SmolLM2, LLaMA-3, Qwen2), SentencePiece-style BPE (LLaMA-2
// GGUFs) and WordPiece (BERT). Built from a GGUF file's tokenizer.ggml.* metadata or from a
// Hugging Face tokenizer.json.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::model {

class GgufFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, without the model's begin/end markers.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // `encode` plus what the model adds around a sequence (BOS for LLaMA-2, [CLS] ... [SEP] for BERT).
  virtual std::vector<int32_t> encode_for_model(std::string_view text) const;
  // The text of a sequence of ids (markers such as BOS are dropped).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

  int32_t vocab_size() const { return int32_t(tokens_.size()); }
  const std::string& token(int32_t id) const { return tokens_.at(size_t(id)); }  // raw vocabulary entry
  int32_t bos_id() const { return bos_id_; }  // -1 when the model has none
  int32_t eos_id() const { return eos_id_; }
  bool adds_bos() const { return add_bos_; }
  const std::string& description() const { return description_; }  // e.g. "byte-level BPE, pre-tokenizer smollm"

 protected:
  std::vector<std::string> tokens_;
  int32_t bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = false;
  std::string description_;
};

// From GGUF metadata (tokenizer.ggml.model = gpt2 | llama | bert). Throws lowbit::Error naming
// the file when the tokenizer kind or pre-tokenizer is one lowbit does not implement.
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& gguf);
// From a Hugging Face tokenizer.json (model type BPE or WordPiece).
std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& path);

}  // namespace lowbit::model
