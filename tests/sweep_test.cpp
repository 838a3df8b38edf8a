// The sweep on a tiny random LLaMA: results per recipe, a resumed sweep recomputes nothing,
// shards merge into the same results, and the HTML report's SVG really plots them.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>

#include "error_message.h"
#include "lowbit/eval/sweep.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"
#include "tiny_models.h"

namespace lowbit::testing {
namespace {

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

class SweepTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    TinyLlama::random(41).write_gguf(path("tiny.gguf"));
    model_ = model::load_model(path("tiny.gguf"));
    for (int i = 0; i < 30; ++i)
      text_ += "the cat sat on the mat; then the dog ran " + std::to_string(i) + ". ";
    for (const char* w : {"fp", "mxfp8_e4m3", "mxfp4", "nvfp4", "int4_g128"}) {
      ptq::Recipe r;
      r.name = std::string("W ") + w;
      r.weights = ptq::parse_maybe_scheme(w);
      grid_.push_back(r);
    }
    grid_.back().activations = parse_scheme("fp8_token");
  }
  eval::SweepReport sweep(const std::string& out, int shard = 1, int shards = 1) {
    eval::SweepOptions opt;
    opt.n_ctx = 32;
    opt.out_dir = out;
    opt.shard_index = shard;
    opt.shard_count = shards;
    log_.clear();
    opt.log = [&](const std::string& line) { log_.push_back(line); };
    eval::SweepReport r = eval::run_sweep(model_, "text.txt", text_, grid_, opt);
    eval::write_sweep_outputs(r, out);
    return r;
  }
  model::Model model_;
  std::string text_;
  std::vector<ptq::Recipe> grid_;
  std::vector<std::string> log_;
};

TEST_F(SweepTest, EveryRecipeIsMeasuredAgainstTheBaseline) {
  const eval::SweepReport r = sweep(path("out"));
  ASSERT_EQ(r.results.size(), grid_.size());
  EXPECT_GT(r.setup.base_ppl, 1);
  EXPECT_EQ(r.setup.n_windows, int64_t(model_.tokenizer->encode(text_).size()) / 32);
  const eval::RecipeResult& fp = r.results[0];
  EXPECT_EQ(fp.kld.max, 0.0);
  EXPECT_EQ(fp.top1, 1.0);
  EXPECT_EQ(fp.bits_per_weight, 16.0);
  for (size_t i = 1; i < r.results.size(); ++i) {
    EXPECT_GT(r.results[i].kld.mean, 0) << r.results[i].recipe.label();
    EXPECT_LT(r.results[i].bits_per_weight, 16) << r.results[i].recipe.label();
    EXPECT_EQ(r.results[i].layers.size(), 14u);
  }
  // 8-bit MX weights are closer to the model than 4-bit ones.
  EXPECT_LT(r.results[1].kld.mean, r.results[2].kld.mean);
  // results.json reads back to the same figures.
  const eval::SweepReport back = eval::read_sweep_results(path("out/results.json"));
  ASSERT_EQ(back.results.size(), r.results.size());
  EXPECT_EQ(back.setup.key(), r.setup.key());
  for (size_t i = 0; i < r.results.size(); ++i) {
    EXPECT_EQ(back.results[i].hash, r.results[i].hash);
    EXPECT_EQ(back.results[i].kld.mean, r.results[i].kld.mean);
    EXPECT_EQ(back.results[i].layers.size(), r.results[i].layers.size());
  }
  EXPECT_NE(eval::sweep_table(r).find("W mxfp4"), std::string::npos);
}

