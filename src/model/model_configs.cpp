// The configuration readers (see model_configs.h): each field applied, checked, known not to be
// math, or an error naming it.
#include "model/model_configs.h"

#include <cmath>
#include <optional>
#include <set>

#include "lowbit/util/error.h"
#include "model/config_fields.h"
#include "model/rope_frequencies.h"
#include "util/files.h"
#include "util/json_file.h"

namespace lowbit::model {

using files::exists;
using nlohmann::json;

namespace {

int positive(int64_t v, const std::string& what, const std::string& where) {
  if (v <= 0 || v > (int64_t(1) << 24))
    throw Error(where + ": " + what + " = " + std::to_string(v) + " is not a sensible size");
  return int(v);
}

const char* const kLlamaFamily[] = {"llama", "mistral", "qwen2"};

}  // namespace

bool is_llama_family(const std::string& arch) {
  for (const char* a : kLlamaFamily)
    if (arch == a) return true;
  return false;
}

// ---- GGUF ----

namespace {

// GGUF keys outside the architecture's namespace that cannot change the arithmetic. lowbit.recipe
// is the provenance `lowbit export` writes: the recipe is already in the weights.
bool gguf_key_is_not_math(const std::string& key) {
  static const char* const kPrefixes[] = {"general.", "tokenizer.chat_template",
                                          "quantize.imatrix.", "lowbit.recipe"};
  for (const char* p : kPrefixes)
    if (key.rfind(p, 0) == 0)
      return key != "general.architecture" && key != "general.quantization_version";
  return false;
}

// The tokenizer.ggml.* keys tokenizer_from_gguf reads, and those that do not change token ids.
const std::set<std::string>& gguf_tokenizer_keys() {
  static const std::set<std::string> keys = {
      "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
      "tokenizer.ggml.scores", "tokenizer.ggml.merges", "tokenizer.ggml.pre",
      "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
      "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.cls_token_id",
      "tokenizer.ggml.seperator_token_id",
      // ids of markers lowbit never inserts itself (padding, masks, chat and fill-in-the-middle
      // turns)
      "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id",
      "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
      "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
      "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.fim_pad_token_id",
      "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
      "tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
      "tokenizer.ggml.middle_token_id"};
  return keys;
}

// Reads the llama-family keys of a GGUF file, accounting for every key: each is applied, checked
// to hold the one value lowbit implements, or known not to change the numbers; anything else is an
// error naming it (docs/model-config.md).
class GgufConfigReader {
 public:
  explicit GgufConfigReader(const GgufFile& g) : g_(g) {}
  const GgufValue* find(const std::string& key) {
    used_.insert(key);
    return g_.find(key);
  }
  int size(const std::string& key, std::optional<int64_t> fallback = std::nullopt) {
    const GgufValue* v = find(key);
    if (!v && fallback) return int(*fallback);
    if (!v) fail(key, "is required");
    if (!v->is_integer()) fail(key, "must be an integer");
    const int64_t i = v->as_int();
    if (i <= 0 || i > (int64_t(1) << 24)) fail(key, "is not a sensible size (1 .. 2^24)");
    return int(i);
  }
  double positive(const std::string& key, double fallback) {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!v->is_number()) fail(key, "must be a number");
    const double d = v->as_double();
    if (!std::isfinite(d) || d <= 0) fail(key, "must be a finite number greater than zero");
    return d;
  }
  std::string string(const std::string& key, const std::string& fallback) {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::STRING) fail(key, "must be a string");
    return v->str;
  }
  // When present, the key must hold `allowed` (compared by value); else lowbit does not implement
  // it.
  void require_number(const std::string& key, double allowed, const std::string& meaning) {
    const GgufValue* v = find(key);
    if (v && (!(v->is_number() || v->type == GgufType::BOOL) ||
              (v->type == GgufType::BOOL ? double(v->b) : v->as_double()) != allowed))
      fail(key, meaning);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    const GgufValue* v = g_.find(key);
    throw Error(g_.path() + ": " + key + " = " + (v ? v->to_string() : std::string("(missing)")) +
                ": " + problem);
  }
  // Every metadata key not read above, not the tokenizer's and not known to be metadata: an error.
  void finish() const {
    std::string unknown;
    int count = 0;
    for (const auto& [key, value] : g_.metadata()) {
      if (used_.count(key) || gguf_key_is_not_math(key) || gguf_tokenizer_keys().count(key))
        continue;
      unknown += (count++ ? ", " : "") + key + " = " + value.to_string(4);
    }
    if (count)
      throw Error(
          g_.path() + ": metadata key" + (count > 1 ? "s " : " ") + unknown +
          (count > 1 ? " are" : " is") +
          " not known to lowbit, which cannot tell whether it changes the model's arithmetic "
          "(docs/model-config.md lists the keys it reads)");
  }

