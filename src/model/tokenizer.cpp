// Building a tokenizer from a GGUF file's tokenizer.ggml.* metadata or from a Hugging Face
// tokenizer.json; anything lowbit does not implement is an error that says so.
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "lowbit/model/gguf.h"
#include "lowbit/util/error.h"
#include "model/text_splitting.h"
#include "model/tokenizer_spec.h"
#include "util/json_file.h"

namespace lowbit::model {
namespace {

using nlohmann::json;

enum GgufTokenType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// GGUF's tokenizer.ggml.pre names (llama.cpp's list) for the pre-tokenizers lowbit implements.
bool pre_stages_for(const std::string& pre, TokenizerSpec& spec) {
  if (pre.empty() || pre == "default" || pre == "gpt2" || pre == "gpt-2") {
    spec.pre_patterns = {regex::kGpt2};
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell" ||
             pre == "command-r") {
    spec.pre_patterns = {regex::kEachDigit, regex::kGpt2};
  } else if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    spec.pre_patterns = {regex::kLlama3};
  } else if (pre == "qwen2") {
    spec.pre_patterns = {regex::kQwen2};
    spec.nfc = true;
  } else {
    return false;
  }
  return true;
}

int32_t find_token(const std::vector<std::string>& tokens, const std::string& text) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == text) return int32_t(i);
  return -1;
}

