// `export_compressed_tensors`: a LLaMA model after a recipe as the Hugging Face folder vLLM loads.
// config.json is transformers' LlamaConfig of the model plus a quantization_config (one config
// group per distinct weight / activation layout, targets "Linear" when there is one); the weights
// are in Hugging Face's names and RoPE layout (a GGUF's q / k rows are put back in the half-split
// order); the tokenizer comes from the source.
#include "lowbit/export/compressed_tensors_export.h"

#include <charconv>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "export/ct_encoding.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/util/error.h"
#include "util/files.h"
#include "util/json_file.h"

namespace lowbit::exports {
namespace {

using nlohmann::json;

std::string gap_of_model(const model::Llama& m) {
  const model::LlamaConfig& c = m.config();
  if (c.arch != "llama")
    return "the " + c.arch + " architecture is not one lowbit writes to compressed-tensors (llama)";
  if (c.embedding_scale != 1.0f || c.qk_norm || c.sandwich_norms)
    return "the model has Gemma-style parts LlamaForCausalLM lacks";
  if (c.qkv_bias || c.mlp_bias) return "the model's Linears carry biases (not written yet)";
  if (c.sliding_window > 0) return "the model uses sliding-window attention (not written yet)";
  if (c.rope_scaling != "none" && c.rope_scaling != "default")
    return "RoPE scaling '" + c.rope_scaling + "' is not written yet";
  for (const model::Linear* lin : m.linears()) {
    if (lin->input_transform())
      return lin->name() +
             " rotates its input at run time (an online Hadamard), which vLLM's compressed-tensors "
             "loader does not run: use hadamard with no_online";
    if (lin->accumulation()) return "a narrow-accumulator emulation has no place in a checkpoint";
    if (!lin->bias().empty())
      return lin->name() + " carries a bias (bias correction adds them), which is not written yet";
    if (lin->products())
      return lin->name() + " multiplies by L-Mul, an emulation that has no place in a checkpoint";
    if (lin->low_rank())
      return lin->name() +
             " carries a low-rank correction (lorc), which a checkpoint has no tensor for";
    if (lin->packed_weight() && !lin->weight_ptr())
      return lin->name() + " has no float32 weight (load the model without pack_at_load)";
  }
  if (!m.weights().token_embedding)
    return "the embedding has no float32 table (load the model without pack_at_load)";
  for (const model::LlamaLayer& l : m.weights().layers) {
    if (l.kv_cache)
      return "the KV cache is quantized (" + scheme_name(*l.kv_cache) +
             "); vLLM sets its cache type when it runs (--kv-cache-dtype)";
    if (l.attention_products) return "attention multiplies by L-Mul, an emulation checkpoints lack";
  }
  return "";
}

// Hugging Face's row order of a q or k weight from GGUF's: within each head, row j * d/2 + k of
// the half-split layout is row 2k + j of the adjacent-pairs one.
std::vector<size_t> half_split_rows(int heads, int head_dim) {
  std::vector<size_t> order(size_t(heads) * size_t(head_dim));
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < half; ++k)
        order[size_t(h * head_dim + j * half + k)] = size_t(h * head_dim + 2 * k + j);
  return order;
}

// A float32 as the shortest decimal that reads back as it (1e-05, not 9.999999747378752e-06).
double shortest(float v) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, v).ptr;
  return std::stod(std::string(text, end));
}

json hf_config(const model::Llama& m, const std::string& torch_dtype, int bos, int eos) {
  const model::LlamaConfig& c = m.config();
  json j = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_size", c.dim},
            {"intermediate_size", c.hidden_dim},
            {"num_hidden_layers", c.n_layers},
            {"num_attention_heads", c.n_heads},
            {"num_key_value_heads", c.n_kv_heads},
            {"head_dim", c.head_dim},
            {"max_position_embeddings", c.context_length},
            {"rms_norm_eps", shortest(c.norm_eps)},
            {"rope_theta", shortest(c.rope_theta)},
            {"rope_scaling", nullptr},
            {"vocab_size", c.vocab_size},
            {"tie_word_embeddings", c.tied_output},
            {"hidden_act", "silu"},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"torch_dtype", torch_dtype}};
  if (bos >= 0) j["bos_token_id"] = bos;
  if (eos >= 0) j["eos_token_id"] = eos;
  return j;
}

