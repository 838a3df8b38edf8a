// `lowbit export`: run a recipe's methods on a model and write the result for another runtime: a
// GGUF file llama.cpp loads (each weight in the GGML type that stores the recipe's values) or a
// Hugging Face folder in compressed-tensors' layout that vLLM loads (docs/export.md).
#include <fmt/core.h>

#include <map>

#include <filesystem>
#include "commands.h"

#include "lowbit/export/compressed_tensors_export.h"
#include "lowbit/export/gguf_export.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/util/error.h"
#include "progress.h"
#include "recipe_flags.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string model, out, keep = "f32", to = "gguf";
  bool emulated_f32 = false;
  int threads = 0;
  RecipeFlags recipe;
};

void run_compressed_tensors(const Args& a, const ptq::Recipe& recipe) {
  if (const std::string gap = exports::compressed_tensors_export_gap(recipe); !gap.empty())
    throw Error("cannot export this recipe to compressed-tensors: " + gap);
  exports::CompressedTensorsOptions opt;
  try {
    opt.kept_dtype = exports::parse_kept_dtype(a.keep);
  } catch (const Error& e) {
    throw Error(std::string("--keep: ") + e.what());
  }
  opt.emulated_f32 = a.emulated_f32;
  opt.recipe_text = recipe.canonical();
  std::error_code ec;
  std::filesystem::create_directories(a.out, ec);
  if (ec || !std::filesystem::is_directory(a.out))
    throw Error("--out: " + a.out + " cannot be created as a folder (" + ec.message() + ")");
  const model::Model m = model::load_model(a.model);
  print_model_warnings(m);
  if (!m.llama) throw Error(m.path + ": compressed-tensors export writes decoder models");
  const std::unique_ptr<ptq::Calibration> calib = a.recipe.calibration(recipe, m);
  ProgressBar bar("methods", "layers");
  const model::Llama q =
      ptq::apply_recipe(recipe, *m.llama, nullptr, calib.get(),
                        [&](const std::string&, int done, int total) { bar.update(done, total); });
  const exports::CompressedTensorsReport r =
      exports::export_compressed_tensors(q, recipe, m.path, a.out, opt);
  std::map<std::string, std::pair<int, uint64_t>> by_type;  // dtype -> tensors, bytes
  for (const exports::CtExportedTensor& t : r.tensors) {
    auto& [count, bytes] = by_type[t.dtype];
    ++count;
    bytes += t.bytes;
  }
  fmt::print("model:   {}\nrecipe:  {}\nformat:  {}\n", m.path, recipe.label(), r.format);
  for (const auto& [type, cb] : by_type)
    fmt::print("  {:<8} {:>4} tensors {:>9.2f} MiB\n", type, cb.first,
               double(cb.second) / (1 << 20));
  fmt::print("wrote:   {}/ ({:.2f} MiB, {:.3f} bits per matrix weight, {:.3f} per Linear weight)\n",
             a.out, double(r.folder_bytes) / (1 << 20), r.weight_bits, r.linear_bits);
}

void run(const Args& a) {
  model::set_num_threads(a.threads);
  if (a.to == "compressed-tensors" || a.to == "ct")
    return run_compressed_tensors(a, a.recipe.recipe());
  if (a.to != "gguf") throw Error("--to " + a.to + ": expected gguf or compressed-tensors");
  const ptq::Recipe recipe = a.recipe.recipe();  // a bad recipe fails before the slow part
  if (const std::string gap = exports::gguf_export_gap(recipe); !gap.empty())
    throw Error("cannot export this recipe to GGUF: " + gap);
  exports::GgufExportOptions opt;
  try {
    opt.kept_type = exports::parse_kept_type(a.keep);
  } catch (const Error& e) {
    throw Error(std::string("--keep: ") + e.what());
  }
  opt.emulated_f32 = a.emulated_f32;
  opt.recipe_text = recipe.canonical();
  io::require_writable(a.out, "--out");
  const model::Model m = model::load_model(a.model);
  print_model_warnings(m);
  if (m.format != "gguf" || !m.llama)
    throw Error(m.path + ": export writes GGUF from a GGUF decoder model (this is a " + m.format +
                " " + (m.llama ? "decoder" : "encoder") +
                "); Hugging Face folders are not yet "
                "converted");
  const std::unique_ptr<ptq::Calibration> calib = a.recipe.calibration(recipe, m);
  ProgressBar bar("methods", "layers");
  ptq::ApplyReport applied;
  const model::Llama q =
      ptq::apply_recipe(recipe, *m.llama, &applied, calib.get(),
                        [&](const std::string&, int done, int total) { bar.update(done, total); });
  const exports::GgufExportReport r = exports::export_gguf(q, recipe, m.path, a.out, opt);

  std::map<std::string, std::pair<int, uint64_t>> by_type;  // type -> tensors, bytes
  for (const exports::ExportedTensor& t : r.tensors) {
    auto& [count, bytes] = by_type[ggml_type_info(uint32_t(t.type))->name];
    ++count;
    bytes += t.bytes;
  }
  fmt::print("model:   {}\nrecipe:  {}\n", m.path, recipe.label());
  for (const auto& [type, cb] : by_type)
    fmt::print("  {:<6} {:>4} tensors {:>9.2f} MiB\n", type, cb.first,
               double(cb.second) / (1 << 20));
  fmt::print("wrote:   {} ({:.2f} MiB, {:.3f} bits per matrix weight, {:.3f} per Linear weight)\n",
             a.out, double(r.file_bytes) / (1 << 20), r.weight_bits, r.linear_bits);
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("export",
                         "Quantize a model with a recipe and write it for llama.cpp (GGUF) or vLLM "
                         "(compressed-tensors)");
  cmd->add_option("--to", args->to,
                  "gguf: a GGUF file llama.cpp runs; compressed-tensors (ct): a Hugging Face "
                  "folder vLLM loads")
      ->default_val("gguf");
  cmd->add_option("--model,-m", args->model, "GGUF file or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--out,-o", args->out,
                  "The GGUF file (or, --to compressed-tensors, the folder) to write")
      ->required();
  cmd->add_option("--keep", args->keep,
                  "Type of the weights the recipe keeps: f32 (what lowbit computes with), f16, "
                  "bf16")
      ->default_val("f32");
  cmd->add_flag("--emulated-f32", args->emulated_f32,
                "Write every weight as float32 with lowbit's fake-quantized values (the weights "
                "lowbit evaluates), not in GGML block types / compressed layouts");
  add_threads_option(cmd, args->threads);
  args->recipe.add_to(cmd);
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
