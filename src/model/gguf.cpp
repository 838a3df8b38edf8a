// GGUF reader and writer. The reader validates everything before trusting it: counts against the
// bytes that remain, string and array lengths, tensor ranks, types, shapes (no overflow, whole
// blocks), offsets (aligned, inside the data section), and duplicate names.
#include "lowbit/model/gguf.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "lowbit/io/atomic_file.h"
#include "lowbit/io/byte_reader.h"
#include "lowbit/io/mapped_file.h"
#include "lowbit/util/error.h"

namespace lowbit::model {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;        // nested arrays are legal; real files use none

size_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 8;  // at least the length/count field
  }
  return 0;
}

bool known_type(uint32_t t) {
  return t <= uint32_t(GgufType::F64);
}

std::string read_gguf_string(io::ByteReader& r, const char* what) {
  const auto n = r.read<uint64_t>(what);
  return r.read_string(n, what);
}

GgufValue read_value(io::ByteReader& r, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::U8:
      v.u = r.read<uint8_t>("a u8 value");
      break;
    case GgufType::I8:
      v.i = r.read<int8_t>("an i8 value");
      break;
    case GgufType::U16:
      v.u = r.read<uint16_t>("a u16 value");
      break;
    case GgufType::I16:
      v.i = r.read<int16_t>("an i16 value");
      break;
    case GgufType::U32:
      v.u = r.read<uint32_t>("a u32 value");
      break;
    case GgufType::I32:
      v.i = r.read<int32_t>("an i32 value");
      break;
    case GgufType::U64:
      v.u = r.read<uint64_t>("a u64 value");
      break;
    case GgufType::I64:
      v.i = r.read<int64_t>("an i64 value");
      break;
    case GgufType::F32:
      v.f = r.read<float>("an f32 value");
      break;
    case GgufType::F64:
      v.f = r.read<double>("an f64 value");
      break;
    case GgufType::BOOL: {
      const auto b = r.read<uint8_t>("a bool value");
      if (b > 1)
        r.fail("metadata key '" + key + "': bool value " + std::to_string(b) +
               " is neither 0 nor 1");
      v.b = b != 0;
      break;
    }
    case GgufType::STRING:
      v.str = read_gguf_string(r, "a string value");
      break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) r.fail("metadata key '" + key + "': arrays nested too deeply");
      const auto item = r.read<uint32_t>("an array item type");
      if (!known_type(item))
        r.fail("metadata key '" + key + "': unknown array item type " + std::to_string(item));
      v.item_type = GgufType(item);
      const auto count = r.read<uint64_t>("an array length");
      // Each item takes at least fixed_size bytes, so a count larger than that allows is a lie.
      if (count > r.remaining() / fixed_size(v.item_type))
        r.fail("metadata key '" + key + "': array claims " + std::to_string(count) +
               " items, more than the file could hold");
      v.items.reserve(size_t(count));
      for (uint64_t k = 0; k < count; ++k)
        v.items.push_back(read_value(r, v.item_type, key, depth + 1));
      break;
    }
  }
  return v;
}

void write_value(std::ostream& out, const GgufValue& v);

template <class T>
void put(std::ostream& out, T x) {
  out.write(reinterpret_cast<const char*>(&x), sizeof(T));
}
void put_string(std::ostream& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.write(s.data(), std::streamsize(s.size()));
}

void write_value(std::ostream& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::U8:
      put<uint8_t>(out, uint8_t(v.u));
      break;
    case GgufType::I8:
      put<int8_t>(out, int8_t(v.i));
      break;
    case GgufType::U16:
      put<uint16_t>(out, uint16_t(v.u));
      break;
    case GgufType::I16:
      put<int16_t>(out, int16_t(v.i));
      break;
    case GgufType::U32:
      put<uint32_t>(out, uint32_t(v.u));
      break;
    case GgufType::I32:
      put<int32_t>(out, int32_t(v.i));
      break;
    case GgufType::U64:
      put<uint64_t>(out, v.u);
      break;
    case GgufType::I64:
      put<int64_t>(out, v.i);
      break;
    case GgufType::F32:
      put<float>(out, float(v.f));
      break;
    case GgufType::F64:
      put<double>(out, v.f);
      break;
    case GgufType::BOOL:
      put<uint8_t>(out, v.b ? 1 : 0);
      break;
    case GgufType::STRING:
      put_string(out, v.str);
      break;
    case GgufType::ARRAY:
      put<uint32_t>(out, uint32_t(v.item_type));
      put<uint64_t>(out, v.items.size());
      for (const GgufValue& item : v.items) write_value(out, item);
      break;
  }
}

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  return known_type(uint32_t(t)) ? names[uint32_t(t)] : "unknown";
}

