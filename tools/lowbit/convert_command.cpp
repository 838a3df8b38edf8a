// `lowbit convert`: round values or .npy arrays onto a format (codes out), decode codes, or
// fake-quantize, with any rounding mode and overflow policy.
#include <fmt/core.h>

#include <cmath>
#include <cstring>

#include "commands.h"
#include "lowbit/format/format.h"
#include "lowbit/format/reference.h"
#include "lowbit/io/npy.h"
#include "lowbit/kernels/convert.h"
#include "lowbit/util/error.h"

namespace lowbit::cli {
namespace {

struct ConvertArgs {
  std::string format;
  std::string round = "nearest-even";
  bool saturate = false;
  uint64_t seed = 0;
  std::string in, out;
  bool decode = false;
  bool fake_quant = false;
  std::vector<std::string> values;
};

// The code's bits, grouped by field: sign|exponent|mantissa for floats.
std::string code_bits(const Format& f, uint32_t code) {
  std::string s;
  for (int b = f.bits() - 1; b >= 0; --b) {
    s += ((code >> b) & 1) ? '1' : '0';
    if (f.kind != FormatKind::Float || b == 0) continue;
    const bool after_sign = f.is_signed && b == f.exp_bits + f.man_bits;
    const bool after_exp = f.man_bits > 0 && b == f.man_bits;
    if (after_sign || after_exp) s += '|';
  }
  return s;
}

std::string code_hex(const Format& f, uint32_t code) {
  return fmt::format("0x{:0{}X}", code, (f.bits() + 3) / 4);
}

std::string describe_rounding(const Format& f, float x, float y) {
  if (std::isnan(x)) return std::isnan(y) ? "NaN" : "NaN (format has none)";
  if (std::isnan(y))
    return std::isinf(x) || std::fabs(x) > max_finite(f) ? "overflow to NaN"
                                                         : "not representable: NaN";
  if (std::isinf(y) && !std::isinf(x)) return "overflow to inf";
  if (x == y) return "exact";
  if (y == 0.0f) return "underflow to zero";
  if ((y == max_finite(f) && x > y) || (y == lowest_finite(f) && x < y)) return "saturated";
  return "rounded";
}

float parse_value(const std::string& text) {
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw Error("'" + text + "' is not a number");
  return v;
}

uint32_t parse_code(const std::string& text, const Format& f) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text.c_str(), &end, 0);
  if (text.empty() || *end != '\0')
    throw Error("'" + text + "' is not a code (use decimal or 0x hex)");
  if (v >= code_count(f))
    throw Error("code " + text + " does not fit the " + std::to_string(f.bits()) + "-bit format " +
                format_name(f));
  return uint32_t(v);
}

void convert_values(const ConvertArgs& a, const Format& f, const RoundOptions& opt) {
  if (a.decode) {
    fmt::print("{:>10}  {:<{}}  {}\n", "code", "bits", f.bits() + 2, "value");
    for (const std::string& text : a.values) {
      const uint32_t code = parse_code(text, f);
      fmt::print("{:>10}  {:<{}}  {:.9g}\n", code_hex(f, code), code_bits(f, code), f.bits() + 2,
                 double(ref::decode(f, code)));
    }
    return;
  }
  fmt::print("{:>16}  {:>16}  {:>10}  {:<{}}  {}\n", "input", "value", "code", "bits", f.bits() + 2,
             "");
  for (size_t i = 0; i < a.values.size(); ++i) {
    const float x = parse_value(a.values[i]);
    const uint32_t code = ref::round_to_code(f, x, opt, i);
    const float y = ref::decode(f, code);
    fmt::print("{:>16.9g}  {:>16.9g}  {:>10}  {:<{}}  {}\n", double(x), double(y),
               code_hex(f, code), code_bits(f, code), f.bits() + 2, describe_rounding(f, x, y));
  }
}

const char* code_descr(int bytes) {
  return bytes == 1 ? "|u1" : bytes == 2 ? "<u2" : "<u4";
}

template <class Code>
void encode_array(const Format& f, const NpyArray& in, const ConvertArgs& a,
                  const RoundOptions& opt) {
  std::vector<Code> codes(in.count());
  const std::string& d = in.descr;
  if (d == "<f4")
    encode(f, reinterpret_cast<const float*>(in.data.data()), codes.size(), codes.data(), opt);
  else if (d == "<f2")
    encode(f, reinterpret_cast<const FP16*>(in.data.data()), codes.size(), codes.data(), opt);
  else
    encode(f, reinterpret_cast<const BF16*>(in.data.data()), codes.size(), codes.data(), opt);
  write_npy(a.out, code_descr(sizeof(Code)), in.shape, codes.data(), codes.size() * sizeof(Code));
}

template <class Code>
void decode_array(const Format& f, const NpyArray& in, std::vector<float>& out) {
  decode(f, reinterpret_cast<const Code*>(in.data.data()), out.size(), out.data());
}

