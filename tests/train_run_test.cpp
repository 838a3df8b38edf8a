// Training runs end to end on a tiny model with a byte-level tokenizer: resume after a kill gives
// bit-identical weights, every quantized-training preset trains, fine-tuning from a model file,
// the divergence detector, telemetry, COAT's range expansion, and configuration errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/train/quantized_training.h"
#include "lowbit/train/train_sweep.h"
#include "lowbit/train/trainer.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::train {
namespace {

using json = nlohmann::json;

// Sentences of words from a small list: a learnable byte stream of ~24k tokens.
std::string tiny_corpus() {
  const char* words[] = {"the", "cat",  "sat",  "on",    "a",      "mat", "and",
                         "dog", "ran",  "to",   "house", "garden", "in",  "quietly",
                         "she", "said", "that", "it",    "was"};
  std::mt19937 rng(5);
  std::string text;
  while (text.size() < 24000) {
    const int n = 4 + int(rng() % 6);
    for (int i = 0; i < n; ++i) text += std::string(i ? " " : "") + words[rng() % 19];
    text += ".\n";
  }
  return text;
}

class TrainRunTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    testing::TinyLlama::random(1).write_gguf(path("tiny.gguf"));
    testing::write_text(path("corpus.txt"), tiny_corpus());
  }
  // A 2-layer model of width 32 on the tiny GGUF's 260-token byte vocabulary.
  json config(const std::string& out, int steps) const {
    return {
        {"model",
         {{"dim", 32},
          {"layers", 2},
          {"heads", 4},
          {"kv_heads", 2},
          {"hidden", 64},
          {"context", 64}}},
        {"tokenizer", path("tiny.gguf")},
        {"data", {{"train", path("corpus.txt")}, {"seq_len", 32}, {"validation_fraction", 0.1}}},
        {"batch", 4},
        {"steps", steps},
        {"eval_every", 4},
        {"eval_batches", 2},
        {"checkpoint_every", 3},
        {"threads", 1},
        {"optimizer", {{"lr", 0.01}, {"warmup", 2}}},
        {"out", path(out)}};
  }
  TrainRun run(const json& j) const { return parse_train_run(j.dump(), "test config"); }
  static std::vector<float> weights(const std::string& model_dir) {
    const model::TensorStore s = model::load_safetensors(model_dir + "/model.safetensors");
    std::vector<float> all;
    for (const auto& t : s.tensors()) {
      const std::vector<float> v = s.to_f32(t.name, t.shape);
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
};

// Recipes with state of their own resume bit-identically too: delayed scaling's amax history,
// QFX's learned binary points and their Adam, Quartet's per-step stochastic-rounding streams.
TEST_F(TrainRunTest, AKilledRunResumesToBitIdenticalWeights) {
  const auto quiet = [](const StepReport&) {};
  for (const std::string recipe : {"f32", "fp8_delayed", "qfx8", "quartet"}) {
    SCOPED_TRACE(recipe);
    json j = config("straight_" + recipe, 8);
    j["recipe"] = recipe;
    const TrainResult straight = run_training(run(j), quiet, true);
    ASSERT_EQ(straight.steps, 8);
    // The same run killed after step 5 (the last checkpoint is step 3; steps 4-5 are logged).
    struct Killed {};
    j["out"] = path("killed_" + recipe);
    const TrainRun killed = run(j);
    EXPECT_THROW(run_training(
                     killed,
                     [](const StepReport& s) {
                       if (s.step == 5) throw Killed{};
                     },
                     true),
                 Killed);
    // A kill during the next checkpoint's swap leaves a temporary folder and checkpoint.old.
    const std::string dir = path("killed_" + recipe);
    std::filesystem::rename(dir + "/checkpoint", dir + "/checkpoint.old");
    std::filesystem::create_directories(dir + "/checkpoint.tmp-999");
    int64_t resumed_at = -1;
    const TrainResult resumed = run_training(killed, [&](const StepReport& s) {
      if (s.event.rfind("resumed", 0) == 0) resumed_at = s.step;
    });
    EXPECT_EQ(resumed_at, 3);
    EXPECT_EQ(resumed.steps, 8);
    EXPECT_EQ(weights(straight.model_dir), weights(resumed.model_dir));
    EXPECT_EQ(resumed.validation_loss, straight.validation_loss);
    // The log has each step once.
    std::ifstream log(dir + "/log.jsonl");
    std::string line;
    std::vector<int64_t> steps;
    while (std::getline(log, line)) steps.push_back(json::parse(line)["step"].get<int64_t>());
    EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  }
  // A different configuration does not resume someone else's checkpoint.
  json other = config("killed_f32", 8);
  other["optimizer"]["lr"] = 0.02;
  EXPECT_THROW(run_training(run(other), quiet), Error);
  // Nor does the same configuration over a text that changed under the same name.
  testing::write_text(path("corpus.txt"), tiny_corpus() + "a changed ending.\n");
  EXPECT_THROW(run_training(run(config("killed_f32", 8)), quiet), Error);
}

TEST_F(TrainRunTest, TheTrainedFolderLoadsAsAModel) {
  const TrainResult r = run_training(
      run(config("folder", 4)), [](const StepReport&) {}, true);
  const model::Model m = model::load_model(r.model_dir);
  ASSERT_TRUE(m.llama);
  EXPECT_EQ(m.llama->config().dim, 32);
  EXPECT_EQ(m.tokenizer->vocab_size(), 260);
}

// Every preset trains: 12 steps lower the loss from the initial ~ln(260) = 5.56 (f32 reaches
// ~2.9 here), quantized presets differ from float32 (they do quantize), and none is far worse.
TEST_F(TrainRunTest, EveryPresetTrainsTheTinyModel) {
  double f32 = 0;
  for (const TrainingRecipeSpec& p : training_presets()) {
    json j = config("preset_" + p.name, 12);
    j["recipe"] = p.name;
    j["checkpoint_every"] = 12;
    std::vector<json> lines;
    const TrainResult r = run_training(
        run(j), [](const StepReport&) {}, true);
    std::printf("%-12s validation loss %.4f\n", p.name.c_str(), r.validation_loss);
    EXPECT_TRUE(r.diverged.empty()) << p.name << ": " << r.diverged;
    EXPECT_LT(r.validation_loss, 4.5) << p.name;
    if (p.name == "f32") {
      f32 = r.validation_loss;
    } else {
      EXPECT_NE(r.validation_loss, f32) << p.name << " trained exactly as float32";
      EXPECT_LT(r.validation_loss, f32 + 0.6) << p.name;
    }
    // Telemetry: quantized presets log each role's overflow and underflow fractions.
    std::ifstream log(path("preset_" + p.name + "/log.jsonl"));
    std::string first;
    std::getline(log, first);
    const json line = json::parse(first);
    const bool schemes = !p.is_full_precision() && p.fixed_point_bits == 0;
    EXPECT_EQ(line.contains("fwd_x_underflow"), schemes) << p.name << ": " << first;
    EXPECT_EQ(line.contains("qfx_fraction_bits"), p.fixed_point_bits > 0) << p.name;
    // Per tensor, at validation steps: gradient norms of every parameter, every site's operands.
    std::ifstream tele(path("preset_" + p.name + "/telemetry.jsonl"));
    std::string last;
    for (std::string l; std::getline(tele, l);) last = l;
    const json t = json::parse(last);
    EXPECT_EQ(t["step"], 12);
    EXPECT_EQ(t["gradient_norms"].size(), 20u);  // embedding, final norm, 2 layers x 9 (tied head)
    EXPECT_EQ(t["operands"].empty(), !schemes) << p.name;
    if (p.name == "fp8") {
      EXPECT_EQ(t["operands"].size(), 2u * 7 * 6);  // 2 layers x 7 Linears x 6 roles
    }
  }
}

TEST_F(TrainRunTest, FineTunesAModelFile) {
  json j = config("finetune", 6);
  j["model"] = {{"init", path("tiny.gguf")}};
  j.erase("tokenizer");
  j["optimizer"]["lr"] = 0.003;
  std::vector<double> validation;
  run_training(
      run(j),
      [&](const StepReport& s) {
        if (s.validation_loss) validation.push_back(*s.validation_loss);
      },
      true);
  ASSERT_EQ(validation.size(), 2u);  // steps 4 and 6
  EXPECT_LT(validation[1], validation[0]);
}

TEST_F(TrainRunTest, TheDivergenceDetectorStopsARunThatBlowsUp) {
  json j = config("diverge", 40);
  j["optimizer"] = {{"lr", 30.0}, {"warmup", 0}, {"clip", 0}, {"weight_decay", 0}};
  const TrainResult r = run_training(
      run(j), [](const StepReport&) {}, true);
  EXPECT_FALSE(r.diverged.empty());
  std::printf("%s\n", r.diverged.c_str());
  EXPECT_LT(r.steps, 40);
  EXPECT_FALSE(std::filesystem::exists(r.model_dir)) << "a diverged run wrote a model";
}

TEST_F(TrainRunTest, ConfigurationErrorsNameTheSetting) {
  json j = config("bad", 2);
  j["optimiser"] = json::object();
  try {
    run(j);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimiser"), std::string::npos) << e.what();
  }
  j = config("bad", 2);
  j["recipe"] = "fp7";
  EXPECT_THROW(run(j), Error);
  EXPECT_THROW(parse_training_recipe("fwd=e4m3fn:g32;delayed"), Error);  // delayed: tensors only
  // Fine-tuning takes the model's own shape and tokenizer: setting either is refused, not ignored.
  j = config("bad", 2);
  j["model"]["init"] = path("tiny.gguf");
  EXPECT_THROW(run(j), Error);
  j["model"] = {{"init", path("tiny.gguf")}};
  EXPECT_THROW(run(j), Error);  // "tokenizer" is still set
  j.erase("tokenizer");
  EXPECT_NO_THROW(run(j));
  EXPECT_EQ(parse_training_recipe("fp8;head").head, true);
  EXPECT_EQ(parse_training_recipe("qfx=6;qfx_lr=0.05").fixed_point_bits, 6);
  EXPECT_EQ(parse_training_recipe("qfx=6;qfx_lr=0.05").binary_point_lr, 0.05);
  EXPECT_THROW(parse_training_recipe("qfx=6;fwd=e4m3fn:tensor"), Error);  // QFX takes no scheme
}

// The stability lab: two shards make up the grid, a rerun skips finished runs, a diverging
// learning rate is counted, and the report has its plots.
TEST_F(TrainRunTest, TrainSweepShardsResumesAndReports) {
  json j = config("unused", 6);
  j["eval_every"] = 3;
  const TrainRun base = run(j);
  TrainSweepGrid g;
  g.recipes = {"f32", "fwd=e3m2:tensor;grad=e5m2:tensor"};
  g.lrs = {0.01, 300.0};
  g.seeds = {1};
  g.shards = 2;
  std::vector<std::string> started;
  const auto note = [&](const std::string& what) { started.push_back(what); };
  for (int shard : {0, 1}) {
    g.shard = shard;
    run_train_sweep(base, g, path("sweep"), note);
  }
  EXPECT_EQ(started.size(), 4u);
  g.shard = 0;
  started.clear();
  const std::vector<TrainSweepRun> runs = run_train_sweep(base, g, path("sweep"), note);
  EXPECT_TRUE(started.empty()) << "finished runs were run again";
  ASSERT_EQ(runs.size(), 4u);
  for (const TrainSweepRun& r : runs) {
    EXPECT_TRUE(r.finished) << r.label;
    EXPECT_EQ(!r.diverged.empty(), r.lr > 1) << r.label << ": " << r.diverged;
    EXPECT_EQ(r.sharpness.has_value(), r.lr < 1) << r.label;
    if (r.sharpness) {
      EXPECT_GT(*r.sharpness, 0) << r.label;
    }
    EXPECT_FALSE(r.loss.empty());
  }
  const std::string html = testing::read_text(path("sweep/report.html"));
  EXPECT_NE(html.find("Divergence rate"), std::string::npos);
  EXPECT_GE(std::count(html.begin(), html.end(), '<'), 100);
  const json results = json::parse(testing::read_text(path("sweep/results.json")));
  EXPECT_EQ(results.size(), 4u);
}

// Gradient accumulation: 2 micro-batches of 2 sequences make the step one batch of 4 makes (the
// same windows in the same order), up to float32 summation order.
TEST_F(TrainRunTest, AccumulatedMicroBatchesEqualOneBatch) {
  json j = config("accumulated", 3);
  j["batch"] = 2;
  j["accumulate"] = 2;
  const TrainResult accumulated = run_training(
      run(j), [](const StepReport&) {}, true);
  j["batch"] = 4;
  j["accumulate"] = 1;
  j["out"] = path("one_batch");
  const TrainResult one = run_training(
      run(j), [](const StepReport&) {}, true);
  EXPECT_EQ(accumulated.tokens, one.tokens);
  const std::vector<float> a = weights(accumulated.model_dir), b = weights(one.model_dir);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  // Adam divides by the gradient's running RMS, so rounding-level differences in near-zero
  // gradients become differences of up to a few percent of a step (lr 0.01 here).
  EXPECT_LT(worst, 2e-4);
  EXPECT_GT(worst, 0.0) << "suspiciously identical: was accumulate ignored?";
  // The first step's loss and gradient norm (which Adam would hide a wrong scale from) agree.
  const auto first_line = [&](const std::string& run_dir) {
    std::ifstream log(path(run_dir) + "/log.jsonl");
    std::string line;
    std::getline(log, line);
    return json::parse(line);
  };
  const json la = first_line("accumulated"), lb = first_line("one_batch");
  EXPECT_NEAR(la["loss"].get<double>(), lb["loss"].get<double>(), 1e-6);
  EXPECT_NEAR(la["grad_norm"].get<double>(), lb["grad_norm"].get<double>(),
              1e-5 * lb["grad_norm"].get<double>());
}

// One operand of one product alone: only the weight gradient's dY in MXFP4, everything else
// float32 — only that role is quantized (and logged), and it changes the training.
TEST_F(TrainRunTest, EachOperandRoleCanHaveItsOwnScheme) {
  const TrainingRecipeSpec spec = parse_training_recipe("wgrad_dy=mxfp4");
  for (int r = 0; r < kOperandRoles; ++r)
    EXPECT_EQ(spec.scheme_for(OperandRole(r)).has_value(), OperandRole(r) == OperandRole::WgradDy);
  EXPECT_EQ(
      parse_training_recipe("fp8;dgrad_w=e5m2:tensor").scheme_for(OperandRole::DgradW)->element,
      formats::e5m2);
  json j = config("one_role", 4);
  j["recipe"] = "wgrad_dy=mxfp4";
  const TrainResult one = run_training(
      run(j), [](const StepReport&) {}, true);
  j["recipe"] = "f32";
  j["out"] = path("one_role_f32");
  const TrainResult f32 = run_training(
      run(j), [](const StepReport&) {}, true);
  EXPECT_NE(one.validation_loss, f32.validation_loss);
  std::ifstream log(path("one_role/log.jsonl"));
  std::string first;
  std::getline(log, first);
  EXPECT_NE(first.find("wgrad_dy_underflow"), std::string::npos) << first;
  EXPECT_EQ(first.find("fwd_x_underflow"), std::string::npos) << first;
}

// Master weights on a narrower format: after every update each weight is a BF16 value (nearest or
// stochastic rounding), and the two roundings train differently.
TEST_F(TrainRunTest, MasterWeightsStayOnTheirFormat) {
  std::vector<double> losses;
  for (const std::string recipe : {"master=bf16", "master=bf16:sr"}) {
    json j = config("master_" + std::to_string(losses.size()), 6);
    j["recipe"] = "fp8;" + recipe;
    const TrainResult r = run_training(
        run(j), [](const StepReport&) {}, true);
    losses.push_back(r.validation_loss);
    const model::TensorStore st = model::load_safetensors(
        path("master_" + std::to_string(losses.size() - 1)) + "/checkpoint/model.safetensors");
    for (const auto& t : st.tensors())
      for (float v : st.to_f32(t.name, t.shape)) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        ASSERT_EQ(bits & 0xFFFFu, 0u) << recipe << ": " << t.name << " holds " << v;
      }
  }
  EXPECT_NE(losses[0], losses[1]);
  EXPECT_NE(describe_training_recipe("fp8;master=bf16:sr").find("master weights bf16 (stochastic)"),
            std::string::npos);
}

