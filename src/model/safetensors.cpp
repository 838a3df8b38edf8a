// safetensors reader (single file or sharded) and float32 writer.
#include "lowbit/model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "lowbit/io/atomic_file.h"
#include "lowbit/io/byte_reader.h"
#include "lowbit/io/mapped_file.h"
#include "lowbit/util/error.h"
#include "util/json_file.h"

namespace lowbit::model {
namespace {

using files::ends_with;
using files::exists;
using files::is_dir;
using files::parse_json;
using nlohmann::json;

constexpr uint64_t kMaxHeader = uint64_t(100) << 20;  // the format's own limit is 100 MB

struct Dtype {
  const char* name;
  size_t bytes;
  std::optional<GgmlType> type;
};
const Dtype kDtypes[] = {
    {"F32", 4, GgmlType::F32}, {"F16", 2, GgmlType::F16},    {"BF16", 2, GgmlType::BF16},
    {"F64", 8, std::nullopt},  {"I64", 8, std::nullopt},     {"I32", 4, std::nullopt},
    {"I16", 2, std::nullopt},  {"I8", 1, std::nullopt},      {"U8", 1, std::nullopt},
    {"U16", 2, std::nullopt},  {"U32", 4, std::nullopt},     {"U64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

// Adds the tensors of one .safetensors file; `wanted` (when not null) restricts to those names.
void add_file(TensorStore& store, const std::string& path, const std::set<std::string>* wanted) {
  auto file = std::make_shared<MappedFile>(path);
  const std::string where = path + ": not a usable safetensors file";
  io::ByteReader r(file->data(), file->size(), where);
  const auto header_len = r.read<uint64_t>("the header length");
  if (header_len > kMaxHeader || header_len > r.remaining())
    r.fail("header length " + std::to_string(header_len) + " is larger than the file (or 100 MB)");
  const json header = parse_json(r.read_string(header_len, "the JSON header"), where);
  if (!header.is_object()) r.fail("the header is not a JSON object");
  const uint8_t* data = file->data() + 8 + header_len;
  const uint64_t data_size = file->size() - 8 - header_len;
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges;  // [begin, end) of every tensor

  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string t = "tensor '" + name + "'";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets"))
      r.fail(t + " lacks dtype, shape or data_offsets");
    const json& dt = info["dtype"];
    const json& shape = info["shape"];
    const json& offsets = info["data_offsets"];
    if (!dt.is_string() || !shape.is_array() || !offsets.is_array() || offsets.size() != 2)
      r.fail(t + " has a malformed dtype, shape or data_offsets");
    const Dtype* dtype = nullptr;
    for (const Dtype& d : kDtypes)
      if (dt.get<std::string>() == d.name) dtype = &d;
    if (!dtype) r.fail(t + " has unknown dtype " + dt.get<std::string>());
    TensorView view;
    view.name = name;
    view.dtype = dtype->name;
    view.type = dtype->type;
    view.file = path;
    uint64_t numel = 1;
    for (const json& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t(1) << 40))
        r.fail(t + " has an invalid or absurd dimension " + d.dump());
      const uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > (uint64_t(1) << 48) / v) r.fail(t + " has an absurd element count");
      numel *= v;
      view.shape.push_back(int64_t(v));
    }
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      r.fail(t + " has non-integer data_offsets");
    const auto begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > data_size)
      r.fail(t + " has data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
             "] outside the data section of " + std::to_string(data_size) +
             " bytes (truncated file or lying offsets)");
    if (end - begin != numel * dtype->bytes)
      r.fail(t + " occupies " + std::to_string(end - begin) + " bytes but its shape " +
             view.shape_string() + " and dtype " + dtype->name + " need " +
             std::to_string(numel * dtype->bytes));
    if (end > begin) ranges.emplace_back(begin, end, name);
    view.data = data + begin;
    view.nbytes = size_t(end - begin);
    if (wanted && !wanted->count(name)) continue;
    try {
      store.add(std::move(view));
    } catch (const Error& e) {
      r.fail(e.what());
    }
  }
  // Two tensors over the same bytes would alias: writing one (or trusting both) gives wrong
  // numbers.
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
      r.fail("tensors '" + std::get<2>(ranges[i - 1]) + "' and '" + std::get<2>(ranges[i]) +
             "' overlap (bytes [" + std::to_string(std::get<0>(ranges[i - 1])) + ", " +
             std::to_string(std::get<1>(ranges[i - 1])) + ") and [" +
             std::to_string(std::get<0>(ranges[i])) + ", " +
             std::to_string(std::get<1>(ranges[i])) + "))");
  const MappedFile* raw = file.get();
  store.set_page_releaser([raw] { raw->release_pages(); });
  store.keep_alive(std::move(file));
}