void write_text(const std::string& path, const std::string& text) {
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

// The tokenizer files of the source, or written from a GGUF's tokenizer; sets the BOS / EOS ids
// config.json names (-1 where the source has none).
void write_tokenizer(const std::string& source, const std::string& folder, int context, int& bos,
                     int& eos) {
  if (files::is_dir(source)) {
    const std::string from = source + (files::ends_with(source, "/") ? "" : "/");
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                          "generation_config.json"})
      if (files::exists(from + f)) write_text(folder + f, files::read_all(from + f));
    // A tokenizer folder without a model (lowbit train's trained BPE) has no config.json.
    const json config = files::exists(from + "config.json") ? files::read_json(from + "config.json")
                                                            : json::object();
    bos = config.contains("bos_token_id") && config["bos_token_id"].is_number_integer()
              ? config["bos_token_id"].get<int>()
              : -1;
    eos = config.contains("eos_token_id") && config["eos_token_id"].is_number_integer()
              ? config["eos_token_id"].get<int>()
              : -1;
    return;
  }
  const model::GgufFile g(source);
  const model::HfTokenizerFiles t = model::hf_tokenizer_files(g, context);
  write_text(folder + "tokenizer.json", t.tokenizer_json);
  write_text(folder + "tokenizer_config.json", t.tokenizer_config_json);
  bos = int(g.get_int("tokenizer.ggml.bos_token_id", -1));
  eos = int(g.get_int("tokenizer.ggml.eos_token_id", -1));
}

std::string torch_dtype_name(const std::string& dtype) {
  return dtype == "F32" ? "float32" : dtype == "BF16" ? "bfloat16" : "float16";
}

}  // namespace

std::string parse_kept_dtype(const std::string& name) {
  if (name == "f32") return "F32";
  if (name == "bf16") return "BF16";
  if (name == "f16") return "F16";
  throw Error("kept weights' dtype " + name + ": expected f32, bf16 or f16");
}

std::string compressed_tensors_export_gap(const ptq::Recipe& recipe) {
  if (recipe.kv) return "the recipe quantizes the KV cache (vLLM's --kv-cache-dtype sets it)";
  if (recipe.accumulate) return "the recipe emulates a narrow accumulator";
  for (const ptq::RecipeOverride& o : recipe.overrides)
    if (o.kv && *o.kv) return "the override " + o.match + " quantizes the KV cache";
  for (const char* part : {"embedding", "output"})
    if (recipe.resolve(part).weights)
      return std::string("the recipe quantizes the ") + part +
             " (compressed-tensors quantizes Linear layers; keep it: --embed fp --head fp)";
  return "";
}

