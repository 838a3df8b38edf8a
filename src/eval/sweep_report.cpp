// Sweep reports: the terminal table, Markdown, and the self-contained HTML page (inline CSS and
// SVG, no scripts, nothing fetched) with the Pareto plots and the per-layer heat map.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "lowbit/eval/sweep.h"

namespace lowbit::eval {
namespace {

double relative_delta_percent(const RecipeResult& r, double base_ppl) {
  return 100.0 * (r.ppl / base_ppl - 1.0);
}

// The columns every report's results table has, for decoders and for encoders: the terminal
// table, Markdown and HTML are all rendered from this one list.
struct Column {
  const char* header;
  int width;
  std::function<std::string(const RecipeResult&, const SweepSetup&)> cell;
};

std::vector<Column> result_columns(const SweepSetup& s) {
  const auto f = [](const char* spec) {
    return [spec](double v) { return fmt::format(fmt::runtime(spec), v); };
  };
  const auto f3 = f("{:.3f}"), f4 = f("{:.4f}"), f5 = f("{:.5f}"), f6 = f("{:.6f}");
  std::vector<Column> c = {
      {"bits/w", 7,
       [=](const RecipeResult& r, const SweepSetup&) { return f3(r.bits_per_weight); }},
      {"lin b/w", 7,
       [=](const RecipeResult& r, const SweepSetup&) { return f3(r.bits_per_linear_weight); }},
      {"MAC FA", 7,
       [](const RecipeResult& r, const SweepSetup&) { return fmt::format("{:.0f}", r.mac_cost); }}};
  if (s.encoder) {
    c.push_back({"cos mean", 9, [=](const RecipeResult& r, const SweepSetup&) {
                   return f6(r.embedding.cosine_mean);
                 }});
    c.push_back({"cos worst", 9, [=](const RecipeResult& r, const SweepSetup&) {
                   return f6(r.embedding.cosine_min);
                 }});
    c.push_back({"rank corr", 9, [=](const RecipeResult& r, const SweepSetup&) {
                   return f6(r.embedding.rank_correlation);
                 }});
    return c;
  }
  c.push_back({"PPL", 9, [=](const RecipeResult& r, const SweepSetup&) { return f4(r.ppl); }});
  c.push_back({"ΔPPL ± stderr", 19, [](const RecipeResult& r, const SweepSetup&) {
                 return fmt::format("{:+.4f} ± {:.4f}", r.delta_ppl, r.delta_ppl_stderr);
               }});
  c.push_back({"ΔPPL %", 8, [](const RecipeResult& r, const SweepSetup& setup) {
                 return fmt::format("{:+.2f}", 100.0 * (r.ppl / setup.base_ppl - 1.0));
               }});
  c.push_back(
      {"KLD mean", 9, [=](const RecipeResult& r, const SweepSetup&) { return f5(r.kld.mean); }});
  c.push_back(
      {"KLD p99", 8, [=](const RecipeResult& r, const SweepSetup&) { return f4(r.kld.p99); }});
  c.push_back({"top-1 %", 7, [](const RecipeResult& r, const SweepSetup&) {
                 return fmt::format("{:.2f}", 100 * r.top1);
               }});
  return c;
}

// The error recipes are ranked and plotted by: mean KL divergence, or 1 - mean cosine.
double headline_error(const RecipeResult& r) {
  return r.encoder ? 1.0 - r.embedding.cosine_mean : r.kld.mean;
}

std::string setup_line(const SweepSetup& s) {
  if (s.encoder)
    return fmt::format(
        "{} on {}: {} sentences ({} tokens, at most {} each), {} pairs, against the full-precision "
        "embeddings",
        s.model, s.text, s.n_windows, s.text_tokens, s.n_ctx, s.n_scored);
  // With a budget only its prefix of the text is tokenized, so the text's own count is unknown.
  return fmt::format(
      "{} on {}: {} windows of {} tokens ({} scored of {}), full-precision PPL {:.4f} ± {:.4f}",
      s.model, s.text, s.n_windows, s.n_ctx, s.n_scored,
      s.max_tokens > 0 ? fmt::format("the first {} tokens", s.text_tokens)
                       : fmt::format("{} in the text", s.text_tokens),
      s.base_ppl, s.base_ppl_stderr);
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Mean output SQNR (dB) of each layer's Linears; exact outputs are capped so one exact Linear
// does not make a layer's mean infinite.
std::vector<double> layer_sqnr(const RecipeResult& r, int n_layers) {
  constexpr double kCap = 120;
  std::vector<double> sum(size_t(n_layers), 0), count(size_t(n_layers), 0);
  for (const LayerRow& l : r.layers) {
    if (l.layer < 0 || l.layer >= n_layers) continue;
    sum[size_t(l.layer)] += std::min(kCap, l.output_sqnr_db);
    count[size_t(l.layer)] += 1;
  }
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = count[i] > 0 ? sum[i] / count[i] : kCap;
  return sum;
}

// A point of a log-scale plot: values at or below `floor` are drawn on it (hollow).
struct Axis {
  double lo, hi;  // data range (log10 for the y axis)
  double px_lo, px_hi;
  double map(double v) const { return px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo); }
};

// What a Pareto plot's x axis shows: bits per weight, or the MAC cost of the hardware model.
struct XValues {
  std::vector<double> values;
  std::string label;  // "bits per weight (model average)"
  std::string unit;   // "bits/weight", for a point's hover text
};

// A tick step of 1, 2 or 5 times a power of ten giving about six ticks over `range`.
double tick_step(double range) {
  const double raw = std::max(range, 1e-9) / 6;
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * decade >= raw) return m * decade;
  return 10 * decade;
}

// One scatter plot: x linear, y = error (log10), the front as a polyline.
// A recipe that gives some sites other weights than the rest (an allocated one).
bool is_mixed(const RecipeResult& r) {
  return std::any_of(r.recipe.overrides.begin(), r.recipe.overrides.end(),
                     [](const ptq::RecipeOverride& o) { return o.weights.has_value(); });
}

std::string pareto_svg(const std::string& id, const std::string& title, const std::string& y_label,
                       const std::vector<const RecipeResult*>& rs,
                       const std::vector<double>& errors, const XValues& xv) {
  constexpr double W = 600, H = 420, left = 70, right = 20, top = 36, bottom = 56;
  double xmin = 1e9, xmax = -1e9, ymin = 1e9, ymax = -1e9;
  for (size_t i = 0; i < rs.size(); ++i) {
    xmin = std::min(xmin, xv.values[i]);
    xmax = std::max(xmax, xv.values[i]);
    if (errors[i] > 0) {
      ymin = std::min(ymin, errors[i]);
      ymax = std::max(ymax, errors[i]);
    }
  }
  if (ymax < ymin) ymin = ymax = 1e-3;  // nothing positive: an empty decade
  const double floor_exp = std::floor(std::log10(ymin)) - (errors.empty() ? 0 : 0.0);
  const double ceil_exp = std::max(floor_exp + 1, std::ceil(std::log10(ymax)));
  const double pad = std::max(0.25, 0.05 * (xmax - xmin));
  const Axis x{xmin - pad, xmax + pad, left, W - right};
  const Axis y{floor_exp, ceil_exp, H - bottom, top};
  const auto y_of = [&](double e) {
    return y.map(std::log10(std::max(e, std::pow(10.0, floor_exp))));
  };

  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" aria-label=\"{}\">\n",
      id, W, H, W, H, html_escape(title));
  svg += fmt::format("<text class=\"title\" x=\"{}\" y=\"20\" text-anchor=\"middle\">{}</text>\n",
                     W / 2, html_escape(title));
  // Grid and ticks: decades on y, whole bits on x.
  for (double e = floor_exp; e <= ceil_exp + 1e-9; e += 1) {
    const double py = y.map(e);
    svg += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/>",
                       left, py, W - right, py);
    svg +=
        fmt::format("<text class=\"tick\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">1e{}</text>\n",
                    left - 6, py + 4, int(e));
  }
  const double step = tick_step(x.hi - x.lo);
  for (double b = std::ceil(x.lo / step) * step; b <= x.hi; b += step) {
    const double px = x.map(b);
    svg += fmt::format("<line class=\"grid\" x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/>", px,
                       top, px, H - bottom);
    svg +=
        fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                    px, H - bottom + 18, fmt::format("{:g}", b));
  }
  svg += fmt::format("<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>", left,
                     H - bottom, W - right, H - bottom);
  svg += fmt::format("<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", left, top,
                     left, H - bottom);
  svg +=
      fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                  (left + W - right) / 2, H - 14, html_escape(xv.label));
  svg += fmt::format(
      "<text class=\"axis-label\" transform=\"translate(18,{}) rotate(-90)\" "
      "text-anchor=\"middle\">{} (log scale)</text>\n",
      (top + H - bottom) / 2, html_escape(y_label));

  std::vector<std::pair<double, double>> pts;
  for (size_t i = 0; i < rs.size(); ++i) pts.emplace_back(xv.values[i], errors[i]);
  // Mixed-precision recipes (per-site weight overrides, as `allocate` writes them) get a front of
  // their own beside the uniform recipes' one, so the two can be compared budget by budget.
  std::vector<size_t> uniform, mixed;
  for (size_t i = 0; i < rs.size(); ++i) (is_mixed(*rs[i]) ? mixed : uniform).push_back(i);
  const auto front_of = [&](const std::vector<size_t>& members) {
    std::vector<std::pair<double, double>> sub;
    for (size_t i : members) sub.push_back(pts[i]);
    std::vector<size_t> f;
    for (size_t k : pareto_front(sub)) f.push_back(members[k]);
    std::sort(f.begin(), f.end(), [&](size_t a, size_t b) { return pts[a].first < pts[b].first; });
    return f;
  };
  const std::vector<size_t> front = front_of(uniform.empty() ? mixed : uniform);
  const std::vector<size_t> mixed_front = uniform.empty() ? std::vector<size_t>{} : front_of(mixed);
  const auto path = [&](const std::vector<size_t>& f, const char* cls) {
    std::string d;
    for (size_t k = 0; k < f.size(); ++k)
      d += fmt::format("{}{:.1f},{:.1f} ", k == 0 ? "M" : "L", x.map(pts[f[k]].first),
                       y_of(pts[f[k]].second));
    return d.empty() ? std::string()
                     : std::string("<path class=\"") + cls + "\" d=\"" + d + "\"/>\n";
  };
  svg += path(front, "front") + path(mixed_front, "front mixed-front");
  // Front labels left to right; one that would overprint the previous label moves down a line.
  std::map<size_t, double> label_y;
  double last_x = -1e9, last_y = -1e9;
  for (const size_t i : front) {
    const double px = x.map(pts[i].first);
    double py = y_of(pts[i].second) - 7;
    if (px - last_x < 150 && std::fabs(py - last_y) < 12) py = last_y + 12;
    label_y[i] = py;
    last_x = px;
    last_y = py;
  }
  for (size_t i = 0; i < rs.size(); ++i) {
    const bool on_front = std::find(front.begin(), front.end(), i) != front.end();
    const bool on_mixed_front =
        std::find(mixed_front.begin(), mixed_front.end(), i) != mixed_front.end();
    const bool at_floor = errors[i] <= std::pow(10.0, floor_exp);
    const double px = x.map(pts[i].first), py = y_of(pts[i].second);
    svg += fmt::format(
        "<circle class=\"point {}{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\"><title>{}: {:.4g} "
        "{}, {} = {:.4g}</title></circle>\n",
        on_front         ? "front-point"
        : on_mixed_front ? "mixed-point"
                         : "dominated",
        at_floor ? " at-floor" : "", px, py, html_escape(rs[i]->recipe.label()), pts[i].first,
        html_escape(xv.unit), html_escape(y_label), errors[i]);
    if (on_front)
      // Labels near the right edge go to the left of their point.
      svg += fmt::format("<text class=\"point-label\" x=\"{:.1f}\" y=\"{:.1f}\"{}>{}</text>\n",
                         px > W - 170 ? px - 7 : px + 7, label_y[i],
                         px > W - 170 ? " text-anchor=\"end\"" : "",
                         html_escape(rs[i]->recipe.label()));
  }
  svg += "</svg>\n";
  return svg;
}