uint64_t ggml_tensor_bytes(GgmlType type, const std::vector<int64_t>& shape) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  if (!info) throw Error("unknown GGML tensor type " + std::to_string(uint32_t(type)));
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension");
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / 256 / uint64_t(d))
      throw Error("tensor element count overflows");
    n *= uint64_t(d);
  }
  const int64_t inner = shape.empty() ? 1 : shape.back();
  if (inner % info->block_elements != 0)
    throw Error(std::string("innermost dimension ") + std::to_string(inner) +
                " is not a multiple of the " + info->name + " block size " +
                std::to_string(info->block_elements));
  return n / info->block_elements * info->block_bytes;
}

// ---- GgufValue ----

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}
static bool is_unsigned(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}
double GgufValue::as_double() const {
  if (type == GgufType::F32 || type == GgufType::F64) return f;
  return is_unsigned(type) ? double(u) : double(i);
}
int64_t GgufValue::as_int() const {
  if (is_unsigned(type)) {
    if (u > uint64_t(std::numeric_limits<int64_t>::max()))
      throw Error("metadata integer too large");
    return int64_t(u);
  }
  return i;
}
std::string GgufValue::to_string(size_t max_items) const {
  std::ostringstream s;
  if (type == GgufType::STRING) {
    s << '"' << (str.size() > 60 ? str.substr(0, 60) + "..." : str) << '"';
  } else if (type == GgufType::BOOL) {
    s << (b ? "true" : "false");
  } else if (type == GgufType::ARRAY) {
    s << gguf_type_name(item_type) << "[" << items.size() << "] [";
    for (size_t k = 0; k < items.size() && k < max_items; ++k)
      s << (k ? ", " : "") << items[k].to_string(0);
    s << (items.size() > max_items ? ", ...]" : "]");
  } else if (is_integer()) {
    if (is_unsigned(type))
      s << u;
    else
      s << i;
  } else {
    s << f;
  }
  return s.str();
}
GgufValue GgufValue::of_u32(uint32_t v) {
  GgufValue x;
  x.type = GgufType::U32;
  x.u = v;
  return x;
}
GgufValue GgufValue::of_i32(int32_t v) {
  GgufValue x;
  x.type = GgufType::I32;
  x.i = v;
  return x;
}
GgufValue GgufValue::of_u64(uint64_t v) {
  GgufValue x;
  x.type = GgufType::U64;
  x.u = v;
  return x;
}
GgufValue GgufValue::of_f32(float v) {
  GgufValue x;
  x.type = GgufType::F32;
  x.f = v;
  return x;
}
GgufValue GgufValue::of_bool(bool v) {
  GgufValue x;
  x.type = GgufType::BOOL;
  x.b = v;
  return x;
}
GgufValue GgufValue::of_string(std::string v) {
  GgufValue x;
  x.type = GgufType::STRING;
  x.str = std::move(v);
  return x;
}
GgufValue GgufValue::of_strings(const std::vector<std::string>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.item_type = GgufType::STRING;
  for (const auto& s : v) x.items.push_back(of_string(s));
  return x;
}
GgufValue GgufValue::of_f32s(const std::vector<float>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.item_type = GgufType::F32;
  for (float f : v) x.items.push_back(of_f32(f));
  return x;
}
GgufValue GgufValue::of_i32s(const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.item_type = GgufType::I32;
  for (int32_t k : v) x.items.push_back(of_i32(k));
  return x;
}

// ---- GgufFile ----

