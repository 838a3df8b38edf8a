// Rounding-mode names.
#include "lowbit/format/rounding.h"

#include "lowbit/util/error.h"

namespace lowbit {

namespace {
struct ModeName {
  RoundMode mode;
  const char* names[3];
};
constexpr ModeName kModes[] = {
    {RoundMode::NearestEven, {"nearest-even", "rne", "nearest"}},
    {RoundMode::NearestAway, {"nearest-away", "rna", nullptr}},
    {RoundMode::TowardZero, {"toward-zero", "rtz", "truncate"}},
    {RoundMode::Up, {"up", "ceil", nullptr}},
    {RoundMode::Down, {"down", "floor", nullptr}},
    {RoundMode::Stochastic, {"stochastic", "sr", nullptr}},
};
}  // namespace

RoundMode parse_round_mode(std::string_view text) {
  for (const ModeName& m : kModes)
    for (const char* name : m.names)
      if (name != nullptr && text == name) return m.mode;
  throw Error("unknown rounding mode '" + std::string(text) +
              "': use nearest-even (rne), nearest-away (rna), toward-zero (rtz), up, down or "
              "stochastic (sr)");
}

const char* round_mode_name(RoundMode mode) {
  return kModes[int(mode)].names[0];
}

}  // namespace lowbit
