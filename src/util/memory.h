// Checking that a large allocation can succeed before making it, so that a run that cannot fit
// says so with the estimate and the limit instead of dying in std::bad_alloc (or the OOM killer).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit::util {

// Memory the kernel says can be allocated without swapping (MemAvailable), else physical memory.
inline uint64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return uint64_t(::sysconf(_SC_PHYS_PAGES)) * uint64_t(::sysconf(_SC_PAGESIZE));
}

inline std::string gib(double bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GiB", bytes / double(uint64_t(1) << 30));
  return s;
}

// Throws lowbit::Error when `bytes` exceed what is available; `what` names the buffers and
// `advice` says which setting makes them smaller.
inline void require_memory(double bytes, const std::string& what, const std::string& advice) {
  const double available = double(available_memory_bytes());
  if (bytes > available)
    throw Error(what + " would need " + gib(bytes) + " of memory, but " + gib(available) +
                " is available; " + advice);
}

}  // namespace lowbit::util
