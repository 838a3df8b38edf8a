// compressed-tensors, both ways. Reading: lowbit decompresses a fixture that compressed-tensors'
// own compressors wrote (tests/make_ct_golden.py: int2..int8 packed with groups, channels, zero
// points; FP8 per channel and in blocks; MXFP8; MXFP4; NVFP4) to the values compressed-tensors'
// decompressors give, bit for bit. Writing: every layout `export_compressed_tensors` writes loads
// back to the weights lowbit computed with (the same logits; a GGUF source's q / k rows put in
// Hugging Face's order and back), and what has no layout is refused with the reason.
// (tests/compressed_tensors_check.py runs the exports under the compressed-tensors package and
// transformers themselves.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "export/ct_encoding.h"
#include "lowbit/export/compressed_tensors_export.h"
#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/util/error.h"
#include "model/compressed_tensors.h"
#include "temp_dir.h"
#include "tiny_models.h"
#include "util/json_file.h"

namespace lowbit::testing {
namespace {

TEST(CompressedTensorsImport, DecompressesWhatCompressedTensorsWrote) {
  const std::string dir = std::string(LOWBIT_TESTS_DIR) + "/data/";
  model::TensorStore store = model::load_safetensors(dir + "ct_golden.safetensors");
  const nlohmann::json config = files::read_json(dir + "ct_golden.json");
  model::decompress_compressed_tensors(store, config, "ct_golden.json");
  int checked = 0;
  for (const auto& [name, group] : config.at("config_groups").items()) {
    const std::string module = group.at("targets").at(0).get<std::string>();
    const std::vector<float> got = store.to_f32(store.get(module + ".weight"));
    const std::vector<float> want = store.to_f32(store.get(module + ".expected"));
    ASSERT_EQ(got.size(), want.size()) << module;
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4)) << module;
    ++checked;
  }
  EXPECT_EQ(checked, 11);
}