CompressedTensorsReport export_compressed_tensors(const model::Llama& m, const ptq::Recipe& recipe,
                                                  const std::string& source, const std::string& out,
                                                  const CompressedTensorsOptions& options) {
  if (const std::string gap = compressed_tensors_export_gap(recipe); !gap.empty())
    throw Error("export to compressed-tensors: " + gap);
  if (const std::string gap = gap_of_model(m); !gap.empty())
    throw Error("export to compressed-tensors: " + gap);
  const model::LlamaConfig& c = m.config();
  const model::LlamaWeights& w = m.weights();
  const std::string kept = options.emulated_f32 ? "F32" : options.kept_dtype;
  // (The recipe's embedding and head schemes are refused by the gap above; a method may still
  // have given the head one.)
  if (w.output.weight_scheme())
    throw Error("export to compressed-tensors: the head is quantized; keep it (--head fp)");

  CompressedTensorsReport report;
  std::vector<model::RawTensor> tensors;
  double matrix_bits = 0, matrix_params = 0, linear_bits = 0, linear_params = 0;
  // What a tensor counts towards in bits per weight: nothing (norms), the matrices (embedding,
  // head), or the matrices and the blocks' Linears.
  enum class Part { Norm, Matrix, Linear };
  const auto add = [&](model::RawTensor t, const std::string& from, Part part) {
    report.tensors.push_back({t.name, t.dtype, t.shape, from, t.bytes.size()});
    const double bits = 8.0 * double(t.bytes.size());
    if (part != Part::Norm) matrix_bits += bits;
    if (part == Part::Linear) linear_bits += bits;
    tensors.push_back(std::move(t));
  };
  const auto norm = [&](const std::string& name, const std::vector<float>& v) {
    add(dense_tensor(name, v, {int64_t(v.size())}, "F32"), "norm", Part::Norm);
  };
  const auto count = [&](double params, Part part) {  // a matrix's parameters, once
    matrix_params += params;
    if (part == Part::Linear) linear_params += params;
  };

  // Config groups: modules with the same weight layout, activation args and compressor.
  struct Group {
    json weights, activations;
    std::string format;
    std::vector<std::string> modules;
  };
  std::vector<Group> groups;
  std::vector<std::string> ignored;

  {
    const double params = double(c.vocab_size) * double(c.dim);
    count(params, Part::Matrix);
    add(dense_tensor("model.embed_tokens.weight", *w.token_embedding,
                     {int64_t(c.vocab_size), int64_t(c.dim)}, kept),
        "fp", Part::Matrix);
  }
  const bool rows_paired = c.rope_style == model::RopeStyle::AdjacentPairs;
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const model::LlamaLayer& l = w.layers[i];
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    norm(prefix + "input_layernorm.weight", l.attn_norm);
    norm(prefix + "post_attention_layernorm.weight", l.ffn_norm);
    const std::tuple<const model::Linear*, const char*, int> linears[] = {
        {&l.wq, "self_attn.q_proj", c.n_heads}, {&l.wk, "self_attn.k_proj", c.n_kv_heads},
        {&l.wv, "self_attn.v_proj", 0},         {&l.wo, "self_attn.o_proj", 0},
        {&l.w_gate, "mlp.gate_proj", 0},        {&l.w_up, "mlp.up_proj", 0},
        {&l.w_down, "mlp.down_proj", 0}};
    for (const auto& [lin, role, heads] : linears) {
      const std::string module = prefix + role;
      const size_t rows = size_t(lin->out_features()), cols = size_t(lin->in_features());
      const std::vector<size_t> order =
          rows_paired && heads > 0 ? half_split_rows(heads, c.head_dim) : std::vector<size_t>{};
      const std::optional<Scheme> scheme =
          options.emulated_f32 ? std::nullopt : lin->weight_scheme();
      const std::optional<Scheme> input = options.emulated_f32 ? std::nullopt : lin->input_scheme();
      CtWeight ct = encode_ct_weight(module + " (" + lin->name() + ")", lin->weight(), rows, cols,
                                     scheme, lin->weight_codes().get(), lin->weight_global_scale(),
                                     kept, order, input.has_value());
      const json activations = ct_activation_args(module + " (" + lin->name() + ")", input);
      const double params = double(rows) * double(cols);
      count(params, Part::Linear);
      const std::string from = scheme ? scheme_name(*scheme) : "fp";
      for (model::RawTensor& t : ct.tensors) {
        t.name = module + "." + t.name;
        add(std::move(t), from, Part::Linear);
      }
      if (!scheme && !input) {
        ignored.push_back(module);
        continue;
      }
      if (!scheme)
        throw Error("export to compressed-tensors: " + module +
                    " quantizes its activations but keeps its weights, which compressed-tensors "
                    "has no compressor for");
      Group* g = nullptr;
      for (Group& existing : groups)
        if (existing.weights == ct.weight_args && existing.activations == activations &&
            existing.format == ct.format)
          g = &existing;
      if (!g) {
        groups.push_back({ct.weight_args, activations, ct.format, {}});
        g = &groups.back();
      }
      g->modules.push_back(module);
    }
  }
  norm("model.norm.weight", w.final_norm);
  if (!c.tied_output) {
    const model::Linear& head = w.output;
    const double params = double(head.out_features()) * double(head.in_features());
    count(params, Part::Matrix);
    add(dense_tensor("lm_head.weight", head.weight(),
                     {int64_t(head.out_features()), int64_t(head.in_features())}, kept),
        "fp", Part::Matrix);
  }

  std::filesystem::create_directories(out);
  const std::string folder = out + (files::ends_with(out, "/") ? "" : "/");
  // The tokenizer first: a source whose tokenizer cannot be written fails before the weights.
  int bos = -1, eos = -1;
  write_tokenizer(source, folder, c.context_length, bos, eos);
  json config = hf_config(m, torch_dtype_name(kept), bos, eos);
  if (!groups.empty()) {
    json config_groups = json::object();
    std::map<std::string, int> formats;
    for (size_t k = 0; k < groups.size(); ++k) {
      // One group: every Linear but those listed in "ignore"; several: each by its modules.
      const json targets = groups.size() == 1 ? json{"Linear"} : json(groups[k].modules);
      config_groups["group_" + std::to_string(k)] = {{"targets", targets},
                                                     {"weights", groups[k].weights},
                                                     {"input_activations", groups[k].activations},
                                                     {"output_activations", nullptr},
                                                     {"format", groups[k].format}};
      formats[groups[k].format]++;
    }
    report.format = formats.size() == 1 ? groups[0].format : "mixed-precision";
    // The head and the embedding are never quantized here; naming them keeps tools that match
    // "Linear" by tensor names alone (compressed-tensors' own dequantizer) off the embedding.
    json ignore = json::array({"lm_head", "model.embed_tokens"});
    if (groups.size() == 1)
      for (const std::string& module : ignored) ignore.push_back(module);
    config["quantization_config"] = {{"quant_method", "compressed-tensors"},
                                     {"format", report.format},
                                     {"quantization_status", "compressed"},
                                     {"config_groups", config_groups},
                                     {"ignore", ignore},
                                     {"kv_cache_scheme", nullptr},
                                     {"global_compression_ratio", nullptr},
                                     {"sparsity_config", json::object()}};
  } else {
    report.format = "dense";
  }

  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"quantized_by", "lowbit"}};
  if (!options.recipe_text.empty()) metadata["lowbit.recipe"] = options.recipe_text;
  model::write_raw_safetensors(folder + "model.safetensors", tensors, metadata);
  // config.json last: a folder with one is complete.
  write_text(folder + "config.json", config.dump(2) + "\n");
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "generation_config.json"})
    if (files::exists(folder + f)) report.folder_bytes += std::filesystem::file_size(folder + f);
  report.weight_bits = matrix_params > 0 ? matrix_bits / matrix_params : 0;
  report.linear_bits = linear_params > 0 ? linear_bits / linear_params : 0;
  return report;
}

}  // namespace lowbit::exports
