// lowbit/format/reference.h — the scalar reference codecs: the definition every fast path must
// match bit for bit. Written for clarity (exact double arithmetic on values), not speed.
#pragma once

#include <cstdint>

#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"

namespace lowbit::ref {

// Code -> value. Bits of `code` above f.bits() are ignored. NaN codes decode to a quiet NaN
// (with the code's sign for IEEE/FN formats); codebook codes past the last value decode to NaN.
float decode(const Format& f, uint32_t code);

// Representable value -> code (exact; no rounding). NaN maps to the format's canonical NaN.
// Throws lowbit::Error when `value` is not a value of the format.
uint32_t encode_exact(const Format& f, float value);

// Any float -> the code of the value that `opt` rounds it to. `index` is the element's position
// in the stochastic stream (ignored by the other modes). Special inputs follow the table in
// docs/formats.md.
uint32_t round_to_code(const Format& f, float x, const RoundOptions& opt, uint64_t index = 0);

inline float round_to_value(const Format& f, float x, const RoundOptions& opt, uint64_t index = 0) {
  return decode(f, round_to_code(f, x, opt, index));
}

// The canonical NaN code (sign kept where the format has signed NaNs). Float formats with NaN only.
uint32_t nan_code(const Format& f, bool negative);

}  // namespace lowbit::ref
