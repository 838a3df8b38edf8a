// The PTQ methods inside recipes on a tiny random LLaMA: transformations that must not change the
// full-precision function (Hadamard rotation, SmoothQuant), GPTQ over a whole model against
// round-to-nearest, method spellings, and calibration data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/kernels/convert.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/dfq.h"
#include "lowbit/ptq/format_search.h"
#include "lowbit/ptq/gptq.h"
#include "lowbit/ptq/lorc.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/ptq/smoothquant.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

class PtqMethodsTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama::random(61).write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    for (int i = 0; i < 40; ++i)
      eval_text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
    for (int i = 0; i < 40; ++i)
      calib_text_ += "a bird flew over the house and sang " + std::to_string(i * 7) + " songs. ";
    calib_ = ptq::make_calibration(*model_.tokenizer, calib_text_, "calib.txt", 4, 32);
  }
  const model::Llama& fp() const { return *model_.llama; }
  // Logits of every position of a fixed prompt.
  std::vector<float> logits(const model::Llama& m) const {
    return all_logits(m, model_.tokenizer->encode("the dog sat on the cat and ran to the mat"));
  }
  static double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, double(std::fabs(a[i] - b[i])));
      scale = std::max(scale, double(std::fabs(a[i])));
    }
    return worst / scale;
  }
  // The mean KL of `r` applied to `base` (the fixture's model unless given) against `base`.
  double kl_of(const ptq::Recipe& r, const model::Llama* base = nullptr) const {
    const model::Llama& m = base ? *base : fp();
    eval::PerplexityOptions opt;
    opt.n_ctx = 32;
    opt.record = true;
    opt.baseline_top_k = 260;
    const std::vector<int32_t> tokens = model_.tokenizer->encode(eval_text_);
    const eval::PerplexityResult reference = eval::perplexity(m, tokens, -1, "tiny", opt);
    opt.record = false;
    opt.compare_to = &reference.recorded;
    return eval::perplexity(ptq::apply_recipe(r, m, nullptr, &calib_), tokens, -1, "q", opt)
        .kld.mean;
  }
  model::Model model_;
  std::string eval_text_, calib_text_;
  ptq::Calibration calib_;
};

TEST_F(PtqMethodsTest, MethodSpellingsAreCheckedAndCanonical) {
  EXPECT_EQ(ptq::parse_method("gptq:act_order:damp=0.0100").spelling(), "gptq:act_order:damp=0.01");
  EXPECT_EQ(ptq::parse_method("hadamard").spelling(), "hadamard");
  EXPECT_THROW(ptq::parse_method("awq"), Error);
  EXPECT_THROW(ptq::parse_method("gptq:damp"), Error);
  EXPECT_THROW(ptq::parse_method("gptq:damp=x"), Error);
  EXPECT_THROW(ptq::parse_method("gptq:speed=2"), Error);
  EXPECT_THROW(ptq::parse_method("gptq:damp=0.1:damp=0.2"), Error);
  ptq::Recipe r = ptq::parse_recipe_json(
      R"({"methods": ["hadamard:seed=2", "gptq"], "weights": "mxfp4"})", "r");
  EXPECT_EQ(r.short_form(), "hadamard:seed=2 + gptq + w=mxfp4 a=fp kv=fp");
  EXPECT_EQ(ptq::parse_recipe_json(r.canonical(), "c").hash(), r.hash());
  EXPECT_TRUE(r.needs_calibration());
  ptq::Recipe plain = r;
  plain.methods.clear();
  EXPECT_NE(plain.hash(), r.hash());
  // A recipe without methods keeps the canonical form it had before methods existed.
  EXPECT_EQ(plain.canonical().find("methods"), std::string::npos);
  EXPECT_THROW(ptq::apply_recipe(r, fp()), Error);  // gptq without calibration data
}

