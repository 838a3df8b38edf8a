// Format names: the table of named formats, the parser for every spelling a user may type, the
// canonical printer, and interning of user codebooks.
#include <cmath>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>

#include "lowbit/format/format.h"
#include "lowbit/format/reference.h"
#include "lowbit/util/error.h"
#include "util/text.h"

namespace lowbit {
namespace {

constexpr const char* kGenericSyntax =
    "eXmY[:bias=B][:specials=ieee|fn|fnuz|none][:subnormals=on|off][:zero=off][:unsigned] "
    "(X = 1..8 exponent bits, Y = 0..10 mantissa bits; default bias 2^(X-1)-1, IEEE specials, "
    "subnormals on, signed)";

using text::split;

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

bool parse_int(const std::string& s, int& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (*end != '\0' || v < -100000 || v > 100000) return false;
  out = int(v);
  return true;
}

[[noreturn]] void unknown_format(std::string_view text, const std::string& why) {
  std::string known;
  for (const NamedFormat& nf : named_formats()) known += (known.empty() ? "" : ", ") + nf.name;
  throw Error("invalid format '" + std::string(text) + "': " + why +
              ".\n  Named formats: " + known +
              "\n  Integers: intN, uintN (N = 2..16)\n  Codebooks: nf4, lut:v0,v1,... (strictly "
              "increasing values)\n  Generic floats: " +
              kGenericSyntax);
}

// `eXmY` -> exponent and mantissa bits.
bool parse_exmy(const std::string& s, int& e, int& m) {
  if (s.size() < 4 || s[0] != 'e') return false;
  const size_t mpos = s.find('m');
  if (mpos == std::string::npos) return false;
  return parse_int(s.substr(1, mpos - 1), e) && parse_int(s.substr(mpos + 1), m) &&
         s.find_first_not_of("0123456789", 1) == mpos;
}

Format apply_float_options(std::string_view text, Format f, const std::vector<std::string>& opts) {
  bool subnormals_set = false, zero_off = false;
  for (size_t i = 1; i < opts.size(); ++i) {
    const std::string& o = opts[i];
    const size_t eq = o.find('=');
    const std::string key = o.substr(0, eq);
    const std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
    if (key == "bias" && parse_int(val, f.bias)) continue;
    if (key == "specials") {
      if (val == "ieee")
        f.specials = Specials::IEEE;
      else if (val == "fn")
        f.specials = Specials::FN;
      else if (val == "fnuz")
        f.specials = Specials::FNUZ;
      else if (val == "none")
        f.specials = Specials::None;
      else
        unknown_format(text, "specials must be ieee, fn, fnuz or none, not '" + val + "'");
      continue;
    }
    if (key == "subnormals" && (val == "on" || val == "off")) {
      f.low = val == "on" ? LowBinade::Subnormal : LowBinade::Flush;
      subnormals_set = true;
      continue;
    }
    if (key == "zero" && (val == "on" || val == "off")) {
      zero_off = val == "off";
      if (!zero_off && f.low == LowBinade::Normal) f.low = LowBinade::Subnormal;
      continue;
    }
    if (o == "unsigned" || o == "signed") {
      f.is_signed = o == "signed";
      continue;
    }
    unknown_format(text, "unknown option '" + o + "'");
  }
  if (zero_off) {
    if (subnormals_set && f.low == LowBinade::Subnormal)
      unknown_format(text, "zero=off leaves no room for subnormals; drop subnormals=on");
    f.low = LowBinade::Normal;
  }
  if (const char* problem = format_problem(f)) unknown_format(text, problem);
  return f;
}

std::string float_to_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}

std::mutex& codebook_mutex() {
  static std::mutex m;
  return m;
}
std::deque<std::vector<float>>& codebooks() {
  static std::deque<std::vector<float>> books;  // deque: stable element addresses
  return books;
}

}  // namespace

const std::vector<NamedFormat>& named_formats() {
  using namespace formats;
  static const std::vector<NamedFormat> table = {
      {"e4m3fn", e4m3fn, {"float8_e4m3fn", "fp8_e4m3fn"}, "OCP FP8 E4M3: no inf, NaN = S.1111.111"},
      {"e5m2", e5m2, {"float8_e5m2", "fp8_e5m2"}, "OCP FP8 E5M2: IEEE inf and NaN"},
      {"e4m3", e4m3, {"float8_e4m3"}, "IEEE-style E4M3 (ml_dtypes float8_e4m3): inf and NaN"},
      {"e4m3fnuz", e4m3fnuz, {"float8_e4m3fnuz"}, "E4M3, bias 8, NaN at -0 (AMD MI300, Graphcore)"},
      {"e5m2fnuz",
       e5m2fnuz,
       {"float8_e5m2fnuz"},
       "E5M2, bias 16, NaN at -0 (AMD MI300, Graphcore)"},
      {"e4m3b11fnuz", e4m3b11fnuz, {"float8_e4m3b11fnuz"}, "E4M3, bias 11, NaN at -0 (TPU)"},
      {"e3m4", e3m4, {"float8_e3m4"}, "IEEE-style E3M4: inf and NaN"},
      {"e8m0fnu",
       e8m0fnu,
       {"float8_e8m0fnu", "e8m0", "ue8m0"},
       "OCP MX scale: unsigned 2^-127..2^127, no zero, 0xFF = NaN"},
      {"ue4m3", ue4m3, {"float8_ue4m3"}, "unsigned E4M3 (NVFP4 block scales): 7 bits, max 448"},
      {"e2m3fn", e2m3fn, {"float6_e2m3fn", "fp6_e2m3"}, "OCP MX FP6 E2M3: all codes finite"},
      {"e3m2fn", e3m2fn, {"float6_e3m2fn", "fp6_e3m2"}, "OCP MX FP6 E3M2: all codes finite"},
      {"e2m1fn", e2m1fn, {"float4_e2m1fn", "fp4_e2m1", "fp4"}, "OCP MX FP4 E2M1: all codes finite"},
      {"bf16", bf16, {"bfloat16"}, "bfloat16 (e8m7)"},
      {"fp16", fp16, {"float16", "half", "e5m10"}, "IEEE 754 binary16 (e5m10)"},
      {"int8", int8, {}, "signed 8-bit integer, -128..127"},
      {"int4", int4, {}, "signed 4-bit integer, -8..7"},
      {"int2", int2, {}, "signed 2-bit integer, -2..1"},
      {"uint8", uint8, {}, "unsigned 8-bit integer, 0..255"},
      {"uint4", uint4, {}, "unsigned 4-bit integer, 0..15"},
      {"nf4", nf4, {}, "NormalFloat4 codebook (QLoRA): 16 quantiles of N(0,1) in [-1, 1]"},
  };
  return table;
}

