// GGUF and safetensors: round trips through our writers, every metadata type, sharded
// checkpoints, and malformed files (every truncation, bad magic, lying offsets, shapes and
// counts, unknown types) rejected with an error that names the file — never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lowbit/model/gguf.h"
#include "lowbit/model/safetensors.h"
#include "lowbit/util/error.h"
#include "temp_dir.h"

namespace lowbit::testing {
namespace {

using model::GgufType;
using model::GgufValue;

class ModelFilesTest : public TempDirTest {
 protected:
  std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  void write_bytes(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  // Expects loading `bytes` to throw a lowbit::Error whose message names the file.
  template <class Load>
  void expect_rejected(const std::string& bytes, Load load, const std::string& why) {
    const std::string p = path("broken.bin");
    write_bytes(p, bytes);
    try {
      load(p);
      ADD_FAILURE() << "accepted a malformed file: " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << why << ": " << e.what();
    }
  }
  std::string small_gguf() {
    model::GgufWriter w;
    w.set("general.architecture", GgufValue::of_string("test"));
    w.set("some.u32", GgufValue::of_u32(7));
    w.set("some.strings", GgufValue::of_strings({"a", "bb", ""}));
    w.add_f32("a", {2, 3}, {1, 2, 3, 4, 5, 6});
    w.add_f32("b", {4}, {-1, -2, -3, -4});
    w.write(path("small.gguf"));
    return read_bytes(path("small.gguf"));
  }
};

TEST_F(ModelFilesTest, GgufRoundTripsEveryMetadataType) {
  model::GgufWriter w;
  std::vector<std::pair<std::string, GgufValue>> values;
  const auto add = [&](const std::string& key, GgufValue v) {
    values.emplace_back(key, v);
    w.set(key, v);
  };
  GgufValue v;
  v.type = GgufType::U8;
  v.u = 200;
  add("u8", v);
  v = {};
  v.type = GgufType::I8;
  v.i = -100;
  add("i8", v);
  v = {};
  v.type = GgufType::U16;
  v.u = 60000;
  add("u16", v);
  v = {};
  v.type = GgufType::I16;
  v.i = -30000;
  add("i16", v);
  add("u32", GgufValue::of_u32(4000000000u));
  add("i32", GgufValue::of_i32(-2000000000));
  add("u64", GgufValue::of_u64(uint64_t(1) << 60));
  v = {};
  v.type = GgufType::I64;
  v.i = -(int64_t(1) << 60);
  add("i64", v);
  add("f32", GgufValue::of_f32(0.25f));
  v = {};
  v.type = GgufType::F64;
  v.f = 1e-300;
  add("f64", v);
  add("bool", GgufValue::of_bool(true));
  add("string", GgufValue::of_string("héllo"));
  add("strings", GgufValue::of_strings({"x", "", "zz"}));
  add("floats", GgufValue::of_f32s({1.5f, -2.0f}));
  GgufValue nested;
  nested.type = GgufType::ARRAY;
  nested.item_type = GgufType::ARRAY;
  nested.items = {GgufValue::of_i32s({1, 2}), GgufValue::of_i32s({3})};
  add("nested", nested);
  w.add_f32("t", {1}, {3.0f});
  w.write(path("all.gguf"), /*alignment=*/64);

  const model::GgufFile g(path("all.gguf"));
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 64u);
  for (const auto& [key, want] : values) {
    const GgufValue* got = g.find(key);
    ASSERT_TRUE(got) << key;
    EXPECT_EQ(got->type, want.type) << key;
    EXPECT_EQ(got->to_string(100), want.to_string(100)) << key;
  }
  EXPECT_EQ(g.get_int("u32"), 4000000000);
  EXPECT_EQ(g.get_int("i64"), -(int64_t(1) << 60));
  EXPECT_EQ(g.get_float("f32", 0), 0.25);
  EXPECT_EQ(g.get_string("string"), "héllo");
  EXPECT_EQ(g.get_strings("strings"), (std::vector<std::string>{"x", "", "zz"}));
  EXPECT_EQ(g.get_numbers("floats"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(g.find("nested")->items[1].items[0].i, 3);
  EXPECT_THROW(g.get_int("missing"), Error);
  EXPECT_THROW(g.get_int("string"), Error);
  EXPECT_EQ(g.get_int("missing", 5), 5);
  const model::TensorView& t = g.store().get("t");
  EXPECT_EQ(g.store().to_f32(t), std::vector<float>{3.0f});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u)
      << "tensor data must honour general.alignment";
}

TEST_F(ModelFilesTest, GgufShapesAreRowMajor) {
  small_gguf();
  const model::GgufFile g(path("small.gguf"));
  const model::TensorView& a = g.store().get("a");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.dtype, "F32");
  EXPECT_EQ(g.store().to_f32(a), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_THROW(g.store().to_f32("a", {3, 2}), Error);
  EXPECT_THROW(g.store().get("nope"), Error);
}

TEST_F(ModelFilesTest, GgufEveryTruncationIsAnError) {
  const std::string bytes = small_gguf();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    // Cutting only alignment padding after the last tensor's data leaves a complete file.
    const std::string p = path("cut.gguf");
    write_bytes(p, bytes.substr(0, cut));
    try {
      const model::GgufFile g(p);
      const model::TensorView& b = g.store().get("b");
      // Accepted: then every tensor must lie inside the file.
      EXPECT_LE(size_t(b.data - g.store().get("a").data) + b.nbytes, cut) << cut;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}

TEST_F(ModelFilesTest, GgufLiesAreRejected) {
  const std::string good = small_gguf();
  const auto load = [](const std::string& p) { model::GgufFile g(p); };
  std::string b = good;
  b[0] = 'X';
  expect_rejected(b, load, "bad magic");
  b = good;
  b[4] = 1;  // version 1
  expect_rejected(b, load, "version 1");
  b = good;
  b[4] = 9;
  expect_rejected(b, load, "version 9");
  b = good;
  std::memset(&b[8], 0xFF, 8);  // tensor count 2^64-1
  expect_rejected(b, load, "absurd tensor count");
  b = good;
  std::memset(&b[16], 0x7F, 8);  // metadata count
  expect_rejected(b, load, "absurd metadata count");
  // The first key's length field lies.
  b = good;
  std::memset(&b[24], 0x7F, 8);
  expect_rejected(b, load, "key length beyond the file");
  // Find the tensor infos from the end of the metadata: name "a" = u64 1, 'a', rank 2.
  const std::string info_a = std::string("\x01\0\0\0\0\0\0\0a\x02\0\0\0", 13);
  const size_t at = good.find(info_a);
  ASSERT_NE(at, std::string::npos);
  const size_t dims = at + 13, type = dims + 16, offset = type + 4;
  b = good;
  b[at + 9] = 9;  // rank 9
  expect_rejected(b, load, "rank 9");
  b = good;
  std::memset(&b[dims], 0x7F, 8);  // absurd dimension
  expect_rejected(b, load, "absurd dimension");
  b = good;
  b[dims] = 100;  // 100 x 2 floats: more than the file holds
  expect_rejected(b, load, "tensor extends beyond the file");
  b = good;
  b[type] = 77;
  expect_rejected(b, load, "unknown tensor type");
  b = good;
  b[type] = 2;  // Q4_0 with an inner dimension of 3: not whole blocks
  expect_rejected(b, load, "partial blocks");
  b = good;
  b[offset] = 4;  // not a multiple of the 32-byte alignment
  expect_rejected(b, load, "unaligned offset");
  b = good;
  std::memset(&b[offset], 0x40, 8);
  expect_rejected(b, load, "offset far beyond the file");
  // Both tensors named "a".
  b = good;
  const std::string info_b = std::string("\x01\0\0\0\0\0\0\0b\x01\0\0\0", 13);
  const size_t at_b = b.find(info_b);
  ASSERT_NE(at_b, std::string::npos);
  b[at_b + 8] = 'a';
  expect_rejected(b, load, "duplicate tensor name");
  // A metadata value of unknown type: the first key is general.architecture, a string (8).
  b = good;
  const size_t key_end = 24 + 8 + std::strlen("general.architecture");
  ASSERT_EQ(b[key_end], 8);
  b[key_end] = 42;
  expect_rejected(b, load, "unknown metadata type");
}

TEST_F(ModelFilesTest, SafetensorsRoundTripAndShards) {
  model::write_safetensors(path("one.safetensors"),
                           {{"w", {2, 2}, {1, 2, 3, 4}}, {"b", {3}, {5, 6, 7}}},
                           {{"format", "pt"}});
  const model::TensorStore s = model::load_safetensors(path("one.safetensors"));
  EXPECT_EQ(s.tensors().size(), 2u);
  EXPECT_EQ(s.to_f32("w", {2, 2}), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(s.to_f32("b", {3}), (std::vector<float>{5, 6, 7}));

  model::write_safetensors(path("model-1.safetensors"), {{"x", {2}, {1, 2}}});
  model::write_safetensors(path("model-2.safetensors"), {{"y", {1}, {3}}, {"unlisted", {1}, {9}}});
  nlohmann::json index = {
      {"weight_map", {{"x", "model-1.safetensors"}, {"y", "model-2.safetensors"}}}};
  std::ofstream(path("model.safetensors.index.json")) << index.dump();
  const model::TensorStore sharded = model::load_safetensors(dir_.string());
  EXPECT_EQ(sharded.to_f32("x", {2}), (std::vector<float>{1, 2}));
  EXPECT_EQ(sharded.to_f32("y", {1}), (std::vector<float>{3}));
  EXPECT_FALSE(sharded.find("unlisted"));
  // An index that lists a tensor its shard lacks.
  index["weight_map"]["z"] = "model-1.safetensors";
  std::ofstream(path("model.safetensors.index.json")) << index.dump();
  EXPECT_THROW(model::load_safetensors(dir_.string()), Error);
  index["weight_map"].erase("z");
  index["weight_map"]["x"] = "../elsewhere.safetensors";
  std::ofstream(path("model.safetensors.index.json")) << index.dump();
  EXPECT_THROW(model::load_safetensors(dir_.string()), Error);
}

TEST_F(ModelFilesTest, SafetensorsHalfTypesConvert) {
  // Hand-built: one F16 tensor [2] = {1.0, -2.5} and one BF16 [1] = {3.0}.
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}})";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(&bytes[0], &n, 8);
  bytes += header;
  bytes += std::string("\x00\x3C\x00\xC1\x40\x40", 6);  // 0x3C00, 0xC100, 0x4040
  write_bytes(path("h.safetensors"), bytes);
  const model::TensorStore s = model::load_safetensors(path("h.safetensors"));
  EXPECT_EQ(s.to_f32("h", {2}), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(s.to_f32("b", {1}), (std::vector<float>{3.0f}));
}

TEST_F(ModelFilesTest, SafetensorsLiesAreRejected) {
  const auto load = [](const std::string& p) { model::load_safetensors(p); };
  const auto with_header = [](const std::string& header, size_t data_bytes) {
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(&bytes[0], &n, 8);
    return bytes + header + std::string(data_bytes, '\0');
  };
  expect_rejected(std::string(4, '\0'), load, "shorter than the length field");
  std::string huge(16, '\0');
  std::memset(&huge[0], 0xFF, 8);
  expect_rejected(huge, load, "header length beyond the file");
  expect_rejected(with_header("{not json", 0), load, "malformed JSON");
  expect_rejected(with_header("[1,2]", 0), load, "header not an object");
  expect_rejected(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), load,
                  "truncated data");
  expect_rejected(with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), load,
                  "shape vs bytes");
  expect_rejected(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), load,
                  "reversed offsets");
  expect_rejected(with_header(R"({"t":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8), load,
                  "unknown dtype");
  expect_rejected(with_header(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                  load, "negative dim");
  expect_rejected(
      with_header(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                  8),
      load, "overflowing shape");
  expect_rejected(with_header(R"({"t":{"dtype":"F32","shape":[2]}})", 8), load, "no offsets");
  expect_rejected(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", 8),
                  load, "string offset");
  // Every truncation of a good file.
  model::write_safetensors(path("good.safetensors"), {{"w", {2, 2}, {1, 2, 3, 4}}});
  const std::string good = read_bytes(path("good.safetensors"));
  for (size_t cut = 0; cut < good.size(); ++cut)
    expect_rejected(good.substr(0, cut), load, "cut " + std::to_string(cut));
}

}  // namespace
}  // namespace lowbit::testing