TEST(MethodRegistry, ParsingHelpAndErrorsComeFromTheTable) {
  // Every row parses with its defaults, prints a usage line and is listed by help and errors.
  std::string unknown;
  try {
    ptq::parse_method("awq");
  } catch (const Error& e) {
    unknown = e.what();
  }
  for (const ptq::MethodInfo& m : ptq::method_registry()) {
    EXPECT_EQ(ptq::parse_method(m.name).spelling(), m.name);
    EXPECT_NE(unknown.find(m.usage()), std::string::npos) << m.name;
    EXPECT_NE(ptq::methods_table().find(m.summary), std::string::npos) << m.name;
    for (const ptq::MethodParam& p : m.params)
      EXPECT_NE(m.usage().find(p.name), std::string::npos) << m.name;
  }
  // Types and ranges are the table's.
  EXPECT_THROW(ptq::parse_method("gptq:block=1.5"), Error);  // an integer
  EXPECT_THROW(ptq::parse_method("gptq:block=0"), Error);    // >= 1
  EXPECT_THROW(ptq::parse_method("gptq:damp=0"), Error);     // > 0
  EXPECT_THROW(ptq::parse_method("smoothquant:alpha=1.5"), Error);
  EXPECT_THROW(ptq::parse_method("gptq:act_order=1"), Error);  // a flag takes no value
  EXPECT_EQ(ptq::parse_method("smoothquant:alpha=1").spelling(), "smoothquant:alpha=1");
  EXPECT_TRUE(ptq::find_method("gptq").needs_calibration);
  EXPECT_FALSE(ptq::find_method("hadamard").needs_calibration);
  EXPECT_TRUE(ptq::find_method("hadamard").transforms);
  for (const char* name : {"gptq", "learnround", "search", "llmfp4"})
    EXPECT_TRUE(ptq::find_method(name).chooses_weights) << name;
  for (const char* name : {"hadamard", "biascorrect", "lorc", "kvreorder"})
    EXPECT_FALSE(ptq::find_method(name).chooses_weights) << name;
}

TEST_F(PtqMethodsTest, CalibrationSequencesComeFromTheText) {
  ASSERT_EQ(calib_.sequences.size(), 4u);
  const std::vector<int32_t> all = model_.tokenizer->encode(calib_text_);
  const size_t stride = all.size() / 4;
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_EQ(calib_.sequences[i].size(), 32u);
    EXPECT_TRUE(std::equal(calib_.sequences[i].begin(), calib_.sequences[i].end(),
                           all.begin() + int64_t(i * stride)));
  }
  EXPECT_NE(calib_.id, ptq::make_calibration(*model_.tokenizer, eval_text_, "e", 4, 32).id);
  EXPECT_THROW(ptq::make_calibration(*model_.tokenizer, "too short", "x", 4, 32), Error);
}

TEST_F(PtqMethodsTest, RotationAndSmoothingLeaveTheFullPrecisionFunctionUnchanged) {
  const std::vector<float> want = logits(fp());
  for (const char* methods :
       {R"(["hadamard"])", R"(["smoothquant:alpha=0.5"])", R"(["smoothquant:alpha=0.9"])",
        R"(["hadamard", "smoothquant"])", R"(["smoothquant", "hadamard:seed=5"])"}) {
    const ptq::Recipe r =
        ptq::parse_recipe_json(std::string(R"({"methods": )") + methods + "}", "r");
    const model::Llama m = ptq::apply_recipe(r, fp(), nullptr, &calib_);
    EXPECT_LT(relative_difference(want, logits(m)), 2e-5) << methods;
  }
  // With power-of-two factors (pre-shifted exponent bias) the smoothed model is bit-identical.
  const model::Llama shifted = ptq::smooth_model(fp(), calib_, {0.8, true});
  const std::vector<float> got = logits(shifted);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4));
  EXPECT_NE(shifted.weights().layers[0].wq.weight(), fp().weights().layers[0].wq.weight());
  // SmoothQuant really moved scale into the weights (the norms changed).
  const model::Llama s = ptq::smooth_model(fp(), calib_, {0.5});
  EXPECT_NE(s.weights().layers[0].attn_norm, fp().weights().layers[0].attn_norm);
  EXPECT_NE(s.weights().layers[1].w_down.weight(), fp().weights().layers[1].w_down.weight());
}

