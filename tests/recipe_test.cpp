// Recipes on a tiny random LLaMA: parsing and the canonical form; a full-precision recipe gives the
// baseline exactly; quantized weights are exactly the scheme's fake_quant of the tensor; overrides
// reach exactly the sites they name; activation, KV-cache and accumulator emulation do exactly
// what they say; bits per weight; per-layer statistics.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/layer_stats.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/kernels/convert.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

using ptq::Recipe;

class RecipeTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama::random(31).write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    for (int i = 0; i < 30; ++i)
      text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
  }
  const model::Llama& fp() const { return *model_.llama; }
  static Recipe flags(const char* w, const char* a = "fp", const char* kv = "fp") {
    Recipe r;
    r.weights = ptq::parse_maybe_scheme(w);
    r.activations = ptq::parse_maybe_scheme(a);
    r.kv = ptq::parse_maybe_scheme(kv);
    return r;
  }
  eval::PerplexityResult evaluate(const model::Llama& llama, const eval::Baseline* base,
                                  bool record) const {
    eval::PerplexityOptions opt;
    opt.n_ctx = 32;
    opt.record = record;
    opt.baseline_top_k = 260;  // the whole vocabulary: KL is exact
    opt.compare_to = base;
    return eval::perplexity(llama, model_.tokenizer->encode(text_), -1, "tiny", opt);
  }
  model::Model model_;
  std::string text_;
};

TEST_F(RecipeTest, CanonicalFormRoundTripsAndIdentifiesTheRecipe) {
  const Recipe r = ptq::parse_recipe_json(
      R"({"name": "mine", "weights": "e2m1fn:g32:scale=e8m0fnu", "activations": "mxfp8_e4m3", "kv": "e4m3fn:token",
          "accumulate": "bf16/32", "overrides": [{"match": "*.down_proj", "weights": "fp"}]})",
      "test");
  EXPECT_EQ(ptq::maybe_scheme_name(r.weights),
            "mxfp4");  // the long spelling of a preset prints as the preset
  const Recipe again = ptq::parse_recipe_json(r.canonical(), "canonical");
  EXPECT_EQ(again.canonical(), r.canonical());
  EXPECT_EQ(again.hash(), r.hash());  // the name is a label, not part of the identity
  EXPECT_EQ(r.label(), "mine");
  EXPECT_EQ(again.short_form(), "w=mxfp4 a=mxfp8_e4m3 kv=fp8_token acc=bf16/32 [*.down_proj:w=fp]");
  Recipe other = r;
  other.overrides[0].match = "*.up_proj";
  EXPECT_NE(other.hash(), r.hash());
  EXPECT_TRUE(Recipe().is_full_precision());
  EXPECT_FALSE(r.is_full_precision());
  // Command-line overrides: scheme names contain ':' and the pattern ends before the first key.
  const ptq::RecipeOverride o =
      ptq::parse_override("layers.1.*:w=int4:g16:asym,a=fp,kv=e4m3fn:token");
  EXPECT_EQ(o.match, "layers.1.*");
  ASSERT_TRUE(o.weights && *o.weights);
  EXPECT_EQ(ptq::maybe_scheme_name(*o.weights), "int4:g16:asym");
  ASSERT_TRUE(o.activations);
  EXPECT_FALSE(*o.activations);
  ASSERT_TRUE(o.kv && *o.kv);
}

