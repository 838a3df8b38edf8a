// Scheme descriptors: presets, parsing, canonical printing and validation.
#include "lowbit/quant/scheme.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "lowbit/util/error.h"
#include "util/text.h"

namespace lowbit {
namespace {

constexpr const char* kSchemeSyntax =
    "<element>[:tensor|:channel|:token|:g<G>|:block<R>x<C>][:axis=<a>][:scale=<format>|f32]"
    "[:pow2[=floor|ceil|nearest]][:mse|:4over6|:sweep|:percentile=<p>|:fixed=<s>][:global[=div]][:"
    "asym]"
    "[:round=<mode>][:seed=<n>]";

using text::split;

[[noreturn]] void bad_scheme(std::string_view text, const std::string& why) {
  std::string presets;
  for (const NamedScheme& ns : named_schemes()) presets += (presets.empty() ? "" : ", ") + ns.name;
  throw Error("invalid scheme '" + std::string(text) + "': " + why + ".\n  Presets: " + presets +
              "\n  Syntax: " + kSchemeSyntax + "\n  Element formats: see `lowbit formats`");
}

using text::parse_long;

bool parse_float(const std::string& s, float& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtof(s.c_str(), &end);
  return *end == '\0' && std::isfinite(out);
}

std::string float_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}

const char* pow2_name(Pow2Rounding r) {
  return r == Pow2Rounding::Floor ? "floor" : r == Pow2Rounding::Ceil ? "ceil" : "nearest";
}

bool is_e8m0(const Scheme& s) {
  return !s.scale_is_f32 && s.scale_format == formats::e8m0fnu;
}

// The long spelling, whatever the preset.
std::string long_name(const Scheme& s) {
  std::string out = format_name(s.element);
  switch (s.granularity) {
    case Granularity::Tensor:
      out += ":tensor";
      break;
    case Granularity::Channel:
      out += ":channel";
      if (s.axis != 0) out += ":axis=" + std::to_string(s.axis);
      break;
    case Granularity::Token:
      out += ":token";
      break;
    case Granularity::Group:
      out += ":g" + std::to_string(s.group);
      if (s.axis != -1) out += ":axis=" + std::to_string(s.axis);
      break;
    case Granularity::Block2D:
      out += ":block" + std::to_string(s.block_rows) + "x" + std::to_string(s.block_cols);
      break;
  }
  if (!s.scale_is_f32) out += ":scale=" + format_name(s.scale_format);
  // E8M0 scales are powers of two by nature; say so only when the rounding differs from OCP's.
  if (s.pow2 && !(is_e8m0(s) && s.pow2_rounding == Pow2Rounding::Floor)) {
    out += ":pow2";
    if (s.pow2_rounding != Pow2Rounding::Floor)
      out += std::string("=") + pow2_name(s.pow2_rounding);
  }
  switch (s.rule) {
    case ScaleRule::AbsMax:
      break;
    case ScaleRule::Mse:
      out += ":mse";
      break;
    case ScaleRule::FourOverSix:
      out += ":4over6";
      break;
    case ScaleRule::Sweep:
      out += ":sweep";
      break;
    case ScaleRule::Percentile:
      out += ":percentile=" + float_text(s.percentile);
      break;
    case ScaleRule::Fixed:
      out += ":fixed=" + float_text(s.fixed_scale);
      break;
  }
  if (s.global_scale) out += s.global_divides ? ":global=div" : ":global";
  if (s.asymmetric) out += ":asym";
  if (s.round.mode != RoundMode::NearestEven)
    out += std::string(":round=") + round_mode_name(s.round.mode);
  if (s.round.seed != 0) out += ":seed=" + std::to_string(s.round.seed);
  return out;
}

Scheme parse_spelled_out(std::string_view text) {
  const std::vector<std::string> parts = split(text, ':');
  Scheme s;
  // The element may itself carry options (e5m2:bias=16:...) or be a codebook (lut:...): take the
  // longest prefix of parts that is a format.
  size_t used = 0;
  std::string element_text;
  for (size_t n = parts.size(); n >= 1; --n) {
    std::string candidate = parts[0];
    for (size_t i = 1; i < n; ++i) candidate += ":" + parts[i];
    try {
      s.element = parse_format(candidate);
      used = n;
      element_text = candidate;
      break;
    } catch (const Error&) {
    }
  }
  if (used == 0) {
    try {
      parse_format(parts[0]);
    } catch (const Error& e) {
      bad_scheme(text, std::string("the element format is not valid: ") + e.what());
    }
  }
  bool axis_given = false;
  for (size_t i = used; i < parts.size(); ++i) {
    const std::string& o = parts[i];
    const size_t eq = o.find('=');
    const std::string key = o.substr(0, eq);
    const std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
    long n = 0;
    if (o == "tensor") {
      s.granularity = Granularity::Tensor;
    } else if (o == "channel") {
      s.granularity = Granularity::Channel;
    } else if (o == "token") {
      s.granularity = Granularity::Token;
    } else if (o.size() > 1 && o[0] == 'g' && parse_long(o.substr(1), n)) {
      if (n < 1 || n > (1 << 20)) bad_scheme(text, "group size must be 1..1048576");
      s.granularity = Granularity::Group;
      s.group = int(n);
    } else if (o.rfind("block", 0) == 0) {
      const size_t x = o.find('x');
      long r = 0, c = 0;
      if (x == std::string::npos || !parse_long(o.substr(5, x - 5), r) ||
          !parse_long(o.substr(x + 1), c) || r < 1 || c < 1 || r > 65536 || c > 65536)
        bad_scheme(text, "2-D blocks are written block<rows>x<cols>, e.g. block128x128");
      s.granularity = Granularity::Block2D;
      s.block_rows = int(r);
      s.block_cols = int(c);
    } else if (key == "axis" && parse_long(val, n) && n > -64 && n < 64) {
      s.axis = int(n);
      axis_given = true;
    } else if (key == "scale") {
      if (val == "f32" || val == "fp32" || val == "float32") {
        s.scale_is_f32 = true;
      } else {
        try {
          s.scale_format = parse_format(val);
        } catch (const Error& e) {
          bad_scheme(text, std::string("the scale format is not valid: ") + e.what());
        }
        s.scale_is_f32 = false;
        if (s.scale_format == formats::e8m0fnu) s.pow2 = true;
      }
    } else if (key == "pow2") {
      s.pow2 = true;
      if (val == "floor" || val.empty())
        s.pow2_rounding = Pow2Rounding::Floor;
      else if (val == "ceil")
        s.pow2_rounding = Pow2Rounding::Ceil;
      else if (val == "nearest")
        s.pow2_rounding = Pow2Rounding::Nearest;
      else
        bad_scheme(text, "pow2 takes floor, ceil or nearest");
    } else if (o == "absmax") {
      s.rule = ScaleRule::AbsMax;
    } else if (o == "mse") {
      s.rule = ScaleRule::Mse;
    } else if (o == "4over6") {
      s.rule = ScaleRule::FourOverSix;
    } else if (o == "sweep") {
      s.rule = ScaleRule::Sweep;
    } else if (key == "percentile") {
      if (!parse_float(val, s.percentile) || s.percentile <= 0 || s.percentile > 100)
        bad_scheme(text, "percentile takes a number in (0, 100]");
      s.rule = ScaleRule::Percentile;
    } else if (key == "fixed") {
      if (!parse_float(val, s.fixed_scale) || !(s.fixed_scale > 0))
        bad_scheme(text, "fixed takes a positive scale");
      s.rule = ScaleRule::Fixed;
    } else if (o == "global") {
      s.global_scale = true;
    } else if (key == "global") {
      if (val != "div" && val != "mul") bad_scheme(text, "global takes div or mul");
      s.global_scale = true;
      s.global_divides = val == "div";
    } else if (o == "asym") {
      s.asymmetric = true;
    } else if (key == "round") {
      try {
        s.round.mode = parse_round_mode(val);
      } catch (const Error& e) {
        bad_scheme(text, e.what());
      }
    } else if (key == "seed" && parse_long(val, n) && n >= 0) {
      s.round.seed = uint64_t(n);
    } else {
      bad_scheme(text, "unknown option '" + o + "'");
    }
  }
  if (!axis_given) s.axis = s.granularity == Granularity::Group ? -1 : 0;
  return s;
}

}  // namespace