TEST_F(PtqMethodsTest, GptqOverTheModelBeatsRoundToNearest) {
  // Calibrated on the evaluation text itself: a random tiny model's token embeddings share nothing
  // between texts of different words, so only there is "better on its calibration data" testable.
  calib_ = ptq::make_calibration(*model_.tokenizer, eval_text_, "eval.txt", 8, 32);
  for (const char* scheme : {"int4:g16:asym", "mxfp4"}) {
    ptq::Recipe rtn;
    rtn.weights = parse_scheme(scheme);
    ptq::Recipe gptq = rtn;
    gptq.methods.push_back(ptq::parse_method("gptq"));
    ptq::ApplyReport rep;
    const model::Llama q = ptq::apply_recipe(gptq, fp(), &rep, &calib_);
    ASSERT_EQ(rep.method_seconds.size(), 1u);
    EXPECT_EQ(rep.weights.size(), 1 + 14u);
    // GPTQ moved weights to other grid points than rounding to nearest did.
    const model::Llama r = ptq::apply_recipe(rtn, fp());
    EXPECT_NE(q.weights().layers[1].w_up.weight(), r.weights().layers[1].w_up.weight()) << scheme;
    const double kl_rtn = kl_of(rtn), kl_gptq = kl_of(gptq);
    EXPECT_LT(kl_gptq, kl_rtn) << scheme;
    ptq::Recipe learned = rtn;
    learned.methods.push_back(ptq::parse_method("learnround"));
    EXPECT_LT(kl_of(learned), kl_rtn) << scheme << ": learned rounding";
  }
}

TEST(FormatSearch, PicksTheFormatTheWeightsAreMadeOf) {
  const int out = 16, in = 64;
  std::vector<float> identity(size_t(in) * size_t(in), 0.0f);
  for (int i = 0; i < in; ++i) identity[size_t(i) * size_t(in) + size_t(i)] = 1.0f;
  const Scheme base = parse_scheme("int4:channel");
  ASSERT_EQ(ptq::search_candidates(base).size(), 8u);  // e1m2, e2m1, e3m0, int4 x (absmax, mse)
  std::mt19937 rng(9);
  for (const char* name :
       {"e1m2:specials=none", "e2m1:specials=none", "e3m0:specials=none", "int4"}) {
    const Format f = parse_format(name);
    // Every row: random codes of f, decoded, with the format's largest magnitude present, times a
    // power-of-two row scale: exactly representable in f with an absmax channel scale.
    std::vector<uint8_t> codes(size_t(out) * size_t(in));
    std::uniform_int_distribution<int> code(0, int(code_count(f)) - 1);
    for (uint8_t& c : codes) c = uint8_t(code(rng));
    std::vector<float> w(codes.size());
    decode(f, codes.data(), codes.size(), w.data());
    for (float& v : w) v = std::clamp(v, float(-max_finite(f)), float(max_finite(f)));  // int4's -8
    for (int r = 0; r < out; ++r) {
      w[size_t(r) * size_t(in)] = float(max_finite(f));
      for (int c = 0; c < in; ++c)
        w[size_t(r) * size_t(in) + size_t(c)] *= std::ldexp(1.0f, r % 5 - 6);
    }
    const Scheme pick = ptq::search_scheme(base, w, out, in, identity);
    // e1m2 without special codes is int4's grid halved (0, 0.5, ..., 3.5): the two tie.
    const std::string picked = format_name(pick.element);
    if (std::string(name) == "int4" || std::string(name) == "e1m2:specials=none") {
      EXPECT_TRUE(picked == "int4" || picked == "e1m2:specials=none") << name << " -> " << picked;
    } else {
      EXPECT_EQ(picked, format_name(f)) << name;
    }
    std::vector<float> q(w.size());
    fake_quant(pick, w.data(), {size_t(out), size_t(in)}, q.data());
    EXPECT_EQ(ptq::output_error(w, q, out, in, identity), 0.0) << name;
  }
}

