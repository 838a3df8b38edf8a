// Format names: every spelling parses to the one descriptor, prints back canonically, and bad
// names fail with a message that teaches the syntax.
#include <gtest/gtest.h>

#include "formats_under_test.h"
#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

TEST(FormatNames, NamedFormatsAndAliasesParse) {
  for (const NamedFormat& nf : named_formats()) {
    EXPECT_EQ(parse_format(nf.name), nf.format) << nf.name;
    EXPECT_EQ(format_name(nf.format), nf.name);
    for (const std::string& alias : nf.aliases) EXPECT_EQ(parse_format(alias), nf.format) << alias;
  }
  EXPECT_EQ(parse_format("FLOAT8_E4M3FN"), formats::e4m3fn);  // case-insensitive
  EXPECT_EQ(parse_format("e8m7"), formats::bf16);             // generic spelling of a named one
  EXPECT_EQ(parse_format("e5m2:bias=16:specials=fnuz"), formats::e5m2fnuz);
  EXPECT_EQ(parse_format("e4m3:specials=fn"), formats::e4m3fn);
  EXPECT_EQ(parse_format("e8m0:unsigned:specials=fn:zero=off"), formats::e8m0fnu);
  EXPECT_EQ(parse_format("int12"), Format::integer(12, true));
  EXPECT_EQ(parse_format("uint16"), Format::integer(16, false));
}

TEST(FormatNames, GenericOptions) {
  const Format f = parse_format("e5m2:bias=16:specials=none:subnormals=off");
  EXPECT_EQ(f.exp_bits, 5);
  EXPECT_EQ(f.man_bits, 2);
  EXPECT_EQ(f.bias, 16);
  EXPECT_EQ(f.specials, Specials::None);
  EXPECT_EQ(f.low, LowBinade::Flush);
  EXPECT_EQ(format_name(f), "e5m2:bias=16:specials=none:subnormals=off");
  EXPECT_EQ(parse_format("e4m3fn:subnormals=off").low, LowBinade::Flush);
  EXPECT_EQ(parse_format("e3m2").bias, 3);
  EXPECT_FALSE(parse_format("e3m2:unsigned").is_signed);
}

TEST(FormatNames, CanonicalNameRoundTrips) {
  for (const Format& f : testing::formats_under_test())
    EXPECT_EQ(parse_format(format_name(f)), f) << format_name(f);
}

TEST(FormatNames, Codebooks) {
  const Format a = parse_format("lut:-1,0,0.5,2");
  const Format b = make_codebook({-1.0f, 0.0f, 0.5f, 2.0f});
  EXPECT_EQ(a, b);  // interned: same values, same descriptor
  EXPECT_EQ(a.bits(), 2);
  EXPECT_TRUE(a.is_signed);
  EXPECT_EQ(format_name(a), "lut:-1,0,0.5,2");
  EXPECT_EQ(make_codebook(std::vector<float>(kNF4Values, kNF4Values + 16)), formats::nf4);
  EXPECT_THROW(parse_format("lut:1,0"), Error);      // not increasing
  EXPECT_THROW(parse_format("lut:1"), Error);        // too few
  EXPECT_THROW(parse_format("lut:1,x"), Error);      // not a number
  EXPECT_THROW(parse_format("lut:1e-20,1"), Error);  // midpoint not exact
  EXPECT_THROW(make_codebook(std::vector<float>(300, 1.0f)), Error);
}

TEST(FormatNames, InvalidNamesExplainThemselves) {
  for (const char* bad : {"e4m3x", "fp9", "", "e9m2", "e4m11", "e5m0", "e4m3:specials=odd",
                          "e4m3:bias=x", "e4m3:frobnicate", "int1", "int17", "int4:asym",
                          "e3m2:unsigned:specials=fnuz", "e8m7:bias=200", "e8m7:bias=-10",
                          "e1m0:specials=fn", "nf4:bias=3", "e4m3:zero=off:subnormals=on"}) {
    try {
      parse_format(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("e4m3fn"), std::string::npos) << msg;  // lists the known names
      EXPECT_NE(msg.find("eXmY"), std::string::npos) << msg;    // and the generic syntax
    }
  }
}

TEST(FormatLimits, DerivedFromTheFields) {
  using namespace formats;
  EXPECT_EQ(finite_value_count(e4m3fn), 253u);  // 256 codes - 2 NaN - duplicate zero
  EXPECT_EQ(finite_value_count(e5m2), 247u);    // 256 - 6 NaN - 2 inf - duplicate zero
  EXPECT_EQ(finite_value_count(e2m1fn), 15u);
  EXPECT_EQ(finite_value_count(e4m3fnuz), 255u);
  EXPECT_EQ(finite_value_count(e8m0fnu), 255u);
  EXPECT_EQ(finite_value_count(int4), 16u);
  EXPECT_EQ(finite_value_count(nf4), 16u);
  EXPECT_EQ(finite_value_count(parse_format("e5m2:subnormals=off")), 247u - 6u);
  EXPECT_EQ(min_normal(e4m3fn), 0x1p-6);
  EXPECT_EQ(epsilon(e4m3fn), 0.125);
  EXPECT_EQ(epsilon(bf16), 0x1p-7);
  EXPECT_EQ(min_positive(parse_format("e5m2:subnormals=off")), 0x1p-14);
  EXPECT_EQ(min_subnormal(e8m0fnu), 0.0);
  EXPECT_EQ(formats::e8m0fnu.bits(), 8);
  EXPECT_EQ(formats::nf4.bits(), 4);
  EXPECT_EQ(parse_format("e8m10").bits(), 19);
}

TEST(RoundModeNames, ParseAndPrint) {
  for (RoundMode m : {RoundMode::NearestEven, RoundMode::NearestAway, RoundMode::TowardZero,
                      RoundMode::Up, RoundMode::Down, RoundMode::Stochastic})
    EXPECT_EQ(parse_round_mode(round_mode_name(m)), m);
  EXPECT_EQ(parse_round_mode("rne"), RoundMode::NearestEven);
  EXPECT_EQ(parse_round_mode("sr"), RoundMode::Stochastic);
  EXPECT_THROW(parse_round_mode("banker"), Error);
}

}  // namespace
}  // namespace lowbit
