// libFuzzer target: the files the sweep trusts from disk. The input is read (1) as a results.json
// / cache entry, with its checksum made valid first so the parser behind the check is reached
// too, and as is; (2) as a baseline file, raw and with a valid checksum appended.
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "fuzz_input_file.h"
#include "lowbit/eval/embeddings.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/eval/sweep.h"
#include "lowbit/util/error.h"
#include "util/content_hash.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto attempt = [](const std::string& bytes, const char* suffix, bool results) {
    const std::string path = lowbit::fuzz::write_input(
        reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), suffix);
    try {
      if (results)
        (void)lowbit::eval::read_sweep_results(path);
      else
        (void)lowbit::eval::Baseline::load(path);
    } catch (const lowbit::Error&) {
    }
  };
  attempt(text, ".json", true);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {  // the checksum rule of sweep.cpp: XXH3-128 of the compact dump without it
    nlohmann::json fixed = j;
    fixed.erase("checksum");
    const std::string sum = lowbit::util::content_hash(fixed.dump());
    fixed["checksum"] = sum;
    attempt(fixed.dump(), ".json", true);
  }
  attempt(text, ".bin", false);
  std::string sealed = text;
  const XXH128_hash_t sum = XXH3_128bits(text.data(), text.size());
  sealed.append(reinterpret_cast<const char*>(&sum.high64), 8);
  sealed.append(reinterpret_cast<const char*>(&sum.low64), 8);
  attempt(sealed, ".bin", false);
  return 0;
}
