// Orders a kernel family's backends the same way for every operation: the scalar reference first,
// then the compiled Highway targets this CPU supports, best last.
#pragma once

#include <hwy/targets.h>

#include <algorithm>
#include <vector>

namespace lowbit::kernels {

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
