// `export_gguf`: a LLaMA-family model after a recipe, written as the GGUF llama.cpp loads. The
// source file gives the metadata, the tokenizer and the tensor order; every tensor the runtime
// holds (its weights after the methods: rotated, smoothed, quantized) replaces the source's.
#include "lowbit/export/gguf_export.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "export/ggml_encoding.h"
#include "lowbit/model/gguf.h"
#include "lowbit/util/error.h"

namespace lowbit::exports {
namespace {

// GGUF's names for the roles of a block's Linears (llama.cpp's LLM_TENSOR_* for llama).
const std::map<std::string, std::string>& linear_roles() {
  static const std::map<std::string, std::string> roles = {
      {"q_proj", "attn_q"},      {"k_proj", "attn_k"},      {"v_proj", "attn_v"},
      {"o_proj", "attn_output"}, {"gate_proj", "ffn_gate"}, {"up_proj", "ffn_up"},
      {"down_proj", "ffn_down"}};
  return roles;
}

// The llama_ftype value llama.cpp shows for a file mostly in `t` (llama.h; MOSTLY_* numbering).
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 0;
    case GgmlType::F16:
      return 1;
    case GgmlType::Q4_0:
      return 2;
    case GgmlType::Q4_1:
      return 3;
    case GgmlType::Q8_0:
      return 7;
    case GgmlType::Q5_0:
      return 8;
    case GgmlType::Q5_1:
      return 9;
    case GgmlType::Q4_K:
      return 15;  // Q4_K_M
    case GgmlType::Q6_K:
      return 18;
    case GgmlType::BF16:
      return 32;
    case GgmlType::MXFP4:
      return 38;
    case GgmlType::NVFP4:
      return 39;
    default:
      return 0;
  }
}

// One tensor the runtime holds, under its GGUF name.
struct RuntimeTensor {
  std::vector<int64_t> shape;
  std::string from;
  EncodedWeight encoded;
};

std::string gap_of_model(const model::Llama& m) {
  const model::LlamaConfig& c = m.config();
  if (c.arch != "llama" && c.arch != "mistral" && c.arch != "qwen2")
    return "the " + c.arch + " architecture is not one lowbit writes yet (llama, mistral, qwen2)";
  if (c.embedding_scale != 1.0f || c.qk_norm || c.sandwich_norms)
    return "the model has Gemma-style parts the llama architecture of llama.cpp lacks";
  for (const model::Linear* lin : m.linears()) {
    if (lin->input_transform())
      return lin->name() +
             " rotates its input at run time (an online Hadamard: hadamard without no_online), "
             "which llama.cpp cannot run";
    if (lin->input_scheme())
      return lin->name() + " quantizes its activations (" + scheme_name(*lin->input_scheme()) +
             "); llama.cpp quantizes activations with its own rules: drop the activation scheme";
    if (lin->accumulation()) return "a narrow-accumulator emulation has no place in a GGUF file";
    if (lin->products())
      return lin->name() + " multiplies by L-Mul, an emulation that has no place in a GGUF file";
    if (lin->low_rank())
      return lin->name() +
             " carries a low-rank correction (lorc), which a GGUF file has no tensor for";
    if (lin->packed_weight() && !lin->weight_ptr())
      return lin->name() + " has no float32 weight (load the model without pack_at_load)";
  }
  if (!m.weights().token_embedding)
    return "the embedding has no float32 table (load the model without pack_at_load)";
  for (const model::LlamaLayer& l : m.weights().layers) {
    if (l.kv_cache)
      return "the KV cache is quantized (" + scheme_name(*l.kv_cache) +
             "); llama.cpp's cache types are set when it runs (--cache-type-k)";
    if (l.attention_products) return "attention multiplies by L-Mul, an emulation a GGUF lacks";
    // A per-head rotation of queries and keys (hadamard's, for KV-cache quantization) leaves q·k
    // as it is, up to rounding: without a quantized cache the file does without it.
  }
  return "";
}

}  // namespace

GgmlType parse_kept_type(const std::string& name) {
  if (name == "f32") return GgmlType::F32;
  if (name == "f16") return GgmlType::F16;
  if (name == "bf16") return GgmlType::BF16;
  throw Error("kept weights' type " + name + ": expected f32, f16 or bf16");
}