TEST_F(PtqMethodsTest, RecipesWithTheSameWeightsShareGptqThroughTheCache) {
  ptq::Recipe a;
  a.weights = parse_scheme("mxfp4");
  a.methods.push_back(ptq::parse_method("gptq"));
  ptq::Recipe b = a;
  b.activations = parse_scheme("mxfp4");  // W4A4: same weights as W4A16
  ptq::Recipe c = a;
  c.weights = parse_scheme("nvfp4");  // other weights: computed anew
  ptq::MethodCache cache;
  const model::Llama qa = ptq::apply_recipe(a, fp(), nullptr, &calib_, {}, &cache);
  const model::Llama qb = ptq::apply_recipe(b, fp(), nullptr, &calib_, {}, &cache);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(qa.weights().layers[1].w_down.weight(), qb.weights().layers[1].w_down.weight());
  ptq::apply_recipe(c, fp(), nullptr, &calib_, {}, &cache);
  EXPECT_EQ(cache.size(), 2u);
  // And the cached result is what a fresh run computes.
  const model::Llama fresh = ptq::apply_recipe(b, fp(), nullptr, &calib_);
  EXPECT_EQ(fresh.weights().layers[0].wq.weight(), qb.weights().layers[0].wq.weight());
}

TEST_F(PtqMethodsTest, SearchChoosesPerLayerAndTheRecipeUsesTheChoice) {
  ptq::Recipe r;
  r.weights = parse_scheme("mxfp4");
  r.methods.push_back(ptq::parse_method("search"));
  ptq::ApplyReport rep;
  const model::Llama q = ptq::apply_recipe(r, fp(), &rep, &calib_);
  int searched = 0;
  for (const ptq::WeightReport& w : rep.weights) {
    if (w.site == "embedding" || w.site == "output") continue;
    ++searched;
    const Scheme chosen = parse_scheme(w.scheme);  // may print as a preset ("mxfp4")
    EXPECT_TRUE(chosen.granularity == Granularity::Group && chosen.group == 32 &&
                !chosen.scale_is_f32 && chosen.scale_format == formats::e8m0fnu &&
                chosen.element.bits() == 4)
        << w.site << " must keep the scheme's blocks and scales: " << w.scheme;
    EXPECT_NEAR(w.bits_per_element, 4.25, 0.1) << w.site;
  }
  EXPECT_EQ(searched, 14);
  // The search never does worse than the plain scheme on the output error it minimises... and the
  // result stays a 4-bit model.
  EXPECT_LT(rep.bits_per_linear_weight, 4.4);
}

// Every input row block 0's Linears see.
class RecordInputs : public model::LinearProbe {
 public:
  void observe(const model::Linear& lin, const float* x, const float*, int n,
               const float*) override {
    std::vector<float>& rows = inputs[lin.name()];
    rows.insert(rows.end(), x, x + size_t(n) * size_t(lin.in_features()));
  }
  std::map<std::string, std::vector<float>> inputs;
};

