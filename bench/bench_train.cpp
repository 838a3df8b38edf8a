// Training throughput beside forward-only throughput of the same model on the same tokens
// (docs/training.md): a "small LLaMA" (6 layers, dim 256, 8 query / 4 KV heads, SwiGLU 768,
// a 1024-entry vocabulary as lowbit train's bpe:1024 gives), batches of 8 × 128 tokens.
//   BM_RuntimeForward  the inference runtime (model::Llama) forward + logits of every row: the
//                      baseline the "a step costs at most 3.5x the forward" refers to
//   BM_TrainForward    the training model's forward + loss (keeps activations)
//   BM_TrainStep/r     a whole optimizer step (forward, backward, clip, AdamW) with recipe r
// Each reports tokens/s; the ratio of BM_TrainStep/f32 to BM_RuntimeForward is the claim.
// Before timing, the training forward's loss is checked against the runtime's logits.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "lowbit/model/linear.h"
#include "lowbit/train/optimizer.h"
#include "lowbit/train/quantized_training.h"
#include "lowbit/train/train_model.h"

namespace {

using namespace lowbit;

constexpr int kBatch = 8, kSeq = 128;

model::LlamaConfig small_llama() {
  model::LlamaConfig c;
  c.arch = "llama";
  c.dim = 256, c.n_layers = 6, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 32;
  c.hidden_dim = 768, c.vocab_size = 1024, c.context_length = kSeq;
  c.rope_inv_freq = model::rope_inv_freq(c.head_dim, 10000.0);
  c.tied_output = true;
  return c;
}

struct Tokens {
  std::vector<int32_t> tokens, targets;
  Tokens() {
    std::mt19937 rng(1);
    for (int i = 0; i < kBatch * kSeq; ++i) {
      tokens.push_back(int32_t(rng() % 1024));
      targets.push_back(int32_t(rng() % 1024));
    }
  }
};

// The runtime's summed cross-entropy over the batch, sequence by sequence.
double runtime_loss(const model::Llama& m, const Tokens& t, model::LlamaRunState& s,
                    std::vector<float>& logits) {
  double sum = 0;
  const int V = m.config().vocab_size;
  for (int b = 0; b < kBatch; ++b) {
    m.forward(t.tokens.data() + b * kSeq, kSeq, 0, s);
    m.logits(s, 0, kSeq, logits.data());
    for (int i = 0; i < kSeq; ++i) {
      const float* l = logits.data() + size_t(i) * V;
      double top = l[0], z = 0;
      for (int j = 0; j < V; ++j) top = std::max(top, double(l[j]));
      for (int j = 0; j < V; ++j) z += std::exp(double(l[j]) - top);
      sum += std::log(z) + top - l[t.targets[size_t(b * kSeq + i)]];
    }
  }
  return sum;
}

void BM_RuntimeForward(benchmark::State& state) {
  train::TrainLlama<float> tm(small_llama(), 1);
  const model::Llama m = tm.to_runtime();
  const Tokens t;
  model::LlamaRunState s(m.config(), kSeq, kSeq);
  std::vector<float> logits(size_t(kSeq) * m.config().vocab_size);
  const double want = runtime_loss(m, t, s, logits);
  const double got =
      tm.forward_backward(t.tokens.data(), t.targets.data(), kBatch, kSeq, false).sum;
  if (std::abs(got - want) > 1e-4 * want) {
    state.SkipWithError("the training forward disagrees with the runtime");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(runtime_loss(m, t, s, logits));
  state.counters["tokens/s"] =
      benchmark::Counter(double(kBatch * kSeq), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TrainForward(benchmark::State& state) {
  train::TrainLlama<float> m(small_llama(), 1);
  const Tokens t;
  for (auto _ : state)
    benchmark::DoNotOptimize(
        m.forward_backward(t.tokens.data(), t.targets.data(), kBatch, kSeq, false));
  state.counters["tokens/s"] =
      benchmark::Counter(double(kBatch * kSeq), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TrainStep(benchmark::State& state, const char* recipe_name) {
  train::TrainLlama<float> m(small_llama(), 1);
  train::TrainingRecipe recipe(train::parse_training_recipe(recipe_name), m.config(), 1);
  m.set_products(recipe.products());
  train::AdamW opt(m.parameters(), {});
  const Tokens t;
  int64_t step = 0;
  for (auto _ : state) {
    m.zero_grad();
    recipe.begin_step(step++);
    m.forward_backward(t.tokens.data(), t.targets.data(), kBatch, kSeq, true,
                       1.0f / float(kBatch * kSeq));
    train::clip_gradients(m.parameters(), 1.0);
    opt.step(m.parameters(), 1e-3);
    recipe.compress_optimizer_states(opt);
    recipe.end_step();
  }
  state.counters["tokens/s"] =
      benchmark::Counter(double(kBatch * kSeq), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_RuntimeForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainForward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, f32, "f32")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, fp8, "fp8")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, mxfp4, "mxfp4")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, quartet, "quartet")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
