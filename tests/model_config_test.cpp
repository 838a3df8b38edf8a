// Every config.json field and GGUF key that changes the forward pass is applied or refused, never
// ignored; values that make the arithmetic meaningless are errors at load; tensors the runtime does
// not use, a head the config does not tie, overlapping safetensors ranges and a tokenizer larger
// than the embedding are errors naming the file and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "error_message.h"
#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

using nlohmann::json;

class ModelConfigTest : public TempDirTest {
 protected:
  // Writes `tiny` as a Hugging Face folder, lets `edit` change config.json, loads it.
  model::Model load_hf(const TinyLlama& tiny, const std::function<void(json&)>& edit) {
    const std::string folder = path("hf");
    std::filesystem::create_directories(folder);
    tiny.write_hf(folder);
    json config = json::parse(read_text(folder + "/config.json"));
    edit(config);
    write_text(folder + "/config.json", config.dump(2));
    return model::load_model(folder);
  }
  model::Model load_gguf(const TinyLlama& tiny) {
    tiny.write_gguf(path("m.gguf"));
    return model::load_model(path("m.gguf"));
  }
};

const std::vector<int32_t> kTokens = {1, 70, 200, 33, 9, 101, 5, 250, 17, 44, 3, 99};

TEST_F(ModelConfigTest, RopeParametersOfTransformers5AreApplied) {
  TinyLlama tiny = TinyLlama::random(11);
  tiny.theta = 500000.0;  // the reference forward uses this theta
  const model::Model m = load_hf(tiny, [](json& c) {
    c.erase("rope_theta");
    c["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "default"}};
  });
  EXPECT_EQ(m.llama->config().rope_theta, 500000.0f);
  EXPECT_LT(max_relative_error(all_logits(*m.llama, kTokens), tiny.reference_logits(kTokens)),
            2e-6);
  // Linear scaling inside rope_parameters is applied too: a different model than without it.
  const model::Model scaled = load_hf(tiny, [](json& c) {
    c.erase("rope_theta");
    c["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "linear"}, {"factor", 4.0}};
  });
  EXPECT_EQ(scaled.llama->config().rope_scaling, "linear");
  EXPECT_FLOAT_EQ(scaled.llama->config().rope_inv_freq[1], m.llama->config().rope_inv_freq[1] / 4);
  // Disagreeing spellings, unknown types and unknown fields inside it are refused.
  EXPECT_NE(error_of([&] {
              load_hf(tiny, [](json& c) { c["rope_parameters"] = {{"rope_theta", 1000.0}}; });
            }).find("rope_theta"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_hf(tiny, [](json& c) {
                c["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 2.0}};
              });
            }).find("yarn"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_hf(tiny, [](json& c) {
                c["rope_parameters"] = {{"rope_type", "default"}, {"beta_fast", 32}};
              });
            }).find("beta_fast"),
            std::string::npos);
}

TEST_F(ModelConfigTest, RopeInterleavedSelectsAdjacentPairs) {
  const TinyLlama tiny = TinyLlama::random(23);
  const model::Model half = load_hf(tiny, [](json& c) { c["rope_interleaved"] = false; });
  EXPECT_EQ(half.llama->config().rope_style, model::RopeStyle::HalfSplit);
  EXPECT_LT(max_relative_error(all_logits(*half.llama, kTokens), tiny.reference_logits(kTokens)),
            2e-6);
  const model::Model pairs = load_hf(tiny, [](json& c) {
    c["rope_interleaved"] = true;
    c["is_llama_config"] = true;
  });
  EXPECT_EQ(pairs.llama->config().rope_style, model::RopeStyle::AdjacentPairs);
}

TEST_F(ModelConfigTest, ActivationOtherThanSiluIsRefused) {
  const TinyLlama tiny = TinyLlama::random(12);
  EXPECT_NO_THROW(load_hf(tiny, [](json& c) { c["hidden_act"] = "silu"; }));
  const std::string e =
      error_of([&] { load_hf(tiny, [](json& c) { c["hidden_act"] = "gelu_pytorch_tanh"; }); });
  EXPECT_NE(e.find("hidden_act"), std::string::npos) << e;
  EXPECT_NE(e.find("gelu_pytorch_tanh"), std::string::npos) << e;
}

TEST_F(ModelConfigTest, TieWordEmbeddingsIsHonouredBothWays) {
  // Untied weights, config claims tied: lm_head differs from the embedding.
  const TinyLlama untied = TinyLlama::random(13, /*tied_output=*/false);
  EXPECT_NE(error_of([&] {
              load_hf(untied, [](json& c) { c["tie_word_embeddings"] = true; });
            }).find("tie_word_embeddings"),
            std::string::npos);
  // Tied weights (no lm_head), config says untied or says nothing (default false): missing head.
  const TinyLlama tied = TinyLlama::random(14, /*tied_output=*/true);
  EXPECT_NE(error_of([&] {
              load_hf(tied, [](json& c) { c["tie_word_embeddings"] = false; });
            }).find("lm_head.weight"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_hf(tied, [](json& c) { c.erase("tie_word_embeddings"); });
            }).find("lm_head.weight"),
            std::string::npos);
  // The honest configurations load, tied and untied.
  EXPECT_TRUE(load_hf(tied, [](json&) {}).llama->config().tied_output);
  EXPECT_FALSE(load_hf(untied, [](json&) {}).llama->config().tied_output);
}

