// lowbit/model/tokenizer.h — text to token ids and back, exactly as the model's reference tokenizer
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
  // `encode` plus what the model adds around a sequence (BOS for LLaMA-2, [CLS] ... [SEP] for
  // BERT).
  virtual std::vector<int32_t> encode_for_model(std::string_view text) const;
  // The first max_tokens ids of encode(text) (all of them when max_tokens is 0), tokenizing only a
  // prefix of the text: growing prefixes cut where every pre-tokenizer splits (after a line break,
  // before a non-space character), each at least twice the last, until the prefix yields
  // max_tokens plus a margin of 64; the ids near the cut are dropped with the margin. Linear in
  // the prefix used, not in the text (tests check it equals encode() truncated, on the corpora).
  std::vector<int32_t> encode_prefix(std::string_view text, size_t max_tokens) const;
  // The text of a sequence of ids (markers such as BOS are dropped).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

  int32_t vocab_size() const { return int32_t(tokens_.size()); }
  const std::string& token(int32_t id) const {
    return tokens_.at(size_t(id));
  }                                           // raw vocabulary entry
  int32_t bos_id() const { return bos_id_; }  // -1 when the model has none
  int32_t eos_id() const { return eos_id_; }
  bool adds_bos() const { return add_bos_; }
  const std::string& description() const {
    return description_;
  }  // e.g. "byte-level BPE, pre-tokenizer smollm"

 protected:
  std::vector<std::string> tokens_;
  int32_t bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = false;
  std::string description_;
};

// Text that is not valid UTF-8 (or contains a NUL byte, as UTF-16 and binary files do) is an
// error naming the first bad byte offset, unless `repair` is set: then each maximal ill-formed
// subsequence becomes one U+FFFD REPLACEMENT CHARACTER (the Unicode Standard's recommended
// practice, §3.9 "U+FFFD Substitution of Maximal Subparts", as WHATWG's decoder does); NUL bytes
// stay an error. `where` names the text (a file) in the message.
std::string checked_utf8(std::string text, const std::string& where, bool repair = false);
// A file's contents through checked_utf8.
std::string read_text_file(const std::string& path, bool repair = false);

// From GGUF metadata (tokenizer.ggml.model = gpt2 | llama | bert). Throws lowbit::Error naming
// the file when the tokenizer kind or pre-tokenizer is one lowbit does not implement.
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& gguf);
// From a Hugging Face tokenizer.json (model type BPE or WordPiece).
std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& path);

// A GGUF file's byte-level BPE tokenizer as the Hugging Face files that say the same:
// tokenizer.json (vocabulary, merges, the pre-tokenizer's regex stages as Split stages, BOS by a
// post-processor where the model adds it) and tokenizer_config.json (BOS / EOS tokens). Throws
// lowbit::Error for other tokenizer kinds.
struct HfTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
};
HfTokenizerFiles hf_tokenizer_files(const GgufFile& gguf, int model_max_length);

// Trains a byte-level BPE of vocab_size entries on `text` (more than 257; fewer when every word
// of the text is one symbol before that): the 256 byte symbols,
// "<|endoftext|>" (id 256, the end-of-text token), then merges learned greedily — the most
// frequent adjacent pair over the pre-tokenized words, ties to the pair that sorts first — on
// SmolLM2's pre-tokenizer (digits one by one, then GPT-2's regex). Deterministic. Returns the
// Hugging Face files that describe it (tokenizer_from_json reads them back).
HfTokenizerFiles train_byte_level_bpe(std::string_view text, int vocab_size, int model_max_length);

}  // namespace lowbit::model