TEST_F(RecipeTest, BadRecipesAreErrorsNamingTheField) {
  const auto message = [](const std::string& json) {
    try {
      ptq::parse_recipe_json(json, "r.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"weight": "mxfp4"})").find("unknown recipe field \"weight\""),
            std::string::npos);
  EXPECT_NE(message(R"({"weights": "mxfp5"})").find("r.json: \"weights\""), std::string::npos);
  EXPECT_NE(message(R"({"weights": 4})").find("must be a scheme name"), std::string::npos);
  EXPECT_NE(message(R"({"accumulate": "bf16"})").find("accumulator"), std::string::npos);
  EXPECT_NE(message(R"({"overrides": [{"weights": "fp"}]})").find("\"match\""), std::string::npos);
  EXPECT_NE(message("[1, 2").find("malformed JSON"), std::string::npos);
  EXPECT_THROW(ptq::parse_override("*.down_proj"), Error);
  EXPECT_THROW(ptq::parse_override("*.down_proj:x=fp"), Error);
  EXPECT_THROW(ptq::parse_accumulation("int8/4"), Error);  // an accumulator is a float format
  Recipe typo = flags("fp");
  typo.overrides.push_back(ptq::parse_override("layer.0.*:w=mxfp4"));
  try {
    ptq::apply_recipe(typo, fp());
    FAIL() << "an override matching nothing must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("matches no site"), std::string::npos) << e.what();
  }
}

TEST_F(RecipeTest, FullPrecisionRecipeReproducesTheBaselineExactly) {
  const eval::PerplexityResult base = evaluate(fp(), nullptr, true);
  ptq::ApplyReport rep;
  const model::Llama same = ptq::apply_recipe(Recipe(), fp(), &rep);
  const eval::PerplexityResult r = evaluate(same, &base.recorded, false);
  EXPECT_EQ(r.ppl, base.ppl);
  EXPECT_EQ(r.kld.max, 0.0);
  EXPECT_EQ(r.top1_agreement, 1.0);
  EXPECT_EQ(r.delta_ppl, 0.0);
  EXPECT_EQ(rep.bits_per_weight, 16.0);  // kept matrices count as bf16
  // And a real recipe is measurably different from it.
  const eval::PerplexityResult q =
      evaluate(ptq::apply_recipe(flags("mxfp4", "mxfp4"), fp()), &base.recorded, false);
  EXPECT_GT(q.kld.mean, 1e-4);
  EXPECT_NE(q.ppl, base.ppl);
}

TEST_F(RecipeTest, QuantizedWeightsAreTheSchemesFakeQuantOfEachTensor) {
  for (const char* scheme :
       {"mxfp4", "nvfp4", "int4_g128", "fp8_channel", "nf4_g64", "e3m2fn:g16:mse"}) {
    Recipe r = flags(scheme);
    r.embedding = ptq::parse_maybe_scheme("mxfp6_e2m3");
    const model::Llama q = ptq::apply_recipe(r, fp());
    const auto fp_linears = fp().linears();
    const auto q_linears = q.linears();
    for (size_t i = 0; i + 1 < q_linears.size(); ++i) {
      const model::Linear& a = *fp_linears[i];
      std::vector<float> want(a.weight().size());
      fake_quant(*r.weights, a.weight().data(), {size_t(a.out_features()), size_t(a.in_features())},
                 want.data());
      ASSERT_EQ(0, std::memcmp(want.data(), q_linears[i]->weight().data(), want.size() * 4))
          << scheme << " " << a.name();
    }
    const std::vector<float>& emb = *fp().weights().token_embedding;
    std::vector<float> want(emb.size());
    fake_quant(*r.embedding, emb.data(), {260, 32}, want.data());
    EXPECT_EQ(0, std::memcmp(want.data(), q.weights().token_embedding->data(), want.size() * 4))
        << scheme;
    // The tied head kept in full precision no longer shares the (now quantized) embedding.
    EXPECT_EQ(0, std::memcmp(emb.data(), q.weights().output.weight().data(), emb.size() * 4));
  }
}

TEST_F(RecipeTest, OverridesReachExactlyTheSitesTheyName) {
  Recipe r = flags("mxfp4", "mxfp8_e4m3");
  r.overrides.push_back(ptq::parse_override("layers.1.*:w=fp"));
  r.overrides.push_back(ptq::parse_override("*.down_proj:a=int8_token"));
  r.overrides.push_back(ptq::parse_override("layers.0.kv_cache:kv=e4m3fn:token"));
  const model::Llama q = ptq::apply_recipe(r, fp());
  const auto fp_linears = fp().linears();
  const auto q_linears = q.linears();
  for (size_t i = 0; i < q_linears.size(); ++i) {
    const std::string& site = q_linears[i]->name();
    const bool kept = site.rfind("layers.1.", 0) == 0 || site == "output";
    EXPECT_EQ(kept, q_linears[i]->weight_ptr() == fp_linears[i]->weight_ptr()) << site;
    const std::string want_input = site == "output"                              ? "fp"
                                   : site.find("down_proj") != std::string::npos ? "int8_token"
                                                                                 : "mxfp8_e4m3";
    EXPECT_EQ(ptq::maybe_scheme_name(q_linears[i]->input_scheme()), want_input) << site;
  }
  ASSERT_TRUE(q.weights().layers[0].kv_cache.has_value());
  EXPECT_FALSE(q.weights().layers[1].kv_cache.has_value());
  // Later overrides win.
  Recipe twice = flags("mxfp4");
  twice.overrides.push_back(ptq::parse_override("*:w=nvfp4"));
  twice.overrides.push_back(ptq::parse_override("*.q_proj:w=fp"));
  EXPECT_FALSE(twice.resolve("layers.0.q_proj").weights.has_value());
  EXPECT_EQ(ptq::maybe_scheme_name(twice.resolve("layers.0.k_proj").weights), "nvfp4");
  EXPECT_EQ(ptq::maybe_scheme_name(twice.resolve("output").weights), "nvfp4");
}

TEST_F(RecipeTest, ActivationsAreQuantizedAsTheKernelWouldSeeThem) {
  const model::Linear& lin = fp().weights().layers[0].w_down;
  const int n = 5, in = lin.in_features(), out = lin.out_features();
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.f, 2.f);
  std::vector<float> x(size_t(n) * size_t(in)), xq(x.size()), want(size_t(n) * size_t(out)),
      got(want.size());
  for (float& v : x) v = g(rng);
  const Scheme s = parse_scheme("mxfp4");
  fake_quant(s, x.data(), {size_t(n), size_t(in)}, xq.data());
  lin.forward(xq.data(), n, want.data());
  model::Linear quantized = lin;
  quantized.set_input_scheme(s);
  quantized.forward(x.data(), n, got.data());
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4));
}