GgufFile::GgufFile(const std::string& path) : path_(path) {
  auto file = std::make_shared<MappedFile>(path);
  io::ByteReader r(file->data(), file->size(), path + ": not a usable GGUF file");
  if (r.read<uint32_t>("the magic number") != kMagic)
    r.fail("bad magic (a GGUF file starts with \"GGUF\")");
  version_ = r.read<uint32_t>("the version");
  if (version_ != 2 && version_ != 3)
    r.fail("GGUF version " + std::to_string(version_) +
           " is not supported (lowbit reads versions 2 and 3)");
  const auto n_tensors = r.read<uint64_t>("the tensor count");
  const auto n_kv = r.read<uint64_t>("the metadata count");
  constexpr uint64_t kMinKv = 8 + 4 + 1, kMinTensorInfo = 8 + 4 + 4 + 8;
  if (n_kv > r.remaining() / kMinKv)
    r.fail("metadata count " + std::to_string(n_kv) + " is absurd for the file size");
  if (n_tensors > r.remaining() / kMinTensorInfo)
    r.fail("tensor count " + std::to_string(n_tensors) + " is absurd for the file size");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = read_gguf_string(r, "a metadata key");
    const auto type = r.read<uint32_t>("a metadata value type");
    if (!known_type(type))
      r.fail("metadata key '" + key + "' has unknown value type " + std::to_string(type));
    GgufValue v = read_value(r, GgufType(type), key, 0);
    if (key_index_.count(key)) r.fail("metadata key '" + key + "' appears twice");
    key_index_[key] = metadata_.size();
    metadata_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->as_int() <= 0 || (a->as_int() & (a->as_int() - 1)) != 0 ||
        a->as_int() > (1 << 20))
      r.fail("general.alignment must be a power of two (got " + a->to_string() + ")");
    alignment_ = uint64_t(a->as_int());
  }

  struct Info {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t type;
    uint64_t offset;
  };
  std::vector<Info> infos;
  infos.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Info info;
    info.name = read_gguf_string(r, "a tensor name");
    const auto n_dims = r.read<uint32_t>("a tensor rank");
    if (n_dims == 0 || n_dims > kMaxDims)
      r.fail("tensor '" + info.name + "' has rank " + std::to_string(n_dims) +
             " (GGUF allows 1 to 4)");
    std::vector<int64_t> ne(n_dims);
    for (auto& d : ne) {
      const auto v = r.read<uint64_t>("a tensor dimension");
      if (v > (uint64_t(1) << 40))
        r.fail("tensor '" + info.name + "' has an absurd dimension " + std::to_string(v));
      d = int64_t(v);
    }
    info.shape.assign(ne.rbegin(),
                      ne.rend());  // ne[0] is contiguous: it is the last row-major axis
    info.type = r.read<uint32_t>("a tensor type");
    info.offset = r.read<uint64_t>("a tensor offset");
    infos.push_back(std::move(info));
  }
  const uint64_t data_start = align_up(r.position(), alignment_);
  if (data_start > file->size())
    r.fail("the tensor data section starts beyond the end of the file (truncated?)");
  const uint64_t data_size = file->size() - data_start;

  for (Info& info : infos) {
    const std::string where = "tensor '" + info.name + "'";
    const GgmlTypeInfo* ti = ggml_type_info(info.type);
    if (!ti) r.fail(where + " has unknown type id " + std::to_string(info.type));
    uint64_t nbytes;
    try {
      nbytes = ggml_tensor_bytes(GgmlType(info.type), info.shape);
    } catch (const Error& e) {
      r.fail(where + ": " + e.what());
    }
    if (info.offset % alignment_ != 0)
      r.fail(where + " has offset " + std::to_string(info.offset) +
             ", not a multiple of the alignment " + std::to_string(alignment_));
    if (info.offset > data_size || nbytes > data_size - info.offset)
      r.fail(where + " (" + std::to_string(nbytes) + " bytes at data offset " +
             std::to_string(info.offset) + ") extends beyond the end of the file (" +
             std::to_string(data_size) +
             " data bytes): the file is truncated or its offsets are wrong");
    TensorView view;
    view.name = info.name;
    view.dtype = ti->name;
    if (ti->dequantizable) view.type = GgmlType(info.type);
    view.shape = info.shape;
    view.data = file->data() + data_start + info.offset;
    view.nbytes = size_t(nbytes);
    view.file = path;
    try {
      store_.add(std::move(view));
    } catch (const Error& e) {
      r.fail(e.what());
    }
  }
  const MappedFile* raw = file.get();
  store_.set_page_releaser([raw] { raw->release_pages(); });
  store_.keep_alive(std::move(file));
}

