// `lowbit generate`: greedy decoding from a prompt, streamed to stdout, to see the model talk.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "commands.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/io/npy.h"
#include "lowbit/model/model.h"
#include "lowbit/util/error.h"
#include "process_memory.h"
#include "recipe_flags.h"
#include "runnable_decoder.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string model;
  std::string prompt;
  int n = 64;
  int threads = 0;
  std::string exec = "auto";
  bool chat = false;
  std::string logits_out;
  RecipeFlags recipe;
};

void run(const Args& a) {
  model::set_num_threads(a.threads);
  const ptq::Recipe recipe = a.recipe.recipe();
  model::Model m = model::load_model(a.model, decoder_load_options(a.recipe, recipe, a.exec));
  if (!m.llama) throw Error(m.path + " is an encoder; generate needs a decoder model");
  if (!a.logits_out.empty()) io::require_writable(a.logits_out, "--logits-out");
  // With a recipe, the quantized model talks: weights packed for the kernels where they exist
  // (--exec), activations and KV cache quantized at run time.
  const RunnableDecoder decoder = runnable_decoder(m, a.recipe, recipe, a.exec);
  if (a.recipe.any()) std::fprintf(stderr, "[%s]\n", decoder.plan.summary().c_str());
  const model::Llama& llama = decoder.llama;
  // --chat wraps the prompt in the ChatML turn markers SmolLM2-Instruct and Qwen2 were tuned on.
  model::checked_utf8(a.prompt, "--prompt");
  const std::string text =
      a.chat ? "<|im_start|>user\n" + a.prompt + "<|im_end|>\n<|im_start|>assistant\n" : a.prompt;
  std::vector<int32_t> ids = m.tokenizer->encode_for_model(text);
  if (ids.empty()) throw Error("the prompt is empty");
  const int max_context = std::min(llama.config().context_length, int(ids.size()) + a.n);
  if (int(ids.size()) >= max_context)
    throw Error("the prompt's " + std::to_string(ids.size()) +
                " tokens fill the model's trained context of " +
                std::to_string(llama.config().context_length));
  model::LlamaRunState state(llama.config(), int(ids.size()), max_context);
  std::vector<float> logits(size_t(llama.config().vocab_size));
  const auto t0 = std::chrono::steady_clock::now();
  llama.forward(ids.data(), int(ids.size()), 0, state);
  const auto t1 = std::chrono::steady_clock::now();
  if (!a.logits_out.empty()) {  // every prompt position's logits, for checks against other tools
    std::vector<float> all(ids.size() * logits.size());
    llama.logits(state, 0, int(ids.size()), all.data());
    write_npy(a.logits_out, "<f4", {ids.size(), logits.size()}, all.data(),
              all.size() * sizeof(float));
  }
  llama.logits(state, state.n_tokens - 1, 1, logits.data());
  std::fputs(a.prompt.c_str(), stdout);
  std::vector<int32_t> generated;
  std::string shown;
  int pos = int(ids.size());
  std::string stopped;  // why generation ended before -n tokens, if it did
  for (int step = 0; step < a.n; ++step) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == m.tokenizer->eos_id()) {
      stopped = "the model produced its end-of-sequence token (id " + std::to_string(next) + ")";
      break;
    }
    generated.push_back(next);
    // Decode everything so far and print what is new, so multi-byte characters split across
    // tokens come out whole.
    const std::string text_so_far = m.tokenizer->decode(generated);
    if (text_so_far.size() > shown.size() && text_so_far.compare(0, shown.size(), shown) == 0) {
      std::fputs(text_so_far.c_str() + shown.size(), stdout);
      std::fflush(stdout);
      shown = text_so_far;
    }
    if (pos >= max_context) {
      if (step + 1 < a.n)
        stopped = "the model's trained context of " +
                  std::to_string(llama.config().context_length) + " positions is full";
      break;
    }
    llama.forward(&next, 1, pos++, state);
    llama.logits(state, 0, 1, logits.data());
  }
  const auto t2 = std::chrono::steady_clock::now();
  std::fputs("\n", stdout);
  const double prefill = std::chrono::duration<double>(t1 - t0).count();
  const double decode = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr,
               "[%zu prompt tokens in %.2f s; %zu generated in %.2f s, %.1f tokens/s; greedy]\n",
               ids.size(), prefill, generated.size(), decode,
               double(generated.size()) / std::max(decode, 1e-9));
  if (!stopped.empty())
    std::fprintf(stderr, "[stopped after %zu of %d tokens: %s]\n", generated.size(), a.n,
                 stopped.c_str());
  // The weights as held (packed, or float32, and a float32 embedding table if kept) and the KV
  // cache: what the peak resident set is measured against (docs/kernels.md).
  const model::Sites sites = const_cast<model::Llama&>(llama).sites();
  double weights = double(decoder.plan.weight_bytes);
  const std::shared_ptr<std::vector<float>>& table = *sites.embedding.values;
  if (table && !(sites.head && sites.head->weight_ptr() == table))  // a tied head's is counted
    weights += double(table->size() * sizeof(float));
  const double kv = double((state.key_cache.size() + state.value_cache.size()) * sizeof(float));
  const double peak = status_mib("VmHWM");
  std::fprintf(stderr,
               "[memory: peak %.1f MiB resident = %.2f x (weights %.1f MiB + KV cache %.1f MiB)]\n",
               peak, peak / ((weights + kv) / (1 << 20)), weights / (1 << 20), kv / (1 << 20));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with greedy decoding");
  cmd->add_option("--model,-m", args->model,
                  "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--prompt,-p", args->prompt, "The text to continue")->required();
  cmd->add_option("-n", args->n, "Tokens to generate")
      ->default_val(64)
      ->check(CLI::Range(1, 100000));
  add_threads_option(cmd, args->threads);
  add_exec_option(cmd, args->exec, "auto");
  cmd->add_option("--logits-out", args->logits_out,
                  "Write the logits of every prompt position to this .npy file");
  cmd->add_flag("--chat", args->chat, "Wrap the prompt as a user turn of the ChatML chat template");
  args->recipe.add_to(cmd);
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
