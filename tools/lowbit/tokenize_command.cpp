// `lowbit tokenize`: token ids of text with the model's own tokenizer, as the model receives it
// (BOS / [CLS] [SEP] included where the model adds them): one JSON array per input line with
// --lines (--jsonl when the texts themselves hold newlines), or one token per line with --pieces.
#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/model.h"
#include "lowbit/util/error.h"

namespace lowbit::cli {
namespace {

struct Args {
  std::string model;
  std::string lines;
  bool json_lines = false;
  std::vector<std::string> text;
  bool show_pieces = false;
  bool repair_utf8 = false;
};

// Only the tokenizer is needed: read it without loading the weights.
std::unique_ptr<model::Tokenizer> load_tokenizer(const std::string& name) {
  const std::string path = model::resolve_model_path(name);
  const bool gguf = path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
  if (gguf) return model::tokenizer_from_gguf(model::GgufFile(path));
  const std::string folder = path.back() == '/' ? path : path + "/";
  return model::tokenizer_from_json(folder + "tokenizer.json");
}

void run(const Args& a) {
  const auto tok = load_tokenizer(a.model);
  const auto emit = [&](const std::string& text) {
    const std::vector<int32_t> ids = tok->encode_for_model(text);
    if (a.show_pieces) {
      for (int32_t id : ids) fmt::print("{:>7}  {}\n", id, nlohmann::json(tok->token(id)).dump());
      return;
    }
    fmt::print("{}\n", nlohmann::json(ids).dump());
  };
  if (!a.lines.empty()) {
    std::istringstream in(model::read_text_file(a.lines, a.repair_utf8));
    for (std::string line; std::getline(in, line);) {
      if (!a.json_lines) {
        emit(line);
        continue;
      }
      try {  // each line a JSON string, so texts may hold newlines
        emit(nlohmann::json::parse(line).get<std::string>());
      } catch (const nlohmann::json::exception&) {
        throw Error(a.lines + ": a line is not a JSON string (--jsonl)");
      }
    }
    return;
  }
  std::string joined;
  for (size_t i = 0; i < a.text.size(); ++i) joined += (i ? " " : "") + a.text[i];
  emit(model::checked_utf8(joined, "the text", a.repair_utf8));
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Token ids of text with a model's tokenizer");
  cmd->add_option("--model,-m", args->model,
                  "GGUF file, Hugging Face folder, or installed model name")
      ->default_val(model::default_model_name());
  cmd->add_option("--lines", args->lines,
                  "Tokenize each line of this file (one JSON array of ids per line)");
  cmd->add_flag("--jsonl", args->json_lines, "With --lines: each line is a JSON-encoded string");
  cmd->add_flag("--pieces", args->show_pieces,
                "Print one token per line with its vocabulary entry");
  add_repair_utf8_flag(cmd, args->repair_utf8);
  cmd->add_option("text", args->text, "Text to tokenize");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
