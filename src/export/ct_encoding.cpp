// Mapping quantized weights onto compressed-tensors' compressors (compressed_tensors/compressors/
// in its source). A lowbit scheme maps where a compressor's decompression computes lowbit's values
// bit for bit:
//   e4m3fn per tensor / output channel / 2-D block, f32 scales -> naive- / float-quantized
//   e4m3fn or e2m1fn in groups of 32, E8M0 scales (MX)         -> mxfp8- / mxfp4-pack-quantized
//   e2m1fn in groups of 16, E4M3 scales, dividing tensor scale -> nvfp4-pack-quantized (nvfp4_ct)
//   int2..int8, symmetric or asymmetric, per tensor / channel  -> pack-quantized (dense int32
//     / group of G along the rows                                 words), or int-quantized beside
//                                                                 integer activations
// Integer scales are written as float32 (their exact values; vLLM casts them to its dtype on load,
// which is exact when the scheme's scale format is that dtype). docs/export.md has the table.
#include "export/ct_encoding.h"

#include <cmath>
#include <cstring>

#include "lowbit/format/reference.h"
#include "lowbit/quant/ggml_types.h"
#include "lowbit/quant/packing.h"
#include "lowbit/util/error.h"

namespace lowbit::exports {
namespace {

using nlohmann::json;

bool rows_grouped(const Scheme& s) {
  return s.granularity == Granularity::Group && (s.axis == -1 || s.axis == 1);
}
bool per_output_channel(const Scheme& s) {
  return s.granularity == Granularity::Channel && s.axis == 0;
}

// The compressed-tensors compressor a scheme maps to, or "" with `why` set.
std::string compressor_of(const Scheme& s, size_t cols, bool has_activations, std::string& why) {
  if (s.ggml) {
    why = "it is a GGML block type (export it to GGUF)";
    return "";
  }
  if (s.rule == ScaleRule::Fixed) {
    why = "a fixed scale is not a compressed-tensors layout";
    return "";
  }
  if (rows_grouped(s) && cols % size_t(s.group) != 0) {
    why = "rows of " + std::to_string(cols) + " are not whole groups of " +
          std::to_string(s.group) + ", which compressed-tensors requires (take a group size that " +
          "divides " + std::to_string(cols) + ")";
    return "";
  }
  const Format& e = s.element;
  if (e == formats::e4m3fn && !s.asymmetric && !s.global_scale) {
    if (s.scale_is_f32 && (s.granularity == Granularity::Tensor || per_output_channel(s) ||
                           s.granularity == Granularity::Block2D))
      return has_activations ? "float-quantized" : "naive-quantized";
    if (rows_grouped(s) && s.group == 32 && !s.scale_is_f32 && s.scale_format == formats::e8m0fnu)
      return "mxfp8-quantized";
  }
  if (e == formats::e2m1fn && rows_grouped(s) && !s.scale_is_f32) {
    if (s.group == 32 && s.scale_format == formats::e8m0fnu && !s.global_scale)
      return "mxfp4-pack-quantized";
    if (s.group == 16 && s.scale_format == formats::e4m3fn && s.global_scale) {
      if (s.global_divides) return "nvfp4-pack-quantized";
      why =
          "compressed-tensors divides the block scales by a stored tensor scale, where nvfp4 "
          "multiplies by its reciprocal (the last bit of some scales differs): use nvfp4_ct, the "
          "same format with compressed-tensors' tensor scale";
      return "";
    }
  }
  if (e.kind == FormatKind::Int && e.is_signed && e.int_bits >= 2 && e.int_bits <= 8 &&
      !s.global_scale) {
    // (rows are whole groups: checked above)
    if (rows_grouped(s) || per_output_channel(s) ||
        (s.granularity == Granularity::Tensor && !s.asymmetric))
      return has_activations ? "int-quantized" : "pack-quantized";
  }
  why =
      "compressed-tensors has no layout for it (it stores e4m3fn per tensor / channel / 128x128 "
      "block, MXFP8, MXFP4, NVFP4 (nvfp4_ct) and int2..int8 per tensor / channel / group)";
  return "";
}

// The element codes of a QTensor, unpacked: one per element, in tensor order.
std::vector<uint16_t> unpacked(const QTensor& q) {
  std::vector<uint16_t> codes(q.numel());
  const int bits = q.scheme.element.bits();
  if (bits == 16)
    std::memcpy(codes.data(), q.codes.data(), codes.size() * 2);
  else
    unpack_codes(q.codes.data(), codes.size(), bits, codes.data());
  return codes;
}

std::vector<uint8_t> as_bytes(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  return std::vector<uint8_t>(p, p + n);
}

// compressed-tensors' pack_to_int32: values (offset to unsigned by 2^(bits-1)) laid end to end,
// element i at bit i * bits of its row (spanning two words where it must), rows padded to whole
// words. `along_rows` packs each column instead (packed_dim=0: zero points).
std::vector<int32_t> pack_int32(const std::vector<int>& v, size_t rows, size_t cols, int bits,
                                bool along_rows, std::vector<int64_t>& shape) {
  const size_t lines = along_rows ? cols : rows, len = along_rows ? rows : cols;
  const size_t words = (len * size_t(bits) + 31) / 32;
  std::vector<uint32_t> packed(lines * words, 0);
  const int offset = 1 << (bits - 1);
  for (size_t l = 0; l < lines; ++l)
    for (size_t i = 0; i < len; ++i) {
      const int value = along_rows ? v[i * cols + l] : v[l * cols + i];
      const uint64_t u = uint64_t(uint32_t(value + offset) & ((1u << bits) - 1));
      const size_t bit = i * size_t(bits), w = bit / 32, b = bit % 32;
      packed[l * words + w] |= uint32_t(u << b);
      if (b + size_t(bits) > 32) packed[l * words + w + 1] |= uint32_t(u >> (32 - b));
    }
  std::vector<int32_t> out(packed.size());
  std::memcpy(out.data(), packed.data(), packed.size() * 4);
  if (along_rows) {  // [words, cols]: transpose the per-column lines
    std::vector<int32_t> t(out.size());
    for (size_t l = 0; l < lines; ++l)
      for (size_t w = 0; w < words; ++w) t[w * lines + l] = out[l * words + w];
    out.swap(t);
    shape = {int64_t(words), int64_t(lines)};
  } else {
    shape = {int64_t(lines), int64_t(words)};
  }
  return out;
}

template <class T>
model::RawTensor raw(const std::string& name, const std::string& dtype,
                     const std::vector<int64_t>& shape, const std::vector<T>& v) {
  return {name, dtype, shape, as_bytes(v.data(), v.size() * sizeof(T))};
}

// Rows of a [rows, width] array in `row_order` (unchanged when it is empty).
template <class T>
std::vector<T> reorder_rows(const std::vector<T>& v, size_t rows,
                            const std::vector<size_t>& order) {
  if (order.empty()) return v;
  const size_t width = v.size() / rows;
  std::vector<T> out(v.size());
  for (size_t r = 0; r < rows; ++r)
    std::copy_n(v.begin() + int64_t(order[r] * width), width, out.begin() + int64_t(r * width));
  return out;
}

json base_args(int bits, const char* type, bool symmetric) {
  return {{"num_bits", bits},       {"type", type},
          {"symmetric", symmetric}, {"group_size", nullptr},
          {"strategy", nullptr},    {"block_structure", nullptr},
          {"dynamic", false},       {"actorder", nullptr},
          {"observer", "minmax"},   {"observer_kwargs", json::object()}};
}

}  // namespace

model::RawTensor dense_tensor(const std::string& name, const std::vector<float>& values,
                              const std::vector<int64_t>& shape, const std::string& dtype) {
  if (dtype == "F32") return raw(name, "F32", shape, values);
  const GgmlType t = dtype == "BF16" ? GgmlType::BF16 : GgmlType::F16;
  if (dtype != "BF16" && dtype != "F16")
    throw Error("kept weights' dtype " + dtype + ": expected F32, BF16 or F16");
  std::vector<uint8_t> bytes(values.size() * 2);
  quantize_ggml(t, values.data(), values.size(), bytes.data());
  return {name, dtype, shape, std::move(bytes)};
}

CtWeight encode_ct_weight(const std::string& name, const std::vector<float>& values, size_t rows,
                          size_t cols, const std::optional<Scheme>& scheme, const QTensor* codes,
                          float global, const std::string& kept_dtype,
                          const std::vector<size_t>& row_order, bool has_activations) {
  CtWeight out;
  const std::vector<int64_t> shape = {int64_t(rows), int64_t(cols)};
  if (!scheme) {
    out.tensors.push_back(
        dense_tensor("weight", reorder_rows(values, rows, row_order), shape, kept_dtype));
    out.weight_args = nullptr;
    return out;
  }
  const Scheme& s = *scheme;
  std::string why;
  out.format = compressor_of(s, cols, has_activations, why);
  if (out.format.empty())
    throw Error(name + ": " + scheme_name(s) + " cannot be stored in compressed-tensors: " + why);
  // The codes: the method's, or the values quantized again (which must give them back).
  std::optional<QTensor> requantized;
  if (!codes) {
    requantized = requantize_exactly(s, values.data(), {rows, cols}, global);
    if (!requantized)
      throw Error(name + ": its values in " + scheme_name(s) +
                  " come from a method that kept no codes, and quantizing them again does not "
                  "give them back; compressed-tensors needs the codes");
    codes = &*requantized;
  }
  const QTensor& q = *codes;
  if (q.shape != std::vector<size_t>{rows, cols} || q.scheme != s)
    throw Error(name + ": internal: its codes are not in its scheme and shape");
  const std::vector<uint16_t> c = reorder_rows(unpacked(q), rows, row_order);
  const size_t groups = q.scales.size();
  // Per-group arrays in scale order ([rows, groups per row] for row groups and channels).
  const auto group_rows = [&](auto v) {
    return rows_grouped(s) || per_output_channel(s) ? reorder_rows(v, rows, row_order) : v;
  };
  for (size_t g = 0; g < groups; ++g)
    if (!std::isfinite(q.group_scale(g)))
      throw Error(name + ": group " + std::to_string(g) +
                  " has a NaN scale (the weight holds a NaN or inf); it cannot be exported");

  if (out.format == "naive-quantized" || out.format == "float-quantized" ||
      out.format == "mxfp8-quantized") {
    std::vector<uint8_t> bytes(c.begin(), c.end());
    out.tensors.push_back(raw("weight", "F8_E4M3", shape, bytes));
    json args = base_args(8, "float", true);
    if (out.format == "mxfp8-quantized") {
      std::vector<uint8_t> e8m0(groups);
      for (size_t g = 0; g < groups; ++g) e8m0[g] = uint8_t(q.scales[g]);
      out.tensors.push_back(
          raw("weight_scale", "U8", {int64_t(rows), int64_t(cols / 32)}, group_rows(e8m0)));
      args["group_size"] = 32;
      args["strategy"] = "group";
      args["scale_dtype"] = "torch.uint8";
    } else {
      std::vector<float> scale(groups);
      for (size_t g = 0; g < groups; ++g) scale[g] = q.group_scale(g);
      if (s.granularity == Granularity::Tensor) {
        out.tensors.push_back(raw("weight_scale", "F32", {1}, scale));
        args["strategy"] = "tensor";
      } else if (per_output_channel(s)) {
        out.tensors.push_back(raw("weight_scale", "F32", {int64_t(rows), 1}, group_rows(scale)));
        args["strategy"] = "channel";
      } else {  // 2-D blocks: a row permutation must stay inside each block row
        if (!row_order.empty())
          for (size_t r = 0; r < rows; ++r)
            if (row_order[r] / size_t(s.block_rows) != r / size_t(s.block_rows))
              throw Error(name +
                          ": its rows are reordered for Hugging Face's RoPE layout across "
                          "blocks of " +
                          std::to_string(s.block_rows) + " rows; use blocks of whole heads");
        out.tensors.push_back(raw("weight_scale", "F32",
                                  {int64_t(q.scale_shape[0]), int64_t(q.scale_shape[1])}, scale));
        args["strategy"] = "block";
        args["block_structure"] = {s.block_rows, s.block_cols};
      }
    }
    out.weight_args = args;
    return out;
  }
  if (out.format == "mxfp4-pack-quantized" || out.format == "nvfp4-pack-quantized") {
    // Two E2M1 codes per byte, the even column in the low nibble: lowbit's own packing, per row.
    std::vector<uint8_t> packed(rows * cols / 2);
    for (size_t i = 0; i < packed.size(); ++i)
      packed[i] = uint8_t((c[2 * i] & 0xF) | ((c[2 * i + 1] & 0xF) << 4));
    out.tensors.push_back(raw("weight_packed", "U8", {int64_t(rows), int64_t(cols / 2)}, packed));
    const bool mx = out.format == "mxfp4-pack-quantized";
    std::vector<uint8_t> scale(groups);
    for (size_t g = 0; g < groups; ++g) scale[g] = uint8_t(q.scales[g]);
    out.tensors.push_back(raw("weight_scale", mx ? "U8" : "F8_E4M3",
                              {int64_t(rows), int64_t(cols / size_t(s.group))}, group_rows(scale)));
    json args = base_args(4, "float", true);
    args["group_size"] = s.group;
    if (mx) {
      args["strategy"] = "group";
      args["scale_dtype"] = "torch.uint8";
    } else {
      out.tensors.push_back(
          raw("weight_global_scale", "F32", {1}, std::vector<float>{q.global_scale}));
      args["strategy"] = "tensor_group";
      args["scale_dtype"] = "torch.float8_e4m3fn";
    }
    out.weight_args = args;
    return out;
  }
  // Integers: the signed level of each element (asymmetric: code - 2^(bits-1), and the zero point
  // shifted alike, so level - zero is lowbit's code - zero point).
  const int bits = s.element.int_bits, half = 1 << (bits - 1);
  std::vector<int> level(c.size());
  for (size_t i = 0; i < c.size(); ++i)
    level[i] = s.asymmetric ? int(c[i]) - half : int(ref::decode(s.element, c[i]));
  std::vector<float> scale(groups);
  for (size_t g = 0; g < groups; ++g) scale[g] = q.group_scale(g);
  const std::vector<int64_t> scale_shape =
      s.granularity == Granularity::Tensor ? std::vector<int64_t>{1}
      : per_output_channel(s)
          ? std::vector<int64_t>{int64_t(rows), 1}
          : std::vector<int64_t>{int64_t(rows), int64_t(cols / size_t(s.group))};
  json args = base_args(bits, "int", !s.asymmetric);
  args["strategy"] = s.granularity == Granularity::Tensor ? "tensor"
                     : per_output_channel(s)              ? "channel"
                                                          : "group";
  if (rows_grouped(s)) args["group_size"] = s.group;
  if (out.format == "pack-quantized") {
    std::vector<int64_t> packed_shape;
    out.tensors.push_back(
        raw("weight_packed", "I32", {}, pack_int32(level, rows, cols, bits, false, packed_shape)));
    out.tensors.back().shape = packed_shape;
    out.tensors.push_back(
        raw("weight_shape", "I64", {2}, std::vector<int64_t>{shape[0], shape[1]}));
  } else {
    std::vector<int8_t> narrow(level.begin(), level.end());
    out.tensors.push_back(raw("weight", "I8", shape, narrow));
  }
  out.tensors.push_back(raw("weight_scale", "F32", scale_shape, group_rows(scale)));
  if (s.asymmetric) {
    std::vector<int> zero(groups);
    for (size_t g = 0; g < groups; ++g) zero[g] = int(q.zero_points[g]) - half;
    zero = group_rows(zero);
    const size_t zero_cols = size_t(scale_shape.back());
    if (out.format == "pack-quantized") {
      std::vector<int64_t> packed_shape;
      out.tensors.push_back(raw("weight_zero_point", "I32", {},
                                pack_int32(zero, rows, zero_cols, bits, true, packed_shape)));
      out.tensors.back().shape = packed_shape;
    } else {
      std::vector<int8_t> narrow(zero.begin(), zero.end());
      out.tensors.push_back(raw("weight_zero_point", "I8", scale_shape, narrow));
    }
    args["zp_dtype"] = "torch.int8";
  }
  out.weight_args = args;
  return out;
}

json ct_activation_args(const std::string& name, const std::optional<Scheme>& scheme) {
  if (!scheme) return nullptr;
  const Scheme& s = *scheme;
  const bool nearest = s.round.mode == RoundMode::NearestEven && s.rule == ScaleRule::AbsMax;
  json args;
  if (nearest && !s.asymmetric && !s.global_scale) {
    if ((s.element == formats::e4m3fn || s.element == formats::int8) && s.scale_is_f32 &&
        (s.granularity == Granularity::Token || s.granularity == Granularity::Tensor)) {
      args = base_args(8, s.element == formats::int8 ? "int" : "float", true);
      args["strategy"] = s.granularity == Granularity::Token ? "token" : "tensor";
    } else if ((s.element == formats::e4m3fn || s.element == formats::e2m1fn) && rows_grouped(s) &&
               s.group == 32 && !s.scale_is_f32 && s.scale_format == formats::e8m0fnu) {
      args = base_args(s.element == formats::e2m1fn ? 4 : 8, "float", true);
      args["strategy"] = "group";
      args["group_size"] = 32;
      args["scale_dtype"] = "torch.uint8";
    }
  }
  if (args.is_null())
    throw Error(name + ": its activations in " + scheme_name(s) +
                " have no compressed-tensors dynamic quantizer (exported: e4m3fn or int8 per "
                "token / tensor, MXFP4 / MXFP8 in groups of 32, round to nearest; NVFP4 "
                "activations need a calibrated static tensor scale lowbit does not emulate)");
  args["dynamic"] = true;
  args["observer"] = nullptr;
  return args;
}

}  // namespace lowbit::exports