TEST_F(SweepTest, AResumedSweepRecomputesNothingItHad) {
  const eval::SweepReport first = sweep(path("out"));
  for (const std::string& line : log_) EXPECT_EQ(line.find("cached"), std::string::npos) << line;
  // Interrupted after three recipes: remove the others' results.
  std::vector<std::string> removed;
  for (size_t i = 3; i < grid_.size(); ++i) {
    const std::string file =
        path("out/cache/" + first.setup.key() + "/" + grid_[i].hash_hex() + ".json");
    ASSERT_EQ(0, std::remove(file.c_str())) << file;
  }
  const eval::SweepReport resumed = sweep(path("out"));
  ASSERT_EQ(log_.size(), 1 + grid_.size());
  EXPECT_NE(log_[0].find("baseline: cached"), std::string::npos);
  for (size_t i = 0; i < grid_.size(); ++i)
    EXPECT_EQ(log_[1 + i].find(": cached") != std::string::npos, i < 3) << log_[1 + i];
  for (size_t i = 0; i < grid_.size(); ++i)
    EXPECT_EQ(resumed.results[i].kld.mean, first.results[i].kld.mean);
  // A third run has everything.
  sweep(path("out"));
  for (size_t i = 1; i < log_.size(); ++i)
    EXPECT_NE(log_[i].find(": cached"), std::string::npos) << log_[i];
}

TEST_F(SweepTest, ShardsMergeIntoTheWholeSweep) {
  const eval::SweepReport whole = sweep(path("whole"));
  const eval::SweepReport a = sweep(path("a"), 1, 2), b = sweep(path("b"), 2, 2);
  EXPECT_EQ(a.results.size(), 3u);
  EXPECT_EQ(b.results.size(), 2u);
  const eval::SweepReport merged = eval::merge_sweeps({path("a"), path("b")});
  ASSERT_EQ(merged.results.size(), whole.results.size());
  for (const eval::RecipeResult& w : whole.results) {
    bool found = false;
    for (const eval::RecipeResult& m : merged.results)
      if (m.hash == w.hash) {
        found = true;
        EXPECT_EQ(m.kld.mean, w.kld.mean);
        EXPECT_EQ(m.ppl, w.ppl);
      }
    EXPECT_TRUE(found) << w.recipe.label();
  }
  // A sweep of another context length is another setup and does not merge.
  eval::SweepOptions opt;
  opt.n_ctx = 16;
  opt.out_dir = path("other");
  eval::write_sweep_outputs(eval::run_sweep(model_, "text.txt", text_, {grid_[0]}, opt),
                            path("other"));
  EXPECT_THROW(eval::merge_sweeps({path("a"), path("other")}), Error);
  EXPECT_THROW(eval::merge_sweeps({path("missing")}), Error);
}

std::string entry_path(const std::string& out, const eval::SweepReport& r,
                       const ptq::Recipe& recipe) {
  return out + "/cache/" + r.setup.key() + "/" + recipe.hash_hex() + ".json";
}

TEST_F(SweepTest, AModelEditedInPlaceIsAnotherSetup) {
  const eval::SweepReport first = sweep(path("out"));
  // Same file name, same parameter count, other weights: nothing cached may be used.
  TinyLlama edited = TinyLlama::random(41);
  edited.layers[0].w_up[3] += 0.25f;
  edited.write_gguf(path("tiny.gguf"));
  model_ = model::load_model(path("tiny.gguf"));
  const eval::SweepReport second = sweep(path("out"));
  EXPECT_NE(second.setup.key(), first.setup.key());
  for (const std::string& line : log_) EXPECT_EQ(line.find("cached"), std::string::npos) << line;
  EXPECT_NE(second.setup.base_ppl, first.setup.base_ppl);
  // A copy of the same bytes under another name is the same setup.
  TinyLlama::random(41).write_gguf(path("copy.gguf"));
  model_ = model::load_model(path("copy.gguf"));
  EXPECT_EQ(sweep(path("out")).setup.key(), first.setup.key());
  for (size_t i = 1; i < log_.size(); ++i)
    EXPECT_NE(log_[i].find(": cached"), std::string::npos) << log_[i];
}

