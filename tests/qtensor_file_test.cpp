// The .lbq container: round trips for every kind of scheme, and clear errors for broken files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "lowbit/io/qtensor_file.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

using LbqTest = testing::TempDirTest;

std::vector<float> sample(size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * float(i)) * (1.0f + float(i % 13));
  return x;
}

TEST_F(LbqTest, RoundTripsEverySchemeKind) {
  const std::vector<size_t> shape = {6, 70};
  const std::vector<float> x = sample(420);
  for (const char* name :
       {"mxfp4", "nvfp4", "int4_g128", "nf4_g64", "fp8_channel", "mxfp6_e3m2",
        "e2m1fn:g32:scale=bf16", "e4m3fn:block4x32", "int3:g16:asym", "e5m2:g8:axis=0"}) {
    const Scheme s = parse_scheme(name);
    const QTensor q = quantize(s, x.data(), shape);
    write_qtensor(path("t.lbq"), q);
    const QTensor r = read_qtensor(path("t.lbq"));
    EXPECT_EQ(r.scheme, q.scheme) << name;
    EXPECT_EQ(r.shape, q.shape);
    EXPECT_EQ(r.scale_shape, q.scale_shape);
    EXPECT_EQ(r.codes, q.codes) << name;
    EXPECT_EQ(r.scales, q.scales) << name;
    EXPECT_EQ(r.zero_points, q.zero_points);
    EXPECT_EQ(r.global_scale, q.global_scale);
    std::vector<float> a(420), b(420);
    dequantize(q, a.data());
    dequantize(r, b.data());
    EXPECT_EQ(a, b) << name;
  }
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().extension(), ".lbq");
}

TEST_F(LbqTest, BrokenFilesAreClearErrors) {
  const std::vector<float> x = sample(64);
  write_qtensor(path("good.lbq"), quantize(parse_scheme("mxfp4"), x.data(), {64}));
  std::ifstream in(path("good.lbq"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(path(name), std::ios::binary) << bytes;
    return path(name);
  };
  const auto expect_error = [&](const std::string& file, const std::string& fragment) {
    try {
      read_qtensor(file);
      ADD_FAILURE() << "accepted " << file;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    }
  };
  expect_error(write("short.lbq", good.substr(0, 10)), "preamble");
  expect_error(write("magic.lbq", "X" + good.substr(1)), "magic");
  std::string version = good;
  version[8] = 9;
  expect_error(write("version.lbq", version), "version");
  expect_error(write("trunc.lbq", good.substr(0, good.size() - 5)), "past the end");
  std::string header = good;
  header[16] = '[';
  expect_error(write("header.lbq", header), "header");
  std::string shape = good;
  const size_t at = shape.find("\"shape\":[64]");
  ASSERT_NE(at, std::string::npos);
  std::string groups = shape;
  shape.replace(at, 12, "\"shape\":[50]");  // same groups, fewer codes
  expect_error(write("shape.lbq", shape), "bytes");
  groups.replace(at, 12, "\"shape\":[65]");  // one group more than the scales hold
  expect_error(write("groups.lbq", groups), "does not match");
  std::string huge = good;
  const size_t off = huge.find("\"offset\":");
  huge.replace(off, 9, "\"offset\":9");  // a far-away offset
  expect_error(write("offset.lbq", huge), "past the end");
  EXPECT_THROW(read_qtensor(path("missing.lbq")), Error);
}

}  // namespace
}  // namespace lowbit