TEST(CompressedTensorsImport, RefusesWhatItCannotRead) {
  const std::string dir = std::string(LOWBIT_TESTS_DIR) + "/data/";
  const nlohmann::json config = files::read_json(dir + "ct_golden.json");
  const auto message = [&](nlohmann::json c) -> std::string {
    model::TensorStore store = model::load_safetensors(dir + "ct_golden.safetensors");
    try {
      model::decompress_compressed_tensors(store, c, "config.json");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  nlohmann::json untargeted = config;
  untargeted["config_groups"].erase("group_0");
  EXPECT_NE(message(untargeted).find("no config group"), std::string::npos);
  nlohmann::json wrong_group = config;
  wrong_group["config_groups"]["group_1"]["weights"]["group_size"] = 10;
  EXPECT_NE(message(wrong_group).find("does not divide"), std::string::npos);
  nlohmann::json other = config;
  other["quant_method"] = "gptq";
  EXPECT_NE(message(other).find("not compressed-tensors"), std::string::npos);
  // Every key is read or refused: parts lowbit would skip change the model.
  nlohmann::json kv = config;
  kv["kv_cache_scheme"] = {{"num_bits", 8}, {"type", "float"}};
  EXPECT_NE(message(kv).find("KV cache"), std::string::npos);
  nlohmann::json rotated = config;
  rotated["transform_config"] = {{"config_groups", {{"u", {{"type", "hadamard"}}}}}};
  EXPECT_NE(message(rotated).find("rotates"), std::string::npos);
  nlohmann::json unknown = config;
  unknown["something_new"] = 1;
  EXPECT_NE(message(unknown).find("not a key lowbit knows"), std::string::npos);
  nlohmann::json sparse = config;
  sparse["config_groups"]["group_0"]["format"] = "sparse-24-bitmask";
  EXPECT_NE(message(sparse).find("does not read"), std::string::npos);
  nlohmann::json mistyped = config;  // group_0 holds packed integers
  mistyped["config_groups"]["group_0"]["weights"]["type"] = "float";
  EXPECT_NE(message(mistyped).find("not the layout"), std::string::npos);
  nlohmann::json dynamic = config;
  dynamic["config_groups"]["group_0"]["weights"]["dynamic"] = true;
  EXPECT_NE(message(dynamic).find("dynamic"), std::string::npos);
}

// Without codes, a weight is quantized again under its recorded tensor scale (as the GGUF export
// and the packed kernels do): round-to-nearest values give themselves back, and another tensor
// scale is refused rather than written.
TEST(CompressedTensorsEncoding, RequantizesUnderTheRecordedTensorScale) {
  std::vector<float> w(64 * 32);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(float(i) * 0.37f) * (1.0f + float(i % 7));
  const Scheme s = parse_scheme("nvfp4_ct");
  std::vector<float> values(w.size());
  fake_quant(s, w.data(), {64, 32}, values.data());
  const float global = tensor_global_scale(s, w.data(), w.size());
  const exports::CtWeight ct =
      exports::encode_ct_weight("w", values, 64, 32, s, nullptr, global, "F32", {}, false);
  EXPECT_EQ(ct.format, "nvfp4-pack-quantized");
  EXPECT_THROW(
      exports::encode_ct_weight("w", values, 64, 32, s, nullptr, global * 1.5f, "F32", {}, false),
      Error);
}

class CtExportTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama tiny;  // rows of 64 and 128: whole groups of 16, 32 and 64
    tiny.dim = 64;
    tiny.hidden = 128;
    tiny.head_dim = 16;
    tiny.fill_random(71);
    tiny.write_gguf(path("tiny.gguf"));
    std::filesystem::create_directories(path("tiny_hf"));
    tiny.write_hf(path("tiny_hf"));
    model_ = model::load_model(path("tiny.gguf"));
    hf_ = model::load_model(path("tiny_hf"));
    std::string text;
    for (int i = 0; i < 40; ++i)
      text += "a bird flew over the house and sang " + std::to_string(i) + ". ";
    calib_ = ptq::make_calibration(*model_.tokenizer, text, "calib.txt", 4, 32);
  }
  // The Hugging Face copy: its q / k rows are written as they are, so everything is bit for bit.
  const model::Model& source(bool gguf) const { return gguf ? model_ : hf_; }
  std::vector<float> logits(const model::Llama& m) const {
    return all_logits(m, model_.tokenizer->encode("the dog sat on the cat and ran to the mat"));
  }
  // Applies the recipe and exports it to `out`; the quantized model in *quantized.
  exports::CompressedTensorsReport export_recipe(const std::string& spelling,
                                                 const std::string& out,
                                                 model::Llama* quantized = nullptr,
                                                 bool emulated = false, bool gguf = false) {
    const ptq::Recipe r = ptq::parse_recipe_json(spelling, "test recipe");
    model::Llama q = ptq::apply_recipe(r, *source(gguf).llama, nullptr, &calib_);
    exports::CompressedTensorsOptions opt;
    opt.emulated_f32 = emulated;
    const exports::CompressedTensorsReport rep =
        exports::export_compressed_tensors(q, r, source(gguf).path, path(out), opt);
    if (quantized) *quantized = std::move(q);
    return rep;
  }
  static void expect_close(const std::vector<float>& a, const std::vector<float>& b,
                           const std::string& what) {
    // Hugging Face's RoPE pairs (i, i + d/2) where the GGUF pairs (2i, 2i + 1): the same
    // rotations, summed in another order in q·k.
    ASSERT_EQ(a.size(), b.size());
    float worst = 0, top = 0;
    for (size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, std::fabs(a[i] - b[i])), top = std::max(top, std::fabs(b[i]));
    EXPECT_LT(worst, 2e-5f * top) << what;
  }
  model::Model model_, hf_;
  ptq::Calibration calib_;
};

