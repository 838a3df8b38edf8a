// Real execution (packed weights and kernels) against emulation on the tiny random LLaMA: the same
// logits up to float32 summation order, every quantized Linear packed, and sites without a kernel
// named (real) or left emulated with the reason (auto).
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/model/execution.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

class ExecutionTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama::random(61, /*tied=*/true).write_gguf(path("tiny.gguf"));
    m_ = model::load_model(path("tiny.gguf"));
    tokens_ = m_.tokenizer->encode("the cat sat on the mat and the dog ran after it, then the end");
  }
  model::Llama quantized(const std::string& w, const std::string& a = "") const {
    ptq::Recipe r;
    r.weights = parse_scheme(w);
    r.output = parse_scheme(w);
    if (!a.empty()) r.activations = parse_scheme(a);
    return ptq::apply_recipe(r, *m_.llama);
  }
  // Prefill (tiles through sgemm) and one-token decode steps (the matrix-vector and integer
  // kernels) give the emulation's logits up to float32 summation order.
  void expect_same_logits(const model::Llama& emulated, const model::Llama& real,
                          const std::string& what) const;
  model::Model m_;
  std::vector<int32_t> tokens_;
};

// Largest |b - a| over the largest |a| (tiny_models.h's max_relative_error, a as reference).
double relative_gap(const std::vector<float>& a, const std::vector<float>& b) {
  return max_relative_error(b, std::vector<double>(a.begin(), a.end()));
}

void ExecutionTest::expect_same_logits(const model::Llama& emulated, const model::Llama& real,
                                       const std::string& what) const {
  EXPECT_LT(relative_gap(all_logits(emulated, tokens_), all_logits(real, tokens_)), 1e-5) << what;
  const int n = int(tokens_.size()), vocab = real.config().vocab_size;
  model::LlamaRunState se(real.config(), 1, n), sr(real.config(), 1, n);
  std::vector<float> le(static_cast<size_t>(vocab)), lr(le.size());
  for (int pos = 0; pos < n; ++pos) {
    emulated.forward(&tokens_[size_t(pos)], 1, pos, se);
    real.forward(&tokens_[size_t(pos)], 1, pos, sr);
    emulated.logits(se, 0, 1, le.data());
    real.logits(sr, 0, 1, lr.data());
    ASSERT_LT(relative_gap(le, lr), 1e-5) << what << " decode step " << pos;
  }
}

TEST_F(ExecutionTest, RealMatchesEmulationOnEveryKernelFamily) {
  for (const char* w : {"mxfp4", "nvfp4", "int4_g128", "int4:g32", "nf4_g64", "int8:channel",
                        "e4m3fn:channel", "e5m2:channel", "mxfp6_e2m3", "mxfp8_e4m3"}) {
    const model::Llama emulated = quantized(w);
    model::Llama real = emulated;
    const model::ExecutionPlan plan = model::prepare_execution(real, model::Execution::Real);
    const model::Sites sites = real.sites();
    EXPECT_EQ(plan.packed, int(sites.linears.size()) + (sites.head ? 1 : 0)) << w;
    EXPECT_TRUE(plan.emulated.empty()) << w;
    EXPECT_NE(real.weights().layers[0].wq.packed_weight(), nullptr) << w;
    EXPECT_THROW(real.weights().layers[0].wq.weight(), Error) << w;  // the float32 copy is gone
    EXPECT_LT(plan.weight_bytes, size_t(real.parameter_count()) * 4) << w;
    expect_same_logits(emulated, real, w);
  }
}

TEST_F(ExecutionTest, QuantizedActivationsRunOnTheirKernels) {
  for (const auto& [w, a] :
       std::vector<std::pair<const char*, const char*>>{{"int8:channel", "int8:token"},
                                                        {"int8:channel", "int8:tensor"},
                                                        {"int4:g32", "int8:token"},
                                                        {"mxfp4", "int8:token"},
                                                        {"nvfp4", "int8:tensor"},
                                                        // W4A4: block-scaled 4-bit activations
                                                        {"mxfp4", "mxfp4"},
                                                        {"nvfp4", "nvfp4"},
                                                        {"int4:g32", "int4:g32"},
                                                        // FP8 activations on any packed weight
                                                        {"e4m3fn:channel", "e4m3fn:token"},
                                                        {"mxfp4", "e4m3fn:token"},
                                                        {"int8:channel", "e4m3fn:tensor"}}) {
    const model::Llama emulated = quantized(w, a);
    model::Llama real = emulated;
    const model::ExecutionPlan plan = model::prepare_execution(real, model::Execution::Real);
    EXPECT_TRUE(plan.emulated.empty()) << w << " " << a;
    EXPECT_NE(real.weights().layers[0].wq.packed_weight(), nullptr) << w << " " << a;
    expect_same_logits(emulated, real, std::string(w) + " " + a);
  }
}

TEST_F(ExecutionTest, SitesWithoutAKernelAreNamedOrLeftEmulated) {
  // int8 weights take int8 activations per token, not block-scaled ones.
  const model::Llama w8a8 = quantized("int8:channel", "mxint8");
  model::Llama strict = w8a8;
  try {
    model::prepare_execution(strict, model::Execution::Real);
    FAIL() << "real execution of int8 weights with MX activations should name the site";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.q_proj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("activations"), std::string::npos) << e.what();
  }
  model::Llama lenient = w8a8;
  const model::ExecutionPlan plan = model::prepare_execution(lenient, model::Execution::Auto);
  EXPECT_EQ(lenient.weights().layers[0].wq.packed_weight(), nullptr);
  EXPECT_EQ(plan.emulated.size(), lenient.sites().linears.size());  // every block Linear
  EXPECT_NE(plan.summary().find("emulated layers.0.q_proj"), std::string::npos) << plan.summary();
  // The blocks are unchanged; the head (int8:channel weights, no activation scheme) runs packed.
  EXPECT_NE(lenient.sites().head->packed_weight(), nullptr);
  EXPECT_LT(relative_gap(all_logits(w8a8, tokens_), all_logits(lenient, tokens_)), 1e-5);
  // A group the kernels do not take: the message says what would run.
  model::Llama odd = quantized("e4m3fn:g24");
  try {
    model::prepare_execution(odd, model::Execution::Real);
    FAIL() << "g24 has no kernel";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e4m3fn:g32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model::parse_execution("fast"), Error);
}

