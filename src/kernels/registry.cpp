// The kernel registry: every backend of every operation, the scalar reference first, then the
// compiled SIMD targets the CPU supports, best last. Fast paths register here from their own
// files (kernels/cpu/*_hwy.cpp, once per Highway target) and are tested against the reference.
#include "kernels/backend_list.h"
#include "lowbit/kernels/convert_backend.h"
#include "lowbit/util/error.h"

namespace lowbit::kernels {

void link_hwy_convert_backends();  // kernels/cpu/convert_hwy.cpp

namespace {
std::vector<ConvertBackend>& simd_registry() {
  static std::vector<ConvertBackend> backends;
  return backends;
}
}  // namespace

void register_simd_backend(const ConvertBackend& backend) {
  simd_registry().push_back(backend);
}

std::vector<std::string> compiled_simd_targets() {
  link_hwy_convert_backends();
  std::vector<std::string> names;
  for (const ConvertBackend& b : simd_registry()) names.push_back(b.name);
  return names;
}

const std::vector<ConvertBackend>& convert_backends() {
  static const std::vector<ConvertBackend> backends = [] {
    link_hwy_convert_backends();
    return supported_best_last(reference_convert_backend(), simd_registry());
  }();
  return backends;
}

const ConvertBackend& default_convert_backend() {
  return convert_backends().back();
}

}  // namespace lowbit::kernels
