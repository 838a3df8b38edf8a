// An architecture that exists only in this test — a GPT-2-style decoder: learned positions,
// pre-LayerNorm with biases, one fused qkv Linear, GELU MLP, tied head — written purely against
// the sites interface (lowbit/sites.h). GPTQ, format search, SmoothQuant, per-layer statistics
// and a recipe with overrides run on it through ptq/ and eval/ unchanged: that is the seam.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "error_message.h"
#include "lowbit/eval/evaluate.h"
#include "lowbit/model/sites.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/format_search.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/util/error.h"

namespace lowbit::testing {
namespace {

using model::Linear;

constexpr int kVocab = 64, kDim = 16, kHeads = 2, kHead = kDim / kHeads, kHidden = 32, kLayers = 2,
              kPositions = 64;

std::shared_ptr<std::vector<float>> random_values(std::mt19937& rng, size_t n, float scale,
                                                  float offset = 0) {
  std::uniform_real_distribution<float> u(-scale, scale);
  auto v = std::make_shared<std::vector<float>>(n);
  for (float& x : *v) x = offset + u(rng);
  return v;
}

Linear random_linear(std::mt19937& rng, const std::string& name, int out, int in) {
  return Linear(name, out, in,
                random_values(rng, size_t(out) * size_t(in), 1.0f / std::sqrt(float(in))),
                *random_values(rng, size_t(out), 0.1f));
}

void layer_norm(const float* x, const std::vector<float>& w, const std::vector<float>& b, int n,
                float* y) {
  for (int r = 0; r < n; ++r) {
    const float* row = x + size_t(r) * kDim;
    double mean = 0, var = 0;
    for (int i = 0; i < kDim; ++i) mean += row[i];
    mean /= kDim;
    for (int i = 0; i < kDim; ++i) var += (row[i] - mean) * (row[i] - mean);
    const double inv = 1.0 / std::sqrt(var / kDim + 1e-5);
    for (int i = 0; i < kDim; ++i)
      y[size_t(r) * kDim + i] = float((row[i] - mean) * inv) * w[size_t(i)] + b[size_t(i)];
  }
}

struct ToyBlock {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
  Linear qkv, proj, fc, fc_out;
  std::optional<Scheme> kv;
};

class ToyGpt2 : public model::Decoder {
 public:
  explicit ToyGpt2(uint32_t seed) {
    std::mt19937 rng(seed);
    wte_ = random_values(rng, size_t(kVocab) * kDim, 0.5f);
    wpe_ = *random_values(rng, size_t(kPositions) * kDim, 0.1f);
    for (int l = 0; l < kLayers; ++l) {
      const std::string at = "layers." + std::to_string(l) + ".";
      ToyBlock b{*random_values(rng, kDim, 0.2f, 1),
                 *random_values(rng, kDim, 0.1f),
                 *random_values(rng, kDim, 0.2f, 1),
                 *random_values(rng, kDim, 0.1f),
                 random_linear(rng, at + "qkv_proj", 3 * kDim, kDim),
                 random_linear(rng, at + "o_proj", kDim, kDim),
                 random_linear(rng, at + "fc_in", kHidden, kDim),
                 random_linear(rng, at + "fc_out", kDim, kHidden),
                 std::nullopt};
      blocks_.push_back(std::move(b));
    }
    lnf_w_ = *random_values(rng, kDim, 0.2f, 1);
    lnf_b_ = *random_values(rng, kDim, 0.1f);
    head_ = Linear("output", kVocab, kDim, wte_);
  }

  // Where quantization applies: the only thing ptq/ and eval/ see.
  model::Sites sites() override {
    model::Sites s;
    s.blocks = kLayers;
    s.embedding = {"embedding", &wte_, size_t(kVocab), size_t(kDim)};
    for (int l = 0; l < kLayers; ++l) {
      ToyBlock& b = blocks_[size_t(l)];
      const std::string at = "layers." + std::to_string(l) + ".";
      // Pre-LayerNorm: a norm's output feeds only its Linear, so its weight and bias can take
      // smoothing factors; the MLP's hidden input comes out of a GELU and cannot.
      s.inputs.push_back({at + "attn_in", l, {&b.qkv}, {&b.ln1_w, &b.ln1_b, nullptr}});
      s.inputs.push_back({at + "attn_out", l, {&b.proj}, {}});
      s.inputs.push_back({at + "mlp_in", l, {&b.fc}, {&b.ln2_w, &b.ln2_b, nullptr}});
      s.inputs.push_back({at + "mlp_hidden", l, {&b.fc_out}, {}});
      s.linears.push_back({&b.qkv, l, "qkv_proj", at + "attn_in"});
      s.linears.push_back({&b.proj, l, "o_proj", at + "attn_out"});
      s.linears.push_back({&b.fc, l, "fc_in", at + "mlp_in"});
      s.linears.push_back({&b.fc_out, l, "fc_out", at + "mlp_hidden"});
      s.kv.push_back({at + "kv_cache", l, &b.kv});
    }
    s.head = &head_;
    s.head_tied = head_.weight_ptr() == wte_;
    return s;
  }