TEST_F(CtExportTest, EveryLayoutLoadsBackToTheSameWeights) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"weights":"int4:g32:asym"})", "pack-quantized"},
      {R"({"weights":"int4:g16"})", "pack-quantized"},
      {R"({"weights":"int3:g32:asym"})", "pack-quantized"},  // 3-bit codes cross int32 words
      {R"({"weights":"int8:channel"})", "pack-quantized"},
      {R"({"weights":"int4:channel:asym"})", "pack-quantized"},
      {R"({"weights":"int8:tensor"})", "pack-quantized"},
      {R"({"weights":"int8:channel","activations":"int8:token"})", "int-quantized"},
      {R"({"weights":"fp8_channel"})", "naive-quantized"},
      {R"({"weights":"fp8_tensor","activations":"e4m3fn:token"})", "float-quantized"},
      {R"({"weights":"e4m3fn:block32x32"})", "naive-quantized"},
      {R"({"weights":"mxfp8_e4m3"})", "mxfp8-quantized"},
      {R"({"weights":"mxfp4","activations":"mxfp4"})", "mxfp4-pack-quantized"},
      {R"({"weights":"nvfp4_ct"})", "nvfp4-pack-quantized"},
      {R"({"weights":"nvfp4_ct","methods":["gptq"]})", "nvfp4-pack-quantized"},
      {R"({"weights":"int4:g32:asym","methods":["gptq"]})", "pack-quantized"},
      {R"({"weights":"mxfp4","methods":["hadamard:no_online","gptq"]})", "mxfp4-pack-quantized"},
      {R"({"weights":"nvfp4_ct","overrides":[{"match":"*.down_proj","weights":"int8:channel"},)"
       R"({"match":"*.o_proj","weights":"fp"}]})",
       "mixed-precision"},
  };
  for (const auto& [spelling, format] : cases) {
    model::Llama q = *hf_.llama;
    const exports::CompressedTensorsReport rep = export_recipe(spelling, "ct", &q);
    EXPECT_EQ(rep.format, format) << spelling;
    const model::Model back = model::load_model(path("ct"));
    EXPECT_EQ(back.format, "compressed-tensors") << spelling;
    for (size_t l = 0; l < q.weights().layers.size(); ++l)
      for (size_t k = 0; k < 7; ++k) {
        const model::Linear* x = back.llama->linears()[l * 7 + k];
        const model::Linear* y = q.linears()[l * 7 + k];
        EXPECT_EQ(x->weight(), y->weight()) << spelling << " " << y->name();
      }
    // The checkpoint holds the weights; its activation schemes run as a recipe says (--a).
    const ptq::Recipe r = ptq::parse_recipe_json(spelling, "test recipe");
    model::Llama run = *back.llama;
    if (r.activations)
      run = ptq::apply_recipe(
          ptq::parse_recipe_json(R"({"activations":")" + scheme_name(*r.activations) + "\"}",
                                 "activations"),
          *back.llama, nullptr, nullptr);
    if (std::string(spelling).find("hadamard") == std::string::npos)
      EXPECT_EQ(logits(run), logits(q)) << spelling;
    else  // the checkpoint leaves out the per-head rotation of q and k (q·k the same up to
          // rounding)
      expect_close(logits(run), logits(q), spelling);
    // The emulated export is the same model with float32 weights and no quantization_config.
    export_recipe(spelling, "ref", nullptr, true);
    const model::Model ref = model::load_model(path("ref"));
    EXPECT_EQ(ref.format, "safetensors");
    EXPECT_EQ(logits(*ref.llama), logits(*back.llama)) << spelling;
  }
}

// From a GGUF file, q and k rows are put in Hugging Face's half-split RoPE order (and the codes,
// scales and zero points with them): the reloaded model computes the same logits, up to the
// order of the sums in q·k.
TEST_F(CtExportTest, GgufRowsGoInHuggingFacesRopeOrder) {
  for (const char* spelling : {R"({"weights":"int4:g32:asym"})", R"({"weights":"nvfp4_ct"})",
                               R"({"weights":"int8:channel"})", R"({"weights":"fp"})"}) {
    model::Llama q = *model_.llama;
    export_recipe(spelling, "ct", &q, false, true);
    const model::Model back = model::load_model(path("ct"));
    EXPECT_EQ(back.llama->config().rope_style, model::RopeStyle::HalfSplit);
    expect_close(logits(*back.llama), logits(q), spelling);
  }
}