TEST_F(SweepTest, UnusableCacheEntriesAreReportedAndRecomputed) {
  const eval::SweepReport first = sweep(path("out"));
  const std::string truncated = entry_path(path("out"), first, grid_[1]);
  const std::string patched = entry_path(path("out"), first, grid_[2]);
  const std::string copied = entry_path(path("out"), first, grid_[3]);
  const std::string text = read_text(truncated);
  write_text(truncated, text.substr(0, text.size() / 2));
  // A patched figure that still parses: only the checksum can tell.
  std::string p = read_text(patched);
  const size_t at = p.find("\"ppl\": ");
  ASSERT_NE(at, std::string::npos);
  p.insert(at + 7, "1");
  write_text(patched, p);
  // Another recipe's (intact) entry under this recipe's name.
  write_text(copied, read_text(entry_path(path("out"), first, grid_[4])));
  const eval::SweepReport second = sweep(path("out"));
  ASSERT_EQ(log_.size(),
            1 + grid_.size() + 3);  // baseline, 3 reports of unusable entries, 5 results
  size_t unusable = 0;
  for (const std::string& line : log_) unusable += line.find("is unusable") != std::string::npos;
  EXPECT_EQ(unusable, 3u);
  std::string all;
  for (const std::string& line : log_) all += line + "\n";
  EXPECT_NE(all.find("checksum"), std::string::npos) << all;
  EXPECT_NE(all.find("stored under another key"), std::string::npos) << all;
  ASSERT_EQ(second.results.size(), grid_.size());
  for (size_t i = 0; i < grid_.size(); ++i) {
    EXPECT_EQ(second.results[i].hash, grid_[i].hash_hex());
    EXPECT_EQ(second.results[i].kld.mean, first.results[i].kld.mean) << i;
    EXPECT_EQ(second.results[i].ppl, first.results[i].ppl) << i;
  }
}

TEST_F(SweepTest, ACorruptBaselineIsRecomputedAndNeverUsed) {
  const eval::SweepReport first = sweep(path("out"));
  const std::string baseline = path("out/cache/" + first.setup.key() + "/baseline.bin");
  std::string bytes = read_text(baseline);
  bytes[bytes.size() / 2] ^= 0x40;  // one flipped bit in a log-probability
  write_text(baseline, bytes);
  EXPECT_NE(error_of([&] { eval::Baseline::load(baseline); }).find("checksum"), std::string::npos);
  const eval::SweepReport second = sweep(path("out"));
  EXPECT_NE(log_[0].find("unusable"), std::string::npos) << log_[0];
  EXPECT_NE(log_[1].find("baseline: PPL computed"), std::string::npos) << log_[1];
  EXPECT_EQ(second.setup.base_ppl, first.setup.base_ppl);
  write_text(baseline, bytes.substr(0, bytes.size() - 100));  // truncated
  sweep(path("out"));
  EXPECT_NE(log_[0].find("unusable"), std::string::npos) << log_[0];
  // A baseline whose checksum holds but whose numbers no model produces (NaN) is refused too.
  eval::Baseline b = eval::Baseline::load(baseline);
  b.nll[3] = std::nan("");
  b.save(path("nan.bin"));
  EXPECT_NE(error_of([&] { eval::Baseline::load(path("nan.bin")); }).find("NLL of scored token 3"),
            std::string::npos);
  b = eval::Baseline::load(baseline);
  b.top_logprobs[5] = 0.5f;
  b.save(path("pos.bin"));
  EXPECT_NE(error_of([&] { eval::Baseline::load(path("pos.bin")); }).find("log-probability"),
            std::string::npos);
}

TEST_F(SweepTest, ResultsJsonIsChecked) {
  sweep(path("out"));
  std::string j = read_text(path("out/results.json"));
  const size_t at = j.find("\"kld\"");
  ASSERT_NE(at, std::string::npos);
  j.insert(j.find("\"mean\": ", at) + 8, "9");
  write_text(path("out/results.json"), j);
  EXPECT_THROW(eval::read_sweep_results(path("out/results.json")), Error);
}

