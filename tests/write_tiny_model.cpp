// Writes the tests' tiny random LLaMA as a GGUF file, for the CLI checks (tests/trust_cli_test.sh):
//   write_tiny_model OUT.gguf [--nan | --bf16]   --nan puts a NaN into one weight; --bf16 stores
//                                                the 2-D weights as bfloat16
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tiny_models.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: write_tiny_model OUT.gguf [--nan | --bf16]\n");
    return 2;
  }
  lowbit::testing::TinyLlama tiny = lowbit::testing::TinyLlama::random(41);
  if (argc > 2 && std::strcmp(argv[2], "--nan") == 0) tiny.layers[1].w_down[5] = std::nanf("");
  if (argc > 2 && std::strcmp(argv[2], "--bf16") == 0) tiny.matrix_type = lowbit::GgmlType::BF16;
  tiny.write_gguf(argv[1]);
  return 0;
}
