// Writing a file so that it appears complete or not at all: write to a temporary name in the same
// folder, then rename into place. A reader never sees a half-written file under the real name.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "lowbit/util/error.h"

namespace lowbit::io {

// Calls write(stream) on a temporary file and renames it to `path`; throws lowbit::Error naming
// `path` (and removes the temporary file) when anything fails.
template <class WriteFn>
void write_file_atomically(const std::string& path, WriteFn write) {
  // The process id keeps writers on a shared folder (sweep shards) off each other's temporaries.
  const std::string tmp = path + ".tmp-lowbit-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot open for writing");
    try {
      write(out);
    } catch (...) {  // a writer that fails half-way leaves no temporary behind either
      out.close();
      std::remove(tmp.c_str());
      throw;
    }
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot move the finished file into place");
  }
}

// Checks, before any work, that `path` can be written (its folder exists and takes a new file),
// so that a long run does not fail at the end, and a command with several outputs does not
// write some of them and then fail on another.
inline void require_writable(const std::string& path, const std::string& what) {
  const std::string probe = path + ".tmp-lowbit-probe-" + std::to_string(::getpid());
  {
    std::ofstream out(probe, std::ios::binary | std::ios::trunc);
    if (!out)
      throw Error(what + " " + path +
                  ": cannot write there (does the folder exist, and is it writable?)");
  }
  std::remove(probe.c_str());
}

}  // namespace lowbit::io