int32_t checked_id(int64_t id, size_t vocab, const std::string& where, const char* what) {
  if (id < -1 || id >= int64_t(vocab))
    throw Error(where + ": " + what + " id " + std::to_string(id) +
                " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
  return int32_t(id);
}

// The pre-tokenizer of a tokenizer.json: regex stages, and whether byte-level mapping is on.
void json_pre_tokenizer(const json& pre, const std::string& path, TokenizerSpec& spec,
                        bool& byte_level) {
  if (pre.is_null()) return;
  const std::string type = pre.value("type", "");
  if (type == "Sequence") {
    for (const json& p : pre.at("pretokenizers")) json_pre_tokenizer(p, path, spec, byte_level);
  } else if (type == "ByteLevel") {
    byte_level = true;
    if (pre.value("add_prefix_space", false))
      throw Error(path + ": ByteLevel add_prefix_space=true is not supported by lowbit yet");
    if (pre.value("use_regex", true)) spec.pre_patterns.push_back(regex::kGpt2);
  } else if (type == "Digits") {
    spec.pre_patterns.push_back(pre.value("individual_digits", false) ? regex::kEachDigit
                                                                      : regex::kDigitRuns);
  } else if (type == "Split") {
    const json& pattern = pre.at("pattern");
    if (!pattern.contains("Regex") || pre.value("behavior", "") != "Isolated" ||
        pre.value("invert", false))
      throw Error(path +
                  ": only Split pre-tokenizers with a Regex pattern, behavior Isolated and invert "
                  "false are supported");
    spec.pre_patterns.push_back(pattern["Regex"].get<std::string>());
  } else {
    throw Error(path + ": pre-tokenizer type '" + type + "' is not supported by lowbit yet");
  }
}

// A token's text quoted for a message; invalid UTF-8 (possible in GGUF strings) shown as U+FFFD
// rather than making the message itself throw.
std::string quote_token(const std::string& text) {
  return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The vocabulary as an id-indexed list, added tokens included. Ids must be dense (0 .. n-1, every
// one present): a hole would be a token that decodes to nothing and an id no text maps to.
std::vector<std::string> json_vocab(const json& root, const std::string& path) {
  std::vector<std::string> tokens;
  std::vector<bool> assigned;
  const auto put = [&](const std::string& text, int64_t id, const char* field) {
    if (id < 0 || id > (int64_t(1) << 24))
      throw Error(path + ": " + field + ": token id " + std::to_string(id) + " is out of range");
    if (size_t(id) >= tokens.size()) {
      tokens.resize(size_t(id) + 1);
      assigned.resize(size_t(id) + 1, false);
    }
    if (assigned[size_t(id)] && tokens[size_t(id)] != text)
      throw Error(path + ": " + field + ": token id " + std::to_string(id) + " is given to both " +
                  quote_token(tokens[size_t(id)]) + " and " + quote_token(text));
    tokens[size_t(id)] = text;
    assigned[size_t(id)] = true;
  };
  const json& vocab = root.at("model").at("vocab");
  if (!vocab.is_object()) throw Error(path + ": model.vocab must be an object of token -> id");
  for (const auto& [text, id] : vocab.items())
    put(text, files::json_int(id, path + ": a token id"), "model.vocab");
  if (root.contains("added_tokens"))
    for (const json& t : root["added_tokens"])
      put(t.at("content").get<std::string>(),
          files::json_int(t.at("id"), path + ": an added token id"), "added_tokens");
  for (size_t i = 0; i < assigned.size(); ++i)
    if (!assigned[i])
      throw Error(path + ": model.vocab has no token with id " + std::to_string(i) +
                  " (ids must run 0 .. " + std::to_string(tokens.size() - 1) + " without gaps)");
  return tokens;
}

// Every token text once (else text -> id is ambiguous), named by the field it came from. Returns
// the text -> id index it built, for check_merges.
using TokenIndex = std::unordered_map<std::string, size_t>;
TokenIndex check_unique_tokens(const std::vector<std::string>& tokens, const std::string& where) {
  TokenIndex seen;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto [it, fresh] = seen.emplace(tokens[i], i);
    if (!fresh)
      throw Error(where + ": token " + quote_token(tokens[i]) + " appears twice (ids " +
                  std::to_string(it->second) + " and " + std::to_string(i) + ")");
  }
  return seen;
}

// BPE merges as the spec defines them: "left right" (one space; byte-level BPE text has none of
// its own) with both parts and their concatenation in the vocabulary, as HF tokenizers requires.
void check_merges(const std::vector<std::string>& merges, const TokenIndex& index,
                  const std::string& where) {
  for (size_t m = 0; m < merges.size(); ++m) {
    const std::string& rule = merges[m];
    const size_t space = rule.find(' ');
    const std::string problem =
        space == std::string::npos || space == 0 || space + 1 == rule.size() ||
                rule.find(' ', space + 1) != std::string::npos
            ? "is not two tokens separated by one space"
        : !index.count(rule.substr(0, space))  ? "has a left part that is not in the vocabulary"
        : !index.count(rule.substr(space + 1)) ? "has a right part that is not in the vocabulary"
        : !index.count(rule.substr(0, space) + rule.substr(space + 1))
            ? "merges into a token that is not in the vocabulary"
            : "";
    if (!problem.empty())
      throw Error(where + " " + std::to_string(m) + " " + quote_token(rule) + " " + problem);
  }
}

// What tokenizer.json's post_processor puts around a single sequence (HF tokenizers applies it
// whenever special tokens are added). `present` is false when there is none.
struct SpecialTemplate {
  bool present = false;
  std::vector<int32_t> before, after;
};

SpecialTemplate json_post_processor(const json& pp, const std::string& path,
                                    const std::vector<std::string>& tokens) {
  SpecialTemplate t;
  if (pp.is_null()) return t;
  t.present = true;
  const std::string type = pp.value("type", "");
  const auto id_of = [&](const std::string& text) {
    if (pp.contains("special_tokens") && pp["special_tokens"].contains(text)) {
      const json& ids = pp["special_tokens"][text].at("ids");
      if (ids.size() != 1)
        throw Error(path + ": post_processor special token " + quote_token(text) +
                    " is not one id");
      return int32_t(files::json_int(ids[0], path + ": a post_processor id"));
    }
    const int32_t id = find_token(tokens, text);
    if (id < 0)
      throw Error(path + ": post_processor names token " + quote_token(text) +
                  ", which is not in the vocabulary");
    return id;
  };
  if (type == "ByteLevel") {  // offsets only: ids unchanged
    t.present = false;
  } else if (type == "Sequence") {
    t.present = false;
    for (const json& p : pp.at("processors")) {
      const SpecialTemplate part = json_post_processor(p, path, tokens);
      if (!part.present) continue;
      if (t.present) throw Error(path + ": more than one post_processor adds special tokens");
      t = part;
    }
  } else if (type == "TemplateProcessing") {
    bool seen_sequence = false;
    for (const json& item : pp.at("single")) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
      } else if (item.contains("SpecialToken")) {
        (seen_sequence ? t.after : t.before)
            .push_back(id_of(item["SpecialToken"].at("id").get<std::string>()));
      } else {
        throw Error(path + ": post_processor template item " + item.dump().substr(0, 60) +
                    " is not understood");
      }
    }
    if (!seen_sequence) throw Error(path + ": post_processor template has no $A sequence");
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    t.before.push_back(
        int32_t(files::json_int(pp.at("cls").at(1), path + ": post_processor cls id")));
    t.after.push_back(
        int32_t(files::json_int(pp.at("sep").at(1), path + ": post_processor sep id")));
  } else {
    throw Error(path + ": post_processor type '" + type + "' is not supported");
  }
  for (const std::vector<int32_t>* ids : {&t.before, &t.after})
    for (int32_t id : *ids)
      if (id < 0 || size_t(id) >= tokens.size())
        throw Error(path + ": post_processor id " + std::to_string(id) +
                    " is outside the vocabulary");
  return t;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode_for_model(std::string_view text) const {
  std::vector<int32_t> ids;
  if (add_bos_ && bos_id_ >= 0) ids.push_back(bos_id_);
  const std::vector<int32_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

namespace {

// What every GGUF tokenizer kind has: the vocabulary, its literal (control / user-defined) tokens
// and the BOS / EOS / unknown ids.
TokenizerSpec gguf_common_spec(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  TokenizerSpec spec;
  spec.tokens = gguf.get_strings("tokenizer.ggml.tokens");
  if (spec.tokens.empty())
    throw Error(path + ": no tokenizer.ggml.tokens: this file carries no tokenizer");
  const size_t n = spec.tokens.size();
  const std::vector<double> types = gguf.get_numbers("tokenizer.ggml.token_type");
  if (!types.empty() && types.size() != n)
    throw Error(path + ": tokenizer.ggml.token_type and tokens differ in length");
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == kControl || types[i] == kUserDefined) spec.literal_ids.push_back(int32_t(i));
  spec.bos = checked_id(gguf.get_int("tokenizer.ggml.bos_token_id", -1), n, path, "BOS");
  spec.eos = checked_id(gguf.get_int("tokenizer.ggml.eos_token_id", -1), n, path, "EOS");
  spec.unk =
      checked_id(gguf.get_int("tokenizer.ggml.unknown_token_id", -1), n, path, "unknown-token");
  return spec;
}

bool gguf_flag(const GgufFile& gguf, const std::string& key, bool fallback) {
  const GgufValue* v = gguf.find(key);
  return v && v->type == GgufType::BOOL ? v->b : fallback;
}

// The byte-level BPE parts (tokenizer.ggml.model "gpt2"): merges and the pre-tokenizer.
void add_gguf_byte_level_parts(const GgufFile& gguf, const TokenIndex& index, TokenizerSpec& spec) {
  const std::string& path = gguf.path();
  spec.merges = gguf.get_strings("tokenizer.ggml.merges");
  check_merges(spec.merges, index, path + ": tokenizer.ggml.merges entry");
  const std::string pre = gguf.get_string("tokenizer.ggml.pre", "default");
  if (!pre_stages_for(pre, spec))
    throw Error(path + ": pre-tokenizer '" + pre +
                "' is not supported by lowbit yet (supported: default/gpt2, smollm, starcoder, "
                "llama-bpe, qwen2)");
  spec.add_bos = gguf_flag(gguf, "tokenizer.ggml.add_bos_token", false);
  spec.description = "byte-level BPE (pre-tokenizer " + pre + ", " +
                     std::to_string(spec.merges.size()) + " merges)";
}

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  const std::string model = gguf.get_string("tokenizer.ggml.model");
  TokenizerSpec spec = gguf_common_spec(gguf);
  const size_t n = spec.tokens.size();

  const TokenIndex index = check_unique_tokens(spec.tokens, path + ": tokenizer.ggml.tokens");
  if (model == "gpt2") {
    add_gguf_byte_level_parts(gguf, index, spec);
    return make_byte_level_bpe(std::move(spec));
  }
  if (model == "llama") {
    const std::vector<double> scores = gguf.get_numbers("tokenizer.ggml.scores");
    if (scores.size() != n)
      throw Error(path + ": tokenizer.ggml.scores and tokens differ in length");
    spec.scores.assign(scores.begin(), scores.end());
    spec.add_bos = gguf_flag(gguf, "tokenizer.ggml.add_bos_token", true);
    spec.add_space_prefix = gguf_flag(gguf, "tokenizer.ggml.add_space_prefix", true);
    spec.description = "SentencePiece BPE";
    return make_sentencepiece_bpe(std::move(spec));
  }
  if (model == "bert") {
    spec.cls =
        checked_id(gguf.get_int("tokenizer.ggml.cls_token_id", find_token(spec.tokens, "[CLS]")), n,
                   path, "CLS");
    spec.sep = checked_id(
        gguf.get_int("tokenizer.ggml.seperator_token_id", find_token(spec.tokens, "[SEP]")), n,
        path, "SEP");
    if (spec.unk < 0) spec.unk = find_token(spec.tokens, "[UNK]");
    // GGUF does not record casing; an uncased vocabulary has no capital letters outside [MARKERS].
    spec.lowercase = true;
    for (const std::string& t : spec.tokens)
      if (!(t.size() > 1 && t.front() == '[' && t.back() == ']'))
        for (char c : t)
          if (c >= 'A' && c <= 'Z') spec.lowercase = false;
    spec.strip_accents = spec.lowercase;
    spec.description = std::string("WordPiece (") + (spec.lowercase ? "uncased" : "cased") + ")";
    return make_wordpiece(std::move(spec));
  }
  throw Error(path + ": tokenizer kind '" + model +
              "' is not supported by lowbit yet (supported: gpt2, llama, bert)");
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& path) {
  const json root = files::read_json(path);
  try {
    const json& model = root.at("model");
    const std::string type = model.value("type", "");
    TokenizerSpec spec;
    spec.tokens = json_vocab(root, path);
    const auto id_of = [&](const std::string& t) { return find_token(spec.tokens, t); };
    if (type == "WordPiece") {
      const json& norm = root.value("normalizer", json());
      if (!norm.is_null() && norm.value("type", "") != "BertNormalizer")
        throw Error(path + ": WordPiece with normalizer '" + norm.value("type", "") +
                    "' is not supported");
      spec.lowercase = norm.is_null() ? false : norm.value("lowercase", true);
      spec.strip_accents = norm.is_null() ? false
                           : norm.contains("strip_accents") && !norm["strip_accents"].is_null()
                               ? norm["strip_accents"].get<bool>()
                               : spec.lowercase;
      spec.unk = id_of(model.value("unk_token", "[UNK]"));
      spec.cls = id_of("[CLS]");
      spec.sep = id_of("[SEP]");
      // lowbit's WordPiece puts [CLS] ... [SEP] around a sequence; the file must say the same.
      const SpecialTemplate t =
          json_post_processor(root.value("post_processor", json()), path, spec.tokens);
      if (!t.present || t.before != std::vector<int32_t>{spec.cls} ||
          t.after != std::vector<int32_t>{spec.sep})
        throw Error(
            path +
            ": post_processor does not put [CLS] before and [SEP] after a sequence, which is what "
            "lowbit's WordPiece does");
      spec.description = std::string("WordPiece (") + (spec.lowercase ? "uncased" : "cased") + ")";
      return make_wordpiece(std::move(spec));
    }
    if (type == "BPE") {
      bool byte_level = false;
      json_pre_tokenizer(root.value("pre_tokenizer", json()), path, spec, byte_level);
      if (!byte_level && root.contains("decoder") &&
          root["decoder"].value("type", "") == "ByteLevel")
        byte_level = true;
      if (!byte_level)
        throw Error(
            path +
            ": only byte-level BPE tokenizer.json files are supported (SentencePiece-style BPE "
            "is read from GGUF files)");
      const json& norm = root.value("normalizer", json());
      if (!norm.is_null()) {
        if (norm.value("type", "") != "NFC")
          throw Error(path + ": normalizer '" + norm.value("type", "") + "' is not supported");
        spec.nfc = true;
      }
      for (const json& m : model.at("merges")) {
        if (!m.is_string() && !(m.is_array() && m.size() == 2))
          throw Error(path + ": model.merges entry " + std::to_string(spec.merges.size()) + " " +
                      m.dump().substr(0, 60) + " is neither \"left right\" nor [left, right]");
        spec.merges.push_back(m.is_string()
                                  ? m.get<std::string>()
                                  : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
      }
      check_merges(spec.merges, check_unique_tokens(spec.tokens, path + ": model.vocab"),
                   path + ": model.merges entry");
      if (model.contains("unk_token") && model["unk_token"].is_string())
        spec.unk = id_of(model["unk_token"]);
      if (root.contains("added_tokens"))
        for (const json& t : root["added_tokens"])
          spec.literal_ids.push_back(
              int32_t(files::json_int(t.at("id"), path + ": an added token id")));
      // BOS / EOS live in tokenizer_config.json beside it, when present.
      const std::string config_path =
          path.substr(0, path.find_last_of('/') + 1) + "tokenizer_config.json";
      if (files::exists(config_path)) {
        const json config = files::read_json(config_path);
        const auto token_text = [](const json& v) {
          return v.is_string()   ? v.get<std::string>()
                 : v.is_object() ? v.value("content", "")
                                 : std::string();
        };
        if (config.contains("bos_token")) spec.bos = id_of(token_text(config["bos_token"]));
        if (config.contains("eos_token")) spec.eos = id_of(token_text(config["eos_token"]));
        spec.add_bos = config.value("add_bos_token", false) && spec.bos >= 0;
      }
      // The post_processor is what HF tokenizers applies (LLaMA-3 adds <|begin_of_text|> there): it
      // decides BOS when present. Tokens after the text (an appended EOS) are not implemented.
      const SpecialTemplate t =
          json_post_processor(root.value("post_processor", json()), path, spec.tokens);
      if (t.present) {
        if (t.before.size() > 1 || !t.after.empty())
          throw Error(path + ": post_processor adds " + std::to_string(t.before.size()) +
                      " token(s) before and " + std::to_string(t.after.size()) +
                      " after a sequence; lowbit implements at most one BOS before");
        spec.add_bos = !t.before.empty();
        if (spec.add_bos) spec.bos = t.before[0];
      }
      spec.description = "byte-level BPE (" + std::to_string(spec.pre_patterns.size()) +
                         " pre-tokenizer stages, " + std::to_string(spec.merges.size()) +
                         " merges)";
      return make_byte_level_bpe(std::move(spec));
    }
    throw Error(path + ": tokenizer model type '" + type +
                "' is not supported (supported: BPE, WordPiece)");
  } catch (const json::exception& e) {
    throw Error(path + ": unexpected tokenizer.json structure (" + e.what() + ")");
  }
}

HfTokenizerFiles hf_tokenizer_files(const GgufFile& gguf, int model_max_length) {
  const std::string& path = gguf.path();
  const std::string model = gguf.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw Error(path + ": its tokenizer is " + model +
                "; lowbit writes tokenizer.json for byte-level BPE (gpt2) tokenizers only");
  TokenizerSpec spec = gguf_common_spec(gguf);
  add_gguf_byte_level_parts(
      gguf, check_unique_tokens(spec.tokens, path + ": tokenizer.ggml.tokens"), spec);
  return hf_tokenizer_files(spec, model_max_length, path);
}

HfTokenizerFiles hf_tokenizer_files(const TokenizerSpec& spec, int model_max_length,
                                    const std::string& path) {
  json vocab = json::object();
  for (size_t i = 0; i < spec.tokens.size(); ++i) vocab[spec.tokens[i]] = i;
  json added = json::array();
  for (int32_t id : spec.literal_ids)
    added.push_back({{"id", id},
                     {"content", spec.tokens[size_t(id)]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  // Each regex stage as a Split that isolates its matches (what lowbit's stages do, and what HF's
  // Digits / ByteLevel regex splitting does), then the byte-level mapping without its own regex.
  json stages = json::array();
  for (const std::string& p : spec.pre_patterns)
    stages.push_back({{"type", "Split"},
                      {"pattern", {{"Regex", p}}},
                      {"behavior", "Isolated"},
                      {"invert", false}});
  stages.push_back({{"type", "ByteLevel"},
                    {"add_prefix_space", false},
                    {"trim_offsets", true},
                    {"use_regex", false}});
  json post = nullptr;
  if (spec.add_bos && spec.bos >= 0) {
    const std::string& bos = spec.tokens[size_t(spec.bos)];
    post = {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {spec.bos}}, {"tokens", {bos}}}}}}};
  }
  const json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", spec.nfc ? json{{"type", "NFC"}} : json(nullptr)},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", stages}}},
      {"post_processor", post},
      {"decoder",
       {{"type", "ByteLevel"},
        {"add_prefix_space", true},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", spec.unk >= 0 ? json(spec.tokens[size_t(spec.unk)]) : json(nullptr)},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", spec.merges}}}};
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"add_bos_token", spec.add_bos},
                 {"clean_up_tokenization_spaces", false},
                 {"model_max_length", model_max_length}};
  if (spec.bos >= 0) config["bos_token"] = spec.tokens[size_t(spec.bos)];
  if (spec.eos >= 0) config["eos_token"] = spec.tokens[size_t(spec.eos)];
  if (spec.unk >= 0) config["unk_token"] = spec.tokens[size_t(spec.unk)];
  // Invalid UTF-8 in a token (possible in GGUF strings) cannot be JSON: an error, not U+FFFD.
  try {
    return {root.dump(), config.dump(2)};
  } catch (const json::exception& e) {
    throw Error(path + ": its vocabulary cannot be written as tokenizer.json (" + e.what() + ")");
  }
}

}  // namespace lowbit::model
