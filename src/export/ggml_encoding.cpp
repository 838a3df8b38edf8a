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
    all.emplace_back(std::fabs(b - bits),
                     ns.name + " (" + std::to_string(b).substr(0, 4) + " bits)");
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
  // NVFP4's tensor scale multiplies in llama.cpp (a dividing one, nvfp4_ct, is not its grid).
  if (s.group == 16 && cols % 64 == 0 && s.element == formats::e2m1fn && !s.scale_is_f32 &&
      s.scale_format == formats::e4m3fn && !s.global_divides)
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

const RoundOptions kNearest{RoundMode::NearestEven, Overflow::Saturate, 0};

// What recovering a group's scale from its values needs to know of the GGML type's grid, built
// once per tensor: the element magnitudes, largest first (e2m1's 6, 4, 3 ... 0.5; an integer's
// 2^(bits-1) ... 1), and the range of the levels.
struct Grid {
  GgmlType type;
  bool e2m1;
  int lo, hi;
  std::vector<float> magnitudes;
};

Grid grid_of(GgmlType t, const Scheme& s) {
  Grid g{t, t == GgmlType::MXFP4 || t == GgmlType::NVFP4, 0, 15, {}};
  if (g.e2m1) {
    for (uint32_t c = 7; c >= 1; --c) g.magnitudes.push_back(ref::decode(formats::e2m1fn, c));
  } else {
    const int top = 1 << (s.element.int_bits - 1);
    g.lo = -top;
    g.hi = top - 1;
    for (int m = top; m >= 1; --m) g.magnitudes.push_back(float(m));
  }
  return g;
}

