// Lays quantized weights out for the packed-weight kernels (see lowbit/kernels/matmul.h).
#include "lowbit/quant/packed_weight.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/format/reference.h"
#include "lowbit/quant/group_layout.h"
#include "lowbit/quant/packing.h"
#include "lowbit/util/error.h"
#include "quant/integer_levels.h"

namespace lowbit {
namespace {

using kernels::PackedMatrix;
using kernels::WeightCoding;

std::string element_name(const Scheme& s) {
  return format_name(s.element);
}

// How the scheme's groups map onto (row, kernel group): the kernel group length along a row and
// the scheme group of (r, kg).
struct GroupMap {
  size_t group = 0;  // kernel group length (padded_cols: one per row)
  std::string gap;   // why the kernels cannot take the scheme here ("" when they can)
  quant::GroupLayout layout;

  size_t scheme_group(size_t r, size_t kg) const {
    if (!layout.contiguous)  // 2-D blocks (one batch)
      return (r / layout.block_rows) * layout.tiles_c + std::min(kg, layout.tiles_c - 1);
    if (layout.rows == 1) return 0;  // one scale for the tensor
    return r * layout.groups_per_row + std::min(kg, layout.groups_per_row - 1);
  }
};

// Why the kernels cannot take the scheme's elements, or "".
std::string element_gap(const Scheme& s) {
  if (s.element.bits() <= 8) return "";
  return "elements of " + std::to_string(s.element.bits()) +
         " bits (the kernels take up to 8; keep the weight as float32 or bf16)";
}

GroupMap map_groups(const Scheme& s, size_t rows, size_t cols) {
  GroupMap m;
  if (s.ggml) {  // llama.cpp runs these (lowbit export); lowbit emulates them
    m.gap = "ggml's block types run emulated (export them to llama.cpp to run them)";
    return m;
  }
  m.gap = element_gap(s);
  if (!m.gap.empty()) return m;
  try {
    m.layout = quant::make_group_layout(s, {rows, cols});
  } catch (const Error& e) {
    m.gap = e.what();
    return m;
  }
  const quant::GroupLayout& l = m.layout;
  size_t along = 0;  // scale run along a row
  if (l.contiguous && l.rows == 1 && rows > 1) {
    along = cols;  // per tensor
  } else if (l.contiguous && l.row_len == cols) {
    along = l.group_len;  // per output channel, or groups along the input axis
  } else if (!l.contiguous && l.box_kind == quant::GroupLayout::BoxKind::Block2D &&
             l.tiles_r * l.tiles_c == l.group_count) {
    along = l.block_cols;
  } else {
    m.gap =
        "its scales run along the output axis (the kernels take one scale per output row, or "
        "per group along the input axis: e.g. " +
        element_name(s) + ":channel or " + element_name(s) + ":g32)";
    return m;
  }
  if (along >= cols) {
    m.group = PackedMatrix::padded_width(cols);
  } else if (along == 16 || along % PackedMatrix::kBlock == 0) {
    m.group = along;
  } else {
    m.gap = "groups of " + std::to_string(along) +
            " (the kernels take groups of 16 or a multiple of 32: e.g. " + element_name(s) + ":g" +
            std::to_string(along < 32 ? (along < 16 ? 16 : 32) : along / 32 * 32) + ")";
  }
  return m;
}

// The table-free decode of 5- to 8-bit codes, where the format allows one.
kernels::ByteDecode byte_decode(const Scheme& s, kernels::MinifloatDecode& mf) {
  const Format& f = s.element;
  if (f.kind == FormatKind::Int && f.int_bits == 8)
    return s.asymmetric || !f.is_signed ? kernels::ByteDecode::Unsigned
                                        : kernels::ByteDecode::Signed;
  if (s.asymmetric || f.kind != FormatKind::Float || !f.is_signed ||
      f.low != LowBinade::Subnormal || f.specials == Specials::FNUZ)
    return kernels::ByteDecode::Table;
  mf.man_bits = f.man_bits;
  mf.magnitude_bits = f.exp_bits + f.man_bits;
  mf.exponent_offset = uint32_t(127 - f.bias) << 23;
  mf.subnormal_unit = std::ldexp(1.0f, 1 - f.bias - f.man_bits);
  const int all_ones = (1 << mf.magnitude_bits) - 1;
  if (f.specials == Specials::FN) mf.nan_magnitude = all_ones;
  if (f.specials == Specials::IEEE) mf.special_from = ((1 << f.exp_bits) - 1) << f.man_bits;
  // Float32 holds the field placement when E fits its exponent and M its mantissa.
  if (f.exp_bits > 8 || f.man_bits > 23 || f.bias > 127) return kernels::ByteDecode::Table;
  return kernels::ByteDecode::Minifloat;
}

// The bf16 magnitude table of a Lut8 sign-magnitude format, when every value is a bfloat16 (at
// most 7 mantissa bits, an exponent in bfloat16's range: fp8 e4m3 / e5m2 / e3m4) and the sign
// bit negates.
void bf16_magnitudes(PackedMatrix& m) {
  for (size_t c = 0; c < 128; ++c) {
    const float v = m.lut[c], negative = m.lut[c | 128];
    uint32_t bits, neg_bits;
    std::memcpy(&bits, &v, 4);
    std::memcpy(&neg_bits, &negative, 4);
    const bool exact = (bits & 0xFFFFu) == 0 || std::isnan(v);
    if (!exact || (std::isnan(v) ? !std::isnan(negative) : neg_bits != (bits ^ 0x80000000u)))
      return;
    m.bf16_magnitudes[c] = std::isnan(v) ? uint16_t(0x7FC0) : uint16_t(bits >> 16);
  }
  m.has_bf16_magnitudes = true;
}

}  // namespace

std::string packed_kernel_gap(const Scheme& s, size_t rows, size_t cols) {
  return map_groups(s, rows, cols).gap;
}

kernels::PackedMatrix pack_weight(const QTensor& q) {
  if (q.shape.size() != 2) throw Error("pack_weight: the kernels take 2-D [out, in] weights");
  const Scheme& s = q.scheme;
  const size_t rows = q.shape[0], cols = q.shape[1];
  const GroupMap map = map_groups(s, rows, cols);
  if (!map.gap.empty()) throw Error("no packed kernel for " + scheme_name(s) + ": " + map.gap);

  PackedMatrix m;
  m.scheme = scheme_name(s);
  m.rows = rows;
  m.cols = cols;
  m.padded_cols = PackedMatrix::padded_width(cols);
  m.group = map.group;
  m.groups_per_row = (m.padded_cols + m.group - 1) / m.group;
  const int bits = s.element.bits();
  m.coding = bits <= 4   ? WeightCoding::Lut4
             : bits == 6 ? WeightCoding::Split6  // FP6 at 6 bits, not a byte
                         : WeightCoding::Lut8;
  m.row_bytes = PackedMatrix::row_bytes_of(m.coding, m.padded_cols);

  // Element values: the decoded codes, or for asymmetric integers the unsigned level itself (the
  // zero point is the offset).
  const uint32_t codes = uint32_t(1) << bits;
  float pad_magnitude = INFINITY;
  uint8_t pad_code = 0;  // the finite value of least magnitude pads the rows
  for (uint32_t c = 0; c < codes; ++c) {
    m.lut[c] = s.asymmetric ? float(c) : ref::decode(s.element, c);
    if (std::isfinite(m.lut[c]) && std::fabs(m.lut[c]) < pad_magnitude) {
      pad_magnitude = std::fabs(m.lut[c]);
      pad_code = uint8_t(c);
    }
  }

  if (m.coding != WeightCoding::Lut4) m.byte_decode = byte_decode(s, m.minifloat);
  if (m.coding == WeightCoding::Lut8 && m.byte_decode == kernels::ByteDecode::Minifloat)
    bf16_magnitudes(m);
  // The W4A8 kernels' integer table (int4, e2m1, int3 ...; not nf4); levels up to 63 keep the
  // shifted table of the unsigned-by-signed byte multiply within a byte.
  if (m.coding == WeightCoding::Lut4 && !s.asymmetric)
    m.has_int_lut = quant::integer_levels(m.lut.data(), 16, -63, 63, m.lut_int.data(), m.int_unit);

  std::vector<uint8_t> flat(q.numel());
  unpack_codes(q.codes.data(), flat.size(), bits, flat.data());
  m.codes.assign(rows * m.row_bytes, 0);
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* row = m.codes.data() + r * m.row_bytes;
    for (size_t c = 0; c < m.padded_cols; ++c) {
      const uint8_t code = c < cols ? flat[r * cols + c] : pad_code;
      const size_t b = c / PackedMatrix::kBlock, j = c % PackedMatrix::kBlock;
      switch (m.coding) {
        case WeightCoding::Lut8:
          row[c] = code;
          break;
        case WeightCoding::Lut4:
          row[b * 16 + j % 16] |= uint8_t(j < 16 ? code : code << 4);
          break;
        case WeightCoding::Split6: {  // the layout matmul.h defines
          uint8_t* block = row + b * PackedMatrix::kSplit6BlockBytes;
          const uint8_t high = uint8_t(code >> 2), k = uint8_t(j % 16);
          block[j % 16] |= uint8_t(j < 16 ? high : high << 4);
          block[16 + (j / 16) * 4 + k / 4] |= uint8_t((code & 3u) << (2 * (k % 4)));
          break;
        }
        case WeightCoding::BF16:
        case WeightCoding::F16:
          break;  // quantized weights are never 2-byte codings
      }
    }
  }

