// .npy reading and writing: round trips, and every kind of malformed file gives a clear error
// naming the file, never a crash or an out-of-bounds read.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/io/npy.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

class NpyTest : public testing::TempDirTest {
 protected:
  // A file with the given preamble version, header text and payload size.
  std::string craft(const std::string& name, const std::string& header, size_t payload,
                    int version = 1, const std::string& magic = "\x93NUMPY") {
    std::ofstream out(path(name), std::ios::binary);
    out.write(magic.data(), std::streamsize(magic.size()));
    out.put(char(version));
    out.put(0);
    if (version == 1) {
      out.put(char(header.size() & 0xFF));
      out.put(char(header.size() >> 8));
    } else {
      for (int i = 0; i < 4; ++i) out.put(char((header.size() >> (8 * i)) & 0xFF));
    }
    out << header;
    for (size_t i = 0; i < payload; ++i) out.put(char(i));
    return path(name);
  }

  void expect_error(const std::string& file, const std::string& fragment) {
    try {
      read_npy(file);
      ADD_FAILURE() << "accepted " << file;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    }
  }
};

TEST_F(NpyTest, RoundTrips) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  write_npy(path("a.npy"), "<f4", {2, 3}, values.data(), values.size() * 4);
  const NpyArray a = read_npy(path("a.npy"));
  EXPECT_EQ(a.descr, "<f4");
  EXPECT_EQ(a.shape, (std::vector<size_t>{2, 3}));
  ASSERT_EQ(a.data.size(), 24u);
  EXPECT_EQ(0, std::memcmp(a.data.data(), values.data(), 24));

  const std::vector<uint8_t> codes = {1, 2, 3};
  write_npy(path("b.npy"), "|u1", {3}, codes.data(), 3);
  const NpyArray b = read_npy(path("b.npy"));
  EXPECT_EQ(b.shape, (std::vector<size_t>{3}));
  EXPECT_EQ(b.item_size(), 1u);
  EXPECT_EQ(b.data, codes);

  write_npy(path("c.npy"), "<f4", {}, values.data(), 4);  // 0-d
  EXPECT_EQ(read_npy(path("c.npy")).count(), 1u);
  write_npy(path("d.npy"), "<f4", {0, 5}, nullptr, 0);  // empty
  EXPECT_EQ(read_npy(path("d.npy")).count(), 0u);
  // Data starts on a 64-byte boundary, as numpy writes it.
  EXPECT_EQ(fs::file_size(path("a.npy")) % 64, 24u % 64);
  // No temporary file is left behind.
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos);
}

TEST_F(NpyTest, ReadsVersion2Headers) {
  const std::string f =
      craft("v2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8, 2);
  EXPECT_EQ(read_npy(f).count(), 2u);
}

TEST_F(NpyTest, MalformedFilesAreClearErrors) {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n";
  expect_error(craft("magic.npy", ok, 16, 1, "\x93NUMPZ"), "magic");
  expect_error(craft("trunc.npy", ok, 15), "truncated");
  expect_error(craft("padded.npy", ok, 17), "truncated or padded");
  expect_error(craft("version.npy", ok, 16, 7), "version 7");
  expect_error(craft("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", 16),
               "Fortran");
  expect_error(
      craft("bigendian.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", 16),
      "dtype");
  expect_error(
      craft("unknown.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", 16),
      "unknown header key");
  expect_error(craft("noshape.npy", "{'descr': '<f4', 'fortran_order': False}", 16), "lacks");
  expect_error(
      craft("badshape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", 16),
      "dimension");
  expect_error(craft("unterminated.npy", "{'descr': '<f4", 16), "unterminated");
  expect_error(
      craft("huge.npy",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
            16),
      "overflows");
  expect_error(craft("toolong.npy", std::string(100, ' '), 0), "header");
  {
    const std::string lying("\x93NUMPY\x01\x00\xff\xff{", 11);  // claims a 65535-byte header
    std::ofstream(path("lying.npy"), std::ios::binary) << lying;
  }
  expect_error(path("lying.npy"), "header length");
  { std::ofstream(path("empty.npy"), std::ios::binary); }
  expect_error(path("empty.npy"), "preamble");
  EXPECT_THROW(read_npy(path("missing.npy")), Error);
}

TEST_F(NpyTest, WriteToMissingFolderFails) {
  const float v = 1.0f;
  EXPECT_THROW(write_npy(path("no/such/dir/x.npy"), "<f4", {1}, &v, 4), Error);
}

}  // namespace
}  // namespace lowbit
