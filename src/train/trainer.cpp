// One training run (lowbit/train/trainer.h): configuration, data, the loop, checkpoints, the log
// and the trained model's folder.
#include "lowbit/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "lowbit/export/compressed_tensors_export.h"
#include "lowbit/io/atomic_file.h"
#include "lowbit/model/gguf.h"
#include "lowbit/model/model.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/train/checkpoint.h"
#include "lowbit/train/data.h"
#include "lowbit/train/quantized_training.h"
#include "lowbit/train/sharpness.h"
#include "lowbit/util/error.h"
#include "util/content_hash.h"
#include "util/files.h"

namespace lowbit::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void check_keys(const json& j, const std::set<std::string>& allowed, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  for (const auto& [key, value] : j.items())
    if (!allowed.count(key)) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(where + ": unknown setting \"" + key + "\" (known: " + list + ")");
    }
}

template <typename V>
void read(const json& j, const char* key, V& into, const std::string& where) {
  if (!j.contains(key)) return;
  try {
    into = j.at(key).get<V>();
  } catch (const std::exception&) {
    throw Error(where + ": \"" + key + "\" has the wrong type (" + j.at(key).dump() + ")");
  }
}

std::vector<std::string> read_files(const json& j, const char* key, const std::string& where) {
  std::vector<std::string> files;
  if (!j.contains(key)) return files;
  if (j.at(key).is_string()) return {j.at(key).get<std::string>()};
  read(j, key, files, where);
  return files;
}

std::unique_ptr<model::Tokenizer> load_tokenizer(const std::string& path) {
  if (files::is_dir(path)) return model::tokenizer_from_json(path + "/tokenizer.json");
  return model::tokenizer_from_gguf(model::GgufFile(path));
}

// "bpe:<entries>": a byte-level BPE trained on the training files (all of their text, before any
// validation split), written to `folder` as tokenizer.json; a run that resumes reads it back.
std::unique_ptr<model::Tokenizer> trained_bpe(const TrainRun& run, const std::string& folder) {
  const std::string json_path = folder + "/tokenizer.json";
  if (!files::exists(json_path)) {
    int entries = 0;
    try {
      entries = std::stoi(run.tokenizer.substr(4));
    } catch (const std::exception&) {
      throw Error("tokenizer: \"" + run.tokenizer + "\" should be bpe:<vocabulary entries>");
    }
    std::string text;
    for (const std::string& f : run.train_files) text += model::read_text_file(f);
    const model::HfTokenizerFiles t =
        model::train_byte_level_bpe(text, entries, run.shape.context_length);
    fs::create_directories(folder);
    io::write_file_atomically(folder + "/tokenizer_config.json",
                              [&](std::ostream& o) { o << t.tokenizer_config_json; });
    io::write_file_atomically(json_path, [&](std::ostream& o) { o << t.tokenizer_json; });
  }
  return model::tokenizer_from_json(json_path);
}

// Every file's tokens, one after another, the end-of-text token between files where there is one.
std::vector<int32_t> tokenize_files(const model::Tokenizer& tok,
                                    const std::vector<std::string>& paths, int64_t limit) {
  std::vector<int32_t> all;
  for (const std::string& p : paths) {
    const std::vector<int32_t> ids = tok.encode(model::read_text_file(p));
    all.insert(all.end(), ids.begin(), ids.end());
    if (tok.eos_id() >= 0) all.push_back(tok.eos_id());
    if (limit > 0 && int64_t(all.size()) >= limit) {
      all.resize(size_t(limit));
      break;
    }
  }
  return all;
}

// Mean cross-entropy over the fixed validation batches.
double validation_loss(TrainLlama<float>& m, const std::vector<Batch>& batches) {
  LossSum total;
  for (const Batch& b : batches) {
    const LossSum l = m.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, false);
    total.sum += l.sum;
    total.scored += l.scored;
  }
  return total.scored ? total.sum / double(total.scored) : 0.0;
}

// The log keeps one JSON object per line; on resume, the lines past the checkpoint go (those
// steps are run again).
void truncate_log(const std::string& path, int64_t step) {
  if (!files::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (json::parse(line).value("step", int64_t(0)) <= step) kept += line + "\n";
    } catch (const std::exception&) {  // a line cut by the kill
    }
  }
  io::write_file_atomically(path, [&](std::ostream& out) { out << kept; });
}