bool operator==(const Scheme& a, const Scheme& b) {
  return a.element == b.element && a.granularity == b.granularity && a.axis == b.axis &&
         a.group == b.group && a.block_rows == b.block_rows && a.block_cols == b.block_cols &&
         a.scale_is_f32 == b.scale_is_f32 && (a.scale_is_f32 || a.scale_format == b.scale_format) &&
         a.pow2 == b.pow2 && (!a.pow2 || a.pow2_rounding == b.pow2_rounding) && a.rule == b.rule &&
         (a.rule != ScaleRule::Percentile || a.percentile == b.percentile) &&
         (a.rule != ScaleRule::Fixed || a.fixed_scale == b.fixed_scale) &&
         a.global_scale == b.global_scale &&
         (!a.global_scale || a.global_divides == b.global_divides) &&
         a.asymmetric == b.asymmetric && a.round.mode == b.round.mode &&
         a.round.seed == b.round.seed && a.ggml == b.ggml;
}

namespace {

// The ggml_* presets: ggml's block types with what each stores, in the spelling of the scheme that
// describes it (for reports; the arithmetic is ggml's, src/quant/ggml_quantize.cpp).
struct GgmlPreset {
  GgmlType type;
  const char* name;
  const char* described_as;
  const char* description;
};
const GgmlPreset kGgmlPresets[] = {
    {GgmlType::Q8_0, "ggml_q8_0", "int8:g32:scale=fp16",
     "llama.cpp Q8_0: blocks of 32, fp16 scale amax/127, round half away (8.5 bits)"},
    {GgmlType::Q4_0, "ggml_q4_0", "int4:g32:scale=fp16",
     "llama.cpp Q4_0: blocks of 32, fp16 scale (signed max)/-8 (4.5 bits)"},
    {GgmlType::Q4_1, "ggml_q4_1", "int4:g32:scale=fp16:asym",
     "llama.cpp Q4_1: blocks of 32, fp16 scale and minimum (5.0 bits)"},
    {GgmlType::Q5_0, "ggml_q5_0", "int5:g32:scale=fp16",
     "llama.cpp Q5_0: blocks of 32, fp16 scale (signed max)/-16 (5.5 bits)"},
    {GgmlType::Q5_1, "ggml_q5_1", "int5:g32:scale=fp16:asym",
     "llama.cpp Q5_1: blocks of 32, fp16 scale and minimum (6.0 bits)"},
    {GgmlType::Q4_K, "ggml_q4_k", "int4:g32:scale=fp16:asym",
     "llama.cpp Q4_K: 256-blocks of 8 x 32, 6-bit scales and mins fitted by weighted least squares "
     "(4.5 bits; rows not a multiple of 256 fall back to Q5_0 as in llama.cpp)"},
    {GgmlType::Q6_K, "ggml_q6_k", "int6:g16:scale=fp16",
     "llama.cpp Q6_K: 256-blocks of 16 x 16, 8-bit scales fitted by weighted least squares "
     "(6.5625 bits; rows not a multiple of 256 fall back to Q8_0)"},
    {GgmlType::MXFP4, "ggml_mxfp4", "e2m1fn:g32:scale=e8m0fnu",
     "llama.cpp MXFP4: OCP MXFP4 blocks of 32, E2M1 ties toward zero (4.25 bits)"},
    {GgmlType::NVFP4, "ggml_nvfp4", "e2m1fn:g16:scale=ue4m3",
     "llama.cpp NVFP4 without a tensor scale: blocks of 16, UE4M3 scale amax/6 (4.5 bits)"},
};

// "ggml_q4_k", or its long spelling "ggml:q4_k" (the GGML type's name, any case).
const GgmlPreset* find_ggml_preset(std::string_view name) {
  std::string key(name);
  if (key.rfind("ggml:", 0) == 0) {
    key = "ggml_" + key.substr(5);
    for (char& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
  }
  for (const GgmlPreset& p : kGgmlPresets)
    if (key == p.name) return &p;
  return nullptr;
}

}  // namespace

std::string ggml_preset_name(GgmlType t) {
  for (const GgmlPreset& p : kGgmlPresets)
    if (p.type == t) return p.name;
  return "";
}

std::optional<Scheme> ggml_lowbit_grid(const Scheme& s, size_t cols) {
  switch (ggml_storage_type(s, cols)) {
    case GgmlType::Q8_0:
      return parse_scheme("int8:g32:scale=fp16");
    case GgmlType::Q4_0:
      return parse_scheme("int4:g32:scale=fp16");
    case GgmlType::Q5_0:
      return parse_scheme("int5:g32:scale=fp16");
    case GgmlType::MXFP4:
      return parse_scheme("mxfp4");
    case GgmlType::NVFP4:
      return parse_scheme("e2m1fn:g16:scale=e4m3fn");
    default:
      return std::nullopt;
  }
}

GgmlType ggml_storage_type(const Scheme& s, size_t cols) {
  if (!s.ggml) throw Error("ggml_storage_type: " + scheme_name(s) + " is not a ggml_* scheme");
  const auto fits = [&](GgmlType t) {
    return cols % ggml_type_info(uint32_t(t))->block_elements == 0;
  };
  GgmlType t = *s.ggml;
  if (fits(t)) return t;
  if (t == GgmlType::Q4_K) t = GgmlType::Q5_0;  // llama.cpp's tensor_type_fallback
  if (t == GgmlType::Q6_K) t = GgmlType::Q8_0;
  return fits(t) ? t : GgmlType::F16;
}

const std::vector<NamedScheme>& named_schemes() {
  static const std::vector<NamedScheme> table = {
      {"mxfp8_e4m3", "e4m3fn:g32:scale=e8m0fnu", "OCP MX FP8 (E4M3), blocks of 32, E8M0 scale"},
      {"mxfp8_e5m2", "e5m2:g32:scale=e8m0fnu", "OCP MX FP8 (E5M2), blocks of 32, E8M0 scale"},
      {"mxfp6_e2m3", "e2m3fn:g32:scale=e8m0fnu", "OCP MX FP6 (E2M3), blocks of 32, E8M0 scale"},
      {"mxfp6_e3m2", "e3m2fn:g32:scale=e8m0fnu", "OCP MX FP6 (E3M2), blocks of 32, E8M0 scale"},
      {"mxfp4", "e2m1fn:g32:scale=e8m0fnu", "OCP MX FP4 (E2M1), blocks of 32, E8M0 scale"},
      {"mxint8", "int8:g32:scale=e8m0fnu",
       "OCP MX INT8 (1.6 fixed point), blocks of 32, E8M0 scale"},
      {"nvfp4", "e2m1fn:g16:scale=e4m3fn:global",
       "NVIDIA FP4: blocks of 16, E4M3 scale, f32 tensor scale"},
      {"nvfp4_4over6", "e2m1fn:g16:scale=e4m3fn:4over6:global",
       "NVFP4 with Four Over Six: each block's largest magnitude maps to 6 or 4, by error"},
      {"nvfp4_sweep", "e2m1fn:g16:scale=e4m3fn:sweep:global",
       "NVFP4 with ScaleSweep: each block's scale is the stored E4M3 value of least error"},
      {"nvfp4_ct", "e2m1fn:g16:scale=e4m3fn:global=div",
       "NVFP4 as compressed-tensors (vLLM) stores it: the tensor scale divides the block scales"},
      {"msfp12", "int4:g16:scale=e8m0fnu",
       "block floating point (MSFP12): 4-bit sign-magnitude, 16 per exponent"},
      {"msfp16", "int8:g16:scale=e8m0fnu",
       "block floating point (MSFP16): 8-bit, 16 per shared exponent"},
      {"int8_channel", "int8:channel", "INT8, symmetric, one f32 scale per output channel"},
      {"int8_token", "int8:token", "INT8, symmetric, one f32 scale per token (row)"},
      {"int4_g128", "int4:g128:asym", "INT4 weight-only, groups of 128, f32 scale and zero point"},
      {"nf4_g64", "nf4:g64", "NormalFloat4 (QLoRA), groups of 64, absmax f32 scale"},
      {"fp8_tensor", "e4m3fn:tensor", "FP8 E4M3, one f32 scale per tensor"},
      {"fp8_channel", "e4m3fn:channel", "FP8 E4M3, one f32 scale per output channel"},
      {"fp8_token", "e4m3fn:token", "FP8 E4M3, one f32 scale per token (row)"},
      {"fp8_block128", "e4m3fn:block128x128", "FP8 E4M3, 128x128 blocks (DeepSeek-V3 weights)"},
  };
  static const std::vector<NamedScheme> with_ggml = [] {
    std::vector<NamedScheme> all = table;
    for (const GgmlPreset& p : kGgmlPresets)
      all.push_back(
          {p.name, std::string("ggml:") + ggml_type_info(uint32_t(p.type))->name, p.description});
    return all;
  }();
  return with_ggml;
}

Scheme parse_scheme(std::string_view text) {
  if (const GgmlPreset* p = find_ggml_preset(text)) {
    Scheme s = parse_spelled_out(p->described_as);
    s.preset = p->name;
    s.ggml = p->type;
    return s;
  }
  for (const NamedScheme& ns : named_schemes()) {
    if (text == ns.name) {
      Scheme s = parse_spelled_out(ns.definition);
      s.preset = ns.name;
      return s;
    }
  }
  Scheme s = parse_spelled_out(text);
  try {
    validate_scheme(s);
  } catch (const Error& e) {
    bad_scheme(text, e.what());
  }
  return s;
}

std::string scheme_name(const Scheme& s) {
  if (s.ggml) return ggml_preset_name(*s.ggml);
  return s.preset.empty() ? long_name(s) : s.preset;
}

void validate_scheme(const Scheme& s) {
  validate_format(s.element, "element format");
  if (!s.scale_is_f32) validate_format(s.scale_format, "scale format");
  if (s.asymmetric && s.element.kind != FormatKind::Int)
    throw Error("asym (zero point) applies to integer elements only, not " +
                format_name(s.element));
  if (s.asymmetric && s.pow2) throw Error("asym and pow2 scales do not combine");
  if (s.mse_steps < 2 || !(s.mse_min_ratio > 0 && s.mse_min_ratio < 1))
    throw Error("the mse rule needs at least 2 steps and a minimum ratio in (0, 1)");
  if (s.global_scale && s.scale_is_f32)
    throw Error(
        "global (a second, per-tensor scale) needs a narrow block-scale format, e.g. scale=e4m3fn");
  if (!s.scale_is_f32 && s.scale_format.kind != FormatKind::Float)
    throw Error("scale formats are floating-point formats, not " + format_name(s.scale_format));
  if (s.asymmetric && s.element.int_bits > 8) throw Error("asym supports integers of 2..8 bits");
  if (s.asymmetric && (s.rule == ScaleRule::Percentile || s.rule == ScaleRule::Fixed))
    throw Error("asym takes the absmax (min/max) or mse rule");
  if (s.asymmetric && s.global_scale) throw Error("asym and global do not combine");
  if (s.element.bits() > 16)
    throw Error("element formats of more than 16 bits are not quantization targets");
  if (s.rule == ScaleRule::FourOverSix && s.element != formats::e2m1fn)
    throw Error(
        "4over6 maps a block's largest magnitude to E2M1's 6 or 4: it needs e2m1fn "
        "elements (nvfp4, mxfp4), not " +
        format_name(s.element));
  if (s.rule == ScaleRule::Sweep) {
    if (s.scale_is_f32 || s.scale_format.bits() > 12)
      throw Error(
          "sweep tries every scale the scale format stores: it needs a narrow stored scale "
          "format (scale=e4m3fn, e8m0fnu, ...), not " +
          std::string(s.scale_is_f32 ? "f32" : format_name(s.scale_format)));
    if (s.asymmetric) throw Error("sweep takes symmetric elements, not asym");
    if (s.round.mode != RoundMode::NearestEven || s.round.overflow != Overflow::Saturate)
      throw Error("sweep's bounds assume round-to-nearest, saturating elements");
  }
  if (s.granularity == Granularity::Group && s.group < 1)
    throw Error("group size must be positive");
}

int element_emax(const Format& element) {
  return int(std::floor(std::log2(max_finite(element))));
}

double element_max(const Scheme& s) {
  if (s.asymmetric) return std::ldexp(1.0, s.element.int_bits) - 1;
  // Symmetric scaling: the largest magnitude both signs reach (127 for int8, not 128).
  const double hi = max_finite(s.element), lo = lowest_finite(s.element);
  return (lo < 0 && -lo < hi) ? -lo : hi;
}

double clip_threshold(const Scheme& s) {
  const double top = element_max(s);
  switch (s.element.kind) {
    case FormatKind::Float:
      return top + std::ldexp(1.0, element_emax(s.element) - s.element.man_bits) / 2;
    case FormatKind::Int:
      return top + 0.5;
    case FormatKind::Lut: {
      const int n = s.element.lut_size;
      const double gap = double(s.element.lut[n - 1]) - double(s.element.lut[n - 2]);
      return top + gap / 2;
    }
  }
  return top;
}

}  // namespace lowbit