  void embed(const int32_t* tokens, int n, float* x) const {
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < kDim; ++i)
        x[size_t(t) * kDim + i] =
            (*wte_)[size_t(tokens[t]) * kDim + i] + wpe_[size_t(t) * kDim + i];
  }

  void block(int l, int n, float* x) const {
    const ToyBlock& b = blocks_[size_t(l)];
    std::vector<float> h(size_t(n) * kDim), qkv(size_t(n) * 3 * kDim), att(size_t(n) * kDim),
        y(size_t(n) * kDim);
    layer_norm(x, b.ln1_w, b.ln1_b, n, h.data());
    b.qkv.forward(h.data(), n, qkv.data());
    std::vector<float> k(size_t(n) * kDim), v(size_t(n) * kDim);
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < kDim; ++i) {
        k[size_t(t) * kDim + i] = qkv[size_t(t) * 3 * kDim + kDim + i];
        v[size_t(t) * kDim + i] = qkv[size_t(t) * 3 * kDim + 2 * kDim + i];
      }
    if (b.kv)
      for (std::vector<float>* kv : {&k, &v}) {
        std::vector<float> q(kv->size());
        fake_quant(*b.kv, kv->data(), {size_t(n), size_t(kHeads), size_t(kHead)}, q.data());
        *kv = q;
      }
    for (int hd = 0; hd < kHeads; ++hd)
      for (int t = 0; t < n; ++t) {  // causal attention, naive
        std::vector<double> p(size_t(t) + 1);
        double max = -1e300, sum = 0;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < kHead; ++i)
            d += double(qkv[size_t(t) * 3 * kDim + size_t(hd * kHead + i)]) *
                 k[size_t(u) * kDim + size_t(hd * kHead + i)];
          p[size_t(u)] = d / std::sqrt(double(kHead));
          max = std::max(max, p[size_t(u)]);
        }
        for (double& e : p) sum += (e = std::exp(e - max));
        for (int i = 0; i < kHead; ++i) {
          double o = 0;
          for (int u = 0; u <= t; ++u)
            o += p[size_t(u)] / sum * v[size_t(u) * kDim + size_t(hd * kHead + i)];
          att[size_t(t) * kDim + size_t(hd * kHead + i)] = float(o);
        }
      }
    b.proj.forward(att.data(), n, y.data());
    for (size_t i = 0; i < y.size(); ++i) x[i] += y[i];
    std::vector<float> m(size_t(n) * kHidden);
    layer_norm(x, b.ln2_w, b.ln2_b, n, h.data());
    b.fc.forward(h.data(), n, m.data());
    for (float& e : m) e = float(0.5 * e * (1 + std::erf(e / std::sqrt(2.0))));
    b.fc_out.forward(m.data(), n, y.data());
    for (size_t i = 0; i < y.size(); ++i) x[i] += y[i];
  }

  std::unique_ptr<model::BlockRunner> block_runner(int) const override {
    struct Runner : model::BlockRunner {
      explicit Runner(const ToyGpt2& m) : m(m) {}
      size_t width() const override { return kDim; }
      void embed(const int32_t* t, int n, float* x) override { m.embed(t, n, x); }
      void run_block(int l, int n, float* x) override { m.block(l, n, x); }
      const ToyGpt2& m;
    };
    return std::make_unique<Runner>(*this);
  }

  std::unique_ptr<Pass> pass(int) const override {
    struct ToyPass : Pass {
      explicit ToyPass(const ToyGpt2& m) : m(m) {}
      void forward(const int32_t* tokens, int n) override {
        std::vector<float> x(size_t(n) * kDim);
        m.embed(tokens, n, x.data());
        for (int l = 0; l < kLayers; ++l) m.block(l, n, x.data());
        out.resize(x.size());
        layer_norm(x.data(), m.lnf_w_, m.lnf_b_, n, out.data());
      }
      void logits(int row0, int count, float* y) override {
        m.head_.forward(out.data() + size_t(row0) * kDim, count, y);
      }
      const ToyGpt2& m;
      std::vector<float> out;
    };
    return std::make_unique<ToyPass>(*this);
  }

  std::string architecture() const override { return "gpt2-toy"; }
  std::string summary() const override { return "a GPT-2-style toy decoder"; }
  std::unique_ptr<Runtime> clone() const override { return std::make_unique<ToyGpt2>(*this); }
  int64_t parameter_count() const override { return 0; }
  int vocab_size() const override { return kVocab; }
  int context_length() const override { return kPositions; }
  double flops(int, int) const override { return 1; }

 private:
  std::shared_ptr<std::vector<float>> wte_;
  std::vector<float> wpe_, lnf_w_, lnf_b_;
  std::vector<ToyBlock> blocks_;
  Linear head_;
};