TEST_F(SweepTest, ShardsSharingAFolderWriteTheWholeReport) {
  // Shard 1 finishes first; shard 2's report then holds every recipe, shard 1's included.
  const eval::SweepReport a = sweep(path("shared"), 1, 2);
  EXPECT_EQ(a.results.size(), 3u);
  EXPECT_EQ(a.pending.size(), 2u);
  const eval::SweepReport b = sweep(path("shared"), 2, 2);
  EXPECT_EQ(b.results.size(), grid_.size());
  EXPECT_TRUE(b.pending.empty());
  const eval::SweepReport on_disk = eval::read_sweep_results(path("shared/results.json"));
  EXPECT_EQ(on_disk.results.size(), grid_.size());
}

TEST_F(SweepTest, HtmlReportPlotsEveryRecipe) {
  const eval::SweepReport r = sweep(path("out"));
  std::ifstream in(path("out/report.html"));
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(html.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // nothing fetched
  EXPECT_EQ(html.find("<script"), std::string::npos);
  for (const char* id : {"pareto-kld", "pareto-ppl"}) {
    const size_t start = html.find(std::string("<svg id=\"") + id + "\"");
    ASSERT_NE(start, std::string::npos) << id;
    const std::string svg = html.substr(start, html.find("</svg>", start) - start);
    EXPECT_EQ(count(svg, "<circle class=\"point"), grid_.size()) << id;
    EXPECT_NE(svg.find("bits per weight"), std::string::npos) << id;
    EXPECT_GE(count(svg, "class=\"tick\""), 3u) << id;
    // The front is drawn through at least two points and every front point is marked.
    const std::smatch m = [&] {
      std::smatch mm;
      std::regex_search(
          svg, mm, std::regex("<path class=\"front\" d=\"M[-0-9.]+,[-0-9.]+ L[-0-9.]+,[-0-9.]+"));
      return mm;
    }();
    EXPECT_FALSE(m.empty()) << id << ": no Pareto front drawn";
    EXPECT_GE(count(svg, "front-point"), 2u) << id;
    // Points are inside the plot area.
    std::regex cx("cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\"");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), cx); it != std::sregex_iterator();
         ++it) {
      const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
      EXPECT_GE(x, 70);
      EXPECT_LE(x, 580);
      EXPECT_GE(y, 36);
      EXPECT_LE(y, 364);
    }
  }
  EXPECT_NE(html.find("mean KL divergence"), std::string::npos);
  EXPECT_NE(html.find("ΔPPL (%)"), std::string::npos);
  EXPECT_EQ(count(html, "<rect class=\"cell\""), grid_.size() * 2);  // recipes x layers
  for (const ptq::Recipe& g : grid_) EXPECT_NE(html.find(g.name), std::string::npos);
}

TEST_F(SweepTest, ParetoFrontKeepsTheUndominated) {
  // (bits, error): (4, 1.0) (4.5, 0.3) (8, 0.01) are the front; (6, 0.5) and (8, 0.02) are not.
  const std::vector<std::pair<double, double>> p = {
      {6, 0.5}, {4, 1.0}, {8, 0.02}, {4.5, 0.3}, {8, 0.01}};
  EXPECT_EQ(eval::pareto_front(p), (std::vector<size_t>{1, 3, 4}));
}

TEST_F(SweepTest, BadOptionsAreErrors) {
  eval::SweepOptions opt;
  opt.n_ctx = 32;
  opt.out_dir = path("x");
  opt.shard_index = 3;
  opt.shard_count = 2;
  EXPECT_THROW(eval::run_sweep(model_, "t", text_, grid_, opt), Error);
  opt.shard_index = 1;
  std::vector<ptq::Recipe> twice = {grid_[1], grid_[1]};
  EXPECT_THROW(eval::run_sweep(model_, "t", text_, twice, opt), Error);
  opt.n_ctx = 100000;
  EXPECT_THROW(eval::run_sweep(model_, "t", text_, grid_, opt), Error);
}

}  // namespace
}  // namespace lowbit::testing