 private:
  const GgufFile& g_;
  std::set<std::string> used_;
};

}  // namespace

namespace {

// Gemma 3 as llama.cpp's converter writes it (and as llama.cpp runs it): norm weights hold 1 + w
// already; embeddings scaled by sqrt(dim); QK-norm; post-attention and post-MLP norms; GeGLU with
// GELU's tanh form; every sixth layer global, the others local with a sliding window and RoPE
// theta 10000 (unscaled), the global ones with the file's theta (and scaling); q·k scaled by
// 1/sqrt(head_dim), or 1/sqrt(dim / heads) for the 27B model (query_pre_attn_scalar).
void gemma3_config(GgufConfigReader& r, const GgufFile& g, LlamaConfig& c) {
  const std::string p = "gemma3.";
  c.embedding_scale = std::sqrt(float(c.dim));
  c.qk_norm = true;
  c.sandwich_norms = true;
  c.gate_activation = GateActivation::GeluTanh;
  const bool is_27b = r.string("general.size_label", "") == "27B";
  c.attention_scale = 1.0f / std::sqrt(float(is_27b ? c.dim / c.n_heads : c.head_dim));
  const int window = c.sliding_window;
  if (window < 1)
    r.fail(p + "attention.sliding_window", "Gemma 3 needs its local attention window");
  c.sliding_window = 0;  // implemented per layer below, not refused
  const int pattern = r.find(p + "attention.sliding_window_pattern")
                          ? r.size(p + "attention.sliding_window_pattern")
                          : 6;
  c.layer_window.assign(size_t(c.n_layers), 0);
  for (int l = 0; l < c.n_layers; ++l)
    if (l % pattern < pattern - 1) c.layer_window[size_t(l)] = window;
  c.rope_inv_freq_local = rope_inv_freq(c.head_dim, 10000.0);
  c.rope_local = "theta 10000";
  if (!g.store().find("blk.0.attn_q_norm.weight") || !g.store().find("blk.0.post_ffw_norm.weight"))
    throw Error(g.path() + ": a gemma3 file without attn_q_norm / post_ffw_norm tensors");
}

}  // namespace