void GgufFile::drop_metadata(const std::string& prefix) {
  std::vector<std::pair<std::string, GgufValue>> kept;
  for (auto& entry : metadata_)
    if (entry.first.compare(0, prefix.size(), prefix) != 0) kept.push_back(std::move(entry));
  metadata_ = std::move(kept);
  key_index_.clear();
  for (size_t i = 0; i < metadata_.size(); ++i) key_index_[metadata_[i].first] = i;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw Error(path_ + ": metadata key '" + key + "' is missing");
  if (!v->is_integer()) throw Error(path_ + ": metadata key '" + key + "' is not an integer");
  return v->as_int();
}
int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}
double GgufFile::get_float(const std::string& key, double fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) throw Error(path_ + ": metadata key '" + key + "' is not a number");
  return v->as_double();
}
std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (v->type != GgufType::STRING)
    throw Error(path_ + ": metadata key '" + key + "' is not a string");
  return v->str;
}
std::vector<std::string> GgufFile::get_strings(const std::string& key) const {
  std::vector<std::string> out;
  const GgufValue* v = find(key);
  if (!v) return out;
  if (v->type != GgufType::ARRAY || v->item_type != GgufType::STRING)
    throw Error(path_ + ": metadata key '" + key + "' is not an array of strings");
  out.reserve(v->items.size());
  for (const GgufValue& item : v->items) out.push_back(item.str);
  return out;
}
std::vector<double> GgufFile::get_numbers(const std::string& key) const {
  std::vector<double> out;
  const GgufValue* v = find(key);
  if (!v) return out;
  if (v->type != GgufType::ARRAY)
    throw Error(path_ + ": metadata key '" + key + "' is not an array");
  out.reserve(v->items.size());
  for (const GgufValue& item : v->items) {
    if (!item.is_number())
      throw Error(path_ + ": metadata key '" + key + "' is not an array of numbers");
    out.push_back(item.as_double());
  }
  return out;
}

// ---- GgufWriter ----

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : metadata_)
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& shape, std::vector<uint8_t> bytes) {
  if (shape.empty() || shape.size() > kMaxDims)
    throw Error("GGUF tensor '" + name + "': rank must be 1 to 4");
  if (bytes.size() != ggml_tensor_bytes(type, shape))
    throw Error("GGUF tensor '" + name + "': byte count does not match its type and shape");
  tensors_.push_back({name, type, shape, std::move(bytes)});
}

void GgufWriter::add_f32(const std::string& name, const std::vector<int64_t>& shape,
                         const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  add_tensor(name, GgmlType::F32, shape, std::move(bytes));
}

void GgufWriter::write(const std::string& path, uint64_t alignment) const {
  io::write_file_atomically(path, [&](std::ostream& out) {
    put<uint32_t>(out, kMagic);
    put<uint32_t>(out, 3);
    put<uint64_t>(out, tensors_.size());
    const bool custom_alignment = alignment != 32;
    put<uint64_t>(out, metadata_.size() + (custom_alignment ? 1 : 0));
    for (const auto& [key, value] : metadata_) {
      put_string(out, key);
      put<uint32_t>(out, uint32_t(value.type));
      write_value(out, value);
    }
    if (custom_alignment) {
      put_string(out, "general.alignment");
      put<uint32_t>(out, uint32_t(GgufType::U32));
      put<uint32_t>(out, uint32_t(alignment));
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      put_string(out, t.name);
      put<uint32_t>(out, uint32_t(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
        put<uint64_t>(out, uint64_t(*it));
      put<uint32_t>(out, uint32_t(t.type));
      put<uint64_t>(out, offset);
      offset = align_up(offset + t.bytes.size(), alignment);
    }
    const auto pad_to = [&](uint64_t a) {
      const uint64_t pos = uint64_t(out.tellp());
      for (uint64_t k = pos; k < align_up(pos, a); ++k) out.put('\0');
    };
    pad_to(alignment);
    for (const Tensor& t : tensors_) {
      out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
      pad_to(alignment);
    }
  });
}

}  // namespace lowbit::model
