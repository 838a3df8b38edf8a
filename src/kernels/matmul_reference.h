// The definition the packed-weight kernels are tested against (see matmul_reference.cpp).
#pragma once

#include "lowbit/kernels/matmul.h"

namespace lowbit::kernels {

// The code of weight (r, c) and its decoded value, straight from the layout in matmul.h.
uint32_t packed_code(const PackedMatrix& m, size_t r, size_t c);
float packed_weight(const PackedMatrix& m, size_t r, size_t c);

MatmulBackend reference_matmul_backend();

}  // namespace lowbit::kernels
