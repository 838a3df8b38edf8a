// The library's errors speak of the library ("the context length", "calibration data"); the CLI
// adds the flags that set those things, so a user reads what to type.
#pragma once

#include <string>
#include <utility>

namespace lowbit::cli {

inline std::string with_flag_names(const std::string& message) {
  // What a library message says -> the flag that sets it.
  static const std::pair<const char*, const char*> kFlags[] = {
      {"context length", "--ctx"},
      {"shorter context", "--ctx"},
      {"calibration data", "--calib TEXT"},
      {"calibration sequences", "--calib-seqs, --calib-len"},
      {"token budget", "--max-tokens"},
      {"top-k", "--top-k"},
      {"record the baseline again", "--save-baseline"},
      {"record one from the full-precision model", "--save-baseline"},
      {"per-layer statistics off", "--no-layers in sweep, no --layers in eval"},
      {"UTF-8 repair", "--repair-utf8"},
      {"model_sites()", "lowbit recipe --sites"},
      {"the shard", "--shard"},
  };
  std::string flags;
  for (const auto& [phrase, flag] : kFlags)
    if (message.find(phrase) != std::string::npos && flags.find(flag) == std::string::npos)
      flags += (flags.empty() ? "" : "; ") + std::string(phrase) + ": " + flag;
  return flags.empty() ? message : message + "\n  (on the command line: " + flags + ")";
}

}  // namespace lowbit::cli
