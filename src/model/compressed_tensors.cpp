// compressed-tensors' decompressors (compressed_tensors/compressors/ in its source), in float32.
// Which layout a module has is read off its tensors: weight_packed U8 (FP4: NVFP4 with a
// weight_global_scale, MXFP4 without), weight_packed I32 (integers packed into int32 words),
// weight F8_E4M3 (FP8, MXFP8 with U8 scales) or weight I8 (int-quantized); the config group's
// QuantizationArgs give the bit width, strategy, group or block and symmetry.
#include "model/compressed_tensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <regex>

#include "lowbit/format/reference.h"
#include "lowbit/util/error.h"
#include "util/json_file.h"

namespace lowbit::model {
namespace {

using nlohmann::json;

struct WeightArgs {
  int bits = 8;
  bool is_float = false;  // "type": "float" (FP8 / FP4 codes) or "int"
  bool symmetric = true;
  std::string strategy;  // tensor, channel, group, tensor_group, block
  int64_t group = 0;
  int64_t block_rows = 0, block_cols = 0;
};

WeightArgs weight_args(const json& w, const std::string& where) {
  if (!w.is_object()) throw Error(where + ": a config group has no \"weights\" arguments");
  WeightArgs a;
  a.bits = int(files::json_int_or(w, "num_bits", 8, where + ": weights.num_bits"));
  a.symmetric = w.value("symmetric", true);
  const std::string type = w.value("type", "int");
  if (type != "int" && type != "float")
    throw Error(where + ": weights.type '" + type + "' (expected int or float)");
  a.is_float = type == "float";
  // Weights quantized on the fly would leave the stored tensor as it is: not a checkpoint layout.
  if (w.contains("dynamic") && w["dynamic"] != false)
    throw Error(where + ": dynamic weight quantization is not a stored layout lowbit reads");
  a.strategy = w.contains("strategy") && w["strategy"].is_string()
                   ? w["strategy"].get<std::string>()
                   : "tensor";
  if (w.contains("group_size") && !w["group_size"].is_null())
    a.group = files::json_int(w["group_size"], where + ": weights.group_size");
  if (a.strategy == "block") {
    const json& b = w.at("block_structure");
    a.block_rows = files::json_int(b.at(0), where + ": weights.block_structure");
    a.block_cols = files::json_int(b.at(1), where + ": weights.block_structure");
  }
  if (a.bits < 1 || a.bits > 8) throw Error(where + ": weights.num_bits " + std::to_string(a.bits));
  return a;
}

// ct's match_name: "re:<regex>" matched from the start of the module name, else the exact name;
// a class name ("Linear") matches every module here (only Linears carry compressed weights).
bool matches(const std::string& module, const json& patterns) {
  if (!patterns.is_array()) return false;
  for (const json& p : patterns) {
    if (!p.is_string()) continue;
    const std::string t = p.get<std::string>();
    if (t == "Linear" || t == module) return true;
    if (t.rfind("re:", 0) == 0 && std::regex_search(module, std::regex("^(?:" + t.substr(3) + ")")))
      return true;
  }
  return false;
}

float e2m1_value(uint8_t nibble) {
  static const float kMagnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float m = kMagnitude[nibble & 7];
  return nibble & 8 ? -m : m;
}

// A scale tensor as float32 values: E8M0 bytes (U8), E4M3 (F8_E4M3) or a float dtype.
std::vector<float> scale_values(const TensorStore& store, const TensorView& t) {
  std::vector<float> v(size_t(t.numel()));
  if (t.dtype == "U8") {
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = t.data[i] == 255 ? NAN : std::ldexp(1.0f, int(t.data[i]) - 127);
  } else if (t.dtype == "F8_E4M3") {
    for (size_t i = 0; i < v.size(); ++i) v[i] = ref::decode(formats::e4m3fn, t.data[i]);
  } else {
    v = store.to_f32(t);
  }
  return v;
}

// Integers packed by ct's pack_to_int32: element i of a line at bit i * bits (spanning two
// words where it must), stored offset by 2^(bits-1). `lines` x `len` values; the words of line l
// are words[l * stride_line + w * stride_word].
std::vector<int> unpack_int32(const TensorView& t, size_t lines, size_t len, int bits,
                              bool along_rows, const std::string& where) {
  const size_t words = (len * size_t(bits) + 31) / 32;
  const std::vector<int64_t> want = along_rows
                                        ? std::vector<int64_t>{int64_t(words), int64_t(lines)}
                                        : std::vector<int64_t>{int64_t(lines), int64_t(words)};
  if (t.dtype != "I32" || t.shape != want)
    throw Error(where + ": " + t.name + " is " + t.dtype + " " + t.shape_string() +
                ", expected I32 of shape [" + std::to_string(want[0]) + ", " +
                std::to_string(want[1]) + "]");
  std::vector<uint32_t> w(size_t(t.numel()));
  std::memcpy(w.data(), t.data, w.size() * 4);
  const auto word = [&](size_t l, size_t k) {
    return along_rows ? w[k * lines + l] : w[l * words + k];
  };
  std::vector<int> out(lines * len);
  const uint32_t mask = (1u << bits) - 1, offset = 1u << (bits - 1);
  for (size_t l = 0; l < lines; ++l)
    for (size_t i = 0; i < len; ++i) {
      const size_t bit = i * size_t(bits), k = bit / 32, b = bit % 32;
      uint64_t u = word(l, k) >> b;
      if (b + size_t(bits) > 32) u |= uint64_t(word(l, k + 1)) << (32 - b);
      out[l * len + i] = int(uint32_t(u) & mask) - int(offset);
    }
  return out;
}

// The index into the scale tensor of element (r, c) of a [rows, cols] weight.
struct ScaleIndex {
  WeightArgs a;
  size_t rows, cols, per_row = 1, block_cols = 1;
  size_t operator()(size_t r, size_t c) const {
    if (a.strategy == "tensor") return 0;
    if (a.strategy == "channel") return r;
    if (a.strategy == "block")
      return (r / size_t(a.block_rows)) * block_cols + c / size_t(a.block_cols);
    return r * per_row + c / size_t(a.group);  // group, tensor_group
  }
};

ScaleIndex scale_index(const WeightArgs& a, size_t rows, size_t cols, const TensorView& scale,
                       const std::string& where) {
  ScaleIndex ix{a, rows, cols};
  std::vector<int64_t> want;
  if (a.strategy == "tensor") {
    if (scale.numel() != 1) want = {1};
  } else if (a.strategy == "channel") {
    want = {int64_t(rows), 1};
  } else if (a.strategy == "group" || a.strategy == "tensor_group") {
    if (a.group <= 0 || cols % size_t(a.group) != 0)
      throw Error(where + ": group_size " + std::to_string(a.group) + " does not divide the " +
                  std::to_string(cols) + " columns of " + scale.name);
    ix.per_row = cols / size_t(a.group);
    want = {int64_t(rows), int64_t(ix.per_row)};
  } else if (a.strategy == "block") {
    ix.block_cols = (cols + size_t(a.block_cols) - 1) / size_t(a.block_cols);
    want = {int64_t((rows + size_t(a.block_rows) - 1) / size_t(a.block_rows)),
            int64_t(ix.block_cols)};
  } else {
    throw Error(where + ": weight strategy '" + a.strategy + "' is not read by lowbit");
  }
  if (!want.empty() && scale.shape != want &&
      !(want.size() == 2 && want[1] == 1 && scale.shape == std::vector<int64_t>{want[0]}))
    throw Error(where + ": " + scale.name + " has shape " + scale.shape_string() +
                " for a weight of [" + std::to_string(rows) + ", " + std::to_string(cols) +
                "] with strategy " + a.strategy);
  return ix;
}

}  // namespace

void decompress_compressed_tensors(TensorStore& store, const json& qc, const std::string& where) {
  if (!qc.is_object() || qc.value("quant_method", "") != "compressed-tensors")
    throw Error(where + ": quantization_config is not compressed-tensors");
  const std::string status = qc.value("quantization_status", "compressed");
  if (status != "compressed" && status != "frozen")
    throw Error(where + ": quantization_status '" + status + "' is not read by lowbit");
  // Every key is read or refused: a part of the config lowbit skipped would be a wrong model.
  for (const auto& [key, value] : qc.items()) {
    if (key == "quant_method" || key == "format" || key == "quantization_status" ||
        key == "config_groups" || key == "ignore" || key == "global_compression_ratio" ||
        key == "version")
      continue;  // read here, or provenance
    const bool empty = value.is_null() || (value.is_object() && value.empty());
    if ((key == "kv_cache_scheme" || key == "sparsity_config" || key == "transform_config" ||
         key == "moe_sparsity_config") &&
        empty)
      continue;
    throw Error(where + ": quantization_config." + key +
                (key == "kv_cache_scheme"
                     ? " quantizes the KV cache with stored scales, which lowbit does not read "
                       "(evaluate the weights with --kv for a KV-cache scheme)"
                 : key == "transform_config" ? " rotates weights and activations at run time, "
                                               "which lowbit does not read"
                 : key == "sparsity_config" || key == "moe_sparsity_config"
                     ? " holds sparse compressed weights, which lowbit does not read"
                     : " is not a key lowbit knows; it would be ignored, so the checkpoint is "
                       "refused"));
  }
  const json groups = qc.value("config_groups", json::object());
  static const char* const kFormats[] = {
      "pack-quantized",  "int-quantized",        "naive-quantized",     "float-quantized",
      "mxfp8-quantized", "mxfp4-pack-quantized", "nvfp4-pack-quantized"};
  for (const auto& [name, group] : groups.items())
    if (group.contains("format") && !group["format"].is_null() &&
        std::find(std::begin(kFormats), std::end(kFormats), group["format"].get<std::string>()) ==
            std::end(kFormats))
      throw Error(where + ": config group " + name + " has format " + group["format"].dump() +
                  ", which lowbit does not read");
  const json ignore = qc.value("ignore", json::array());
  std::vector<std::string> modules;
  for (const TensorView& t : store.tensors()) {
    const size_t dot = t.name.rfind('.');
    if (dot != std::string::npos && t.name.substr(dot + 1) == "weight_scale")
      modules.push_back(t.name.substr(0, dot));
  }
  for (const std::string& module : modules) {
    const std::string here = where + ": " + module;
    const json* args = nullptr;
    for (const auto& [name, group] : groups.items())
      if (matches(module, group.value("targets", json::array())) && !matches(module, ignore)) {
        args = &group.at("weights");
        break;
      }
    if (!args) throw Error(here + " has a weight_scale but no config group quantizes it");
    const WeightArgs a = weight_args(*args, here);
    const auto part = [&](const char* p) { return store.find(module + "." + p); };
    const TensorView& scale = *part("weight_scale");
    const TensorView* packed = part("weight_packed");
    const TensorView* plain = part("weight");
    const TensorView* global = part("weight_global_scale");
    const TensorView* zero = part("weight_zero_point");
    if (part("weight_g_idx"))
      throw Error(here +
                  ": its columns are grouped by weight_g_idx (GPTQ act-order with group "
                  "indices), which lowbit does not read yet");
    size_t rows = 0, cols = 0;
    if (packed && packed->dtype == "U8") {
      if (packed->shape.size() != 2)
        throw Error(here + ": weight_packed has shape " + packed->shape_string() +
                    " (a 2-D [out, in / 2] array of FP4 pairs is expected)");
      rows = size_t(packed->shape.at(0));
      cols = size_t(packed->shape.at(1)) * 2;
    } else if (packed) {
      const TensorView* shape = part("weight_shape");
      if (!shape || shape->numel() != 2 || (shape->dtype != "I64" && shape->dtype != "I32"))
        throw Error(here + ": weight_packed without a weight_shape of two integers");
      int64_t dims[2];
      for (int k = 0; k < 2; ++k)
        dims[k] = shape->dtype == "I64" ? reinterpret_cast<const int64_t*>(shape->data)[k]
                                        : reinterpret_cast<const int32_t*>(shape->data)[k];
      if (dims[0] <= 0 || dims[1] <= 0)
        throw Error(here + ": weight_shape [" + std::to_string(dims[0]) + ", " +
                    std::to_string(dims[1]) + "] is not a matrix shape");
      rows = size_t(dims[0]);
      cols = size_t(dims[1]);
      store.mark_used(shape->name);
    } else if (plain && plain->shape.size() == 2) {
      rows = size_t(plain->shape[0]);
      cols = size_t(plain->shape[1]);
    } else {
      throw Error(here + ": neither weight_packed nor a 2-D weight beside its weight_scale");
    }
    const ScaleIndex ix = scale_index(a, rows, cols, scale, here);
    std::vector<float> s = scale_values(store, scale);
    if (global) {  // NVFP4: the block scales divided by the tensor's global scale
      if (global->numel() != 1)
        throw Error(here + ": weight_global_scale has shape " + global->shape_string() +
                    " (one value expected)");
      const float g = scale_values(store, *global).at(0);
      for (float& v : s) v = v / g;
      store.mark_used(global->name);
    }
    // The tensors' layout must be the one the arguments describe (FP4 / FP8 codes are "float").
    const bool float_codes = packed ? packed->dtype == "U8" : plain->dtype == "F8_E4M3";
    if (float_codes != a.is_float || (plain && !packed && float_codes && a.bits != 8))
      throw Error(here + ": its tensors (" + (packed ? packed->dtype : plain->dtype) +
                  ") are not the layout of its config group's weights (type " +
                  (a.is_float ? "float" : "int") + ", " + std::to_string(a.bits) + " bits)");
    auto values = std::make_shared<std::vector<float>>(rows * cols);
    float* out = values->data();
    if (packed && packed->dtype == "U8") {  // FP4 (MXFP4 / NVFP4): two E2M1 codes per byte
      if (a.bits != 4)
        throw Error(here + ": a U8 weight_packed with num_bits " + std::to_string(a.bits));
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) {
          const uint8_t byte = packed->data[(r * cols + c) / 2];
          out[r * cols + c] = e2m1_value(c % 2 ? byte >> 4 : byte & 15) * s[ix(r, c)];
        }
    } else {
      std::vector<int> level;  // integers: the signed level of each element
      if (packed) {
        level = unpack_int32(*packed, rows, cols, a.bits, false, here);
      } else if (plain->dtype == "I8") {
        level.assign(reinterpret_cast<const int8_t*>(plain->data),
                     reinterpret_cast<const int8_t*>(plain->data) + rows * cols);
      } else if (plain->dtype != "F8_E4M3") {
        throw Error(here + ": weight of dtype " + plain->dtype + " beside a weight_scale");
      }
      std::vector<int> zp;
      if (zero && !a.symmetric) {
        const size_t per_row = a.strategy == "channel" ? 1 : ix.per_row;
        if (zero->dtype == "I32") {
          const std::vector<int> z = unpack_int32(*zero, per_row, rows, a.bits, true, here);
          zp.resize(rows * per_row);  // z is [per_row][rows]: back to [rows][per_row]
          for (size_t r = 0; r < rows; ++r)
            for (size_t g = 0; g < per_row; ++g) zp[r * per_row + g] = z[g * rows + r];
        } else if (zero->dtype == "I8") {
          zp.assign(reinterpret_cast<const int8_t*>(zero->data),
                    reinterpret_cast<const int8_t*>(zero->data) + zero->numel());
        } else {
          zp.resize(size_t(zero->numel()));
          const std::vector<float> z = store.to_f32(*zero);
          for (size_t i = 0; i < z.size(); ++i) zp[i] = int(z[i]);
        }
        if (zp.size() != s.size())
          throw Error(here + ": weight_zero_point does not have one value per scale");
      } else if (!a.symmetric) {
        throw Error(here + ": asymmetric weights without a weight_zero_point");
      }
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) {
          const size_t k = ix(r, c);
          const float q = level.empty() ? ref::decode(formats::e4m3fn, plain->data[r * cols + c])
                                        : float(level[r * cols + c]);
          out[r * cols + c] = (zp.empty() ? q : q - float(zp[k])) * s[k];
        }
    }
    for (const TensorView* used : {&scale, packed, plain, zero})
      if (used) store.mark_used(used->name);
    for (const char* extra : {"input_global_scale", "input_scale", "input_zero_point"})
      if (const TensorView* t = part(extra)) store.mark_used(t->name);
    TensorView view;
    view.name = module + ".weight";
    view.dtype = "F32";
    view.type = GgmlType::F32;
    view.shape = {int64_t(rows), int64_t(cols)};
    view.data = reinterpret_cast<const uint8_t*>(values->data());
    view.nbytes = values->size() * 4;
    view.file = scale.file;
    store.keep_alive(values);
    store.add_or_replace(std::move(view));
  }
}

}  // namespace lowbit::model