TEST_F(RecipeTest, KeysAndValuesEnterTheCacheQuantized) {
  const Scheme s = parse_scheme("e4m3fn:token");
  Recipe r;
  r.kv = s;
  const model::Llama q = ptq::apply_recipe(r, fp());
  const std::vector<int32_t> tokens = model_.tokenizer->encode("the cat sat on the mat");
  const int n = int(tokens.size());
  model::LlamaRunState a(fp().config(), n, n), b(fp().config(), n, n);
  fp().forward(tokens.data(), n, 0, a);
  q.forward(tokens.data(), n, 0, b);
  // Layer 0 sees the same input in both runs, so its cache must be the scheme's rounding of it.
  const int kv = fp().config().kv_dim();
  for (const auto& [fp_cache, q_cache] :
       {std::pair(&a.key_cache, &b.key_cache), std::pair(&a.value_cache, &b.value_cache)}) {
    std::vector<float> want(size_t(n) * size_t(kv));
    fake_quant(s, fp_cache->data(),
               {size_t(n), size_t(fp().config().n_kv_heads), size_t(fp().config().head_dim)},
               want.data());
    EXPECT_EQ(0, std::memcmp(want.data(), q_cache->data(), want.size() * 4));
    EXPECT_NE(0, std::memcmp(fp_cache->data(), q_cache->data(), want.size() * 4));
  }
}

TEST_F(RecipeTest, AccumulatorRoundsTheRunningSumEveryKProducts) {
  const model::Linear& lin = fp().weights().layers[0].w_up;
  const int n = 3, in = lin.in_features(), out = lin.out_features();
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(size_t(n) * size_t(in));
  for (float& v : x) v = g(rng);
  const float* w = lin.weight().data();
  for (const int every : {1, 4, 7, in}) {
    model::Linear acc = lin;
    acc.set_accumulation(ptq::parse_accumulation("bf16/" + std::to_string(every)));
    std::vector<float> got(size_t(n) * size_t(out));
    acc.forward(x.data(), n, got.data());
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < out; ++c) {
        // Slices of `every` products summed in float, each added to a bf16 running total.
        float total = 0;
        for (int k0 = 0; k0 < in; k0 += every) {
          double slice = 0;
          for (int k = k0; k < std::min(in, k0 + every); ++k)
            slice += double(x[size_t(r) * size_t(in) + size_t(k)]) *
                     double(w[size_t(c) * size_t(in) + size_t(k)]);
          float sum = total + float(slice);
          fake_quant(formats::bf16, &sum, 1, &total);
        }
        const float have = got[size_t(r) * size_t(out) + size_t(c)];
        if (every == 1) {
          EXPECT_EQ(have, total) << "every 1, row " << r << " col "
                                 << c;  // single products are exact in float
        } else {
          // sgemm sums a slice in float in its own order: allow one bf16 step of the result.
          EXPECT_NEAR(have, total, std::ldexp(std::fabs(total), -7) + 1e-6) << "every " << every;
        }
        uint32_t bits;
        std::memcpy(&bits, &have, 4);
        EXPECT_EQ(bits & 0xFFFF, 0u) << "the result must be a bf16 value";
      }
  }
}

