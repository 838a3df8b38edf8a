// What the tokenizer classes are built from, whichever file it came from (GGUF metadata or a
// Hugging Face tokenizer.json).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "lowbit/model/tokenizer.h"

namespace lowbit::model {

struct TokenizerSpec {
  std::vector<std::string> tokens;        // id -> vocabulary entry
  std::vector<float> scores;              // SentencePiece BPE: merge priority of each entry
  std::vector<std::string> merges;        // byte-level BPE: "left right", highest priority first
  std::vector<int32_t> literal_ids;       // special / added tokens matched literally in text
  std::vector<std::string> pre_patterns;  // regex pre-tokenizer stages, in order
  bool nfc = false;                       // NFC-normalise text first (Qwen2)
  bool add_space_prefix = true;           // SentencePiece: text starts with a word boundary
  bool lowercase = true;                  // WordPiece: BERT "uncased"
  bool strip_accents = true;              // WordPiece
  int32_t bos = -1, eos = -1, unk = -1;   // -1: none
  int32_t cls = -1, sep = -1;             // WordPiece markers
  bool add_bos = false;
  std::string description;
};

// The common base of the implementations: keeps the spec and an index from vocabulary entry to
// id (where an entry repeats, the first id wins, as in HF tokenizers and llama.cpp).
class SpecTokenizer : public Tokenizer {
 protected:
  explicit SpecTokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {
    tokens_ = spec_.tokens;
    bos_id_ = spec_.bos;
    eos_id_ = spec_.eos;
    add_bos_ = spec_.add_bos;
    description_ = spec_.description;
    ids_.reserve(tokens_.size());
    for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], int32_t(i));
  }
  TokenizerSpec spec_;
  std::unordered_map<std::string, int32_t> ids_;
};

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerSpec spec);
// A byte-level BPE spec as Hugging Face files; `path` names its origin in errors.
HfTokenizerFiles hf_tokenizer_files(const TokenizerSpec& spec, int model_max_length,
                                    const std::string& path);
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerSpec spec);
std::unique_ptr<Tokenizer> make_wordpiece(TokenizerSpec spec);

}  // namespace lowbit::model
