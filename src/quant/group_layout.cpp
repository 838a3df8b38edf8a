// Group layouts (see group_layout.h).
#include "lowbit/quant/group_layout.h"

#include <string>

#include "lowbit/util/error.h"

namespace lowbit::quant {
namespace {

size_t product(const std::vector<size_t>& v, size_t begin, size_t end) {
  size_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= v[i];
  return p;
}

size_t ceil_div(size_t a, size_t b) {
  return (a + b - 1) / b;
}

std::string shape_text(const std::vector<size_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

size_t normalize_axis(int axis, size_t ndim, const std::vector<size_t>& shape) {
  const long a = axis < 0 ? long(ndim) + axis : axis;
  if (a < 0 || a >= long(ndim))
    throw Error("axis " + std::to_string(axis) + " is out of range for a tensor of shape " +
                shape_text(shape));
  return size_t(a);
}

void set_contiguous(GroupLayout& l, size_t rows, size_t row_len, size_t group_len) {
  l.contiguous = true;
  l.rows = rows;
  l.row_len = row_len;
  l.group_len = group_len == 0 ? 1 : group_len;
  l.groups_per_row = row_len == 0 ? 0 : ceil_div(row_len, l.group_len);
  l.group_count = rows * l.groups_per_row;
  l.group_capacity = l.group_len;
}

}  // namespace

Box GroupLayout::box(size_t k) const {
  Box b;
  switch (box_kind) {
    case BoxKind::ChannelAxis:  // [outer, len, inner]: group k = index k along the axis
      b.offset = k * inner;
      b.run_length = inner;
      b.stride = len * inner;
      b.run_count = outer;
      break;
    case BoxKind::GroupAxis: {  // [outer, len, inner]: group k = (o, g, n)
      const size_t n = k % inner, g = (k / inner) % groups_along, o = k / (inner * groups_along);
      b.offset = o * len * inner + g * group * inner + n;
      b.run_length = 1;
      b.stride = inner;
      b.run_count = std::min(group, len - g * group);
      break;
    }
    case BoxKind::Block2D: {  // [batch, R, C]: group k = (batch, tile row, tile col)
      const size_t j = k % tiles_c, i = (k / tiles_c) % tiles_r, bt = k / (tiles_c * tiles_r);
      const size_t R = len, C = inner;
      b.offset = bt * R * C + i * block_rows * C + j * block_cols;
      b.run_length = std::min(block_cols, C - j * block_cols);
      b.stride = C;
      b.run_count = std::min(block_rows, R - i * block_rows);
      break;
    }
  }
  return b;
}

GroupLayout make_group_layout(const Scheme& s, const std::vector<size_t>& shape_in) {
  const std::vector<size_t> shape = shape_in.empty() ? std::vector<size_t>{1} : shape_in;
  const size_t ndim = shape.size();
  GroupLayout l;
  l.numel = product(shape, 0, ndim);
  const size_t last = shape[ndim - 1];
  switch (s.granularity) {
    case Granularity::Tensor:
      set_contiguous(l, 1, l.numel, l.numel);
      l.scale_shape = {1};
      break;
    case Granularity::Token:
      set_contiguous(l, l.numel / (last ? last : 1), last, last);
      if (last == 0) set_contiguous(l, 0, 0, 1);
      l.scale_shape.assign(shape.begin(), shape.end() - 1);
      if (l.scale_shape.empty()) l.scale_shape = {1};
      break;
    case Granularity::Channel: {
      const size_t a = normalize_axis(s.axis, ndim, shape);
      l.scale_shape = {shape[a]};
      if (a == 0) {
        set_contiguous(l, shape[0], product(shape, 1, ndim), product(shape, 1, ndim));
      } else {
        l.contiguous = false;
        l.box_kind = GroupLayout::BoxKind::ChannelAxis;
        l.outer = product(shape, 0, a);
        l.len = shape[a];
        l.inner = product(shape, a + 1, ndim);
        l.group_count = l.len;
        l.group_capacity = l.outer * l.inner;
      }
      break;
    }
    case Granularity::Group: {
      const size_t a = normalize_axis(s.axis, ndim, shape);
      const size_t g = size_t(s.group);
      l.scale_shape = shape;
      l.scale_shape[a] = ceil_div(shape[a], g);
      if (a == ndim - 1) {
        set_contiguous(l, last ? l.numel / last : 0, last, g);
        l.group_capacity = g;
      } else {
        l.contiguous = false;
        l.box_kind = GroupLayout::BoxKind::GroupAxis;
        l.outer = product(shape, 0, a);
        l.len = shape[a];
        l.inner = product(shape, a + 1, ndim);
        l.group = g;
        l.groups_along = ceil_div(l.len, g);
        l.group_count = l.outer * l.groups_along * l.inner;
        l.group_capacity = g;
      }
      break;
    }
    case Granularity::Block2D: {
      const size_t R = ndim >= 2 ? shape[ndim - 2] : 1, C = last;
      l.contiguous = false;
      l.box_kind = GroupLayout::BoxKind::Block2D;
      l.outer = (R && C) ? l.numel / (R * C) : 0;
      l.len = R;
      l.inner = C;
      l.block_rows = size_t(s.block_rows);
      l.block_cols = size_t(s.block_cols);
      l.tiles_r = ceil_div(R, l.block_rows);
      l.tiles_c = ceil_div(C, l.block_cols);
      l.group_count = l.outer * l.tiles_r * l.tiles_c;
      l.group_capacity = l.block_rows * l.block_cols;
      l.scale_shape.assign(shape.begin(), shape.end() - std::min<size_t>(2, ndim));
      l.scale_shape.push_back(l.tiles_r);
      l.scale_shape.push_back(l.tiles_c);
      break;
    }
  }
  return l;
}

size_t matrix_group_of(const Scheme& s, size_t r, size_t c, size_t rows, size_t width) {
  const int axis = s.axis < 0 ? s.axis + 2 : s.axis;
  switch (s.granularity) {
    case Granularity::Tensor:
      return 0;
    case Granularity::Token:
      return r;
    case Granularity::Channel:
      return axis == 0 ? r : c;
    case Granularity::Group: {
      const size_t g = size_t(s.group);
      return axis == 1 ? r * ((width + g - 1) / g) + c / g : (r / g) * width + c;
    }
    case Granularity::Block2D:
      return (r / size_t(s.block_rows)) *
                 ((width + size_t(s.block_cols) - 1) / size_t(s.block_cols)) +
             c / size_t(s.block_cols);
  }
  (void)rows;
  return 0;
}

}  // namespace lowbit::quant
