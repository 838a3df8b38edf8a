// Mapping quantized weights onto GGML block types. A ggml_* scheme's codes are GGML blocks already.
// A lowbit scheme maps where its grid is a GGML type's grid, element for element:
//   int8 / int4 / int5, symmetric, groups of 32 along the rows, scales that are fp16 values
//                                                       -> Q8_0 / Q4_0 / Q5_0
//   e2m1 in groups of 32 with power-of-two scales (mxfp4)  -> MXFP4
//   e2m1 in groups of 16 with E4M3 scales (nvfp4), rows of 64k -> NVFP4 (+ the tensor scale)
// Anything else has no exact GGML type: the error names the ggml_* schemes nearest in size, which
// quantize with llama.cpp's own rules.
#include "export/ggml_encoding.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/format/reference.h"
#include "lowbit/quant/packing.h"
#include "lowbit/util/error.h"

namespace lowbit::exports {
namespace {

// The ggml_* schemes nearest `bits` per element, for error messages.
std::string nearest_ggml_schemes(double bits, size_t cols) {
  std::vector<std::pair<double, std::string>> all;
  for (const NamedScheme& ns : named_schemes()) {
    const Scheme s = parse_scheme(ns.name);
    if (!s.ggml) continue;
    const double b = scheme_bits_per_element(s, {1, cols});
    all.emplace_back(std::fabs(b - bits), ns.name + " (" + std::to_string(b).substr(0, 4) + " bits)");
  }
  std::sort(all.begin(), all.end());
  std::string text;
  for (size_t i = 0; i < std::min<size_t>(3, all.size()); ++i)
    text += (i ? ", " : "") + all[i].second;
  return text;
}

// The GGML type a lowbit scheme's grid is, on rows of `cols`; nullopt when there is none.
std::optional<GgmlType> exact_ggml_type(const Scheme& s, size_t cols) {
  const bool rows_grouped = s.granularity == Granularity::Group && (s.axis == -1 || s.axis == 1);
  if (!rows_grouped || s.asymmetric || s.rule == ScaleRule::Fixed) return std::nullopt;
  if (s.group == 32 && cols % 32 == 0 && !s.global_scale) {
    if (s.element == formats::int8) return GgmlType::Q8_0;
    if (s.element == formats::int4) return GgmlType::Q4_0;
    if (s.element == Format::integer(5, true)) return GgmlType::Q5_0;
    if (s.element == formats::e2m1fn) return GgmlType::MXFP4;
  }
  if (s.group == 16 && cols % 64 == 0 && s.element == formats::e2m1fn && !s.scale_is_f32 &&
      s.scale_format == formats::e4m3fn)
    return GgmlType::NVFP4;
  return std::nullopt;
}

// A stored group scale as the float it stands for (the scale format's value, or float32 bits).
float stored_scale_value(const Scheme& s, uint32_t code) {
  if (s.scale_is_f32) {
    float f;
    std::memcpy(&f, &code, 4);
    return f;
  }
  return ref::decode(s.scale_format, code);
}

// The GGML type's code for a group scale value, or an error naming the tensor when the type cannot
// hold that value exactly.
uint16_t ggml_scale_code(GgmlType t, float v, const std::string& name) {
  const auto fail = [&](const char* what) -> uint16_t {
    throw Error(name + ": a group scale " + std::to_string(v) + " is not " + what +
                "; the GGML type cannot store it exactly");
  };
  if (!std::isfinite(v) || v < 0) return fail("a finite, non-negative value");
  switch (t) {
    case GgmlType::MXFP4: {  // E8M0: 2^(e - 127)
      if (v == 0) return fail("a power of two");
      int e;
      const float m = std::frexp(v, &e);
      if (m != 0.5f || e - 1 + 127 < 0 || e - 1 + 127 > 254) return fail("a power of two in E8M0");
      return uint16_t(e - 1 + 127);
    }
    case GgmlType::NVFP4:
      try {
        return uint16_t(ref::encode_exact(formats::e4m3fn, v));
      } catch (const Error&) {
        return fail("an E4M3 value");
      }
    default: {  // fp16 scale
      const uint16_t h = float_to_half(v);
      if (half_to_float(h) != v) return fail("an fp16 value");
      return h;
    }
  }
}

// The weight quantized: the given codes, or the values quantized again, which must reproduce them.
QTensor requantized(const std::string& name, const std::vector<float>& values, size_t rows,
                    size_t cols, const Scheme& s, const QTensor* codes, float global) {
  if (codes) return *codes;
  QTensor q = quantize(s, values.data(), {rows, cols}, global);
  std::vector<float> back(values.size());
  dequantize(q, back.data());
  if (std::memcmp(back.data(), values.data(), values.size() * sizeof(float)) != 0)
    throw Error(name + ": its values are not where quantizing them with " + scheme_name(s) +
                " puts them (a method such as GPTQ chose scales lowbit did not keep); export "
                "this scheme with round-to-nearest, or a ggml_* / mxfp4 scheme");
  return q;
}

}  // namespace

EncodedWeight encode_weight(const std::string& name, const std::vector<float>& values, size_t rows,
                            size_t cols, const std::optional<Scheme>& scheme, const QTensor* codes,
                            float global, GgmlType kept) {
  EncodedWeight e;
  if (!scheme) {  // kept: float32 as lowbit computes, or halved in size
    e.type = kept;
    e.bytes.resize(ggml_bytes(kept, values.size()));
    quantize_ggml(kept, values.data(), values.size(), e.bytes.data());
    return e;
  }
  const Scheme& s = *scheme;
  if (s.ggml) {
    const QTensor q = requantized(name, values, rows, cols, s, codes, global);
    e.type = ggml_storage_type(s, cols);
    e.bytes = q.codes;
    return e;
  }
  const std::optional<GgmlType> t = exact_ggml_type(s, cols);
  if (!t)
    throw Error(name + ": " + scheme_name(s) +
                " has no GGML type that stores its values exactly (GGML has blocks of 32 with "
                "fp16 scales, K-quants, MXFP4 and NVFP4); the nearest ggml_* schemes, which "
                "quantize with llama.cpp's own rules: " +
                nearest_ggml_schemes(scheme_bits_per_element(s, {rows, cols}), cols));
  const QTensor q = requantized(name, values, rows, cols, s, codes, global);
  const size_t n = rows * cols;
  std::vector<uint8_t> element_codes(n);
  unpack_codes(q.codes.data(), n, s.element.bits(), element_codes.data());
  std::vector<int8_t> levels(n);
  for (size_t i = 0; i < n; ++i)  // e2m1 codes are GGML's (sign in bit 3); integers by value
    levels[i] = s.element == formats::e2m1fn ? int8_t(element_codes[i])
                                              : int8_t(ref::decode(s.element, element_codes[i]));
  std::vector<uint16_t> scale_codes(q.scales.size());
  for (size_t g = 0; g < q.scales.size(); ++g)
    scale_codes[g] = ggml_scale_code(*t, stored_scale_value(s, q.scales[g]), name);
  e.type = *t;
  e.bytes.resize(ggml_bytes(*t, n));
  pack_ggml_blocks(*t, levels.data(), scale_codes.data(), n, e.bytes.data());
  e.tensor_scale = s.global_scale ? q.global_scale : 1.0f;
  return e;
}

}  // namespace lowbit::exports
