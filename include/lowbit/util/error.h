// lowbit/util/error.h — the one exception type the public API throws, and the internal assert.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace lowbit {

// Thrown for every user-facing failure (bad format name, malformed file, shape mismatch).
// The message says what was wrong, where (file / tensor / argument), and what to do.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace lowbit

// Internal invariant: a failure here is a bug in lowbit, never a user error.
#define LOWBIT_ASSERT(cond)                                                                    \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "lowbit internal error at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
