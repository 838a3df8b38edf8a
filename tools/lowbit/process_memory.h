// What this process holds in memory, as the kernel counts it (for generate's and bench's
// memory lines).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lowbit::cli {

// A /proc/self/status field in MiB (VmRSS: resident now, VmHWM: the peak so far); 0 if absent.
inline double status_mib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kib = 0;
  const size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') kib = std::atof(line + len + 1);
  std::fclose(f);
  return kib / 1024;
}

}  // namespace lowbit::cli
