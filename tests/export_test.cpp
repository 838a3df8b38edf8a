// `export_gguf` on a tiny LLaMA the test writes: every exact mapping reloads to the weights lowbit
// computed with (the same logits, bit for bit), the types are the ones docs/export.md promises,
// and what cannot be exported is refused with a reason. (bench/compare_llama_cpp_export.py runs
// the exports in llama.cpp itself.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "lowbit/export/gguf_export.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

class ExportTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama tiny;  // rows of 64 and 128: whole blocks of every 32- and 64-element type
    tiny.dim = 64;
    tiny.hidden = 128;
    tiny.head_dim = 16;
    tiny.fill_random(71);
    tiny.write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    std::string text;
    for (int i = 0; i < 40; ++i)
      text += "a bird flew over the house and sang " + std::to_string(i) + ". ";
    calib_ = ptq::make_calibration(*model_.tokenizer, text, "calib.txt", 4, 32);
  }
  std::vector<float> logits(const model::Llama& m) const {
    return all_logits(m, model_.tokenizer->encode("the dog sat on the cat and ran to the mat"));
  }
  // Applies the recipe, exports it, and returns the file's tensor types by name.
  std::map<std::string, std::string> export_recipe(const std::string& spelling,
                                                   const std::string& out,
                                                   model::Llama* quantized = nullptr) {
    const ptq::Recipe r = ptq::parse_recipe_json(spelling, "test recipe");
    model::Llama q = ptq::apply_recipe(r, *model_.llama, nullptr, &calib_);
    exports::export_gguf(q, r, path("tiny.gguf"), path(out));
    model::GgufFile f(path(out));
    std::map<std::string, std::string> types;
    for (const model::TensorView& t : f.store().tensors()) types[t.name] = t.dtype;
    if (quantized) *quantized = std::move(q);
    return types;
  }
  model::Model model_;
  ptq::Calibration calib_;
};

TEST_F(ExportTest, ExactTypesReloadToTheSameLogits) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"weights":"ggml_q4_0","embedding":"ggml_q8_0"})", "Q4_0"},
      // The table alone in Q4_0 (the head kept): no codes, negative block scales.
      {R"({"weights":"ggml_q4_0","embedding":"ggml_q4_0"})", "Q4_0"},
      {R"({"weights":"ggml_q4_k"})", "Q5_0"},  // 64-wide rows: llama.cpp's fallback for Q4_K
      {R"({"weights":"ggml_q6_k"})", "Q8_0"},
      {R"({"weights":"ggml_q5_1"})", "Q5_1"},
      {R"({"weights":"ggml_mxfp4","embedding":"ggml_nvfp4"})", "MXFP4"},
      {R"({"weights":"mxfp4","embedding":"mxfp4"})", "MXFP4"},
      {R"({"weights":"int4:g32:scale=fp16"})", "Q4_0"},
      {R"({"weights":"int8:g32:scale=fp16"})", "Q8_0"},
      {R"({"weights":"int5:g32:scale=fp16"})", "Q5_0"},
      {R"({"weights":"mxfp4","methods":["hadamard:no_online"]})", "MXFP4"},
      {R"({"weights":"int4:g32:scale=fp16","methods":["gptq"]})", "Q4_0"},
      {R"({"weights":"mxfp4","methods":["gptq"]})", "MXFP4"},
      {R"({"weights":"ggml_q4_0","methods":["gptq"]})", "Q4_0"},  // GPTQ on the Q4_0 grid
      {R"({"weights":"ggml_mxfp4","methods":["gptq"]})", "MXFP4"},
      {R"({"weights":"ggml_q4_k","methods":["gptq"]})", "Q5_0"},  // the fallback's grid
  };
  for (const auto& [spelling, type] : cases) {
    model::Llama q = *model_.llama;
    const auto types = export_recipe(spelling, "out.gguf", &q);
    EXPECT_EQ(types.at("blk.0.attn_q.weight"), type) << spelling;
    EXPECT_EQ(types.at("blk.1.ffn_down.weight"), type) << spelling;
    EXPECT_EQ(types.at("blk.0.attn_norm.weight"), "F32") << spelling;
    const model::Model back = model::load_model(path("out.gguf"));
    if (std::string(spelling).find("hadamard") == std::string::npos) {
      EXPECT_EQ(logits(*back.llama), logits(q)) << spelling;
    } else {  // the file leaves out the per-head rotation of q and k, which changes q·k by rounding
      const std::vector<float> a = logits(*back.llama), b = logits(q);
      float worst = 0, top = 0;
      for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::fabs(a[i] - b[i])), top = std::max(top, std::fabs(b[i]));
      EXPECT_LT(worst, 1e-4f * top) << spelling;
    }
  }
}

// NVFP4's tensor scale goes to "x.scale", which lowbit (like llama.cpp) reads back: the values
// agree up to the order in which the two scale levels multiply.
TEST_F(ExportTest, Nvfp4KeepsItsTensorScale) {
  model::Llama q = *model_.llama;
  const auto types = export_recipe(R"({"weights":"nvfp4"})", "nv.gguf", &q);
  EXPECT_EQ(types.at("blk.0.attn_q.weight"), "NVFP4");
  EXPECT_EQ(types.at("blk.0.attn_q.scale"), "F32");
  EXPECT_EQ(types.count("token_embd.scale"), 0u);
  const model::Model back = model::load_model(path("nv.gguf"));
  const std::vector<float>& a = back.llama->weights().layers[0].wq.weight();
  const std::vector<float>& b = q.weights().layers[0].wq.weight();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], std::fabs(b[i]) * 1.2e-7f) << i;
}

// A tied model whose head takes another scheme than the embedding gets its own output.weight.
TEST_F(ExportTest, UntiedHeadIsWritten) {
  const auto types = export_recipe(R"({"weights":"fp","output":"ggml_q8_0"})", "head.gguf");
  EXPECT_EQ(types.at("output.weight"), "Q8_0");
  EXPECT_EQ(types.at("token_embd.weight"), "F32");
  EXPECT_NO_THROW(model::load_model(path("head.gguf")));
}

TEST_F(ExportTest, RefusesWhatGgufCannotHold) {
  const auto message = [&](const std::string& spelling) -> std::string {
    try {
      export_recipe(spelling, "bad.gguf");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(R"({"weights":"e4m3fn:channel"})").find("ggml_q8_0"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"int4_g128"})").find("no GGML type"), std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","activations":"mxfp8_e4m3"})").find("activations"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"mxfp4","methods":["hadamard"]})").find("online"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"nvfp4","embedding":"nvfp4"})").find("embedding"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"ggml_q4_1","methods":["gptq"]})").find("no grid"),
            std::string::npos);
  EXPECT_NE(message(R"({"weights":"ggml_q4_0","methods":["lmul"]})").find("L-Mul"),
            std::string::npos);
  EXPECT_NE(
      message(R"({"weights":"ggml_q4_0","methods":["lmul:attention:no_linear"]})").find("L-Mul"),
      std::string::npos);
  EXPECT_NE(message(R"({"weights":"ggml_q4_0","methods":["lorc"]})").find("low-rank"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path("bad.gguf")));  // nothing half-written
}

}  // namespace
}  // namespace lowbit::testing