std::string gguf_export_gap(const ptq::Recipe& recipe) {
  if (recipe.activations) return "the recipe quantizes activations (llama.cpp uses its own rules)";
  if (recipe.kv) return "the recipe quantizes the KV cache (llama.cpp's --cache-type-k sets it)";
  if (recipe.accumulate) return "the recipe emulates a narrow accumulator";
  for (const ptq::RecipeOverride& o : recipe.overrides)
    if ((o.activations && *o.activations) || (o.kv && *o.kv))
      return "the override " + o.match + " quantizes activations or the KV cache";
  return "";
}

GgufExportReport export_gguf(const model::Llama& m, const ptq::Recipe& recipe,
                             const std::string& source_gguf, const std::string& out,
                             const GgufExportOptions& options) {
  if (const std::string gap = gguf_export_gap(recipe); !gap.empty())
    throw Error("export to GGUF: " + gap);
  if (const std::string gap = gap_of_model(m); !gap.empty()) throw Error("export to GGUF: " + gap);
  const model::GgufFile source(source_gguf);
  if (source.get_string("general.architecture") != m.config().arch)
    throw Error("export to GGUF: " + source_gguf + " is a " +
                source.get_string("general.architecture") + " file, the model a " +
                m.config().arch + " one: give the file the model was loaded from");
  const GgmlType kept = options.emulated_f32 ? GgmlType::F32 : options.kept_type;

  // Everything the runtime holds, by GGUF name.
  std::map<std::string, RuntimeTensor> ours;
  const auto matrix = [&](const std::string& gguf_name, const std::string& site,
                          const std::vector<float>& values, size_t rows, size_t cols,
                          const std::optional<Scheme>& scheme, const QTensor* codes, float global) {
    RuntimeTensor t;
    t.shape = {int64_t(rows), int64_t(cols)};
    t.from = scheme ? scheme_name(*scheme) : "fp";
    t.encoded = options.emulated_f32
                    ? encode_weight(gguf_name, values, rows, cols, std::nullopt, nullptr, 1, kept)
                    : encode_weight(gguf_name + " (" + site + ")", values, rows, cols, scheme,
                                    codes, global, kept);
    ours[gguf_name] = std::move(t);
  };
  const auto vector = [&](const std::string& gguf_name, const std::vector<float>& values,
                          const char* from) {
    RuntimeTensor t;
    t.shape = {int64_t(values.size())};
    t.from = from;
    t.encoded.type = GgmlType::F32;  // llama.cpp keeps norms and biases in float32
    t.encoded.bytes.resize(values.size() * 4);
    std::memcpy(t.encoded.bytes.data(), values.data(), t.encoded.bytes.size());
    ours[gguf_name] = std::move(t);
  };

  const model::LlamaConfig& c = m.config();
  const model::LlamaWeights& w = m.weights();
  const model::Linear& head = w.output;
  const bool head_is_table = head.weight_ptr() == w.token_embedding;
  {
    const std::optional<Scheme> scheme = recipe.resolve("embedding").weights;
    const QTensor* codes = head_is_table ? head.weight_codes().get() : nullptr;
    const float global = head_is_table ? head.weight_global_scale() : 1.0f;
    matrix("token_embd.weight", "embedding", *w.token_embedding, size_t(c.vocab_size),
           size_t(c.dim), scheme, codes, global);
    if (ours["token_embd.weight"].encoded.tensor_scale != 1.0f)
      throw Error("export to GGUF: token_embd.weight (embedding) in " +
                  ours["token_embd.weight"].from +
                  " has a tensor scale, which llama.cpp does not apply to the embedding: keep the "
                  "embedding (--embed fp) or use ggml_nvfp4 there");
  }
  if (!head_is_table)
    matrix("output.weight", "output", head.weight(), size_t(head.out_features()),
           size_t(head.in_features()), head.weight_scheme(), head.weight_codes().get(),
           head.weight_global_scale());
  vector("output_norm.weight", w.final_norm, "norm");
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const model::LlamaLayer& l = w.layers[i];
    const std::string blk = "blk." + std::to_string(i) + ".";
    vector(blk + "attn_norm.weight", l.attn_norm, "norm");
    vector(blk + "ffn_norm.weight", l.ffn_norm, "norm");
    const std::pair<const model::Linear*, const char*> linears[] = {
        {&l.wq, "q_proj"},        {&l.wk, "k_proj"},    {&l.wv, "v_proj"},       {&l.wo, "o_proj"},
        {&l.w_gate, "gate_proj"}, {&l.w_up, "up_proj"}, {&l.w_down, "down_proj"}};
    for (const auto& [lin, role] : linears) {
      const std::string base = blk + linear_roles().at(role);
      matrix(base + ".weight", lin->name(), lin->weight(), size_t(lin->out_features()),
             size_t(lin->in_features()), lin->weight_scheme(), lin->weight_codes().get(),
             lin->weight_global_scale());
      if (!lin->bias().empty()) vector(base + ".bias", lin->bias(), "bias");
      const float scale = ours[base + ".weight"].encoded.tensor_scale;
      if (scale != 1.0f) vector(base + ".scale", {scale}, "tensor scale");
    }
  }
  if (!head_is_table && ours["output.weight"].encoded.tensor_scale != 1.0f)
    vector("output.scale", {ours["output.weight"].encoded.tensor_scale}, "tensor scale");

  // The file: the source's metadata and tensor order, ours in place of its tensors.
  model::GgufWriter writer;
  GgmlType most = GgmlType::F32;
  {
    std::map<GgmlType, uint64_t> weight_bytes;
    for (const auto& [name, t] : ours)
      if (t.shape.size() == 2) weight_bytes[t.encoded.type] += t.encoded.bytes.size();
    uint64_t best = 0;
    for (const auto& [type, bytes] : weight_bytes)
      if (bytes > best) best = bytes, most = type;
  }
  for (const auto& [key, value] : source.metadata()) {
    if (key == "general.file_type" || key == "general.alignment" || key.rfind("lowbit.", 0) == 0)
      continue;
    writer.set(key, value);
  }
  writer.set("general.file_type", model::GgufValue::of_u32(file_type_of(most)));
  writer.set("general.quantized_by", model::GgufValue::of_string("lowbit"));
  if (!options.recipe_text.empty())
    writer.set("lowbit.recipe", model::GgufValue::of_string(options.recipe_text));

  GgufExportReport report;
  double matrix_bits = 0, matrix_params = 0, linear_bits = 0, linear_params = 0;
  const auto emit = [&](const std::string& name, RuntimeTensor& t) {
    report.tensors.push_back({name, t.encoded.type, t.shape, t.from, t.encoded.bytes.size()});
    if (t.shape.size() == 2) {
      matrix_bits += 8.0 * double(t.encoded.bytes.size());
      matrix_params += double(t.shape[0] * t.shape[1]);
      if (name.rfind("blk.", 0) == 0) {
        linear_bits += 8.0 * double(t.encoded.bytes.size());
        linear_params += double(t.shape[0] * t.shape[1]);
      }
    }
    writer.add_tensor(name, t.encoded.type, t.shape, std::move(t.encoded.bytes));
  };
  std::map<std::string, bool> written;
  for (const model::TensorView& v : source.store().tensors()) {
    auto it = ours.find(v.name);
    if (it != ours.end()) {
      emit(v.name, it->second);
      written[v.name] = true;
      // The tensors this one brings with it (scale, bias), right after it, as llama.cpp lists them.
      const std::string base = v.name.substr(0, v.name.rfind('.'));
      for (const char* extra : {".bias", ".scale"}) {
        auto e = ours.find(base + extra);
        if (e != ours.end() && !written[base + extra] && !source.store().find(base + extra)) {
          emit(base + extra, e->second);
          written[base + extra] = true;
        }
      }
      continue;
    }
    // A tensor the runtime does not hold (rope_freqs.weight): carried over as it is.
    if (!v.type)
      throw Error("export to GGUF: " + source_gguf + " tensor " + v.name + " has type " + v.dtype +
                  ", which lowbit cannot carry over");
    report.tensors.push_back({v.name, *v.type, v.shape, "copied", v.nbytes});
    writer.add_tensor(v.name, *v.type, v.shape, std::vector<uint8_t>(v.data, v.data + v.nbytes));
  }
  for (auto& [name, t] : ours)  // the ones the source lacks (an untied head of a tied model)
    if (!written[name]) emit(name, t);

  writer.write(out, uint64_t(source.alignment()));
  report.file_bytes = std::filesystem::file_size(out);
  report.weight_bits = matrix_params > 0 ? matrix_bits / matrix_params : 0;
  report.linear_bits = linear_params > 0 ? linear_bits / linear_params : 0;
  return report;
}

}  // namespace lowbit::exports