// One line per validation step: {"step", "gradient_norms": {parameter: norm}, "operands":
// [{"site", "role", "overflow", "underflow", "log2_scale"}]} (fractions of the site's elements).
void write_tensor_telemetry(std::ofstream& out, int64_t step, const TrainLlama<float>& m,
                            const TrainingRecipe& recipe) {
  json norms = json::object();
  for (const Parameter<float>& p : m.parameters()) {
    double ss = 0;
    for (float g : p.grad) ss += double(g) * double(g);
    norms[p.name] = std::sqrt(ss);
  }
  json operands = json::array();
  for (const TrainingRecipe::SiteTelemetry& t : recipe.site_telemetry())
    operands.push_back(
        {{"site", t.site},
         {"role", operand_role_name(t.role)},
         {"overflow", double(t.t.overflow) / double(t.t.elements)},
         {"underflow", double(t.t.underflow) / double(t.t.elements)},
         {"log2_scale", t.t.scales ? t.t.log2_scale_sum / double(t.t.scales) : 0.0}});
  out << json{{"step", step}, {"gradient_norms", norms}, {"operands", operands}}.dump() << "\n"
      << std::flush;
}

}  // namespace

std::string TrainRun::canonical() const {
  json model_j = init.empty()
                     ? json{{"dim", shape.dim},           {"layers", shape.n_layers},
                            {"heads", shape.n_heads},     {"kv_heads", shape.n_kv_heads},
                            {"hidden", shape.hidden_dim}, {"context", shape.context_length},
                            {"tied", shape.tied_output},  {"rope_theta", shape.rope_theta},
                            {"init_std", init_std}}
                     : json{{"init", init}};
  const AdamWOptions& o = optimizer;
  const json j = {{"model", model_j},
                  {"tokenizer", tokenizer},
                  {"data",
                   {{"train", train_files},
                    {"validation", validation_files},
                    {"validation_fraction", validation_fraction},
                    {"max_tokens", max_train_tokens},
                    {"seq_len", seq}}},
                  {"batch", batch},
                  {"accumulate", accumulate},
                  {"steps", steps},
                  {"optimizer",
                   {{"lr", o.lr},
                    {"min_lr", o.min_lr},
                    {"warmup", o.warmup},
                    {"beta1", o.beta1},
                    {"beta2", o.beta2},
                    {"eps", o.eps},
                    {"weight_decay", o.weight_decay},
                    {"clip", o.clip}}},
                  {"seed", seed},
                  {"threads", threads},
                  {"eval_batches", eval_batches},
                  {"recipe", recipe}};
  return j.dump();
}

namespace {
// The bytes of a file, or of every regular file under a folder in name order (a Hugging Face
// model), into h: what a run's numbers depend on, whatever the paths are called.
void hash_contents(const std::string& path, util::ContentHash& h) {
  std::vector<std::string> files_in;
  if (files::is_dir(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) files_in.push_back(e.path().string());
    std::sort(files_in.begin(), files_in.end());
  } else {
    files_in.push_back(path);
  }
  for (const std::string& f : files_in) h.text(files::read_all(f));
}
}  // namespace

std::string TrainRun::hash() const {
  // The configuration and the contents of what it names (texts, the model to fine-tune, a
  // tokenizer file): a checkpoint or a finished sweep run is reused only for the same inputs.
  util::ContentHash h;
  h.text(canonical());
  for (const std::vector<std::string>* list : {&train_files, &validation_files})
    for (const std::string& f : *list) hash_contents(f, h);
  if (!init.empty())
    hash_contents(model::resolve_model_path(init), h);
  else if (tokenizer.rfind("bpe:", 0) != 0)
    hash_contents(model::resolve_model_path(tokenizer), h);
  return h.hex();
}