// One scale group of values that lie on the type's grid (a method such as GPTQ chose the group's
// scale and kept only the values): a scale that reproduces every value exactly, and the levels.
// The candidates put the largest magnitude on each grid magnitude in turn, largest first; any
// scale that reproduces the values serves, since only the values matter. False when none does.
bool fit_group(const Grid& g, const float* v, int n, float global, int8_t* levels,
               uint16_t& scale_code) {
  float vmax = 0;
  for (int i = 0; i < n; ++i) vmax = std::max(vmax, std::fabs(v[i]));
  if (vmax == 0) {  // every level 0; a zero scale where the type has one (MXFP4's smallest)
    std::fill(levels, levels + n, int8_t(0));
    scale_code = 0;
    return true;
  }
  for (const float m : g.magnitudes) {
    const float target = vmax / m;
    // The scale code nearest the target, and its neighbours (the division may have rounded).
    uint16_t codes[3];
    int count = 0;
    if (g.type == GgmlType::MXFP4) {
      int e;
      std::frexp(target, &e);
      for (int k = e - 2; k <= e; ++k)
        if (k - 1 + 127 >= 0 && k - 1 + 127 <= 254) codes[count++] = uint16_t(k - 1 + 127);
    } else if (g.type == GgmlType::NVFP4) {
      const uint32_t k = ref::round_to_code(formats::e4m3fn, target / global, kNearest);
      for (uint32_t c : {k, k + 1, k == 0 ? k : k - 1})
        if (c < 0x7F) codes[count++] = uint16_t(c);
    } else {
      const uint16_t h = float_to_half(target);
      codes[count++] = h;
      codes[count++] = uint16_t(h + 1);
      codes[count++] = uint16_t(h - 1);
    }
    for (int c = 0; c < count; ++c) {
      const uint16_t code = codes[c];
      const float scale = g.type == GgmlType::MXFP4   ? std::ldexp(1.0f, int(code) - 127)
                          : g.type == GgmlType::NVFP4 ? ref::decode(formats::e4m3fn, code) * global
                                                      : half_to_float(code);
      if (!(scale > 0) || !std::isfinite(scale)) continue;
      bool all = true;
      for (int i = 0; i < n && all; ++i) {
        int level;
        if (g.e2m1) {
          level = int(ref::round_to_code(formats::e2m1fn, v[i] / scale, kNearest));
          all = ref::decode(formats::e2m1fn, uint32_t(level)) * scale == v[i];
        } else {
          level = int(std::nearbyint(v[i] / scale));
          all = level >= g.lo && level <= g.hi && float(level) * scale == v[i];
        }
        levels[i] = int8_t(level);
      }
      if (all) {
        scale_code = code;
        return true;
      }
    }
  }
  return false;
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
  const std::optional<Scheme> ggml_grid =
      scheme->ggml ? ggml_lowbit_grid(*scheme, cols) : std::nullopt;
  if (scheme->ggml) {
    // Round to nearest (the codes given, or quantizing the values again gives them back): the
    // codes are the blocks. Q4_0's and Q5_0's scales may be negative there, which the grid
    // below (GPTQ's: positive scales) does not cover.
    std::optional<QTensor> blocks =
        codes ? std::optional<QTensor>(*codes)
              : requantize_exactly(*scheme, values.data(), {rows, cols}, global);
    if (blocks) {
      e.type = ggml_storage_type(*scheme, cols);
      e.bytes = std::move(blocks->codes);
      return e;
    }
    if (!ggml_grid)
      throw Error(name + ": its values are not where quantizing them with " + scheme_name(*scheme) +
                  " puts them (a method moved them); ggml_* schemes export from round to "
                  "nearest, after any rotation or smoothing");
  }
  // A ggml_* scheme's values from GPTQ lie on its type's grid (ggml_lowbit_grid): recovered as
  // that scheme's are.
  const Scheme& s = ggml_grid ? *ggml_grid : *scheme;
  const std::optional<GgmlType> t = exact_ggml_type(s, cols);
  if (!t)
    throw Error(name + ": " + scheme_name(s) +
                " has no GGML type that stores its values exactly (GGML has blocks of 32 with "
                "fp16 scales, K-quants, MXFP4 and NVFP4); the nearest ggml_* schemes, which "
                "quantize with llama.cpp's own rules: " +
                nearest_ggml_schemes(scheme_bits_per_element(s, {rows, cols}), cols));
  const size_t n = rows * cols;
  std::vector<int8_t> levels(n);
  std::vector<uint16_t> scale_codes;
  if (codes) {  // round to nearest kept its codes
    std::vector<uint8_t> element_codes(n);
    unpack_codes(codes->codes.data(), n, s.element.bits(), element_codes.data());
    for (size_t i = 0; i < n; ++i)  // e2m1 codes are GGML's (sign in bit 3); integers by value
      levels[i] = s.element == formats::e2m1fn ? int8_t(element_codes[i])
                                               : int8_t(ref::decode(s.element, element_codes[i]));
    scale_codes.resize(codes->scales.size());
    for (size_t g = 0; g < codes->scales.size(); ++g)
      scale_codes[g] = ggml_scale_code(*t, stored_scale_value(s, codes->scales[g]), name);
    global = codes->global_scale;
  } else {  // a method's values: each group's scale recovered from them
    const size_t group = size_t(s.group);
    const Grid grid = grid_of(*t, s);
    scale_codes.resize(n / group);
    for (size_t g = 0; g < n / group; ++g)
      if (!fit_group(grid, values.data() + g * group, int(group), global, levels.data() + g * group,
                     scale_codes[g]))
        throw Error(name + ": the values of scale group " + std::to_string(g) + " (row " +
                    std::to_string(g * group / cols) + ") do not lie on " + scheme_name(s) +
                    "'s grid with any one scale of it, so no " +
                    ggml_type_info(uint32_t(*t))->name + " block reproduces them");
  }
  e.type = *t;
  e.bytes.resize(ggml_bytes(*t, n));
  pack_ggml_blocks(*t, levels.data(), scale_codes.data(), n, e.bytes.data());
  e.tensor_scale = s.global_scale ? global : 1.0f;
  return e;
}

}  // namespace lowbit::exports
