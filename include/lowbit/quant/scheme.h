// lowbit/quant/scheme.h — quantization schemes: an element format plus how tensors are scaled onto
// it.
//
//   Scheme = element format + granularity + scale format + scale rule
//            [+ a second, per-tensor f32 scale level (NVFP4)] [+ zero point (asymmetric ints)]
//
// The named presets (mxfp4, nvfp4, int4 g128 asym, ...) are ordinary schemes with a name. The
// exact arithmetic of every step is written down in docs/quantization.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"
#include "lowbit/quant/ggml_types.h"

namespace lowbit {

// Which elements share one scale.
enum class Granularity : uint8_t {
  Tensor,   // one scale for the whole tensor
  Channel,  // one scale per index along `axis` (default 0: output channels of a [out, in] weight)
  Token,    // one scale per row: every index of all axes but the last (activations [..., hidden])
  Group,    // runs of `group` consecutive elements along `axis` (default: the last, reduction
            // axis); the last run of each row may be short
  Block2D,  // block_rows x block_cols tiles over the last two axes (ragged at the edges)
};

// How a group's scale is chosen from its values.
enum class ScaleRule : uint8_t {
  AbsMax,      // the group's largest magnitude maps to the element format's largest value
  Mse,         // the clip ratio in [mse_min_ratio, 1] (mse_steps candidates) that minimises the
               // group's squared quantization error; ratio 1 (absmax) is always a candidate
  Percentile,  // the `percentile`-th percentile of the group's magnitudes maps to the largest value
  Fixed,       // every group uses `fixed_scale`
  FourOverSix,  // E2M1 elements (NVFP4, MXFP4): the group's largest magnitude maps to 6 or to 4,
                // whichever gives the group's smaller squared error (Four Over Six, Cook et al.
                // 2025: 4 puts the grid's steps 0.5 ... 4 over the block instead of 1 ... 6);
                // 6 wins ties
  Sweep,  // every scale the scale format can store, up and down from the absmax scale, until a
          // bound proves no further one can do better; the smallest squared error wins, absmax
          // on ties (ScaleSweep, Lin & Wan 2026). Needs a stored scale format (not f32),
          // symmetric elements and nearest rounding. The bounds are in docs/quantization.md.
};

// How a power-of-two scale is picked from a group's largest magnitude `amax`.
enum class Pow2Rounding : uint8_t {
  Floor,    // OCP MX: 2^(floor(log2 amax) - emax(element)); the top element values may clip
  Ceil,     // 2^ceil(log2(amax / max_element)): the smallest power of two that never clips
  Nearest,  // amax / max_element rounded to the nearest power of two (as a cast to E8M0 would)
};

struct Scheme {
  Format element = formats::e4m3fn;
  Granularity granularity = Granularity::Tensor;
  int axis = 0;        // Channel, Group; negative counts from the end (-1: last)
  int group = 0;       // Group: elements per group
  int block_rows = 0;  // Block2D
  int block_cols = 0;
  bool scale_is_f32 = true;                // scales kept as float32 ...
  Format scale_format = formats::e8m0fnu;  // ... or stored in this format
  bool pow2 = false;  // scales constrained to powers of two (implied by E8M0 scales)
  Pow2Rounding pow2_rounding = Pow2Rounding::Floor;
  ScaleRule rule = ScaleRule::AbsMax;
  float percentile = 99.9f;
  float fixed_scale = 1.0f;
  int mse_steps = 64;
  float mse_min_ratio = 0.5f;
  bool global_scale = false;  // second level: per-tensor float32 scale (NVFP4)
  // How the second level applies. false (`:global`): the tensor scale g = amax / (M * max scale)
  // multiplies the stored block scales, as NVFP4 is defined and llama.cpp / ModelOpt store it.
  // true (`:global=div`): the stored tensor scale is its reciprocal, (M * max scale) / amax, and
  // divides them, as compressed-tensors (vLLM's checkpoints) stores and decompresses it. The two
  // differ in the last bit of some effective scales; each is exact for the files that use it.
  bool global_divides = false;
  bool asymmetric = false;  // integer elements with a per-group zero point
  RoundOptions round{RoundMode::NearestEven, Overflow::Saturate, 0};  // for the elements
  std::string preset;  // the preset name this came from, if any (printing only)
  // Set for the ggml_* presets: one of ggml's block types, quantized by ggml's reference rule for
  // it (quantize_ggml) in blocks along the last axis, so results equal llama.cpp's quantizer. The
  // fields above then only describe it (element, block, scale format) for reports.
  std::optional<GgmlType> ggml;
};

bool operator==(const Scheme& a, const Scheme& b);  // ignores `preset`
inline bool operator!=(const Scheme& a, const Scheme& b) {
  return !(a == b);
}

struct NamedScheme {
  std::string name;
  std::string definition;  // the long spelling it stands for
  std::string description;
};

// Every named preset, in the order `lowbit schemes` prints them.
const std::vector<NamedScheme>& named_schemes();

// The GGML type a ggml_* scheme stores a tensor with rows of `cols` elements: its own, or, when the
// rows are not whole blocks of it, the type llama.cpp's quantizer falls back to (Q4_K -> Q5_0,
// Q6_K -> Q8_0; a 32-element type that does not fit -> F16). Throws for non-ggml schemes.
GgmlType ggml_storage_type(const Scheme& s, size_t cols);
// For a ggml_* scheme on rows of `cols`: the lowbit scheme whose grid (levels and scale format) is
// its storage type's, for methods that choose scales themselves (GPTQ): Q8_0 / Q4_0 / Q5_0 ->
// int8 / int4 / int5:g32:scale=fp16, MXFP4 -> mxfp4, NVFP4 -> e2m1fn:g16:scale=e4m3fn. nullopt
// for types whose scales are fitted inside the quantizer (Q4_1, Q5_1, the K-quants) or F16.
std::optional<Scheme> ggml_lowbit_grid(const Scheme& s, size_t cols);
// The ggml_* preset name of a GGML type ("ggml_q4_k"); empty when there is none.
std::string ggml_preset_name(GgmlType t);

// Parses a preset name or the long spelling
//   <element>[:tensor|:channel|:token|:g<G>|:block<R>x<C>][:axis=<a>][:scale=<format>|f32]
//     [:pow2[=floor|ceil|nearest]][:mse|:4over6|:sweep|:percentile=<p>|:fixed=<s>][:global[=div]][:asym]
//     [:round=<mode>][:seed=<n>]
// Throws lowbit::Error with the known presets and the syntax for anything invalid.
Scheme parse_scheme(std::string_view text);

// The preset name, or the canonical long spelling; parse_scheme(scheme_name(s)) == s.
std::string scheme_name(const Scheme& s);

// Throws lowbit::Error when the combination is not usable (e.g. asym with a float element).
void validate_scheme(const Scheme& s);

// The element format's exponent of its largest binade: floor(log2(max_finite)) (OCP "emax").
int element_emax(const Format& element);

// Largest magnitude the element takes (for asymmetric integers: the number of levels - 1).
double element_max(const Scheme& s);

// A scaled value is "clipped" when its magnitude is at least this: half a step beyond the largest
// element value, where rounding would have gone past it had saturation not stopped it.
double clip_threshold(const Scheme& s);

}  // namespace lowbit