// INT4 W4A16 in groups of 128 with zero points, after GPTQ: the layout of GPTQ checkpoints for vLLM
// (on rows that are whole groups of 128; SmolLM2's 576 are not).
TEST_F(CtExportTest, Int4Group128AfterGptq) {
  TinyLlama wide;
  wide.dim = 128;
  wide.hidden = 256;
  wide.head_dim = 32;
  wide.fill_random(5);
  std::filesystem::create_directories(path("wide"));
  wide.write_hf(path("wide"));
  const model::Model m = model::load_model(path("wide"));
  const ptq::Recipe r =
      ptq::parse_recipe_json(R"({"weights":"int4_g128","methods":["gptq"]})", "test recipe");
  const ptq::Calibration calib = ptq::make_calibration(
      *m.tokenizer, "the cat and the dog ran over the hill to the house by the sea. ", "c", 2, 16);
  const model::Llama q = ptq::apply_recipe(r, *m.llama, nullptr, &calib);
  EXPECT_EQ(exports::export_compressed_tensors(q, r, m.path, path("w4")).format, "pack-quantized");
  const nlohmann::json w = files::read_json(path("w4/config.json"))
                               .at("quantization_config")
                               .at("config_groups")
                               .at("group_0")
                               .at("weights");
  EXPECT_EQ(w.at("group_size"), 128);
  EXPECT_EQ(w.at("symmetric"), false);
  const model::Model back = model::load_model(path("w4"));
  for (size_t k = 0; k < q.linears().size(); ++k)
    EXPECT_EQ(back.llama->linears()[k]->weight(), q.linears()[k]->weight()) << k;
}

TEST_F(CtExportTest, ConfigAndTokenizerAreHuggingFaces) {
  export_recipe(R"({"weights":"int4:g32"})", "ct");
  const nlohmann::json c = files::read_json(path("ct/config.json"));
  EXPECT_EQ(c.at("architectures").at(0), "LlamaForCausalLM");
  EXPECT_EQ(c.at("num_key_value_heads"), 2);
  EXPECT_EQ(c.at("head_dim"), 16);
  EXPECT_FALSE(c.contains("rope_interleaved"));  // rows are in the half-split order
  const nlohmann::json& qc = c.at("quantization_config");
  EXPECT_EQ(qc.at("quant_method"), "compressed-tensors");
  EXPECT_EQ(qc.at("config_groups").at("group_0").at("targets").at(0), "Linear");
  const nlohmann::json& w = qc.at("config_groups").at("group_0").at("weights");
  EXPECT_EQ(w.at("num_bits"), 4);
  EXPECT_EQ(w.at("group_size"), 32);
  EXPECT_EQ(w.at("strategy"), "group");
  EXPECT_EQ(w.at("symmetric"), true);
  // The tokenizer.json written from the GGUF tokenizes as the GGUF's tokenizer does.
  const std::unique_ptr<model::Tokenizer> t = model::tokenizer_from_json(path("ct/tokenizer.json"));
  for (const char* s : {"the dog sat on the cat", "Numbers 12345 and  spaces\n\nnew lines"})
    EXPECT_EQ(t->encode(s), model_.tokenizer->encode(s)) << s;
  EXPECT_EQ(t->vocab_size(), model_.tokenizer->vocab_size());
}

TEST_F(CtExportTest, RefusesWhatCompressedTensorsCannotHold) {
  const auto message = [&](const std::string& spelling) -> std::string {
    try {
      export_recipe(spelling, "bad");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(R"({"weights":"nvfp4"})").find("nvfp4_ct"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"int4:g48"})").find("not whole groups of 48"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"nf4_g64"})").find("no layout"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"ggml_q4_0"})").find("GGUF"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","methods":["hadamard"]})").find("online"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","kv":"e4m3fn:token"})").find("KV cache"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","embedding":"mxfp4"})").find("embedding"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","activations":"nvfp4"})").find("static"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","methods":["lmul"]})").find("L-Mul"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","methods":["lmul:attention:no_linear"]})").find("L-Mul"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","methods":["biascorrect"]})").find("bias"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","methods":["lorc"]})").find("low-rank"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path("bad/config.json")));  // no folder passed off as done
}

}  // namespace
}  // namespace lowbit::testing