// Heat map: one row per recipe with layer statistics, one column per layer, colour = mean output
// SQNR of the layer's Linears (dark red 0 dB ... yellow 20 ... green 40 dB and above).
std::string heatmap_svg(const std::vector<const RecipeResult*>& rs) {
  int n_layers = 0;
  std::vector<const RecipeResult*> rows;
  for (const RecipeResult* r : rs) {
    if (r->layers.empty()) continue;
    rows.push_back(r);
    for (const LayerRow& l : r->layers) n_layers = std::max(n_layers, l.layer + 1);
  }
  if (rows.empty())
    return "<p>No per-layer statistics in these results (the sweep ran with --no-layers).</p>\n";
  constexpr double cell_w = 16, cell_h = 18, left = 230, top = 40;
  const double W = left + cell_w * n_layers + 90, H = top + cell_h * double(rows.size()) + 40;
  const auto colour = [](double db) {
    const double t = std::clamp(db / 40.0, 0.0, 1.0);  // 0 dB .. 40 dB
    // red (165,0,38) -> yellow (254,224,139) -> green (0,104,55)
    const auto lerp = [](double a, double b, double u) {
      return int(std::lround(a + (b - a) * u));
    };
    if (t < 0.5)
      return fmt::format("rgb({},{},{})", lerp(165, 254, t * 2), lerp(0, 224, t * 2),
                         lerp(38, 139, t * 2));
    return fmt::format("rgb({},{},{})", lerp(254, 0, t * 2 - 1), lerp(224, 104, t * 2 - 1),
                       lerp(139, 55, t * 2 - 1));
  };
  std::string svg = fmt::format(
      "<svg id=\"heatmap\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\">\n",
      W, H, W, H);
  svg += fmt::format(
      "<text class=\"axis-label\" x=\"{}\" y=\"16\" text-anchor=\"middle\">layer (mean output SQNR "
      "of its 7 Linears "
      "against the full-precision model, dB)</text>\n",
      left + cell_w * n_layers / 2);
  for (int l = 0; l < n_layers; l += (n_layers > 16 ? 5 : 1))
    svg +=
        fmt::format("<text class=\"tick\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    left + cell_w * (l + 0.5), top - 6, l);
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y0 = top + cell_h * double(i);
    svg += fmt::format(
        "<text class=\"row-label\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6,
        y0 + 13, html_escape(rows[i]->recipe.label()));
    const std::vector<double> db = layer_sqnr(*rows[i], n_layers);
    for (int l = 0; l < n_layers; ++l)
      svg += fmt::format(
          "<rect class=\"cell\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{}\" height=\"{}\" "
          "fill=\"{}\"><title>{} layer {}: {:.1f} dB</title></rect>",
          left + cell_w * l, y0, cell_w - 1, cell_h - 1, colour(db[size_t(l)]),
          html_escape(rows[i]->recipe.label()), l, db[size_t(l)]);
    svg += "\n";
  }
  // Legend.
  const double lx = left + cell_w * n_layers + 20;
  for (int k = 0; k <= 8; ++k)
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{:.1f}\" width=\"14\" height=\"10\" fill=\"{}\"/><text class=\"tick\" "
        "x=\"{}\" y=\"{:.1f}\">{} dB</text>",
        lx, top + 12.0 * k, colour(40 - 5 * k), lx + 18, top + 12.0 * k + 9, 40 - 5 * k);
  svg += "\n</svg>\n";
  return svg;
}

}  // namespace

