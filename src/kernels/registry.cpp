// The kernel registry: every backend of every operation, the scalar reference first, then the
// compiled SIMD targets the CPU supports, best last. Fast paths register here from their own
// files (kernels/cpu/*_hwy.cpp, once per Highway target) and are tested against the reference.
#include "kernels/backend_list.h"
#include "kernels/matmul_reference.h"
#include "lowbit/kernels/convert_backend.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/util/error.h"

namespace lowbit::kernels {

void link_hwy_convert_backends();  // kernels/cpu/convert_hwy.cpp
void link_hwy_matmul_backends();   // kernels/cpu/matmul_hwy.cpp

void register_simd_backend(const ConvertBackend& backend) {
  compiled_backends<ConvertBackend>().push_back(backend);
}

void register_matmul_backend(const MatmulBackend& backend) {
  compiled_backends<MatmulBackend>().push_back(backend);
}

std::vector<std::string> compiled_simd_targets() {
  link_hwy_convert_backends();
  std::vector<std::string> names;
  for (const ConvertBackend& b : compiled_backends<ConvertBackend>()) names.push_back(b.name);
  return names;
}

const std::vector<ConvertBackend>& convert_backends() {
  static const std::vector<ConvertBackend> backends = [] {
    link_hwy_convert_backends();
    return supported_best_last(reference_convert_backend(), compiled_backends<ConvertBackend>());
  }();
  return backends;
}

const ConvertBackend& default_convert_backend() {
  return convert_backends().back();
}

const std::vector<MatmulBackend>& matmul_backends() {
  static const std::vector<MatmulBackend> backends = [] {
    link_hwy_matmul_backends();
    return supported_best_last(reference_matmul_backend(), compiled_backends<MatmulBackend>());
  }();
  return backends;
}

const MatmulBackend& default_matmul_backend() {
  return matmul_backends().back();
}

}  // namespace lowbit::kernels