Format parse_format(std::string_view text) {
  const std::string name = lower(text);
  if (name.rfind("lut:", 0) == 0) {
    std::vector<float> values;
    for (const std::string& v : split(std::string_view(name).substr(4), ',')) {
      char* end = nullptr;
      const float x = std::strtof(v.c_str(), &end);
      if (v.empty() || *end != '\0') unknown_format(text, "'" + v + "' is not a number");
      values.push_back(x);
    }
    Format probe = Format::codebook(values.data(), int(values.size()));
    if (const char* problem = format_problem(probe)) unknown_format(text, problem);
    return make_codebook(values);
  }
  const std::vector<std::string> opts = split(name, ':');
  const std::string& base = opts[0];
  for (const NamedFormat& nf : named_formats()) {
    bool match = base == nf.name;
    for (const std::string& alias : nf.aliases) match = match || base == alias;
    if (!match) continue;
    if (opts.size() == 1) return nf.format;
    if (nf.format.kind != FormatKind::Float)
      unknown_format(text, "options apply to floating-point formats only");
    return apply_float_options(text, nf.format, opts);
  }
  int bits = 0;
  for (const char* prefix : {"int", "uint"}) {
    const std::string p = prefix;
    if (base.rfind(p, 0) == 0 && parse_int(base.substr(p.size()), bits)) {
      if (opts.size() > 1) unknown_format(text, "integer formats take no options");
      const Format f = Format::integer(bits, p == "int");
      if (const char* problem = format_problem(f)) unknown_format(text, problem);
      return f;
    }
  }
  int e = 0, m = 0;
  if (parse_exmy(base, e, m)) {
    if (e < 1 || e > 8 || m < 0 || m > 10)
      unknown_format(text, "exponent bits must be 1..8 and mantissa bits 0..10");
    const Format generic = Format::floating(e, m, (1 << (e - 1)) - 1, Specials::IEEE);
    return apply_float_options(text, generic, opts);
  }
  unknown_format(text, "not a known name");
}

std::string format_name(const Format& f) {
  for (const NamedFormat& nf : named_formats())
    if (nf.format == f) return nf.name;
  switch (f.kind) {
    case FormatKind::Int:
      return (f.is_signed ? "int" : "uint") + std::to_string(f.int_bits);
    case FormatKind::Lut: {
      std::string s = "lut:";
      for (int i = 0; i < f.lut_size; ++i) s += (i ? "," : "") + float_to_text(f.lut[i]);
      return s;
    }
    case FormatKind::Float:
      break;
  }
  std::string s = "e" + std::to_string(f.exp_bits) + "m" + std::to_string(f.man_bits);
  if (f.bias != (1 << (f.exp_bits - 1)) - 1) s += ":bias=" + std::to_string(f.bias);
  static const char* kSpecials[] = {"ieee", "fn", "fnuz", "none"};
  if (f.specials != Specials::IEEE) s += std::string(":specials=") + kSpecials[int(f.specials)];
  if (f.low == LowBinade::Flush) s += ":subnormals=off";
  if (f.low == LowBinade::Normal) s += ":zero=off";
  if (!f.is_signed) s += ":unsigned";
  return s;
}

Format make_codebook(const std::vector<float>& values) {
  validate_format(Format::codebook(values.data(), int(values.size())), "codebook");
  const auto same = [&](const float* table, int n) {
    return n == int(values.size()) && std::equal(values.begin(), values.end(), table);
  };
  if (same(kNF4Values, 16)) return formats::nf4;
  std::lock_guard<std::mutex> lock(codebook_mutex());
  for (const std::vector<float>& book : codebooks())
    if (same(book.data(), int(book.size()))) return Format::codebook(book.data(), int(book.size()));
  codebooks().push_back(values);
  const std::vector<float>& book = codebooks().back();
  return Format::codebook(book.data(), int(book.size()));
}

void validate_format(const Format& f, std::string_view what) {
  if (const char* problem = format_problem(f))
    throw Error("invalid " + std::string(what) + ": " + problem);
}

uint32_t finite_value_count(const Format& f) {
  std::set<float> values;
  for (uint32_t code = 0; code < code_count(f); ++code) {
    const float v = ref::decode(f, code);
    if (std::isfinite(v)) values.insert(v == 0.0f ? 0.0f : v);
  }
  return uint32_t(values.size());
}

}  // namespace lowbit
