// A small self-contained SVG line / scatter plot (linear or log axes, ticks, legend) for the HTML
// reports: no scripts, nothing fetched.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::util {

struct PlotSeries {
  std::string label, color;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are left out
  bool lines = true, markers = false;
  double opacity = 1.0;
  bool in_legend = true;
};

struct PlotOptions {
  PlotOptions(std::string title_, std::string x_label_, std::string y_label_, bool log_x_ = false,
              bool log_y_ = false, int width_ = 600, int height_ = 360)
      : title(std::move(title_)),
        x_label(std::move(x_label_)),
        y_label(std::move(y_label_)),
        log_x(log_x_),
        log_y(log_y_),
        width(width_),
        height(height_) {}
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  int width = 600, height = 360;
  double y_min = NAN, y_max = NAN;  // a fixed y range (e.g. 0 .. 1 for rates); NaN: the data's
  std::vector<double> x_ticks;      // where to label x (empty: 1-2-5 steps)
};

// Text for HTML / SVG content: &, < and > escaped.
inline std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s)
    o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

namespace svg_detail {
inline std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}
inline std::string label(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}
// Tick values over [lo, hi]: 1-2-5 steps (linear) or 1, 2, 5 × powers of ten (log).
inline std::vector<double> ticks(double lo, double hi, bool log) {
  std::vector<double> t;
  if (log) {
    for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e)
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, e);
        if (v >= lo * 0.999 && v <= hi * 1.001) t.push_back(v);
      }
    if (t.size() >= 2) return t;
    t.clear();  // a range narrower than 1-2-5: linear ticks, placed on the log scale
  }
  const double raw = (hi - lo) / 6, p = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}
}  // namespace svg_detail

inline std::string svg_plot(const PlotOptions& o, const std::vector<PlotSeries>& series) {
  using namespace svg_detail;
  const auto usable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!o.log_x || x > 0) && (!o.log_y || y > 0);
  };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const PlotSeries& s : series)
    for (const auto& [x, y] : s.points)
      if (usable(x, y))
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(o.width) +
                    "' height='" + std::to_string(o.height) +
                    "' font-family='sans-serif' font-size='11'>";
  svg += "<text x='" + std::to_string(o.width / 2) +
         "' y='14' text-anchor='middle' font-size='13'>" + html_escape(o.title) + "</text>";
  if (!(x0 <= x1)) return svg + "<text x='20' y='40'>no data</text></svg>";
  if (x0 == x1) x0 -= o.log_x ? x0 / 2 : 1, x1 += o.log_x ? x1 : 1;
  if (y0 == y1) y0 -= o.log_y ? y0 / 2 : 1, y1 += o.log_y ? y1 : 1;
  // 4 % of margin on every side (in the axis's own scale), so points do not sit on the frame.
  const auto widen = [](double& lo, double& hi, bool log) {
    if (log) {
      const double f = std::pow(hi / lo, 0.04);
      lo /= f, hi *= f;
    } else {
      const double m = 0.04 * (hi - lo);
      lo -= m, hi += m;
    }
  };
  widen(x0, x1, o.log_x);
  widen(y0, y1, o.log_y);
  if (std::isfinite(o.y_min)) y0 = o.y_min;
  if (std::isfinite(o.y_max)) y1 = o.y_max;
  const double L = 58, R = o.width - 150, T = 24, B = o.height - 40;  // plot area; legend right
  const auto tx = [&](double x) { return o.log_x ? std::log10(x) : x; };
  const auto ty = [&](double y) { return o.log_y ? std::log10(y) : y; };
  const auto px = [&](double x) { return L + (tx(x) - tx(x0)) / (tx(x1) - tx(x0)) * (R - L); };
  const auto py = [&](double y) { return B - (ty(y) - ty(y0)) / (ty(y1) - ty(y0)) * (B - T); };
  svg += "<rect x='" + num(L) + "' y='" + num(T) + "' width='" + num(R - L) + "' height='" +
         num(B - T) + "' fill='none' stroke='#888'/>";
  for (double v : o.x_ticks.empty() ? ticks(x0, x1, o.log_x) : o.x_ticks)
    svg += "<line x1='" + num(px(v)) + "' x2='" + num(px(v)) + "' y1='" + num(T) + "' y2='" +
           num(B) + "' stroke='#eee'/><text x='" + num(px(v)) + "' y='" + num(B + 14) +
           "' text-anchor='middle'>" + label(v) + "</text>";
  for (double v : ticks(y0, y1, o.log_y))
    svg += "<line x1='" + num(L) + "' x2='" + num(R) + "' y1='" + num(py(v)) + "' y2='" +
           num(py(v)) + "' stroke='#eee'/><text x='" + num(L - 4) + "' y='" + num(py(v) + 4) +
           "' text-anchor='end'>" + label(v) + "</text>";
  svg += "<text x='" + num((L + R) / 2) + "' y='" + std::to_string(o.height - 8) +
         "' text-anchor='middle'>" + html_escape(o.x_label) + "</text>";
  svg += "<text transform='translate(12," + num((T + B) / 2) +
         ") rotate(-90)' text-anchor='middle'>" + html_escape(o.y_label) + "</text>";
  int legend = 0;
  for (const PlotSeries& s : series) {
    std::string path;
    for (const auto& [x, y] : s.points)
      if (usable(x, y)) path += (path.empty() ? "M" : " L") + num(px(x)) + "," + num(py(y));
    const std::string op = " opacity='" + label(s.opacity) + "'";
    if (s.lines && !path.empty())
      svg += "<path d='" + path + "' fill='none' stroke='" + s.color + "' stroke-width='1.5'" + op +
             "/>";
    if (s.markers)
      for (const auto& [x, y] : s.points)
        if (usable(x, y))
          svg += "<circle cx='" + num(px(x)) + "' cy='" + num(py(y)) + "' r='3' fill='" + s.color +
                 "'" + op + "/>";
    if (s.in_legend && !s.label.empty()) {
      const double ly = T + 8 + 15 * legend++;
      svg += "<rect x='" + num(R + 10) + "' y='" + num(ly - 5) + "' width='12' height='3' fill='" +
             s.color + "'/><text x='" + num(R + 26) + "' y='" + num(ly) + "'>" +
             html_escape(s.label) + "</text>";
    }
  }
  return svg + "</svg>";
}

}  // namespace lowbit::util