std::vector<const RecipeResult*> sorted_by_bits(const SweepReport& report) {
  std::vector<const RecipeResult*> rs;
  for (const RecipeResult& r : report.results) rs.push_back(&r);
  std::stable_sort(rs.begin(), rs.end(), [](const RecipeResult* a, const RecipeResult* b) {
    if (a->bits_per_weight != b->bits_per_weight) return a->bits_per_weight < b->bits_per_weight;
    return headline_error(*a) < headline_error(*b);
  });
  return rs;
}

std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& p) {
  std::vector<size_t> front;
  for (size_t i = 0; i < p.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < p.size() && !dominated; ++j)
      dominated = j != i && p[j].first <= p[i].first && p[j].second <= p[i].second &&
                  (p[j].first < p[i].first || p[j].second < p[i].second);
    if (!dominated) front.push_back(i);
  }
  return front;
}

std::string sweep_table(const SweepReport& report) {
  const SweepSetup& s = report.setup;
  const std::vector<Column> columns = result_columns(s);
  std::string t = setup_line(s) + "\n\n" + fmt::format("{:<30}", "recipe");
  for (const Column& c : columns) t += fmt::format(" {:>{}}", c.header, c.width);
  t += "\n";
  for (const RecipeResult* r : sorted_by_bits(report)) {
    t += fmt::format("{:<30}", r->recipe.label().substr(0, 30));
    for (const Column& c : columns) t += fmt::format(" {:>{}}", c.cell(*r, s), c.width);
    t += "\n";
  }
  return t;
}