TrainRun parse_train_run(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(where + ": not valid JSON (" + e.what() + ")");
  }
  check_keys(j,
             {"model", "tokenizer", "data", "batch", "accumulate", "steps", "optimizer", "seed",
              "threads", "eval_every", "eval_batches", "checkpoint_every", "recipe", "out"},
             where);
  TrainRun r;
  if (j.contains("model")) {
    const json& m = j["model"];
    const std::string w = where + ": model";
    check_keys(m,
               {"init", "dim", "layers", "heads", "kv_heads", "hidden", "context", "tied",
                "rope_theta", "init_std"},
               w);
    read(m, "init", r.init, w);
    if (!r.init.empty())  // the model to fine-tune has its own shape: a given one would be ignored
      for (const char* k : {"dim", "layers", "heads", "kv_heads", "hidden", "context", "tied",
                            "rope_theta", "init_std"})
        if (m.contains(k))
          throw Error(w + ": \"" + std::string(k) + "\" cannot be set with \"init\" (the model " +
                      r.init + " has its own shape and weights)");
    model::LlamaConfig& c = r.shape;
    c.arch = "llama";
    c.dim = 128, c.n_layers = 4, c.n_heads = 4, c.n_kv_heads = 2, c.hidden_dim = 384;
    c.context_length = 256, c.tied_output = true, c.rope_theta = 10000.0f;
    c.rope_style = model::RopeStyle::HalfSplit;  // as Hugging Face checkpoints hold it
    read(m, "dim", c.dim, w);
    read(m, "layers", c.n_layers, w);
    read(m, "heads", c.n_heads, w);
    read(m, "kv_heads", c.n_kv_heads, w);
    read(m, "hidden", c.hidden_dim, w);
    read(m, "context", c.context_length, w);
    read(m, "tied", c.tied_output, w);
    read(m, "rope_theta", c.rope_theta, w);
    read(m, "init_std", r.init_std, w);
    if (c.dim <= 0 || c.n_heads <= 0 || c.dim % c.n_heads != 0 || c.n_kv_heads <= 0 ||
        c.n_heads % c.n_kv_heads != 0 || c.n_layers <= 0 || c.hidden_dim <= 0 ||
        c.context_length <= 0 || (c.dim / c.n_heads) % 2 != 0)
      throw Error(w +
                  ": need dim a multiple of heads with an even head size, heads a multiple "
                  "of kv_heads, and positive layers, hidden and context");
    c.head_dim = c.dim / c.n_heads;
    c.rope_inv_freq = model::rope_inv_freq(c.head_dim, c.rope_theta);
  }
  read(j, "tokenizer", r.tokenizer, where);
  if (!r.init.empty() && j.contains("tokenizer"))
    throw Error(where + ": \"tokenizer\" cannot be set with model.init (fine-tuning uses the " +
                "model's own tokenizer)");
  if (!j.contains("data")) throw Error(where + ": \"data\" (the training text) is required");
  {
    const json& d = j["data"];
    const std::string w = where + ": data";
    check_keys(d, {"train", "validation", "validation_fraction", "max_tokens", "seq_len"}, w);
    r.train_files = read_files(d, "train", w);
    r.validation_files = read_files(d, "validation", w);
    read(d, "validation_fraction", r.validation_fraction, w);
    read(d, "max_tokens", r.max_train_tokens, w);
    read(d, "seq_len", r.seq, w);
    if (r.train_files.empty()) throw Error(w + ": \"train\" names no text file");
  }
  read(j, "batch", r.batch, where);
  read(j, "accumulate", r.accumulate, where);
  read(j, "steps", r.steps, where);
  if (j.contains("optimizer")) {
    const json& o = j["optimizer"];
    const std::string w = where + ": optimizer";
    check_keys(o, {"lr", "min_lr", "warmup", "beta1", "beta2", "eps", "weight_decay", "clip"}, w);
    AdamWOptions& a = r.optimizer;
    read(o, "lr", a.lr, w);
    a.min_lr = a.lr / 10;  // the usual default: a tenth of the peak
    read(o, "min_lr", a.min_lr, w);
    read(o, "warmup", a.warmup, w);
    read(o, "beta1", a.beta1, w);
    read(o, "beta2", a.beta2, w);
    read(o, "eps", a.eps, w);
    read(o, "weight_decay", a.weight_decay, w);
    read(o, "clip", a.clip, w);
  }
  read(j, "seed", r.seed, where);
  read(j, "threads", r.threads, where);
  read(j, "eval_every", r.eval_every, where);
  read(j, "eval_batches", r.eval_batches, where);
  read(j, "checkpoint_every", r.checkpoint_every, where);
  read(j, "recipe", r.recipe, where);
  read(j, "out", r.out, where);
  if (r.seq < 2 || r.batch < 1 || r.accumulate < 1 || r.steps < 1 || r.eval_every < 1 ||
      r.eval_batches < 1 || r.checkpoint_every < 1)
    throw Error(where +
                ": need seq_len >= 2 and batch, accumulate, steps, eval_every, "
                "eval_batches, checkpoint_every >= 1");
  if (r.out.empty()) throw Error(where + ": \"out\" (the run's folder) is required");
  describe_training_recipe(r.recipe);  // an unknown recipe fails here, before any work
  return r;
}

