// Uses an installed lowbit: a format, a scheme, and ggml's quantizer through the public headers.
#include <cstdio>
#include <vector>

#include "lowbit/format/reference.h"
#include "lowbit/quant/ggml_types.h"
#include "lowbit/quant/qtensor.h"

int main() {
  std::vector<float> x(64), y(64);
  for (int i = 0; i < 64; ++i) x[i] = 0.01f * float(i - 32);
  lowbit::fake_quant(lowbit::parse_scheme("mxfp4"), x.data(), {2, 32}, y.data());
  std::vector<uint8_t> q4(lowbit::ggml_bytes(lowbit::GgmlType::Q4_0, 64));
  lowbit::quantize_ggml(lowbit::GgmlType::Q4_0, x.data(), 64, q4.data());
  std::printf("e4m3fn max %g, mxfp4(%g) = %g, %zu Q4_0 bytes\n",
              lowbit::ref::decode(lowbit::formats::e4m3fn, 0x7E), x[5], y[5], q4.size());
  return y[5] != 0 && q4.size() == 36 ? 0 : 1;
}
