// The .lbq container (see lowbit/qtensor_file.h and docs/quantization.md).
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lowbit/io/atomic_file.h"
#include "lowbit/io/qtensor_file.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/quant/packing.h"
#include "lowbit/util/error.h"

namespace lowbit {
namespace {

constexpr char kMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'Q', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kAlign = 64;

size_t align_up(size_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

int scale_plane_bits(const Scheme& s) {
  return s.scale_is_f32 ? 32 : s.scale_format.bits();
}

std::vector<uint8_t> pack_scales(const QTensor& q) {
  const int bits = scale_plane_bits(q.scheme);
  if (bits == 32) {
    std::vector<uint8_t> out(q.scales.size() * 4);
    std::memcpy(out.data(), q.scales.data(), out.size());  // little-endian float32 bits
    return out;
  }
  std::vector<uint16_t> codes(q.scales.begin(), q.scales.end());
  std::vector<uint8_t> out(packed_bytes(codes.size(), bits));
  pack_codes(codes.data(), codes.size(), bits, out.data());
  return out;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(path + ": not a usable .lbq file: " + what);
}

}  // namespace

void write_qtensor(const std::string& path, const QTensor& q) {
  // ggml_* schemes: the GGML blocks are the codes plane (bytes), with no scales plane.
  const std::vector<uint8_t> scales = q.scheme.ggml ? std::vector<uint8_t>{} : pack_scales(q);
  struct Plane {
    const char* name;
    const uint8_t* data;
    size_t bytes;
    int bits;
  };
  std::vector<Plane> planes = {
      {"codes", q.codes.data(), q.codes.size(), q.scheme.ggml ? 8 : q.scheme.element.bits()}};
  if (!q.scheme.ggml)
    planes.push_back({"scales", scales.data(), scales.size(), scale_plane_bits(q.scheme)});
  if (!q.zero_points.empty())
    planes.push_back({"zero_points", q.zero_points.data(), q.zero_points.size(), 8});

  nlohmann::json header;
  header["scheme"] = scheme_name(q.scheme);
  header["shape"] = q.shape;
  header["scale_shape"] = q.scale_shape;
  uint32_t global_bits;
  std::memcpy(&global_bits, &q.global_scale, 4);
  header["global_scale"] = q.global_scale;
  header["global_scale_bits"] = global_bits;
  // Offsets depend on the header's length, which depends on the offsets' digits: lay out the
  // planes after a header padded to a fixed, generous size.
  size_t header_room = 0;
  std::string text;
  for (int attempt = 0; attempt < 4; ++attempt) {
    size_t offset = align_up(16 + header_room);
    nlohmann::json plane_json = nlohmann::json::object();
    for (const Plane& p : planes) {
      plane_json[p.name] = {
          {"offset", offset}, {"bytes", p.bytes}, {"bits", p.bits}, {"layout", "lsb-first"}};
      offset = align_up(offset + p.bytes);
    }
    header["planes"] = plane_json;
    text = header.dump();
    if (text.size() <= header_room) break;
    header_room = text.size() + 64;
  }
  text.resize(header_room, ' ');

  io::write_file_atomically(path, [&](std::ostream& out) {
    out.write(kMagic, 8);
    const uint32_t fields[2] = {kVersion, uint32_t(text.size())};
    out.write(reinterpret_cast<const char*>(fields), 8);
    out.write(text.data(), std::streamsize(text.size()));
    size_t at = 16 + text.size();
    for (const Plane& p : planes) {
      const size_t offset = align_up(at);
      const std::string pad(offset - at, '\0');
      out.write(pad.data(), std::streamsize(pad.size()));
      out.write(reinterpret_cast<const char*>(p.data), std::streamsize(p.bytes));
      at = offset + p.bytes;
    }
  });
}

QTensor read_qtensor(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading");
  std::vector<char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (file.size() < 16) bad(path, "shorter than the 16-byte preamble");
  if (std::memcmp(file.data(), kMagic, 8) != 0) bad(path, "wrong magic (expected LOWBITQ)");
  uint32_t fields[2];
  std::memcpy(fields, file.data() + 8, 8);
  if (fields[0] != kVersion) bad(path, "unsupported version " + std::to_string(fields[0]));
  if (size_t(fields[1]) > file.size() - 16) bad(path, "header runs past the end of the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(std::string(file.data() + 16, fields[1]));
  } catch (const std::exception& e) {
    bad(path, std::string("malformed header: ") + e.what());
  }
  QTensor q;
  try {
    q.scheme = parse_scheme(header.at("scheme").get<std::string>());
    q.shape = header.at("shape").get<std::vector<size_t>>();
    q.scale_shape = header.at("scale_shape").get<std::vector<size_t>>();
    const uint32_t bits = header.at("global_scale_bits").get<uint32_t>();
    std::memcpy(&q.global_scale, &bits, 4);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    bad(path, std::string("header lacks or mistypes a field: ") + e.what());
  }
  size_t numel = 1;
  for (size_t d : q.shape) {
    if (d != 0 && numel > (size_t(1) << 40) / d) bad(path, "shape too large");
    numel *= d;
  }
  if (q.scheme.ggml) {  // the codes plane holds the rows' GGML blocks
    if (q.shape.empty() || !q.scale_shape.empty())
      bad(path, "a ggml_* tensor has rows and no scale_shape");
    const GgmlType t = ggml_storage_type(q.scheme, q.shape.back());
    const auto& planes = header.at("planes");
    if (!planes.contains("codes")) bad(path, "missing plane 'codes'");
    const size_t offset = planes["codes"].at("offset").get<size_t>(),
                 bytes = planes["codes"].at("bytes").get<size_t>();
    if (bytes != ggml_bytes(t, numel))
      bad(path, "plane 'codes' has " + std::to_string(bytes) + " bytes, " +
                    ggml_type_info(uint32_t(t))->name + " blocks need " +
                    std::to_string(ggml_bytes(t, numel)));
    if (offset > file.size() || bytes > file.size() - offset)
      bad(path, "plane 'codes' runs past the end of the file (truncated?)");
    q.codes.assign(file.begin() + std::ptrdiff_t(offset),
                   file.begin() + std::ptrdiff_t(offset + bytes));
    return q;
  }
  const quant::GroupLayout layout = quant::make_group_layout(q.scheme, q.shape);
  if (layout.scale_shape != q.scale_shape)
    bad(path, "scale_shape does not match the scheme and shape");
  const auto plane = [&](const char* name, size_t expected_bytes,
                         bool required) -> std::vector<uint8_t> {
    const auto& planes = header.at("planes");
    if (!planes.contains(name)) {
      if (required) bad(path, std::string("missing plane '") + name + "'");
      return {};
    }
    const size_t offset = planes[name].at("offset").get<size_t>(),
                 bytes = planes[name].at("bytes").get<size_t>();
    if (bytes != expected_bytes)
      bad(path, std::string("plane '") + name + "' has " + std::to_string(bytes) +
                    " bytes, the scheme needs " + std::to_string(expected_bytes));
    if (offset > file.size() || bytes > file.size() - offset)
      bad(path, std::string("plane '") + name + "' runs past the end of the file (truncated?)");
    return {file.begin() + std::ptrdiff_t(offset), file.begin() + std::ptrdiff_t(offset + bytes)};
  };
  try {
    q.codes = plane("codes", packed_bytes(numel, q.scheme.element.bits()), true);
    const int sbits = scale_plane_bits(q.scheme);
    const std::vector<uint8_t> scales =
        plane("scales",
              sbits == 32 ? layout.group_count * 4 : packed_bytes(layout.group_count, sbits), true);
    q.scales.resize(layout.group_count);
    if (sbits == 32) {
      std::memcpy(q.scales.data(), scales.data(), scales.size());
    } else {
      std::vector<uint16_t> codes(layout.group_count);
      unpack_codes(scales.data(), codes.size(), sbits, codes.data());
      std::copy(codes.begin(), codes.end(), q.scales.begin());
    }
    if (q.scheme.asymmetric) q.zero_points = plane("zero_points", layout.group_count, true);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    bad(path, std::string("malformed plane table: ") + e.what());
  }
  return q;
}

}  // namespace lowbit