// Bias correction zeroes the mean output error of every corrected Linear on its calibration
// inputs, with round-to-nearest weights and with GPTQ's; before it, the mean error is not zero.
TEST_F(PtqMethodsTest, BiasCorrectionZeroesTheMeanOutputErrorOnItsCalibrationData) {
  const Scheme mx = parse_scheme("mxfp4");
  const auto scheme_of = [&](const std::string&) -> ptq::MaybeScheme { return mx; };
  RecordInputs record;
  const model::Sites fs = const_cast<model::Llama&>(fp()).sites();
  for (const model::LinearSite& s : fs.block(0)) s.linear->set_probe(&record);
  ptq::LayerwiseRunner(fp(), calib_).run_layer(0, false);
  for (const model::LinearSite& s : fs.block(0)) s.linear->set_probe(nullptr);
  const ptq::PrequantizedWeights gptq =
      ptq::gptq_model(fp(), scheme_of, calib_, ptq::GptqOptions{});
  for (const bool with_gptq : {false, true}) {
    const ptq::PrequantizedWeights none;
    const ptq::PrequantizedWeights& pre = with_gptq ? gptq : none;
    const std::unique_ptr<model::Runtime> corrected =
        ptq::bias_correct_model(fp(), scheme_of, pre, calib_);
    const model::Sites cs = corrected->sites();
    for (size_t i = 0; i < cs.block(0).size(); ++i) {
      const model::Linear& orig = *fs.block(0)[i].linear;
      const model::Linear& lin = *cs.block(0)[i].linear;
      EXPECT_EQ(lin.weight(), orig.weight()) << "the weights stay full precision";
      const size_t rows = size_t(lin.out_features()), cols = size_t(lin.in_features());
      std::vector<float> q(rows * cols);
      if (with_gptq)
        q = gptq.at(lin.name()).values;
      else
        fake_quant(mx, orig.weight().data(), {rows, cols}, q.data());
      const std::vector<float>& x = record.inputs.at(lin.name());
      const size_t n = x.size() / cols;
      ASSERT_GT(n, 0u);
      double before = 0, size = 0;
      for (size_t r = 0; r < rows; ++r) {
        double err = 0, out = 0;  // Σ over rows of (W − Q)·x, and of |W·x|
        for (size_t t = 0; t < n; ++t)
          for (size_t c = 0; c < cols; ++c) {
            err += (double(orig.weight()[r * cols + c]) - q[r * cols + c]) * x[t * cols + c];
            out += std::fabs(double(orig.weight()[r * cols + c]) * x[t * cols + c]);
          }
        const double b0 = orig.bias().empty() ? 0.0 : orig.bias()[r];
        const double mean_after = err / double(n) - (double(lin.bias()[r]) - b0);
        EXPECT_NEAR(mean_after, 0.0, 1e-6 * out / double(n)) << lin.name() << " row " << r;
        before = std::max(before, std::fabs(err / double(n)));
        size = std::max(size, out / double(n));
      }
      EXPECT_GT(before, 1e-4 * size) << lin.name() << ": quantization shifted the mean";
    }
  }
  // Through a recipe: the method runs after GPTQ and the model's biases change.
  ptq::Recipe r;
  r.weights = mx;
  r.methods = {ptq::parse_method("gptq"), ptq::parse_method("biascorrect")};
  const model::Llama q = ptq::apply_recipe(r, fp(), nullptr, &calib_);
  EXPECT_EQ(q.weights().layers[1].w_down.bias().size(), size_t(q.config().dim));
}

// Equalization leaves the function as it is and gives up_proj's row j and down_proj's column j
// the same range.
TEST_F(PtqMethodsTest, EqualizationBalancesRangesAndKeepsTheFunction) {
  const std::unique_ptr<model::Runtime> eq = ptq::equalize_model(fp());
  const model::Llama& m = dynamic_cast<const model::Llama&>(*eq);
  EXPECT_LT(relative_difference(logits(fp()), logits(m)), 2e-5);
  for (const model::LlamaLayer& l : m.weights().layers) {
    const size_t hidden = size_t(l.w_up.out_features()), dim = size_t(l.w_up.in_features());
    for (size_t j = 0; j < hidden; ++j) {
      float r1 = 0, r2 = 0;
      for (size_t c = 0; c < dim; ++c) r1 = std::max(r1, std::fabs(l.w_up.weight()[j * dim + c]));
      for (size_t r = 0; r < size_t(l.w_down.out_features()); ++r)
        r2 = std::max(r2, std::fabs(l.w_down.weight()[r * hidden + j]));
      EXPECT_NEAR(r1, r2, 1e-5f * r1) << "channel " << j;
    }
  }
  EXPECT_NE(m.weights().layers[0].w_up.weight(), fp().weights().layers[0].w_up.weight());
}

