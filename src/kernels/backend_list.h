// The backends of a kernel family as registered by the compiled Highway targets, and the order
// every family lists them in: the scalar reference first, then the targets this CPU supports,
// best last.
#pragma once

#include <hwy/targets.h>

#include <algorithm>
#include <vector>

namespace lowbit::kernels {

// Every target's registration of a family, supported here or not (one list per Backend type).
template <class Backend>
std::vector<Backend>& compiled_backends() {
  static std::vector<Backend> backends;
  return backends;
}

template <class Backend>
std::vector<Backend> supported_best_last(const Backend& reference,
                                         const std::vector<Backend>& compiled) {
  std::vector<Backend> list = {reference};
  std::vector<Backend> simd;
  for (const Backend& b : compiled)
    if ((hwy::SupportedTargets() & b.hwy_target) != 0) simd.push_back(b);
  // Highway target bits: a smaller bit is a better target.
  std::sort(simd.begin(), simd.end(),
            [](const Backend& a, const Backend& b) { return a.hwy_target > b.hwy_target; });
  list.insert(list.end(), simd.begin(), simd.end());
  return list;
}

}  // namespace lowbit::kernels