  // Scales: 8-bit scale codes with their decoded values where the scale format allows, else the
  // effective float32 scale of each group.
  const size_t groups = rows * m.groups_per_row;
  // (A dividing tensor scale, :global=div, is kept as effective scales: the kernels multiply.)
  const bool coded = !s.scale_is_f32 && s.scale_format.bits() <= 8 && !s.global_divides;
  if (coded) {
    m.scale_codes.resize(groups);
    for (uint32_t c = 0; c < (uint32_t(1) << s.scale_format.bits()); ++c)
      m.scale_lut[c] = ref::decode(s.scale_format, c);
    m.has_global = s.global_scale;
    m.global = q.global_scale;
  } else {
    m.scales.resize(groups);
  }
  if (s.asymmetric) m.offsets.resize(groups);
  for (size_t r = 0; r < rows; ++r)
    for (size_t kg = 0; kg < m.groups_per_row; ++kg) {
      const size_t g = map.scheme_group(r, kg), k = r * m.groups_per_row + kg;
      if (coded)
        m.scale_codes[k] = uint8_t(q.scales.at(g));
      else
        m.scales[k] = q.group_scale(g);
      if (s.asymmetric) m.offsets[k] = float(q.zero_points.at(g));
    }
  kernels::validate(m);
  return m;
}

