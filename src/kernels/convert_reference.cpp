// The scalar reference wrapped as a bulk backend, so tests and benchmarks treat it like any other.
#include <algorithm>
#include <cstring>

#include "lowbit/format/reference.h"
#include "lowbit/kernels/convert_backend.h"

namespace lowbit::kernels {
namespace {

float load_source(const void* in, SourceType type, size_t i) {
  if (type == SourceType::F32) return static_cast<const float*>(in)[i];
  const uint16_t bits = static_cast<const uint16_t*>(in)[i];
  if (type == SourceType::FP16) return ref::decode(formats::fp16, bits);
  const uint32_t wide = uint32_t(bits) << 16;  // bf16 is the top half of a float32
  float x;
  std::memcpy(&x, &wide, sizeof x);
  return x;
}

void store_code(void* codes, int code_bytes, size_t i, uint32_t code) {
  if (code_bytes == 1)
    static_cast<uint8_t*>(codes)[i] = uint8_t(code);
  else if (code_bytes == 2)
    static_cast<uint16_t*>(codes)[i] = uint16_t(code);
  else
    static_cast<uint32_t*>(codes)[i] = code;
}

uint32_t load_code(const void* codes, int code_bytes, size_t i) {
  if (code_bytes == 1) return static_cast<const uint8_t*>(codes)[i];
  if (code_bytes == 2) return static_cast<const uint16_t*>(codes)[i];
  return static_cast<const uint32_t*>(codes)[i];
}

void encode(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first,
            void* codes, int code_bytes) {
  for (size_t i = 0; i < n; ++i)
    store_code(codes, code_bytes, i,
               ref::round_to_code(p.format, load_source(in, type, i), p.options, first + i));
}

void decode(const ConvertPlan& p, const void* codes, int code_bytes, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = ref::decode(p.format, load_code(codes, code_bytes, i));
}

void fake_quant(const ConvertPlan& p, const void* in, SourceType type, size_t n, uint64_t first,
                float* out) {
  for (size_t i = 0; i < n; ++i)
    out[i] = ref::round_to_value(p.format, load_source(in, type, i), p.options, first + i);
}

// The scale of element i (ScaleRun: phase < group_len, scales[0] is element 0's group).
float scale_of(size_t i, const ScaleRun& r) {
  return r.scales[(r.phase + i) / r.group_len];
}

float scaled_value(const float* x, size_t i, const ScaleRun& r) {
  const float v = x[i] / scale_of(i, r);
  return v > r.clamp ? r.clamp : v < -r.clamp ? -r.clamp : v;  // NaN stays NaN
}

void encode_scaled(const ConvertPlan& p, const float* x, size_t n, const ScaleRun& r,
                   uint64_t first, void* codes, int code_bytes) {
  for (size_t i = 0; i < n; ++i)
    store_code(codes, code_bytes, i,
               ref::round_to_code(p.format, scaled_value(x, i, r), p.options, first + i));
}

void decode_scaled(const ConvertPlan& p, const void* codes, int code_bytes, size_t n,
                   const ScaleRun& r, float* out) {
  for (size_t i = 0; i < n; ++i)
    out[i] = ref::decode(p.format, load_code(codes, code_bytes, i)) * scale_of(i, r);
}

void fake_quant_scaled(const ConvertPlan& p, const float* x, size_t n, const ScaleRun& r,
                       uint64_t first, float* out) {
  for (size_t i = 0; i < n; ++i)
    out[i] =
        ref::round_to_value(p.format, scaled_value(x, i, r), p.options, first + i) * scale_of(i, r);
}

void max_abs_bits(const float* x, size_t n, size_t group_len, uint32_t* out) {
  for (size_t begin = 0, g = 0; begin < n; begin += group_len, ++g) {
    uint32_t top = 0;
    for (size_t i = begin; i < std::min(n, begin + group_len); ++i) {
      uint32_t b;
      std::memcpy(&b, &x[i], 4);
      top = std::max(top, b & 0x7FFFFFFFu);
    }
    out[g] = top;
  }
}

}  // namespace

ConvertBackend reference_convert_backend() {
  return {"reference",    0,
          &encode,        &decode,
          &fake_quant,    &encode_scaled,
          &decode_scaled, &fake_quant_scaled,
          &max_abs_bits};
}

}  // namespace lowbit::kernels