// LoRC: the residual W − (Q + U·Vᵀ) falls with the rank, the factors' storage is counted in the
// Linear's bits per weight, and the corrected model is closer to the float one.
TEST_F(PtqMethodsTest, LowRankCompensationErrorFallsWithRank) {
  std::mt19937 rng(3);
  const int rows = 48, cols = 40;
  const Matrix w = random_matrix(rng, rows, cols, 1.0f);
  std::vector<float> q(w.size());
  fake_quant(parse_scheme("mxfp4"), w.data(), {size_t(rows), size_t(cols)}, q.data());
  const auto residual = [&](const model::LowRank& l) {
    double r = 0;
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        double uv = 0;
        for (int k = 0; k < l.rank; ++k)
          uv += double(l.u[size_t(i * l.rank + k)]) * l.v[size_t(j * l.rank + k)];
        const double e = double(w[size_t(i * cols + j)]) - q[size_t(i * cols + j)] - uv;
        r += e * e;
      }
    return std::sqrt(r);
  };
  model::LowRank none;  // rank 1 with zero factors: the residual is the whole error
  none.rank = 1;
  none.u.assign(size_t(rows), 0.0f);
  none.v.assign(size_t(cols), 0.0f);
  double previous = residual(none);
  for (const int rank : {1, 2, 4, 8, 16}) {
    for (const int bits : {16, 8}) {
      const auto l = ptq::low_rank_correction(w, q, rows, cols, rank, bits);
      EXPECT_EQ(l->storage_bits, bits == 16 ? 16.0 * rank * (rows + cols)
                                            : 8.0 * rank * (rows + cols) + 64.0 * rank);
      if (bits == 16) {
        const double r = residual(*l);
        EXPECT_LT(r, previous) << "rank " << rank;
        previous = r;
      }
    }
  }
  // Full rank in BF16 leaves only the factors' rounding.
  const double full = residual(*ptq::low_rank_correction(w, q, rows, cols, cols, 16));
  EXPECT_LT(full, 0.02 * residual(none));
  // In a recipe.
  ptq::Recipe rtn;
  rtn.weights = parse_scheme("mxfp4");
  ptq::Recipe lorc = rtn;
  lorc.methods.push_back(ptq::parse_method("lorc:rank=4"));
  ptq::ApplyReport a, b;
  ptq::apply_recipe(rtn, fp(), &a, &calib_);
  const model::Llama corrected = ptq::apply_recipe(lorc, fp(), &b, &calib_);
  for (size_t i = 0; i < a.weights.size(); ++i) {
    const ptq::WeightReport& wr = a.weights[i];
    if (wr.site == "embedding" || wr.site == "output") continue;
    const double extra = (8.0 * 4 * double(wr.shape[0] + wr.shape[1]) + 64.0 * 4) /
                         double(wr.shape[0] * wr.shape[1]);
    EXPECT_NEAR(b.weights[i].bits_per_element, wr.bits_per_element + extra, 1e-12) << wr.site;
  }
  EXPECT_LT(kl_of(lorc), kl_of(rtn));
  EXPECT_TRUE(corrected.weights().layers[0].wq.low_rank());
  // A correction is for the weights the recipe ends with: it cannot come before GPTQ.
  ptq::Recipe wrong = rtn;
  wrong.methods = {ptq::parse_method("lorc"), ptq::parse_method("gptq")};
  EXPECT_THROW(ptq::apply_recipe(wrong, fp(), nullptr, &calib_), Error);
}

// Largest |key| and |value| per layer and channel, as KvProbe sees them.
class KvMax : public model::KvProbe {
 public:
  void observe(int layer, const float* k, const float* v, int tokens) override {
    auto& [mk, mv] = max[layer];
    mk.resize(width, 0.0f);
    mv.resize(width, 0.0f);
    for (size_t i = 0; i < size_t(tokens) * width; ++i) {
      mk[i % width] = std::max(mk[i % width], std::fabs(k[i]));
      mv[i % width] = std::max(mv[i % width], std::fabs(v[i]));
    }
  }
  size_t width = 0;
  std::map<int, std::pair<std::vector<float>, std::vector<float>>> max;
};