LlamaConfig llama_config_from_gguf(const GgufFile& g) {
  GgufConfigReader r(g);
  const std::string arch = r.string("general.architecture", "");
  const std::string& path = g.path();
  const bool gemma3 = arch == "gemma3";
  if (!is_llama_family(arch) && !gemma3)
    throw Error(path + ": architecture '" + arch +
                "' is not supported (supported: llama, mistral, qwen2, gemma3; BERT from a "
                "Hugging Face folder)");
  // Version 1 of ggml's quantized blocks had other layouts; lowbit decodes version 2.
  r.require_number("general.quantization_version", 2,
                   "lowbit decodes version 2 of the quantized block layouts");
  const std::string p = arch + ".";
  LlamaConfig c;
  c.arch = arch;
  c.dim = r.size(p + "embedding_length");
  c.n_layers = r.size(p + "block_count");
  c.n_heads = r.size(p + "attention.head_count");
  c.n_kv_heads = r.size(p + "attention.head_count_kv", c.n_heads);
  c.head_dim = r.size(p + "attention.key_length", c.dim / c.n_heads);
  if (r.size(p + "attention.value_length", c.head_dim) != c.head_dim)
    r.fail(p + "attention.value_length",
           "value heads of another width than key heads are not supported");
  c.hidden_dim = r.size(p + "feed_forward_length");
  c.context_length = r.size(p + "context_length", 2048);
  c.norm_eps = float(r.positive(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = float(r.positive(p + "rope.freq_base", 10000.0));
  if (r.size(p + "rope.dimension_count", c.head_dim) != c.head_dim)
    r.fail(
        p + "rope.dimension_count",
        "partial rotary embeddings (rotating fewer dimensions than the head's) are not supported");
  if (c.n_heads % c.n_kv_heads != 0)
    r.fail(p + "attention.head_count_kv", "head_count is not a multiple of it");
  r.require_number(p + "expert_count", 0, "mixture-of-experts models are not supported");
  r.require_number(p + "expert_used_count", 0, "mixture-of-experts models are not supported");
  r.require_number(p + "attention.causal", 1, "only causal decoders are supported");
  // Tokenizer switches the tokenizer does not implement: the only accepted value is "off".
  r.require_number("tokenizer.ggml.add_eos_token", 0,
                   "lowbit does not append an end-of-sequence token to text");
  r.require_number("tokenizer.ggml.add_sep_token", 0,
                   "lowbit does not append a separator token to text");
  r.require_number("tokenizer.ggml.remove_extra_whitespaces", 0,
                   "SentencePiece whitespace folding is not implemented");
  c.sliding_window =
      r.find(p + "attention.sliding_window") ? r.size(p + "attention.sliding_window") : 0;
  const TensorView& emb = g.store().get("token_embd.weight");
  if (emb.shape.size() != 2) throw Error(path + ": token_embd.weight is not a matrix");
  c.vocab_size = positive(emb.shape[0], "vocabulary size", path);
  if (r.find(p + "vocab_size") && r.size(p + "vocab_size") != c.vocab_size)
    r.fail(p + "vocab_size",
           "differs from the rows of token_embd.weight (" + std::to_string(c.vocab_size) + ")");
  // llama.cpp's converter permutes wq / wk of llama-style models into adjacent pairs; qwen2 is
  // converted unpermuted and rotated NeoX-style.
  c.rope_style = arch == "qwen2" || gemma3 ? RopeStyle::HalfSplit : RopeStyle::AdjacentPairs;
  c.qkv_bias = g.store().find("blk.0.attn_q.bias") != nullptr;
  c.o_bias = g.store().find("blk.0.attn_output.bias") != nullptr;
  c.mlp_bias = g.store().find("blk.0.ffn_up.bias") != nullptr;
  c.rope_inv_freq = rope_inv_freq(c.head_dim, c.rope_theta);
  const std::string scaling = r.string(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    const double factor = r.positive(p + "rope.scaling.factor", 1.0);
    rope_scale_linear(c.rope_inv_freq, factor);
    c.rope_scaling = "linear x" + std::to_string(factor);
  } else if (scaling == "none") {
    r.require_number(p + "rope.scaling.factor", 1.0,
                     "a RoPE scaling factor without a scaling type");
  } else {
    r.fail(p + "rope.scaling.type",
           "is not supported (supported: none, linear; LLaMA-3.1 factors in rope_freqs.weight)");
  }
  // What the scaling was fitted for: does not enter the arithmetic of the types above.
  r.find(p + "rope.scaling.original_context_length");
  r.find(p + "rope.scaling.finetuned");
  if (const TensorView* freqs =
          g.store().find("rope_freqs.weight")) {  // LLaMA-3.1 stores its factors
    if (freqs->numel() != c.head_dim / 2)
      throw Error(path + ": rope_freqs.weight has the wrong length");
    const std::vector<float> factors = g.store().to_f32("rope_freqs.weight", freqs->shape);
    for (size_t i = 0; i < factors.size(); ++i) {
      if (!std::isfinite(factors[i]) || factors[i] <= 0)
        throw Error(path + ": rope_freqs.weight[" + std::to_string(i) +
                    "] = " + std::to_string(factors[i]) + " is not a finite positive factor");
      c.rope_inv_freq[i] /= factors[i];
    }
    c.rope_scaling = "rope_freqs";
  }
  if (gemma3) gemma3_config(r, g, c);
  r.finish();
  return c;
}

// ---- Hugging Face folder ----

namespace {

// Fields every transformers PretrainedConfig may carry that do not change a forward pass:
// provenance, dtype of the checkpoint, generation defaults, training-only settings, heads lowbit
// does not run (classification labels), special-token ids lowbit reads from the tokenizer.
void not_math_common(ConfigFields& f) {
  f.not_math(
      {"architectures", "_name_or_path", "name_or_path", "transformers_version", "torch_dtype",
       "dtype", "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id",
       "decoder_start_token_id", "initializer_range", "use_cache", "gradient_checkpointing",
       "output_attentions", "output_hidden_states", "return_dict", "torchscript", "use_bfloat16",
       "tf_legacy_loss", "pruned_heads", "chunk_size_feed_forward", "id2label", "label2id",
       "problem_type", "finetuning_task", "task_specific_params", "tokenizer_class", "prefix",
       "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
       "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty",
       "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
       "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
       "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
       "suppress_tokens", "begin_suppress_tokens", "is_decoder", "add_cross_attention",
       "cross_attention_hidden_size", "tie_encoder_decoder", "is_encoder_decoder",
       "attention_dropout", "hidden_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob",
       "classifier_dropout", "embd_pdrop", "resid_pdrop", "pretraining_tp",
       "_attn_implementation_autoset", "attn_implementation",
       // SmolLM2's converter marks its configs and leaves hints for transformers.js
       "is_llama_config", "transformers.js_config"});
  // compressed-tensors checkpoints are decompressed by the loader (model/compressed_tensors.h);
  // other quantized checkpoints (GPTQ, AWQ, bitsandbytes, ...) hold weights lowbit does not read.
  if (f.has("quantization_config")) {
    const json& qc = f.raw("quantization_config");
    if (!qc.is_object() || qc.value("quant_method", "") != "compressed-tensors")
      f.fail("quantization_config",
             "only compressed-tensors checkpoints are read (quant_method " +
                 (qc.is_object() ? qc.value("quant_method", "(none)") : std::string("(none)")) +
                 ")");
    f.use("quantization_config");
  }
}

// RoPE settings: the older "rope_theta" + "rope_scaling" pair or transformers 5's
// "rope_parameters" object (with rope_theta and rope_type inside). Applies them to c.
void read_rope(ConfigFields& top, LlamaConfig& c) {
  const json* params = top.object("rope_parameters");
  const json* scaling = top.object("rope_scaling");
  if (params && params->contains("rope_theta") && top.has("rope_theta") &&
      (*params)["rope_theta"] != top.raw("rope_theta"))
    top.fail("rope_theta", "disagrees with rope_parameters.rope_theta");
  if (params && scaling && *params != *scaling) {
    // transformers 5 may write both; they must then say the same about the scaling
    for (const auto& [k, v] : scaling->items())
      if (!params->contains(k) || (*params)[k] != v)
        top.fail("rope_scaling", "disagrees with rope_parameters");
  }
  const json empty = json::object();
  ConfigFields rope(params    ? *params
                    : scaling ? *scaling
                              : empty,
                    top.where() + (params ? ": rope_parameters" : ": rope_scaling"));
  c.rope_theta =
      float(params && params->contains("rope_theta") ? rope.positive("rope_theta")
                                                     : top.positive_or("rope_theta", 10000.0));
  top.use("rope_theta");
  c.rope_inv_freq = rope_inv_freq(c.head_dim, c.rope_theta);
  std::string type = rope.string_or("rope_type", "");
  if (type.empty()) type = rope.string_or("type", "default");  // the older spelling
  rope.use("type");
  rope.use("rope_type");
  if (type == "linear") {
    rope_scale_linear(c.rope_inv_freq, rope.positive("factor"));
  } else if (type == "llama3") {
    const double factor = rope.positive("factor"), low = rope.positive_or("low_freq_factor", 1.0),
                 high = rope.positive_or("high_freq_factor", 4.0),
                 original = rope.positive_or("original_max_position_embeddings", 8192.0);
    if (!(high > low)) rope.fail("high_freq_factor", "must be greater than low_freq_factor");
    rope_scale_llama3(c.rope_inv_freq, factor, low, high, original);
  } else if (type == "default") {
    rope.require_value("factor", {1, 1.0});
  } else {
    rope.fail(rope.has("rope_type") ? "rope_type" : "type",
              "is not supported (supported: default, linear, llama3)");
  }
  // transformers 5 may also list these beside the type; for the types above they change nothing.
  rope.not_math({"original_max_position_embeddings"});
  rope.require_value("partial_rotary_factor", {1, 1.0});
  rope.finish();
  c.rope_scaling = type;
}

}  // namespace

LlamaConfig llama_config_from_json(const json& j, const std::string& path) {
  ConfigFields f(j, path);
  not_math_common(f);
  LlamaConfig c;
  c.arch = f.string_or("model_type", "");
  c.dim = f.size("hidden_size");
  c.n_layers = f.size("num_hidden_layers");
  c.n_heads = f.size("num_attention_heads");
  c.n_kv_heads = f.size_or("num_key_value_heads", c.n_heads);
  c.head_dim = f.size_or("head_dim", c.dim / c.n_heads);
  c.hidden_dim = f.size("intermediate_size");
  c.vocab_size = f.size("vocab_size");
  c.context_length = f.size_or("max_position_embeddings", 2048);
  c.norm_eps = float(f.positive_or("rms_norm_eps", 1e-6));
  // Hugging Face rotates element i with i + d/2; SmolLM's (nanotron) configs can say interleaved.
  c.rope_style =
      f.bool_or("rope_interleaved", false) ? RopeStyle::AdjacentPairs : RopeStyle::HalfSplit;
  if (c.n_heads % c.n_kv_heads != 0)
    f.fail("num_key_value_heads", "num_attention_heads is not a multiple of it");
  f.require_value("hidden_act", {"silu"});
  f.require_value("partial_rotary_factor", {1, 1.0});
  // transformers' default for tie_word_embeddings is true in PretrainedConfig but LlamaConfig,
  // MistralConfig and Qwen2Config set false; every checkpoint of these families writes it.
  c.tied_output = f.bool_or("tie_word_embeddings", false);
  if (c.arch == "qwen2") {
    c.qkv_bias = true;                  // Qwen2's q/k/v always carry biases, o_proj never
    f.not_math({"max_window_layers"});  // only read when use_sliding_window is true
    if (f.bool_or("use_sliding_window", false))
      c.sliding_window = f.size("sliding_window");
    else
      f.use("sliding_window");
    f.require_value("use_mrope", {false});
  } else {
    const bool attention_bias = f.bool_or("attention_bias", false);
    c.qkv_bias = c.o_bias = attention_bias;  // LlamaAttention puts it on q, k, v and o
    c.mlp_bias = f.bool_or("mlp_bias", false);
    if (c.arch == "mistral" && f.has("sliding_window"))
      c.sliding_window = f.size("sliding_window");
    else
      f.require_value("sliding_window", {nullptr});
  }
  if (const json* layer_types = f.array("layer_types"))
    for (const json& t : *layer_types)
      if (t != "full_attention")
        f.fail("layer_types", "only full attention in every layer is supported");
  read_rope(f, c);
  f.finish();
  return c;
}

BertConfig bert_config_from_json(const json& j, const std::string& path) {
  ConfigFields f(j, path);
  not_math_common(f);
  f.use("model_type");
  BertConfig c;
  c.dim = f.size("hidden_size");
  c.n_layers = f.size("num_hidden_layers");
  c.n_heads = f.size("num_attention_heads");
  c.hidden_dim = f.size("intermediate_size");
  c.vocab_size = f.size("vocab_size");
  c.max_positions = f.size_or("max_position_embeddings", 512);
  c.type_vocab_size = f.size_or("type_vocab_size", 2);
  c.norm_eps = float(f.positive_or("layer_norm_eps", 1e-12));
  f.require_value("hidden_act", {"gelu"});
  f.require_value("position_embedding_type", {"absolute"});
  if (c.dim % c.n_heads != 0) f.fail("num_attention_heads", "does not divide hidden_size");
  f.finish();
  return c;
}

// sentence-transformers' pipeline beside a BERT checkpoint: lowbit embeds by mean pooling and L2
// normalisation; a folder that declares another pooling is refused rather than embedded wrongly.
void read_sentence_pipeline(const std::string& folder, BertConfig& c) {
  const std::string st_path = folder + "sentence_bert_config.json";
  if (exists(st_path)) {
    const json st = files::read_json(st_path);
    ConfigFields f(st, st_path);
    c.max_sequence_tokens = f.size_or("max_seq_length", c.max_sequence_tokens);
    if (c.max_sequence_tokens > c.max_positions)
      f.fail("max_seq_length", "exceeds max_position_embeddings");
    // Lower-casing happens in the tokenizer (tokenizer.json's normalizer); true here would do it
    // twice.
    f.require_value("do_lower_case", {false});
    f.finish();
  }
  const std::string pooling_path = folder + "1_Pooling/config.json";
  if (exists(pooling_path)) {
    const json pooling = files::read_json(pooling_path);
    ConfigFields f(pooling, pooling_path);
    f.not_math({"word_embedding_dimension"});
    f.require_value("pooling_mode_mean_tokens", {true});
    for (const char* other :
         {"pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
          "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"})
      f.require_value(other, {false});
    f.require_value("include_prompt", {true});
    f.finish();
  }
  const std::string modules_path = folder + "modules.json";
  if (exists(modules_path)) {
    const json modules = files::read_json(modules_path);
    bool normalize = false;
    if (!modules.is_array()) throw Error(modules_path + ": not a JSON array of modules");
    for (const json& m : modules) {
      const std::string type = m.is_object() ? m.value("type", "") : "";
      if (type == "sentence_transformers.models.Normalize")
        normalize = true;
      else if (type != "sentence_transformers.models.Transformer" &&
               type != "sentence_transformers.models.Pooling")
        throw Error(modules_path + ": module '" + type +
                    "' is not supported (lowbit runs Transformer, mean Pooling, Normalize)");
    }
    if (!normalize)
      throw Error(modules_path +
                  ": no Normalize module; lowbit's sentence embeddings are L2-normalised");
  }
}

}  // namespace lowbit::model
