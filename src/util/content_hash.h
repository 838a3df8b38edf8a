// Content hashes for cache keys and checksums: XXH3-128 (libxxhash) over bytes, so that a
// cache entry is keyed by what a result depends on, never by a file's name.
#pragma once

#include <xxhash.h>

#include <string>
#include <string_view>

namespace lowbit::util {

// Incremental XXH3-128; hex() gives 32 lowercase hex digits.
class ContentHash {
 public:
  ContentHash() : state_(XXH3_createState()) { XXH3_128bits_reset(state_); }
  ~ContentHash() { XXH3_freeState(state_); }
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;

  void bytes(const void* data, size_t n) { XXH3_128bits_update(state_, data, n); }
  // A string with its length first, so that concatenations of different parts never collide.
  void text(std::string_view s) {
    const uint64_t n = s.size();
    bytes(&n, sizeof n);
    bytes(s.data(), s.size());
  }
  XXH128_hash_t digest() const { return XXH3_128bits_digest(state_); }
  std::string hex() const {
    const XXH128_hash_t h = digest();
    char out[33];
    std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                  static_cast<unsigned long long>(h.low64));
    return out;
  }

 private:
  XXH3_state_t* state_;
};

inline std::string content_hash(std::string_view s) {
  ContentHash h;
  h.bytes(s.data(), s.size());
  return h.hex();
}

}  // namespace lowbit::util
