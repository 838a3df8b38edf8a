// `lowbit inspect MODEL`: architecture, metadata, tensors (shape, type, size) and tokenizer of a
// GGUF file or a Hugging Face folder, read without loading the weights. `--dump NAME --out X.npy`
// writes one tensor, dequantized to float32, for checking against other tools.
#include <fmt/core.h>

#include <map>

#include "commands.h"
#include "lowbit/io/npy.h"
#include "lowbit/model/execution.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/util/error.h"
#include "recipe_flags.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string model;
  std::string dump;
  std::string out;
  std::string exec = "auto";
  RecipeFlags recipe;
};

// --recipe / --w ...: the bytes every role's weights take once the recipe is applied and the
// weights are packed for execution (what `lowbit bench` and `generate` hold in memory).
void print_recipe_bytes(const Args& a) {
  model::Model m = model::load_model(a.model);
  const ptq::Recipe recipe = a.recipe.recipe();
  const std::unique_ptr<ptq::Calibration> calib = a.recipe.calibration(recipe, m);
  std::unique_ptr<model::Runtime> q = ptq::apply_recipe(recipe, m.runtime(), nullptr, calib.get());
  const model::ExecutionPlan plan = model::prepare_execution(*q, model::parse_execution(a.exec));
  const model::Sites sites = q->sites();
  struct Role {
    int count = 0;
    size_t params = 0, bytes = 0;
    std::string storage;
  };
  std::map<std::string, Role> roles;
  std::vector<std::string> order;
  const auto add = [&](const std::string& role, const model::Linear& lin) {
    if (!roles.count(role)) order.push_back(role);
    Role& r = roles[role];
    ++r.count;
    r.params += size_t(lin.out_features()) * size_t(lin.in_features());
    r.bytes += lin.weight_bytes();
    const std::string storage = lin.packed_weight() ? lin.packed_weight()->scheme + " packed"
                                : lin.weight_scheme()
                                    ? scheme_name(*lin.weight_scheme()) + " emulated (f32)"
                                    : "f32";
    if (r.storage.empty())
      r.storage = storage;
    else if (r.storage.find(storage) == std::string::npos)
      r.storage += ", " + storage;
  };
  for (const model::LinearSite& site : sites.linears) add(site.role, *site.linear);
  if (sites.head) add(sites.head_tied ? "head (tied)" : "head", *sites.head);
  fmt::print("{}\nrecipe: {}\n[{}]\n\n", m.summary(), recipe.label(), plan.summary());
  fmt::print("{:<14} {:>6} {:>12} {:>12} {:>10}  {}\n", "role", "count", "parameters", "MiB",
             "bits/w", "stored as");
  size_t params = 0, bytes = 0;
  for (const std::string& role : order) {
    const Role& r = roles[role];
    params += r.params;
    bytes += r.bytes;
    fmt::print("{:<14} {:>6} {:>12} {:>12.2f} {:>10.3f}  {}\n", role, r.count, r.params,
               double(r.bytes) / (1 << 20), 8.0 * double(r.bytes) / double(r.params), r.storage);
  }
  const size_t table = sites.embedding.rows * sites.embedding.cols;
  const size_t table_bytes = plan.embedding_released ? 0 : table * 4;
  fmt::print("{:<14} {:>6} {:>12} {:>12.2f} {:>10.3f}  {}\n", "embedding", 1, table,
             double(table_bytes) / (1 << 20), 8.0 * double(table_bytes) / double(table),
             plan.embedding_released ? "rows decoded from the packed head" : "f32 lookup table");
  fmt::print("{:<14} {:>6} {:>12} {:>12.2f} {:>10.3f}\n", "total", "", params + table,
             double(bytes + table_bytes) / (1 << 20),
             8.0 * double(bytes + table_bytes) / double(params + table));
}

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
  if (a.recipe.any()) {
    print_recipe_bytes(a);
    return;
  }
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
  add_exec_option(cmd, args->exec, "auto");
  args->recipe.add_to(cmd);
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