namespace {

// Rows of `chunk` appended to `m` (the same scheme, columns and scale layout).
void append_rows(PackedMatrix& m, const PackedMatrix& chunk) {
  m.codes.insert(m.codes.end(), chunk.codes.begin(), chunk.codes.end());
  m.scales.insert(m.scales.end(), chunk.scales.begin(), chunk.scales.end());
  m.scale_codes.insert(m.scale_codes.end(), chunk.scale_codes.begin(), chunk.scale_codes.end());
  m.offsets.insert(m.offsets.end(), chunk.offsets.begin(), chunk.offsets.end());
  m.rows += chunk.rows;
}

// Rows per quantized chunk: about 1 MiB of float32, whole 2-D blocks; 0 when the scheme's
// groups span rows (one chunk: the whole tensor).
size_t chunk_rows(const Scheme& s, size_t cols) {
  const size_t target = std::max<size_t>(1, (size_t(1) << 18) / std::max<size_t>(1, cols));
  switch (s.granularity) {
    case Granularity::Channel:
      return s.axis == 0 ? target : 0;
    case Granularity::Group:
      return s.axis == -1 || s.axis == 1 ? target : 0;
    case Granularity::Block2D:
      return (target + size_t(s.block_rows) - 1) / size_t(s.block_rows) * size_t(s.block_rows);
    case Granularity::Token:
      return target;
    case Granularity::Tensor:
      break;
  }
  return 0;
}

}  // namespace