TEST_F(ModelConfigTest, TensorsTheConfigDoesNotUseAreAnError) {
  const TinyLlama tiny = TinyLlama::random(15);
  const std::string e =
      error_of([&] { load_hf(tiny, [](json& c) { c["num_hidden_layers"] = 1; }); });
  EXPECT_NE(e.find("not used"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.1."), std::string::npos) << e;
  TinyLlama gguf = TinyLlama::random(15);
  gguf.gguf_keys.emplace_back("llama.block_count", model::GgufValue::of_u32(1));
  EXPECT_NE(error_of([&] { load_gguf(gguf); }).find("blk.1."), std::string::npos);
}

TEST_F(ModelConfigTest, UnknownFieldsAreNamedNotIgnored) {
  const TinyLlama tiny = TinyLlama::random(16);
  const std::string e =
      error_of([&] { load_hf(tiny, [](json& c) { c["logit_softcapping"] = 30.0; }); });
  EXPECT_NE(e.find("logit_softcapping"), std::string::npos) << e;
  EXPECT_NE(e.find("30"), std::string::npos) << e;
  // Metadata that cannot change the numbers loads.
  EXPECT_NO_THROW(load_hf(tiny, [](json& c) {
    c["torch_dtype"] = "bfloat16";
    c["architectures"] = {"LlamaForCausalLM"};
    c["bos_token_id"] = 1;
  }));
  TinyLlama gguf = TinyLlama::random(16);
  gguf.gguf_keys.emplace_back("llama.attn_logit_softcapping", model::GgufValue::of_f32(50));
  EXPECT_NE(error_of([&] { load_gguf(gguf); }).find("llama.attn_logit_softcapping"),
            std::string::npos);
  TinyLlama meta = TinyLlama::random(16);
  meta.gguf_keys.emplace_back("general.name", model::GgufValue::of_string("tiny"));
  meta.gguf_keys.emplace_back("tokenizer.ggml.add_eos_token", model::GgufValue::of_bool(false));
  meta.gguf_keys.emplace_back("tokenizer.chat_template", model::GgufValue::of_string("{{ x }}"));
  EXPECT_NO_THROW(load_gguf(meta));
  TinyLlama eos = TinyLlama::random(16);
  eos.gguf_keys.emplace_back("tokenizer.ggml.add_eos_token", model::GgufValue::of_bool(true));
  EXPECT_NE(error_of([&] { load_gguf(eos); }).find("add_eos_token"), std::string::npos);
  TinyLlama v1 = TinyLlama::random(16);
  v1.gguf_keys.emplace_back("general.quantization_version", model::GgufValue::of_u32(1));
  EXPECT_NE(error_of([&] { load_gguf(v1); }).find("quantization_version"), std::string::npos);
}

TEST_F(ModelConfigTest, MeaninglessValuesAreErrorsAtLoad) {
  const TinyLlama tiny = TinyLlama::random(17);
  const std::vector<std::pair<std::string, json>> bad = {
      {"rms_norm_eps", 0.0},
      {"rms_norm_eps", -1e-6},
      {"rope_theta", 0.0},
      {"rope_theta", -10000.0},
      {"rope_scaling", {{"rope_type", "linear"}, {"factor", 0.0}}},
      {"rope_scaling",
       {{"rope_type", "llama3"},
        {"factor", 8.0},
        {"low_freq_factor", 4.0},
        {"high_freq_factor", 1.0}}},
      {"num_key_value_heads", 3},
      {"hidden_size", -32},
      {"rope_theta", "10000"}};
  for (const auto& [key, value] : bad) {
    const std::string e = error_of(
        [&, key = key, value = value] { load_hf(tiny, [&](json& c) { c[key] = value; }); });
    EXPECT_NE(e.find(key == "rope_scaling" ? std::string("factor") : key), std::string::npos)
        << key << " = " << value << ": " << e;
  }
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, float>>{{"llama.attention.layer_norm_rms_epsilon", 0.0f},
                                                  {"llama.attention.layer_norm_rms_epsilon", -1.0f},
                                                  {"llama.rope.freq_base", 0.0f},
                                                  {"llama.rope.freq_base", std::nanf("")},
                                                  {"llama.rope.freq_base", -1.0f}}) {
    TinyLlama g = TinyLlama::random(17);
    g.gguf_keys.emplace_back(key, model::GgufValue::of_f32(value));
    EXPECT_NE(error_of([&] { load_gguf(g); }).find(key), std::string::npos)
        << key << " = " << value;
  }
  TinyLlama moe = TinyLlama::random(17);
  moe.gguf_keys.emplace_back("llama.expert_count", model::GgufValue::of_u32(8));
  EXPECT_NE(error_of([&] { load_gguf(moe); }).find("expert_count"), std::string::npos);
}

TEST_F(ModelConfigTest, SlidingWindowLimitsTheContext) {
  const TinyLlama tiny = TinyLlama::random(18);
  const model::Model m = load_hf(tiny, [](json& c) {
    c["model_type"] = "mistral";
    c["sliding_window"] = 8;
  });
  EXPECT_EQ(m.llama->config().sliding_window, 8);
  model::LlamaRunState s(m.llama->config(), 12, 12);
  EXPECT_NO_THROW(m.llama->forward(kTokens.data(), 8, 0, s));
  EXPECT_THROW(m.llama->forward(kTokens.data(), 12, 0, s), Error);
  // For llama, a sliding window is not part of the architecture: refused.
  EXPECT_NE(error_of([&] {
              load_hf(tiny, [](json& c) { c["sliding_window"] = 8; });
            }).find("sliding_window"),
            std::string::npos);
}

TEST_F(ModelConfigTest, AttentionAndMlpBiasesAreRead) {
  // attention_bias puts biases on q, k, v and o in LlamaAttention; without those tensors: an error.
  const TinyLlama tiny = TinyLlama::random(19);
  const std::string e =
      error_of([&] { load_hf(tiny, [](json& c) { c["attention_bias"] = true; }); });
  EXPECT_NE(e.find("q_proj.bias"), std::string::npos) << e;
  EXPECT_NE(error_of([&] {
              load_hf(tiny, [](json& c) { c["mlp_bias"] = true; });
            }).find("mlp.gate_proj.bias"),
            std::string::npos);
}

TEST_F(ModelConfigTest, TokenizerLargerThanTheEmbeddingIsAnError) {
  const TinyLlama tiny = TinyLlama::random(20);
  const std::string folder = path("hf");
  std::filesystem::create_directories(folder);
  tiny.write_hf(folder);
  json tok = json::parse(read_text(folder + "/tokenizer.json"));
  tok["added_tokens"].push_back({{"id", tiny.vocab}, {"content", "<extra>"}, {"special", true}});
  write_text(folder + "/tokenizer.json", tok.dump());
  const std::string e = error_of([&] { model::load_model(folder); });
  EXPECT_NE(e.find("tokenizer has 261 tokens"), std::string::npos) << e;
  // GGUF: the tokenizer must cover the embedding exactly, as llama.cpp requires (here two
  // embedding rows more than tokens).
  TinyLlama padded = TinyLlama::random(20);
  padded.vocab += 2;
  padded.embedding.resize(size_t(padded.vocab) * size_t(padded.dim), 0.0f);
  const std::string g = error_of([&] { load_gguf(padded); });
  EXPECT_NE(g.find("260 tokens"), std::string::npos) << g;
  // A vocabulary cut short breaks the merges that build the missing tokens: named as such.
  TinyLlama cut = TinyLlama::random(20);
  cut.gguf_tokens = tiny.vocab - 2;
  const std::string c = error_of([&] { load_gguf(cut); });
  EXPECT_NE(c.find("tokenizer.ggml.merges entry 1 \"th e\""), std::string::npos) << c;
  // A merge that is not even UTF-8 is reported, not a crash while quoting it (fuzzer finding).
  TinyLlama binary = TinyLlama::random(20);
  binary.gguf_keys.emplace_back("tokenizer.ggml.merges", model::GgufValue::of_strings({"\x99 t"}));
  EXPECT_NE(error_of([&] { load_gguf(binary); }).find("merges entry 0"), std::string::npos);
}

TEST_F(ModelConfigTest, TokenizerJsonThatDoesNotParseAsTheSpecSaysIsAnError) {
  const TinyLlama tiny = TinyLlama::random(22);
  const std::string folder = path("hf");
  std::filesystem::create_directories(folder);
  tiny.write_hf(folder);
  const json good = json::parse(read_text(folder + "/tokenizer.json"));
  const auto error_with = [&](const std::function<void(json&)>& edit) {
    json tok = good;
    edit(tok);
    write_text(folder + "/tokenizer.json", tok.dump());
    return error_of([&] { model::load_model(folder); });
  };
  EXPECT_NE(error_with([](json& t) { t["model"]["merges"].push_back("t"); }).find("not two tokens"),
            std::string::npos);
  EXPECT_NE(
      error_with([](json& t) { t["model"]["merges"].push_back("t  h"); }).find("not two tokens"),
      std::string::npos);
  EXPECT_NE(error_with([](json& t) { t["model"]["merges"].push_back("q zz"); }).find("right part"),
            std::string::npos);
  EXPECT_NE(error_with([](json& t) {
              t["model"]["merges"].push_back(json::array({"a", "b", "c"}));
            }).find("model.merges"),
            std::string::npos);
  EXPECT_NE(error_with([](json& t) {
              t["model"]["merges"].push_back("a b");
            }).find("merges into a token"),
            std::string::npos);
  EXPECT_NE(
      error_with([](json& t) { t["model"]["vocab"].erase("th"); }).find("no token with id 257"),
      std::string::npos);
  EXPECT_NE(error_with([](json& t) {
              t["model"]["vocab"]["xyz"] = 5;
            }).find("token id 5 is given to both"),
            std::string::npos);
  EXPECT_EQ(error_with([](json&) {}), "");
}

TEST_F(ModelConfigTest, TheTokenizerPostProcessorDecidesTheBos) {
  // LLaMA-3's tokenizer.json adds <|begin_of_text|> in its post_processor, not
  // tokenizer_config.json.
  const TinyLlama tiny = TinyLlama::random(24);
  const std::string folder = path("hf");
  std::filesystem::create_directories(folder);
  tiny.write_hf(folder);
  json tok = json::parse(read_text(folder + "/tokenizer.json"));
  const json bos = {{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}};
  const json seq = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
  tok["post_processor"] = {{"type", "Sequence"},
                           {"processors",
                            {{{"type", "ByteLevel"}, {"trim_offsets", false}},
                             {{"type", "TemplateProcessing"}, {"single", {bos, seq}}}}}};
  write_text(folder + "/tokenizer.json", tok.dump());
  const model::Model m = model::load_model(folder);
  EXPECT_TRUE(m.tokenizer->adds_bos());
  EXPECT_EQ(m.tokenizer->bos_id(), TinyByteVocab::kEos);
  EXPECT_EQ(m.tokenizer->encode_for_model("the").front(), TinyByteVocab::kEos);
  // An EOS appended after the text is not implemented: refused, not dropped.
  tok["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {seq, bos}}};
  write_text(folder + "/tokenizer.json", tok.dump());
  EXPECT_NE(error_of([&] {
              model::load_model(folder);
            }).find("post_processor adds 0 token(s) before and 1 after"),
            std::string::npos);
  tok["post_processor"] = {{"type", "RobertaProcessing"},
                           {"cls", {"<|endoftext|>", 256}},
                           {"sep", {"<|endoftext|>", 256}}};
  write_text(folder + "/tokenizer.json", tok.dump());
  EXPECT_THROW(model::load_model(folder), Error);
}

TEST_F(ModelConfigTest, OverlappingSafetensorsRangesAreAnError) {
  // Two F32 tensors of 4 elements each, the second starting inside the first.
  const json header = {{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
                       {"b", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {8, 24}}}}};
  const std::string text = header.dump();
  std::string bytes(8, '\0');
  const uint64_t n = text.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += text + std::string(24, '\0');
  write_text(path("overlap.safetensors"), bytes);
  const std::string e = error_of([&] { model::load_safetensors(path("overlap.safetensors")); });
  EXPECT_NE(e.find("overlap"), std::string::npos) << e;
  EXPECT_NE(e.find("overlap.safetensors"), std::string::npos) << e;
}

TEST_F(ModelConfigTest, ContentHashFollowsTheBytesNotTheName) {
  const TinyLlama tiny = TinyLlama::random(21);
  tiny.write_gguf(path("a.gguf"));
  tiny.write_gguf(path("b.gguf"));
  TinyLlama edited = tiny;
  edited.final_norm[0] += 0.5f;
  edited.write_gguf(path("c.gguf"));
  const std::string a = model::load_model(path("a.gguf")).content_hash;
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, model::load_model(path("b.gguf")).content_hash);  // same bytes, other name
  edited.write_gguf(path("a.gguf"));                             // edited in place
  EXPECT_NE(a, model::load_model(path("a.gguf")).content_hash);
}

}  // namespace
}  // namespace lowbit::testing
