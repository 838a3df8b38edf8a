// `lowbit inspect MODEL`: architecture, metadata, tensors (shape, type, size) and tokenizer of a
// GGUF file or a Hugging Face folder, read without loading the weights. `--dump NAME --out X.npy`
// writes one tensor, dequantized to float32, for checking against other tools.
#include <fmt/core.h>

#include <map>

#include "commands.h"
#include "lowbit/io/npy.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/util/error.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string model;
  std::string dump;
  std::string out;
};

void dump_tensor(const Args& a) {
  const std::string path = model::resolve_model_path(a.model);
  const bool gguf = path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
  std::unique_ptr<model::GgufFile> g;
  model::TensorStore st;
  if (gguf)
    g = std::make_unique<model::GgufFile>(path);
  else
    st = model::load_safetensors(path);
  const model::TensorStore& store = gguf ? g->store() : st;
  const model::TensorView& t = store.get(a.dump);
  const std::vector<float> values = store.to_f32(t);
  std::vector<size_t> shape(t.shape.begin(), t.shape.end());
  write_npy(a.out, "<f4", shape, values.data(), values.size() * sizeof(float));
  fmt::print("wrote {} ({} {}, dequantized to float32) to {}\n", t.name, t.dtype, t.shape_string(),
             a.out);
}

void run(const Args& a) {
  if (!a.dump.empty()) {
    if (a.out.empty()) throw Error("--dump needs --out FILE.npy");
    dump_tensor(a);
    return;
  }
  const model::ModelInfo info = model::inspect_model(a.model);
  fmt::print("model:        {}\nformat:       {}\narchitecture: {}\ntokenizer:    {}\n", info.path,
             info.format, info.architecture, info.tokenizer);
  fmt::print("\nmetadata ({} keys; long arrays abbreviated):\n", info.metadata.size());
  for (const auto& [key, value] : info.metadata) fmt::print("  {:<44} {}\n", key, value);
  size_t total = 0;
  std::map<std::string, size_t> by_type;
  for (const auto& t : info.tensors) {
    total += t.bytes;
    ++by_type[t.dtype];
  }
  fmt::print("\ntensors ({}, {:.1f} MiB):\n", info.tensors.size(), double(total) / (1 << 20));
  for (const auto& t : info.tensors)
    fmt::print("  {:<44} {:<6} {:<16} {:>10} bytes\n", t.name, t.dtype, t.shape, t.bytes);
  fmt::print("\ntensor types:");
  for (const auto& [type, count] : by_type) fmt::print(" {} x{}", type, count);
  fmt::print("\n");
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "Show a model's architecture, metadata, tensors and tokenizer");
  cmd->add_option("model", args->model,
                  "GGUF file, Hugging Face folder, or installed model name (smollm2, minilm)")
      ->default_val(model::default_model_name());
  cmd->add_option("--dump", args->dump, "Write this tensor, dequantized to float32, to --out");
  cmd->add_option("--out", args->out, "The .npy file for --dump");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