kernels::PackedMatrix pack_weight_rows(const Scheme& s, size_t rows, size_t cols,
                                       const RowReader& read, float* global_scale) {
  if (const std::string gap = packed_kernel_gap(s, rows, cols); !gap.empty())
    throw Error("no packed kernel for " + scheme_name(s) + ": " + gap);
  const size_t step = chunk_rows(s, cols);
  std::vector<float> buf;
  if (step == 0 || step >= rows) {  // one chunk
    buf.resize(rows * cols);
    read(0, rows, buf.data());
    const QTensor q = quantize(s, buf.data(), {rows, cols});
    if (global_scale) *global_scale = q.global_scale;
    return pack_weight(q);
  }
  buf.resize(step * cols);
  // The tensor scale of a two-level scheme depends only on the tensor's largest magnitude (NaN
  // and inf included, as tensor_global_scale sees them).
  float global = 1.0f;
  if (s.global_scale) {
    float top = 0.0f;
    for (size_t r0 = 0; r0 < rows; r0 += step) {
      const size_t n = std::min(step, rows - r0);
      read(r0, r0 + n, buf.data());
      for (size_t i = 0; i < n * cols; ++i)
        if (!(std::fabs(buf[i]) <= top)) top = std::isnan(buf[i]) ? NAN : std::fabs(buf[i]);
      if (std::isnan(top)) break;
    }
    global = tensor_global_scale(s, &top, 1);
  }
  if (global_scale) *global_scale = global;
  PackedMatrix m;
  for (size_t r0 = 0; r0 < rows; r0 += step) {
    const size_t n = std::min(step, rows - r0);
    read(r0, r0 + n, buf.data());
    const PackedMatrix chunk = pack_weight(quantize(s, buf.data(), {n, cols}, global));
    if (r0 == 0) {
      m = chunk;
      m.codes.reserve(rows * chunk.row_bytes);
    } else {
      append_rows(m, chunk);
    }
  }
  kernels::validate(m);
  return m;
}

namespace {

// A 2-byte matrix with zero padding, each row's bits written by fill(r, row).
template <class Fill>
PackedMatrix half_matrix(size_t rows, size_t cols, WeightCoding coding, const Fill& fill) {
  PackedMatrix m;
  m.scheme = coding == WeightCoding::BF16 ? "bf16" : "f16";
  m.coding = coding;
  m.rows = rows;
  m.cols = cols;
  m.padded_cols = PackedMatrix::padded_width(cols);
  m.row_bytes = PackedMatrix::row_bytes_of(m.coding, m.padded_cols);
  m.codes.assign(rows * m.row_bytes, 0);
  std::vector<uint16_t> row(m.padded_cols, 0);
  for (size_t r = 0; r < rows; ++r) {
    fill(r, row.data());
    std::memcpy(m.codes.data() + r * m.row_bytes, row.data(), m.row_bytes);
  }
  kernels::validate(m);
  return m;
}

}  // namespace

kernels::PackedMatrix pack_bf16(const float* w, size_t rows, size_t cols) {
  return half_matrix(rows, cols, WeightCoding::BF16, [&](size_t r, uint16_t* row) {
    encode(formats::bf16, w + r * cols, cols, row);
  });
}

kernels::PackedMatrix pack_half(const void* bits, size_t rows, size_t cols, WeightCoding coding) {
  // memcpy from bytes: a file's tensor need not be 2-byte aligned.
  const uint8_t* bytes = static_cast<const uint8_t*>(bits);
  if (coding != WeightCoding::BF16 && coding != WeightCoding::F16)
    throw Error("pack_half: the coding must be BF16 or F16");
  return half_matrix(rows, cols, coding, [&](size_t r, uint16_t* row) {
    std::memcpy(row, bytes + r * cols * sizeof(uint16_t), cols * sizeof(uint16_t));
  });
}

}  // namespace lowbit
