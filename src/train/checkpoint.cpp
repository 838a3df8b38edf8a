// Checkpoints (lowbit/train/checkpoint.h): safetensors for the tensors, JSON for the rest, and a
// folder swap so that a complete checkpoint is always on disk.
#include "lowbit/train/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lowbit/io/atomic_file.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/util/error.h"

namespace lowbit::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
model::NamedTensor tensor(const std::string& name, const std::vector<int64_t>& shape,
                          const std::vector<float>& values) {
  return {name, shape, values};
}
}  // namespace

void write_checkpoint(const std::string& dir, const TrainLlama<float>& model, AdamW& optimizer,
                      const TrainState& state) {
  const std::string tmp = dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::vector<model::NamedTensor> weights, moments;
  const auto& params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    weights.push_back(tensor(params[i].name, params[i].shape, params[i].value));
    moments.push_back(tensor("m." + params[i].name, params[i].shape, optimizer.first_moments()[i]));
    moments.push_back(
        tensor("v." + params[i].name, params[i].shape, optimizer.second_moments()[i]));
  }
  model::write_safetensors(tmp + "/model.safetensors", weights, {{"format", "pt"}});
  model::write_safetensors(tmp + "/optimizer.safetensors", moments);
  const json j = {{"step", state.step},
                  {"epoch", state.epoch},
                  {"position", state.position},
                  {"tokens", state.tokens},
                  {"first_loss", state.first_loss},
                  {"smoothed_loss", state.smoothed_loss},
                  {"adam_steps", optimizer.steps_taken()},
                  {"config_hash", state.config_hash},
                  {"extra", json::parse(state.extra)}};
  io::write_file_atomically(tmp + "/state.json",
                            [&](std::ostream& out) { out << j.dump(2) << "\n"; });
  // Swap: dir -> dir.old, tmp -> dir, drop dir.old. Between the renames only dir.old exists,
  // which read_checkpoint accepts.
  const std::string old = dir + ".old";
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

std::optional<TrainState> read_checkpoint(const std::string& dir_in, TrainLlama<float>& model,
                                          AdamW& optimizer) {
  std::string dir = dir_in;
  if (!fs::exists(dir + "/state.json")) {
    if (!fs::exists(dir + ".old/state.json")) return std::nullopt;
    dir += ".old";
  }
  const std::string state_path = dir + "/state.json";
  json j;
  try {
    std::ifstream in(state_path);
    j = json::parse(in);
  } catch (const std::exception& e) {
    throw Error(state_path + ": not a lowbit training state (" + e.what() + ")");
  }
  TrainState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.epoch = j.at("epoch").get<int64_t>();
    s.position = j.at("position").get<int64_t>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.first_loss = j.at("first_loss").get<double>();
    s.smoothed_loss = j.at("smoothed_loss").get<double>();
    s.config_hash = j.at("config_hash").get<std::string>();
    s.extra = j.at("extra").dump();
    optimizer.set_steps_taken(j.at("adam_steps").get<int64_t>());
  } catch (const std::exception& e) {
    throw Error(state_path + ": missing or malformed field (" + e.what() + ")");
  }
  const model::TensorStore weights = model::load_safetensors(dir + "/model.safetensors");
  const model::TensorStore moments = model::load_safetensors(dir + "/optimizer.safetensors");
  auto& params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter<float>& p = params[i];
    p.value = weights.take_f32(p.name, p.shape);
    optimizer.first_moments()[i] = moments.take_f32("m." + p.name, p.shape);
    optimizer.second_moments()[i] = moments.take_f32("v." + p.name, p.shape);
  }
  return s;
}

}  // namespace lowbit::train