TensorStore load_index(const std::string& index_path, std::vector<std::string>* files_read) {
  const json index = files::read_json(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(index_path + ": not a safetensors index (no \"weight_map\" object)");
  const std::string dir = index_path.substr(0, index_path.find_last_of('/') + 1);
  std::map<std::string, std::set<std::string>> by_file;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos)
      throw Error(index_path + ": weight_map entry for '" + name +
                  "' must be a file name in the same folder");
    by_file[file.get<std::string>()].insert(name);
  }
  TensorStore store;
  if (files_read) files_read->push_back(index_path);
  for (const auto& [file, names] : by_file) {
    add_file(store, dir + file, &names);
    if (files_read) files_read->push_back(dir + file);
  }
  for (const auto& [file, names] : by_file)
    for (const std::string& name : names)
      if (!store.find(name))
        throw Error(index_path + ": lists tensor '" + name + "' in " + file +
                    ", which does not contain it");
  return store;
}

}  // namespace

TensorStore load_safetensors(const std::string& path, std::vector<std::string>* files_read) {
  if (is_dir(path)) {
    const std::string dir = ends_with(path, "/") ? path : path + "/";
    if (exists(dir + "model.safetensors.index.json"))
      return load_index(dir + "model.safetensors.index.json", files_read);
    if (exists(dir + "model.safetensors"))
      return load_safetensors(dir + "model.safetensors", files_read);
    throw Error(path + ": folder has neither model.safetensors nor model.safetensors.index.json");
  }
  if (ends_with(path, ".json")) return load_index(path, files_read);
  TensorStore store;
  add_file(store, path, nullptr);
  if (files_read) files_read->push_back(path);
  return store;
}

void write_raw_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  static const std::map<std::string, uint64_t> kElementBytes = {
      {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"U8", 1},
      {"I8", 1},  {"I32", 4}, {"I64", 8},  {"F64", 8}};
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const RawTensor& t : tensors) {
    const auto size = kElementBytes.find(t.dtype);
    if (size == kElementBytes.end())
      throw Error("safetensors tensor '" + t.name + "': dtype " + t.dtype +
                  " is not one lowbit writes");
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= uint64_t(d);
    if (numel * size->second != t.bytes.size())
      throw Error("safetensors tensor '" + t.name + "': shape does not match its bytes");
    if (header.contains(t.name)) throw Error("safetensors tensor '" + t.name + "' given twice");
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the writers do
  io::write_file_atomically(path, [&](std::ostream& out) {
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), std::streamsize(n));
    for (const RawTensor& t : tensors)
      out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
  });
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<RawTensor> raw;
  raw.reserve(tensors.size());
  for (const NamedTensor& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= uint64_t(d);
    if (numel != t.values.size())
      throw Error("safetensors tensor '" + t.name + "': shape does not match its values");
    RawTensor r{t.name, "F32", t.shape, std::vector<uint8_t>(t.values.size() * 4)};
    std::memcpy(r.bytes.data(), t.values.data(), r.bytes.size());
    raw.push_back(std::move(r));
  }
  write_raw_safetensors(path, raw, metadata);
}

}  // namespace lowbit::model