class ToyArchitecture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> token(0, kVocab - 1);
    for (int i = 0; i < 4 * 32; ++i) text_.push_back(token(rng));
    for (int s = 0; s < 4; ++s) {
      std::vector<int32_t> seq(32);
      for (int32_t& t : seq) t = token(rng);
      calib_.sequences.push_back(seq);
    }
    calib_.id = "toy";
    windows_.tokens = text_;
    windows_.n_ctx = 32;
    windows_.n_windows = 4;
    windows_.hash = eval::hash_tokens(text_, text_.size(), 32);
    eval::PerplexityOptions opt;
    opt.n_ctx = 32;
    opt.record = true;
    baseline_ = eval::perplexity(fp_, text_, -1, "toy", opt).recorded;
  }
  eval::RecipeResult evaluate(const ptq::Recipe& r, bool layers = false) {
    const eval::Reference reference(fp_, windows_, &baseline_, layers);
    eval::EvaluateOptions o;
    o.calibration = &calib_;
    return eval::evaluate_recipe(r, fp_, reference, o);
  }
  ToyGpt2 fp_{3};
  std::vector<int32_t> text_;
  ptq::Calibration calib_;
  eval::TextWindows windows_;
  eval::Baseline baseline_;
};

ptq::Recipe recipe(const char* json) {
  return ptq::parse_recipe_json(json, "test");
}

TEST_F(ToyArchitecture, FullPrecisionRecipeIsExact) {
  const eval::RecipeResult r = evaluate(ptq::Recipe());
  EXPECT_EQ(r.kld.mean, 0.0);
  EXPECT_EQ(r.top1, 1.0);
}

TEST_F(ToyArchitecture, ARecipeWithOverridesAndLayerStatisticsRunsThroughTheSites) {
  const eval::RecipeResult r =
      evaluate(recipe(R"({"weights": "int4:g16", "activations": "int8_token", "kv": "int8:token",
      "overrides": [{"match": "layers.1.fc_out", "weights": "fp"}, {"match": "layers.0.*", "activations": "fp"}]})"),
               true);
  EXPECT_GT(r.kld.mean, 0.0);
  EXPECT_TRUE(std::isfinite(r.ppl));
  ASSERT_EQ(r.layers.size(), size_t(4 * kLayers));
  EXPECT_EQ(r.layers[1].role, "o_proj");
  EXPECT_EQ(r.layers[7].site, "layers.1.fc_out");
  EXPECT_EQ(r.layers[7].weight_scheme, "fp");  // the override
  EXPECT_EQ(r.layers[0].input_scheme, "fp");   // layers.0.* keeps activations
  EXPECT_EQ(r.layers[4].input_scheme, "int8_token");
  for (const eval::LayerRow& row : r.layers) EXPECT_TRUE(row.output_sqnr_db > 0) << row.site;
  // The tied head is the embedding: kept alike, stored once.
  EXPECT_EQ(ptq::model_sites(fp_).back(), "output");
  EXPECT_NE(error_of([&] {
              evaluate(recipe(R"({"overrides": [{"match": "*.down_proj", "weights": "fp"}]})"));
            }).find("layers.0.qkv_proj"),
            std::string::npos)
      << "an override that matches nothing names this model's sites";
}

TEST_F(ToyArchitecture, GptqAndFormatSearchRunBlockByBlock) {
  const eval::RecipeResult rtn = evaluate(recipe(R"({"weights": "int4:g16"})"));
  const eval::RecipeResult gptq =
      evaluate(recipe(R"({"methods": ["gptq"], "weights": "int4:g16"})"));
  EXPECT_NE(gptq.kld.mean, rtn.kld.mean);
  EXPECT_LT(gptq.kld.mean, 2 * rtn.kld.mean);
  const auto scheme_of = [](const std::string&) -> ptq::MaybeScheme {
    return parse_scheme("int4:g16");
  };
  const std::map<std::string, Scheme> chosen = ptq::search_model(fp_, scheme_of, calib_);
  EXPECT_EQ(chosen.size(), size_t(4 * kLayers));
  for (const auto& [site, s] : chosen) EXPECT_EQ(s.element.bits(), 4) << site;
  const eval::RecipeResult searched =
      evaluate(recipe(R"({"methods": ["search"], "weights": "int4:g16"})"));
  EXPECT_TRUE(std::isfinite(searched.kld.mean));
}

TEST_F(ToyArchitecture, SmoothingFoldsIntoLayerNormsAndRotationNamesTheArchitecture) {
  // Folded into the LayerNorms' weights and biases, the smoothing factors leave the function as it
  // was.
  const eval::RecipeResult smoothed = evaluate(recipe(R"({"methods": ["smoothquant:alpha=0.5"]})"));
  EXPECT_LT(smoothed.kld.mean, 1e-5);  // float rounding only (a bias left out: 1.4e-2)
  EXPECT_GT(smoothed.top1, 0.99);
  // Power-of-two factors are exact in float: the smoothed model is bit-identical.
  EXPECT_EQ(evaluate(recipe(R"({"methods": ["smoothquant:alpha=0.5:pow2"]})")).kld.mean, 0.0);
  EXPECT_NE(error_of([&] {
              evaluate(recipe(R"({"methods": ["hadamard"], "weights": "mxfp4"})"));
            }).find("gpt2-toy"),
            std::string::npos);
}

}  // namespace
}  // namespace lowbit::testing