// COAT's expansion keeps a group's small moments that plain E4M3 per-group scaling flushes to
// zero (a group spanning 2^-20 .. 1, wider than E4M3's normal range 2^-6 .. 448).
TEST(CoatRangeExpansion, KeepsSmallValuesOfAWideGroup) {
  model::LlamaConfig c;
  std::vector<Parameter<float>> params(1);
  params[0].value.assign(128, 0.0f);
  AdamW plain(params, {}), expanded(params, {});
  for (AdamW* a : {&plain, &expanded})
    for (size_t i = 0; i < 128; ++i)
      a->first_moments()[0][i] = float(std::ldexp(1.0 + (i % 7) / 8.0, -int(i % 21)));
  const std::vector<float> exact = plain.first_moments()[0];
  TrainingRecipeSpec spec = parse_training_recipe("fwd=e4m3fn:tensor;states=e4m3fn:tensor");
  c.n_layers = 1;
  TrainingRecipe(spec, c, 1).compress_optimizer_states(plain);
  spec.range_expansion = true;
  TrainingRecipe(spec, c, 1).compress_optimizer_states(expanded);
  int plain_zeros = 0, expanded_zeros = 0;
  double plain_err = 0, expanded_err = 0;
  for (size_t i = 0; i < 128; ++i) {
    plain_zeros += plain.first_moments()[0][i] == 0;
    expanded_zeros += expanded.first_moments()[0][i] == 0;
    plain_err += std::abs(plain.first_moments()[0][i] / exact[i] - 1);
    expanded_err += std::abs(expanded.first_moments()[0][i] / exact[i] - 1);
  }
  EXPECT_GT(plain_zeros, 0);
  EXPECT_EQ(expanded_zeros, 0);
  EXPECT_LT(expanded_err, plain_err);
  // A group of nearly equal values asks for a huge k (a range of 1.0001 expanded to E4M3's 2^15):
  // the values must come back finite and close, not as inf or NaN.
  for (size_t i = 0; i < 128; ++i) expanded.second_moments()[0][i] = 1e-3f * (1 + 1e-4f * (i % 2));
  TrainingRecipe(spec, c, 1).compress_optimizer_states(expanded);
  for (float v : expanded.second_moments()[0]) {
    ASSERT_TRUE(std::isfinite(v));
    EXPECT_NEAR(v, 1e-3f, 1e-6f);
  }
}

}  // namespace
}  // namespace lowbit::train
