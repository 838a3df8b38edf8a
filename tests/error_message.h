// The lowbit::Error message a call throws, or "" when it returns: tests check that an error names
// the file, field or value at fault.
#pragma once

#include <functional>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace lowbit::testing