TEST_F(RecipeTest, BitsPerWeightAverageElementAndScaleStorage) {
  const Scheme mx = parse_scheme("mxfp4");
  double linear_bits = 0, linear_count = 0;
  for (const model::Linear* l : fp().linears()) {
    if (l->name() == "output") continue;
    const double n = double(l->weight().size());
    linear_bits +=
        n * scheme_bits_per_element(mx, {size_t(l->out_features()), size_t(l->in_features())});
    linear_count += n;
  }
  ptq::ApplyReport rep;
  ptq::apply_recipe(flags("mxfp4"), fp(), &rep);
  EXPECT_NEAR(rep.bits_per_linear_weight, linear_bits / linear_count, 1e-12);
  EXPECT_GT(rep.bits_per_linear_weight, 4.25);  // w_down's rows of 48 end in a short block of 16
  // Embedding (the tied head kept with it: one 260 x 32 bf16 matrix) + the layers' Linears.
  const double emb = 260 * 32;
  EXPECT_NEAR(rep.bits_per_weight, (emb * 16 + linear_bits) / (emb + linear_count), 1e-12);
  // Quantizing the embedding and the tied head alike stores one matrix; differently, two.
  Recipe both = flags("mxfp4");
  both.embedding = both.output = mx;
  ptq::apply_recipe(both, fp(), &rep);
  EXPECT_NEAR(rep.bits_per_weight, (emb * 4.25 + linear_bits) / (emb + linear_count), 1e-12);
  EXPECT_EQ(rep.weights.size(), 1 + 14u);
  both.output = parse_scheme("mxfp8_e4m3");
  ptq::apply_recipe(both, fp(), &rep);
  EXPECT_EQ(rep.weights.size(), 1 + 14u + 1);
  EXPECT_NEAR(rep.bits_per_weight, (emb * (4.25 + 8.25) + linear_bits) / (2 * emb + linear_count),
              1e-12);
}

TEST_F(RecipeTest, LayerStatisticsLocateTheError) {
  const std::vector<int32_t> tokens = model_.tokenizer->encode(text_);
  const eval::ReferenceOutputs ref(fp(), std::vector<int32_t>(tokens.begin(), tokens.begin() + 32));
  ptq::ApplyReport rep;
  const model::Llama same = ptq::apply_recipe(Recipe(), fp(), &rep);
  const std::vector<eval::LayerRow> exact = eval::layer_statistics(same, ref, rep);
  ASSERT_EQ(exact.size(), 14u);
  for (const eval::LayerRow& r : exact) {
    EXPECT_TRUE(std::isinf(r.output_sqnr_db)) << r.site;
    EXPECT_EQ(r.weight.count, 0u);
    EXPECT_GT(r.input_absmax, 0);
    EXPECT_GT(r.input_kurtosis, 1);  // kurtosis is at least 1 for any distribution
  }
  // Only layer 1's down_proj quantized: everything before it is exact, it is not.
  Recipe one;
  one.overrides.push_back(ptq::parse_override("layers.1.down_proj:w=mxfp4,a=mxfp4"));
  const std::vector<eval::LayerRow> rows =
      eval::layer_statistics(ptq::apply_recipe(one, fp(), &rep), ref, rep);
  for (const eval::LayerRow& r : rows) {
    const bool target = r.site == "layers.1.down_proj";
    EXPECT_EQ(std::isinf(r.output_sqnr_db), !target) << r.site;
    EXPECT_EQ(r.weight.count > 0, target) << r.site;
    EXPECT_EQ(r.input.count > 0, target) << r.site;
  }
  EXPECT_EQ(rows.back().role, "down_proj");
  EXPECT_EQ(rows.back().layer, 1);
  EXPECT_LT(rows.back().output_sqnr_db, 40);
}

}  // namespace
}  // namespace lowbit::testing