std::string sweep_markdown(const SweepReport& report) {
  const SweepSetup& s = report.setup;
  const std::vector<Column> columns = result_columns(s);
  std::string md =
      "# lowbit sweep\n\n" + setup_line(s) + ".\n\nModel: " + s.model_summary +
      ". Bits per weight: element + scale storage averaged over all weight matrices (embedding, "
      "every Linear, output head; kept matrices count 16 bits); \"lin b/w\" over the layers' "
      "Linears only.\n\n";
  md += "| recipe |";
  for (const Column& c : columns) md += std::string(" ") + c.header + " |";
  md += "\n| --- |";
  for (size_t i = 0; i < columns.size(); ++i) md += " ---: |";
  md += "\n";
  for (const RecipeResult* r : sorted_by_bits(report)) {
    md += "| " + r->recipe.label() + " |";
    for (const Column& c : columns) md += " " + c.cell(*r, s) + " |";
    md += "\n";
  }
  md += "\n## Recipes\n\n";
  for (const RecipeResult* r : sorted_by_bits(report))
    md += fmt::format("- **{}** (`{}`): `{}`\n", r->recipe.label(), r->hash, r->recipe.canonical());
  return md;
}

std::string sweep_html(const SweepReport& report) {
  const SweepSetup& s = report.setup;
  const std::vector<const RecipeResult*> rs = sorted_by_bits(report);
  std::vector<double> first, second;  // the two plotted errors
  for (const RecipeResult* r : rs) {
    first.push_back(headline_error(*r));
    second.push_back(s.encoder ? 1.0 - r->embedding.rank_correlation
                               : relative_delta_percent(*r, s.base_ppl));
  }
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lowbit sweep: " +
      html_escape(s.model) +
      "</title>\n<style>\n"
      "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}\n"
      "h1{font-size:22px}h2{font-size:18px;margin-top:28px}\n"
      ".plots{display:flex;flex-wrap:wrap;gap:16px}\n"
      ".plot text{font-family:system-ui,sans-serif}.title{font-size:14px;font-weight:600}\n"
      ".tick{font-size:11px;fill:#555}.axis-label{font-size:12px;fill:#222}.row-label{font-size:"
      "11px}\n"
      ".point-label{font-size:10px;fill:#1f4e9c}\n"
      ".grid{stroke:#e4e4e4}.axis{stroke:#333}\n"
      ".front{fill:none;stroke:#1f4e9c;stroke-width:2}\n"
      ".mixed-front{stroke:#d9730d;stroke-dasharray:6 3}.point.mixed-point{fill:#d9730d}\n"
      ".point.front-point{fill:#1f4e9c}.point.dominated{fill:#aaa}.point.at-floor{fill:#fff;stroke:"
      "#555}\n"
      "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px}"
      "td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}\n"
      "code{font-size:12px}\n</style></head><body>\n";
  h += "<h1>lowbit sweep</h1>\n<p>" + html_escape(setup_line(s)) +
       ".<br>Model: " + html_escape(s.model_summary) +
       ".<br>Calibration-free round-to-nearest unless a recipe says otherwise. Bits per weight: "
       "element + scale storage "
       "averaged over all weight matrices (embedding, every Linear, output head; kept matrices "
       "count 16 bits).</p>\n";
  h += "<h2>Accuracy against storage</h2>\n<p>Blue: the Pareto front (no other recipe has fewer "
       "bits and less error); when the grid has mixed-precision recipes (per-site weight "
       "overrides, as lowbit allocate writes them), blue is the uniform recipes' front and orange "
       "(dashed) the mixed ones'. "
       "Hollow points lie at or below the plot's floor (for ΔPPL: no increase). Hover a point for "
       "its figures.</p>\n";
  XValues bits{{}, "bits per weight (model average)", "bits/weight"};
  XValues cost{{}, "MAC cost (full-adder equivalents, docs/hardware-cost.md)", "FA/MAC"};
  for (const RecipeResult* r : rs) {
    bits.values.push_back(r->bits_per_weight);
    cost.values.push_back(r->mac_cost);
  }
  h += "<div class=\"plots\">\n" +
       (s.encoder
            ? pareto_svg("pareto-kld", "Distance of sentence embeddings from full precision",
                         "1 - mean cosine", rs, first, bits) +
                  pareto_svg("pareto-ppl", "Pairwise similarity order lost", "1 - rank correlation",
                             rs, second, bits)
            : pareto_svg("pareto-kld", "Mean KL divergence from the full-precision model",
                         "mean KL divergence (nats/token)", rs, first, bits) +
                  pareto_svg("pareto-ppl", "Perplexity increase", "ΔPPL (%)", rs, second, bits)) +
       "</div>\n";
  h += "<h2>Accuracy against hardware cost</h2>\n<p>The same recipes against the modelled cost of "
       "one multiply-accumulate of their Linears (multiplier, exponent adder, alignment, "
       "accumulator and scale application in full-adder equivalents, weighted by each Linear's "
       "MACs; docs/hardware-cost.md): where integer and floating-point formats of the same width "
       "part ways in silicon.</p>\n<div class=\"plots\">\n" +
       pareto_svg("pareto-cost", "Error against MAC cost",
                  s.encoder ? "1 - mean cosine" : "mean KL divergence (nats/token)", rs, first,
                  cost) +
       "</div>\n";
  const std::vector<Column> columns = result_columns(s);
  h += "<h2>Results</h2>\n<table><tr><th>recipe</th>";
  for (const Column& c : columns) h += std::string("<th>") + c.header + "</th>";
  h += "</tr>\n";
  for (const RecipeResult* r : rs) {
    h += "<tr><td>" + html_escape(r->recipe.label()) + "</td>";
    for (const Column& c : columns) h += "<td class=num>" + html_escape(c.cell(*r, s)) + "</td>";
    h += "</tr>\n";
  }
  h += "</table>\n<h2>Per-layer error</h2>\n<p>Measured on the first window (" +
       std::to_string(s.layer_tokens) +
       " tokens): each Linear's output against the full-precision model's on the same tokens, so a "
       "layer's figure includes "
       "the error it inherits from the layers before it.</p>\n" +
       heatmap_svg(rs);
  h += "<h2>Recipes</h2>\n<ul>\n";
  for (const RecipeResult* r : rs)
    h += "<li><b>" + html_escape(r->recipe.label()) + "</b> <code>" + html_escape(r->hash) +
         "</code>: <code>" + html_escape(r->recipe.canonical()) + "</code></li>\n";
  h += "</ul>\n<p>Written by <code>lowbit sweep</code>.</p>\n</body></html>\n";
  return h;
}

}  // namespace lowbit::eval