// The reordering leaves the full-precision model's function as it was, and afterwards every value
// head's channels (and every layer's key channels, over its heads) come in order of decreasing
// calibration magnitude.
TEST_F(PtqMethodsTest, KvReorderingSortsChannelsAndKeepsTheFunction) {
  const ptq::Recipe r = ptq::parse_recipe_json(R"({"methods": ["kvreorder"]})", "r");
  const model::Llama m = ptq::apply_recipe(r, fp(), nullptr, &calib_);
  EXPECT_LT(relative_difference(logits(fp()), logits(m)), 2e-5);
  KvMax probe;
  probe.width = size_t(m.config().kv_dim());
  model::Llama probed = m;
  const model::Sites sites = probed.sites();
  for (const model::KvSite& kv : sites.kv) *kv.probe = &probe;
  ptq::LayerwiseRunner runner(probed, calib_);
  for (int l = 0; l < sites.blocks; ++l) runner.run_layer(l, true);
  ASSERT_EQ(probe.max.size(), size_t(sites.blocks));
  const size_t d = size_t(m.config().head_dim), heads = size_t(m.config().n_kv_heads);
  bool moved = false;
  for (const auto& [layer, kv] : probe.max) {
    std::vector<float> keys(d, 0.0f);
    for (size_t h = 0; h < heads; ++h)
      for (size_t j = 0; j < d; ++j) {
        keys[j] = std::max(keys[j], kv.first[h * d + j]);
        if (j > 0) {
          EXPECT_GE(kv.second[h * d + j - 1], kv.second[h * d + j]) << layer << " v";
        }
      }
    for (size_t j = 1; j < d; ++j) EXPECT_GE(keys[j - 1], keys[j]) << layer << " k";
  }
  for (int l = 0; l < sites.blocks; ++l)
    moved = moved || m.weights().layers[size_t(l)].wv.weight() !=
                         fp().weights().layers[size_t(l)].wv.weight();
  EXPECT_TRUE(moved);
  // A rotation after RoPE mixes the channels the permutation sorted: the two refuse each other.
  for (const char* both :
       {R"({"methods": ["kvreorder", "hadamard"]})", R"({"methods": ["hadamard", "kvreorder"]})"})
    EXPECT_THROW(ptq::apply_recipe(ptq::parse_recipe_json(both, "r"), fp(), nullptr, &calib_),
                 Error)
        << both;
}

// LLM-FP4: on a model with an outlier input channel (made exactly: the norm scale of channel 3
// times 16, the readers' column 3 divided by 16), under per-tensor FP8 activations the method
// moves a power-of-two factor into the weights, the shifted model computes the same logits bit for
// bit, and the recipe's KL is below the format search's without the shift.
TEST_F(PtqMethodsTest, LlmFp4ShiftsOutlierChannelsIntoTheWeightsJointlyWithTheFormat) {
  model::Llama outlier = fp();
  for (model::LlamaLayer& l : outlier.weights().layers)
    for (int c : {3, 10}) {
      l.attn_norm[size_t(c)] *= 16;
      for (model::Linear* lin : {&l.wq, &l.wk, &l.wv}) {
        std::vector<float> w = lin->weight();
        for (int r = 0; r < lin->out_features(); ++r) w[size_t(r * lin->in_features() + c)] /= 16;
        lin->set_weight(std::move(w));
      }
    }
  const Scheme wf = parse_scheme("e2m1fn:channel"), af = parse_scheme("e4m3fn:tensor");
  std::map<std::string, Scheme> chosen;
  const std::unique_ptr<model::Runtime> shifted = ptq::llm_fp4_model(
      outlier, [&](const std::string&) -> ptq::MaybeScheme { return wf; },
      [&](const std::string&) -> ptq::MaybeScheme { return af; }, calib_, chosen);
  const model::Llama& m = dynamic_cast<const model::Llama&>(*shifted);
  const std::vector<float> want = logits(outlier), got = logits(m);
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4));
  EXPECT_NE(m.weights().layers[0].attn_norm, outlier.weights().layers[0].attn_norm)
      << "a shift was chosen for the outlier channels";
  EXPECT_EQ(chosen.size(), 14u);
  ptq::Recipe search;
  search.weights = wf;
  search.activations = af;
  ptq::Recipe joint = search;
  search.methods.push_back(ptq::parse_method("search"));
  joint.methods.push_back(ptq::parse_method("llmfp4"));
  EXPECT_LT(kl_of(joint, &outlier), kl_of(search, &outlier));
}

}  // namespace
}  // namespace lowbit::testing
