// Which elements form each group of a scheme on a tensor of a given shape.
//
// Two shapes of grouping cover every granularity:
//  * contiguous: the tensor is `rows` rows of `row_len` elements and each row is cut into groups
//    of `group_len` (the last one may be short) — per-tensor, per-token, per-channel along axis 0,
//    and groups along the last axis (the fast, common case);
//  * boxes: group k is a strided box of `run_count` runs of `run_length` contiguous elements,
//    `stride` apart — per-channel along other axes, groups along other axes, 2-D blocks.
// Groups are numbered in the row-major order of scale_shape ("group order").
#pragma once

#include <cstddef>
#include <vector>

#include "lowbit/quant/scheme.h"

namespace lowbit::quant {

struct Box {
  size_t offset = 0, run_length = 0, stride = 0, run_count = 0;
  size_t size() const { return run_length * run_count; }
};

struct GroupLayout {
  std::vector<size_t> scale_shape;
  size_t numel = 0;
  size_t group_count = 0;
  size_t group_capacity =
      0;  // the nominal (largest) group size: stream index = group * capacity + j

  bool contiguous = true;
  size_t rows = 0, row_len = 0, group_len = 0, groups_per_row = 0;

  Box box(size_t group) const;  // box layouts only
  // The group of element i (row-major) in a contiguous layout.
  size_t contiguous_group_of(size_t i) const {
    return (i / row_len) * groups_per_row + (i % row_len) / group_len;
  }

  // Box parameters: the tensor viewed as [outer, len, inner] around an axis, or [batch, R, C].
  enum class BoxKind { ChannelAxis, GroupAxis, Block2D } box_kind = BoxKind::ChannelAxis;
  size_t outer = 0, len = 0, inner = 0, group = 0, groups_along = 0;
  size_t block_rows = 0, block_cols = 0, tiles_r = 0, tiles_c = 0;
};

// Throws lowbit::Error when the scheme does not fit the shape (axis out of range, 2-D blocks on a
// 0-d tensor, ...).
GroupLayout make_group_layout(const Scheme& s, const std::vector<size_t>& shape);

// The group (in scale order) of element (r, c) of a [rows, width] matrix: what methods that
// walk a weight column by column (GPTQ, learned rounding) need for any granularity.
size_t matrix_group_of(const Scheme& s, size_t r, size_t c, size_t rows, size_t width);

}  // namespace lowbit::quant
