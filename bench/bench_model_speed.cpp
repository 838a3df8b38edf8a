// Prefill speed of the LLaMA runtime against the matrix-product rate it is built on.
//
// For each thread count: (1) OpenBLAS sgemm over exactly the products one forward pass makes
// (every Linear of every layer for n_ctx rows, plus the output head for the scored half),
// timed back to back, gives the sgemm GFLOP/s on the model's own shapes; (2) the model's
// forward over a window of n_ctx tokens plus those logits, as `lowbit eval` runs it, gives
// tokens/s and GFLOP/s. Their ratio is the fraction of the sgemm rate the whole forward keeps.
// Before timing, one product is checked against a plain loop and the logits for finiteness.
//
//   build/bench/bench_model_speed [--model smollm2] [--ctx 512] [--threads 1,2] [--repeats 3]
// Uses the installed SmolLM2 when present; otherwise a random model of the same shapes.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/model/model.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Product {
  int rows, out, in;
};

// The products of one forward over n rows with logits for `logit_rows` rows.
std::vector<Product> forward_products(const model::Llama& llama, int n, int logit_rows) {
  std::vector<Product> p;
  for (const model::LlamaLayer& w : llama.weights().layers)
    for (const model::Linear* lin : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down})
      p.push_back({n, lin->out_features(), lin->in_features()});
  p.push_back(
      {logit_rows, llama.weights().output.out_features(), llama.weights().output.in_features()});
  return p;
}

void check_sgemm() {
  const int m = 7, n = 5, k = 33;
  std::vector<float> a(size_t(m * k)), b(size_t(n * k)), c(size_t(m * n));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.data(), k, b.data(), k,
              0.0f, c.data(), n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int t = 0; t < k; ++t) s += double(a[size_t(i * k + t)]) * b[size_t(j * k + t)];
      if (std::abs(s - c[size_t(i * n + j)]) > 1e-4)
        throw Error("sgemm check failed: OpenBLAS gives wrong results");
    }
}

// Rate of sgemm over the products, with weights of the model's shapes (distinct buffers per
// layer, as in the model, so caches do not flatter it).
double sgemm_gflops(const std::vector<Product>& products, int repeats) {
  std::vector<std::vector<float>> weights;
  size_t max_in = 0, max_out = 0, max_rows = 0;
  for (const Product& p : products) {
    weights.emplace_back(size_t(p.out) * size_t(p.in), 0.01f);
    max_in = std::max(max_in, size_t(p.in));
    max_out = std::max(max_out, size_t(p.out));
    max_rows = std::max(max_rows, size_t(p.rows));
  }
  std::vector<float> x(max_rows * max_in, 0.5f), y(max_rows * max_out);
  double flops = 0;
  for (const Product& p : products) flops += 2.0 * p.rows * p.out * p.in;
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // the first round warms up
    const auto t0 = Clock::now();
    for (size_t i = 0; i < products.size(); ++i) {
      const Product& p = products[i];
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.rows, p.out, p.in, 1.0f, x.data(),
                  p.in, weights[i].data(), p.in, 0.0f, y.data(), p.out);
    }
    if (r > 0) best = std::min(best, seconds_since(t0));
  }
  return flops / best * 1e-9;
}

struct ForwardTiming {
  double seconds, gflops, tokens_per_second;
};

ForwardTiming forward_speed(const model::Llama& llama, int n_ctx, int repeats) {
  const int first = n_ctx / 2, scored = n_ctx - 1 - first;
  std::vector<int32_t> tokens(static_cast<size_t>(n_ctx));
  std::mt19937 rng(3);
  for (int32_t& t : tokens) t = int32_t(rng() % uint32_t(llama.config().vocab_size));
  model::LlamaRunState s(llama.config(), n_ctx, n_ctx);
  std::vector<float> logits(size_t(64) * size_t(llama.config().vocab_size));
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {
    const auto t0 = Clock::now();
    llama.forward(tokens.data(), n_ctx, 0, s);
    for (int row = first; row < first + scored; row += 64) {
      const int rows = std::min(64, first + scored - row);
      llama.logits(s, row, rows, logits.data());
      if (!std::all_of(logits.begin(), logits.begin() + rows,
                       [](float v) { return std::isfinite(v); }))
        throw Error("the forward produced non-finite logits");
    }
    if (r > 0) best = std::min(best, seconds_since(t0));
  }
  return {best, llama.flops(n_ctx, 0, scored) / best * 1e-9, n_ctx / best};
}