namespace {

// What a run is built from: the tokenizer (and where it came from, for the output folder), the
// model to fine-tune if any, the model's shape, and the tokenized text.
struct Prepared {
  std::unique_ptr<model::Tokenizer> tokenizer;
  std::string tokenizer_source;
  std::unique_ptr<model::Llama> init;
  model::LlamaConfig config;
  StreamSplit split;
};

Prepared prepare(const TrainRun& run) {
  Prepared p;
  if (!run.init.empty()) {
    model::Model loaded = model::load_model(run.init);
    if (!loaded.llama) throw Error(run.init + ": training needs a decoder (LLaMA family)");
    p.init = std::move(loaded.llama);
    p.config = p.init->config();
    p.tokenizer = std::move(loaded.tokenizer);
    p.tokenizer_source = loaded.path;
  } else if (run.tokenizer.rfind("bpe:", 0) == 0) {
    p.tokenizer_source = run.out + "/tokenizer";
    p.tokenizer = trained_bpe(run, p.tokenizer_source);
    p.config = run.shape;
    p.config.vocab_size = p.tokenizer->vocab_size();
  } else {
    p.tokenizer_source = model::resolve_model_path(run.tokenizer);
    p.tokenizer = load_tokenizer(p.tokenizer_source);
    p.config = run.shape;
    p.config.vocab_size = p.tokenizer->vocab_size();
  }
  if (run.seq > p.config.context_length)
    throw Error("data: seq_len " + std::to_string(run.seq) + " exceeds the model's context of " +
                std::to_string(p.config.context_length) + " positions");
  const std::vector<int32_t> stream =
      tokenize_files(*p.tokenizer, run.train_files, run.max_train_tokens);
  if (run.validation_files.empty()) {
    p.split = split_stream(stream, run.validation_fraction);
  } else {
    p.split.train = stream;
    p.split.validation = tokenize_files(*p.tokenizer, run.validation_files, 0);
  }
  return p;
}

template <typename T>
TrainLlama<T> make_model(const TrainRun& run, const Prepared& p) {
  return p.init ? TrainLlama<T>::from_runtime(*p.init)
                : TrainLlama<T>(p.config, run.seed, run.init_std);
}

template <typename V>
model::RawTensor raw(const std::string& name, const std::vector<int64_t>& shape,
                     const std::string& dtype, const std::vector<V>& values) {
  model::RawTensor t{name, dtype, shape, {}};
  t.bytes.resize(values.size() * sizeof(V));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

}  // namespace

void write_gradient_check(const TrainRun& run, const std::string& path) {
  model::set_num_threads(run.threads);
  Prepared p = prepare(run);
  TrainLlama<double> m = make_model<double>(run, p);
  BatchStream batches(std::move(p.split.train), run.batch, run.seq, run.seed);
  const Batch b = batches.next();
  m.zero_grad();
  const LossSum loss =
      m.forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true, 1.0);
  std::vector<model::RawTensor> tensors;
  for (const Parameter<double>& q : m.parameters()) {
    tensors.push_back(raw(q.name, q.shape, "F64", q.value));
    tensors.push_back(raw("grad." + q.name, q.shape, "F64", q.grad));
  }
  tensors.push_back(raw("tokens", {b.batch, b.seq}, "I32", b.tokens));
  tensors.push_back(raw("targets", {b.batch, b.seq}, "I32", b.targets));
  const model::LlamaConfig& c = m.config();
  const json config = {
      {"dim", c.dim},
      {"layers", c.n_layers},
      {"heads", c.n_heads},
      {"kv_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"hidden", c.hidden_dim},
      {"vocab", c.vocab_size},
      {"norm_eps", c.norm_eps},
      {"rope_inv_freq", c.rope_inv_freq},
      {"rope_style", c.rope_style == model::RopeStyle::HalfSplit ? "half_split" : "adjacent_pairs"},
      {"tied", c.tied_output},
      {"loss_sum", loss.sum},
      {"scored", loss.scored}};
  model::write_raw_safetensors(path, tensors, {{"lowbit.gradient_check", config.dump()}});
}

TrainResult run_training(const TrainRun& run, const std::function<void(const StepReport&)>& on_step,
                         bool fresh) {
  model::set_num_threads(run.threads);
  fs::create_directories(run.out);
  const std::string ckpt = run.out + "/checkpoint", log_path = run.out + "/log.jsonl",
                    telemetry_path = run.out + "/telemetry.jsonl";
  if (fresh)
    for (const std::string& f :
         {ckpt, ckpt + ".old", log_path, telemetry_path, run.out + "/tokenizer"})
      fs::remove_all(f);
  Prepared p = prepare(run);
  std::optional<TrainLlama<float>> m;
  m.emplace(make_model<float>(run, p));
  const std::string& tokenizer_source = p.tokenizer_source;
  BatchStream batches(std::move(p.split.train), run.batch, run.seq, run.seed);
  const std::vector<Batch> validation =
      fixed_batches(p.split.validation, run.batch, run.seq, run.eval_batches);
  if (validation.empty())
    throw Error("data: no validation window of " + std::to_string(run.seq + 1) +
                " tokens: give validation files or a larger validation_fraction");
  // Optimizer, recipe, resume.
  AdamW optimizer(m->parameters(), run.optimizer);
  TrainingRecipe recipe(parse_training_recipe(run.recipe), m->config(), run.seed);
  m->set_products(recipe.products());
  TrainState state;
  state.config_hash = run.hash();
  if (std::optional<TrainState> s = read_checkpoint(ckpt, *m, optimizer)) {
    if (s->config_hash != state.config_hash)
      throw Error(ckpt +
                  " was written by a different configuration; pass --fresh to start over "
                  "or use another \"out\" folder");
    state = *s;
    recipe.restore(state.extra);
    batches.seek(state.epoch, state.position);
    truncate_log(log_path, state.step);
    truncate_log(telemetry_path, state.step);
    StepReport r;
    r.step = state.step;
    r.steps = run.steps;
    r.event = "resumed from the checkpoint at step " + std::to_string(state.step);
    on_step(r);
  }
  std::ofstream log(log_path, std::ios::app);
  std::ofstream telemetry(telemetry_path, std::ios::app);
  // The loop.
  TrainResult result;
  const int64_t step_tokens = int64_t(run.batch) * run.seq * run.accumulate;
  double train_seconds = 0, tail_loss = 0;
  int64_t steps_here = 0, tail = 0;
  const auto elapsed = [start = std::chrono::steady_clock::now()] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  while (state.step < run.steps) {
    const double t0 = elapsed();
    std::vector<Batch> micro;
    int64_t scored = 0;
    for (int a = 0; a < run.accumulate; ++a) {
      micro.push_back(batches.next());
      for (int32_t t : micro.back().targets) scored += t >= 0;
    }
    m->zero_grad();
    recipe.begin_step(state.step);
    LossSum loss;
    for (const Batch& b : micro) {
      const LossSum l = m->forward_backward(b.tokens.data(), b.targets.data(), b.batch, b.seq, true,
                                            1.0f / float(scored));
      loss.sum += l.sum;
      loss.scored += l.scored;
    }
    const double mean = loss.sum / double(loss.scored);
    // Per-tensor telemetry at validation steps: each parameter's gradient norm (before clipping)
    // and what each Linear's operands saw, to telemetry.jsonl.
    const bool eval_step = (state.step + 1) % run.eval_every == 0 || state.step + 1 == run.steps;
    if (eval_step) write_tensor_telemetry(telemetry, state.step + 1, *m, recipe);
    StepReport r;
    r.grad_norm = clip_gradients(m->parameters(), run.optimizer.clip);
    r.lr = scheduled_lr(run.optimizer, state.step, run.steps);
    // Divergence: a non-finite loss or gradient, a loss over three times the first step's (far
    // worse than guessing uniformly, which the first step about is), or (after warm-up) a
    // smoothed loss back above the first step's — training that has stopped learning and started
    // undoing.
    state.smoothed_loss = state.step == 0 ? mean : 0.9 * state.smoothed_loss + 0.1 * mean;
    if (state.step == 0) state.first_loss = mean;
    const double initial = state.first_loss, smoothed = state.smoothed_loss;
    if (!std::isfinite(mean) || !std::isfinite(r.grad_norm))
      result.diverged =
          "the loss or the gradient norm is not finite at step " + std::to_string(state.step + 1);
    else if (initial > 0 && mean > 3 * initial)
      result.diverged = "the loss " + std::to_string(mean) +
                        " is more than three times the first "
                        "step's " +
                        std::to_string(initial) + " at step " + std::to_string(state.step + 1);
    else if (initial > 0 && state.step > std::max<int64_t>(10, run.optimizer.warmup) &&
             smoothed > initial)
      result.diverged = "the smoothed loss " + std::to_string(smoothed) +
                        " rose above the first step's " + std::to_string(initial) + " at step " +
                        std::to_string(state.step + 1);
    if (!result.diverged.empty()) {
      r.event = "diverged: " + result.diverged;
      r.step = state.step;
      r.steps = run.steps;
      r.loss = mean;
      on_step(r);
      break;
    }
    optimizer.step(m->parameters(), r.lr);
    recipe.compress_optimizer_states(optimizer);
    recipe.round_master_weights(m->parameters(), state.step);
    recipe.end_step();
    ++state.step;
    state.tokens += step_tokens;
    state.epoch = batches.epoch();
    state.position = batches.position();
    train_seconds += elapsed() - t0;
    ++steps_here;
    if (run.steps - state.step < 10) tail_loss += mean, ++tail;
    r.step = state.step;
    r.steps = run.steps;
    r.loss = mean;
    r.tokens_per_s = double(steps_here * step_tokens) / train_seconds;
    r.elapsed_s = elapsed();
    json line = {
        {"step", state.step},       {"loss", mean},           {"lr", r.lr},
        {"grad_norm", r.grad_norm}, {"tokens", state.tokens}, {"tokens_per_s", r.tokens_per_s},
        {"elapsed_s", r.elapsed_s}};
    for (const auto& [key, value] : recipe.step_telemetry()) line[key] = value;
    if (state.step % run.eval_every == 0 || state.step == run.steps) {
      r.validation_loss = validation_loss(*m, validation);
      line["val_loss"] = *r.validation_loss;
      line["val_ppl"] = std::exp(*r.validation_loss);
    }
    log << line.dump() << "\n" << std::flush;
    if (state.step % run.checkpoint_every == 0 || state.step == run.steps) {
      state.extra = recipe.state();
      write_checkpoint(ckpt, *m, optimizer, state);
      r.event = "checkpoint";
    }
    on_step(r);
  }
  // The trained model as a Hugging Face folder, and the summary.
  result.steps = state.step;
  result.tokens = state.tokens;
  result.final_train_loss = tail ? tail_loss / double(tail) : 0;
  result.validation_loss = validation_loss(*m, validation);
  result.validation_ppl = std::exp(result.validation_loss);
  result.tokens_per_s = train_seconds > 0 ? double(steps_here * step_tokens) / train_seconds : 0;
  result.model_dir = run.out + "/model";
  if (result.diverged.empty() && run.sharpness_iterations > 0) {
    const Batch& b = validation.front();
    result.sharpness =
        loss_sharpness(*m, b.tokens, b.targets, b.batch, b.seq, run.sharpness_iterations, run.seed);
  }
  if (result.diverged.empty()) {
    exports::CompressedTensorsOptions options;
    options.emulated_f32 = true;
    options.recipe_text = "trained by lowbit train (" + run.recipe + ")";
    exports::export_compressed_tensors(m->to_runtime(), ptq::Recipe{}, tokenizer_source,
                                       result.model_dir, options);
  }
  const json summary = {{"steps", result.steps},
                        {"tokens", result.tokens},
                        {"final_train_loss", result.final_train_loss},
                        {"validation_loss", result.validation_loss},
                        {"validation_ppl", result.validation_ppl},
                        {"tokens_per_s", result.tokens_per_s},
                        {"diverged", result.diverged},
                        {"sharpness", result.sharpness ? json(*result.sharpness) : json(nullptr)},
                        {"recipe", run.recipe},
                        {"config_hash", run.hash()},
                        {"parameters", m->parameter_count()},
                        {"config", json::parse(run.canonical())}};
  io::write_file_atomically(run.out + "/summary.json",
                            [&](std::ostream& out) { out << summary.dump(2) << "\n"; });
  return result;
}

}  // namespace lowbit::train