// A bf16 / f16 file loaded at 2 bytes per weight: every Linear (and the tied embedding, through
// the head) packed as the file stores it, logits equal to the widened float32 model's up to
// summation order.
TEST_F(ExecutionTest, HalfPrecisionFilesStayAtTwoBytes) {
  for (const GgmlType type : {GgmlType::BF16, GgmlType::F16})
    for (const bool tied : {true, false}) {
      TinyLlama t = TinyLlama::random(62, tied);
      t.matrix_type = type;
      t.write_gguf(path("half.gguf"));
      const model::Model widened = model::load_model(path("half.gguf"));
      model::LoadOptions keep;
      keep.keep_half_precision = true;
      const model::Model half = model::load_model(path("half.gguf"), keep);
      const std::string what =
          std::string(type == GgmlType::BF16 ? "bf16" : "f16") + (tied ? " tied" : " untied");
      const model::Sites sites = const_cast<model::Llama&>(*half.llama).sites();
      size_t bytes = 0, weights = 0;
      for (const model::LinearSite& s : sites.linears) {
        ASSERT_NE(s.linear->packed_weight(), nullptr) << what << " " << s.linear->name();
        EXPECT_THROW(s.linear->weight(), Error) << what;  // no float32 copy
        bytes += s.linear->weight_bytes();
        weights += size_t(s.linear->out_features()) *
                   kernels::PackedMatrix::padded_width(size_t(s.linear->in_features()));
      }
      EXPECT_EQ(bytes, 2 * weights) << what;  // 2 bytes per weight, rows padded to 32
      ASSERT_NE(sites.head->packed_weight(), nullptr) << what;
      EXPECT_EQ(*sites.embedding.values == nullptr, tied) << what;  // tied: rows from the head
      expect_same_logits(*widened.llama, *half.llama, what);
    }
}

// Quantizing while the file is read (LoadOptions::pack_at_load) builds the same packed model as
// quantizing the float32 model and packing it: the same logits, bit for bit, and no float32
// weight (a tied table sharing the head's scheme is kept once, in the head).
TEST_F(ExecutionTest, PackingAtLoadEqualsPackingAfter) {
  struct Case {
    const char* w;
    const char* a;
    bool embedding;  // quantized too (then read from the packed head), or kept in float32
  };
  for (const Case& c : {Case{"mxfp4", "int8:token", true}, Case{"nvfp4", "nvfp4", true},
                        Case{"int8:channel", "int8:token", true}, Case{"int4:g64:asym", "", true},
                        Case{"mxfp4", "mxfp4", false}}) {
    const char *w = c.w, *act = c.a;
    ptq::Recipe r;
    r.weights = parse_scheme(w);
    r.output = parse_scheme(w);
    if (c.embedding) r.embedding = parse_scheme(w);
    if (*act) r.activations = parse_scheme(act);
    model::Llama after = ptq::apply_recipe(r, *m_.llama);
    model::prepare_execution(after, model::Execution::Real);

    model::LoadOptions options;
    int asked = 0;
    const auto quantizer = ptq::load_time_quantizer(r);
    options.pack_at_load = [&](const std::string& site, size_t rows, size_t cols) {
      ++asked;
      return quantizer(site, rows, cols);
    };
    const model::Model loaded = model::load_model(path("tiny.gguf"), options);
    model::Llama at_load = ptq::apply_recipe(r, *loaded.llama);
    const model::ExecutionPlan plan = model::prepare_execution(at_load, model::Execution::Real);
    EXPECT_GT(asked, 0) << w;
    const model::Sites sites = at_load.sites();
    // Tied, one scheme: the embedding reads its rows from the packed head.
    EXPECT_EQ(*sites.embedding.values == nullptr, c.embedding) << w;
    EXPECT_NE(sites.head->packed_weight(), nullptr) << w;
    EXPECT_TRUE(plan.emulated.empty()) << w;
    const model::Sites reference = after.sites();
    ASSERT_EQ(sites.linears.size(), reference.linears.size());
    for (size_t i = 0; i < sites.linears.size(); ++i) {
      const model::Linear& got = *sites.linears[i].linear;
      ASSERT_NE(got.packed_weight(), nullptr) << w << " " << got.name();
      EXPECT_EQ(got.packed_weight()->codes, reference.linears[i].linear->packed_weight()->codes)
          << w << " " << got.name();
    }
    EXPECT_EQ(all_logits(after, tokens_), all_logits(at_load, tokens_)) << w;
  }
}

TEST_F(ExecutionTest, EmulateChangesNothing) {
  model::Llama q = quantized("mxfp4");
  const model::ExecutionPlan plan = model::prepare_execution(q, model::Execution::Emulate);
  EXPECT_EQ(plan.packed, 0);
  EXPECT_EQ(q.weights().layers[0].wq.packed_weight(), nullptr);
  EXPECT_NO_THROW(q.weights().layers[0].wq.weight());
}

}  // namespace
}  // namespace lowbit::testing