model::Llama random_smollm2_shaped() {
  model::LlamaConfig c;
  c.arch = "llama (random weights, SmolLM2-135M shapes)";
  c.dim = 576, c.n_layers = 30, c.n_heads = 9, c.n_kv_heads = 3, c.head_dim = 64,
  c.hidden_dim = 1536;
  c.vocab_size = 49152, c.context_length = 8192, c.rope_theta = 100000;
  c.rope_inv_freq.assign(32, 0.0f);
  for (int i = 0; i < 32; ++i) c.rope_inv_freq[size_t(i)] = float(std::pow(1e5, -2.0 * i / 64));
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  const auto mat = [&](int out, int in) {
    auto w = std::make_shared<std::vector<float>>(size_t(out) * size_t(in));
    for (float& x : *w) x = nd(rng);
    return w;
  };
  model::LlamaWeights w;
  w.token_embedding = mat(c.vocab_size, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    model::LlamaLayer L;
    L.attn_norm.assign(size_t(c.dim), 1.0f);
    L.ffn_norm.assign(size_t(c.dim), 1.0f);
    L.wq = model::Linear("wq", c.q_dim(), c.dim, mat(c.q_dim(), c.dim));
    L.wk = model::Linear("wk", c.kv_dim(), c.dim, mat(c.kv_dim(), c.dim));
    L.wv = model::Linear("wv", c.kv_dim(), c.dim, mat(c.kv_dim(), c.dim));
    L.wo = model::Linear("wo", c.dim, c.q_dim(), mat(c.dim, c.q_dim()));
    L.w_gate = model::Linear("gate", c.hidden_dim, c.dim, mat(c.hidden_dim, c.dim));
    L.w_up = model::Linear("up", c.hidden_dim, c.dim, mat(c.hidden_dim, c.dim));
    L.w_down = model::Linear("down", c.dim, c.hidden_dim, mat(c.dim, c.hidden_dim));
    w.layers.push_back(std::move(L));
  }
  w.final_norm.assign(size_t(c.dim), 1.0f);
  c.tied_output = true;
  w.output = model::Linear("output", c.vocab_size, c.dim, w.token_embedding);
  return model::Llama(std::move(c), std::move(w));
}

int run(int argc, char** argv) {
  std::string model_name = model::default_model_name();
  int n_ctx = 512, repeats = 3;
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model")
      model_name = value;
    else if (flag == "--ctx")
      n_ctx = std::stoi(value);
    else if (flag == "--repeats")
      repeats = std::stoi(value);
    else if (flag == "--threads") {
      thread_counts.clear();
      for (size_t p = 0; p < value.size();) {
        const size_t comma = value.find(',', p);
        thread_counts.push_back(std::stoi(value.substr(p, comma - p)));
        p = comma == std::string::npos ? value.size() : comma + 1;
      }
    } else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  check_sgemm();
  std::unique_ptr<model::Model> loaded;
  std::unique_ptr<model::Llama> synthetic;
  const model::Llama* llama;
  try {
    loaded = std::make_unique<model::Model>(model::load_model(model_name));
    llama = loaded->llama.get();
    std::printf("model: %s\n", loaded->path.c_str());
  } catch (const Error& e) {
    std::printf("model: %s not available (%s); using random weights of SmolLM2-135M's shapes\n",
                model_name.c_str(), e.what());
    synthetic = std::make_unique<model::Llama>(random_smollm2_shaped());
    llama = synthetic.get();
  }
  if (!llama) throw Error("bench_model_speed needs a decoder model");
  std::printf("       %s\n", llama->config().summary().c_str());
  const std::vector<Product> products = forward_products(*llama, n_ctx, n_ctx - 1 - n_ctx / 2);
  std::printf("window: %d tokens, logits for the scored %d; best of %d runs\n\n", n_ctx,
              n_ctx - 1 - n_ctx / 2, repeats);
  std::printf(
      "threads | sgemm on the model's shapes | forward (eval window)             | forward / "
      "sgemm\n");
  std::printf(
      "--------|-----------------------------|-----------------------------------|----------------"
      "\n");
  for (int t : thread_counts) {
    model::set_num_threads(t);
    const double sgemm = sgemm_gflops(products, repeats);
    const ForwardTiming f = forward_speed(*llama, n_ctx, repeats);
    std::printf("%7d | %20.1f GFLOP/s | %7.1f tokens/s, %6.1f GFLOP/s | %13.0f %%\n", t, sgemm,
                f.tokens_per_second, f.gflops, 100.0 * f.gflops / sgemm);
  }
  return 0;
}

}  // namespace
}  // namespace lowbit

int main(int argc, char** argv) {
  try {
    return lowbit::run(argc, argv);
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "bench_model_speed: %s\n", e.what());
    return 1;
  }
}
