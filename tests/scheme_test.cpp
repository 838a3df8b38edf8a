// Scheme strings: presets, the long spelling, canonical printing, and clear errors.
#include <gtest/gtest.h>

#include "lowbit/quant/scheme.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

TEST(Schemes, PresetsParseAndPrintBack) {
  for (const NamedScheme& ns : named_schemes()) {
    const Scheme s = parse_scheme(ns.name);
    EXPECT_EQ(scheme_name(s), ns.name);
    EXPECT_EQ(s, parse_scheme(ns.definition)) << ns.name;
    EXPECT_NO_THROW(validate_scheme(s)) << ns.name;
  }
  const Scheme mx = parse_scheme("mxfp4");
  EXPECT_EQ(mx.element, formats::e2m1fn);
  EXPECT_EQ(mx.granularity, Granularity::Group);
  EXPECT_EQ(mx.group, 32);
  EXPECT_EQ(mx.axis, -1);
  EXPECT_FALSE(mx.scale_is_f32);
  EXPECT_EQ(mx.scale_format, formats::e8m0fnu);
  EXPECT_TRUE(mx.pow2);
  EXPECT_EQ(mx.pow2_rounding, Pow2Rounding::Floor);
  const Scheme nv = parse_scheme("nvfp4");
  EXPECT_EQ(nv.group, 16);
  EXPECT_EQ(nv.scale_format, formats::e4m3fn);
  EXPECT_TRUE(nv.global_scale);
  EXPECT_FALSE(nv.pow2);
}

TEST(Schemes, LongSpellingsPrintBackUnchanged) {
  for (const char* text : {"int4:g128:asym",
                           "e4m3fn:channel",
                           "e2m1fn:g16:scale=e4m3fn:global",
                           "e4m3fn:tensor",
                           "e4m3fn:token",
                           "nf4:g64",
                           "int8:channel:axis=1",
                           "e4m3fn:g128:axis=0",
                           "e4m3fn:block128x128",
                           "e2m1fn:g32:scale=e8m0fnu:pow2=ceil",
                           "e2m1fn:g32:scale=e8m0fnu:pow2=nearest",
                           "int4:g32:pow2",
                           "e4m3fn:g32:mse",
                           "int4:g128:mse:asym",
                           "e4m3fn:channel:percentile=99.5",
                           "e4m3fn:tensor:fixed=0.25",
                           "e2m1fn:g32:scale=bf16",
                           "e4m3fn:g32:round=stochastic:seed=7",
                           "e5m2:bias=16:g32",
                           "lut:-1,0,1:g8"}) {
    const Scheme s = parse_scheme(text);
    EXPECT_EQ(scheme_name(s), text);
    EXPECT_EQ(parse_scheme(scheme_name(s)), s);
  }
  EXPECT_EQ(parse_scheme("e2m1fn:g16:scale=e4m3fn:global"), parse_scheme("nvfp4"));
  EXPECT_EQ(parse_scheme("e4m3fn:g32:scale=e8m0fnu"), parse_scheme("mxfp8_e4m3"));
}

TEST(Schemes, InvalidSchemesExplainThemselves) {
  for (const char* bad :
       {"mxfp5", "e4m3fn:g0", "e4m3fn:gx", "e4m3fn:blockx2", "e4m3fn:frob", "e4m3fn:asym",
        "e4m3fn:g32:global", "int4:g32:asym:pow2", "fp9:g32", "e4m3fn:scale=fp9",
        "e4m3fn:percentile=200", "e4m3fn:fixed=-1", "int16:g32:asym", "e4m3fn:round=banker",
        "e8m10:g32", "e4m3fn:scale=int8"}) {
    try {
      parse_scheme(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("mxfp4"), std::string::npos) << msg;   // lists the presets
      EXPECT_NE(msg.find("Syntax"), std::string::npos) << msg;  // and the syntax
    }
  }
}

TEST(Schemes, ElementLimits) {
  EXPECT_EQ(element_emax(formats::e4m3fn), 8);
  EXPECT_EQ(element_emax(formats::e5m2), 15);
  EXPECT_EQ(element_emax(formats::e2m3fn), 2);
  EXPECT_EQ(element_emax(formats::e3m2fn), 4);
  EXPECT_EQ(element_emax(formats::e2m1fn), 2);
  EXPECT_EQ(element_emax(formats::int8), 6);  // MXINT8's 1.6 fixed point: the same scale
  EXPECT_EQ(element_max(parse_scheme("int8:channel")), 127.0);  // symmetric: not 128
  EXPECT_EQ(element_max(parse_scheme("int4:g128:asym")), 15.0);
  EXPECT_EQ(element_max(parse_scheme("nf4_g64")), 1.0);
}

}  // namespace
}  // namespace lowbit