bool is_float_input(const std::string& d) {
  return d == "<f4" || d == "<f2" || d == "<V2" || d == "|V2";
}

void convert_file(const ConvertArgs& a, const Format& f, const RoundOptions& opt) {
  const NpyArray in = read_npy(a.in);
  const size_t n = in.count();
  if (a.decode) {
    const std::string& d = in.descr;
    const int have = d == "|u1" ? 1 : d == "<u2" ? 2 : d == "<u4" ? 4 : 0;
    if (have == 0)
      throw Error(a.in + ": codes must be uint8, uint16 or uint32, not dtype '" + d + "'");
    if (have < code_bytes(f))
      throw Error(a.in + ": " + format_name(f) + " codes are " + std::to_string(f.bits()) +
                  " bits; a " + d + " array cannot hold them");
    std::vector<float> out(n);
    if (have == 1)
      decode_array<uint8_t>(f, in, out);
    else if (have == 2)
      decode_array<uint16_t>(f, in, out);
    else
      decode_array<uint32_t>(f, in, out);
    write_npy(a.out, "<f4", in.shape, out.data(), n * sizeof(float));
    fmt::print(stderr, "decoded {} {} codes from {} into float32 {}\n", n, format_name(f), a.in,
               a.out);
    return;
  }
  if (!is_float_input(in.descr))
    throw Error(a.in +
                ": expected float32 ('<f4'), float16 ('<f2') or ml_dtypes bfloat16 ('<V2') values, "
                "not dtype '" +
                in.descr + "'" + (in.descr[1] == 'u' ? "; to decode codes pass --decode" : ""));
  if (a.fake_quant) {
    std::vector<float> out(n);
    const auto* p = in.data.data();
    if (in.descr == "<f4")
      fake_quant(f, reinterpret_cast<const float*>(p), n, out.data(), opt);
    else if (in.descr == "<f2")
      fake_quant(f, reinterpret_cast<const FP16*>(p), n, out.data(), opt);
    else
      fake_quant(f, reinterpret_cast<const BF16*>(p), n, out.data(), opt);
    write_npy(a.out, "<f4", in.shape, out.data(), n * sizeof(float));
    fmt::print(stderr, "fake-quantized {} values from {} onto {} into float32 {}\n", n, a.in,
               format_name(f), a.out);
    return;
  }
  const int bytes = code_bytes(f);
  if (bytes == 1)
    encode_array<uint8_t>(f, in, a, opt);
  else if (bytes == 2)
    encode_array<uint16_t>(f, in, a, opt);
  else
    encode_array<uint32_t>(f, in, a, opt);
  fmt::print(stderr, "encoded {} values from {} as {} codes ({}) into {}\n", n, a.in,
             format_name(f), code_descr(bytes), a.out);
}

void run(const ConvertArgs& a) {
  const Format f = parse_format(a.format);
  RoundOptions opt;
  opt.mode = parse_round_mode(a.round);
  opt.overflow = a.saturate ? Overflow::Saturate : Overflow::Default;
  opt.seed = a.seed;
  if (a.decode && a.fake_quant) throw Error("--decode and --fake-quant exclude each other");
  const bool file_mode = !a.in.empty() || !a.out.empty();
  if (file_mode && !a.values.empty())
    throw Error("give either values on the command line or --in/--out, not both");
  if (file_mode && (a.in.empty() || a.out.empty())) throw Error("--in and --out go together");
  if (!file_mode && a.values.empty())
    throw Error("nothing to convert: give values, or --in X.npy --out Y.npy");
  if (file_mode)
    convert_file(a, f, opt);
  else
    convert_values(a, f, opt);
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Round values onto a format and show or save the codes; decode codes; fake-quantize");
  cmd->add_option("-f,--format", a->format, "Format name (see `lowbit formats`) or eXmY[:options]")
      ->required();
  cmd->add_option("--round", a->round,
                  "nearest-even (default), nearest-away, toward-zero, up, down, stochastic");
  cmd->add_flag("--saturate", a->saturate,
                "Overflow and ±inf become ±max instead of inf/NaN (CUDA satfinite)");
  cmd->add_option("--seed", a->seed,
                  "Seed of the stochastic-rounding stream (element i draws index i); 0 .. 2^64-1")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--in", a->in,
                  "Input .npy: float32/float16/bfloat16 values, or codes with --decode");
  cmd->add_option("--out", a->out,
                  "Output .npy: codes (uint8/16/32), or float32 with --decode/--fake-quant");
  cmd->add_flag("--decode", a->decode, "Input holds codes; write their float32 values");
  cmd->add_flag("--fake-quant", a->fake_quant,
                "Write the rounded values as float32 instead of codes");
  cmd->add_option("values", a->values,
                  "Values to convert (or codes with --decode: decimal or 0x hex)");
  cmd->callback([a] { run(*a); });
}

}  // namespace lowbit::cli
