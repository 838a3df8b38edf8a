// The `lowbit._lowbit` extension (nanobind): a thin skin over the public headers. Arrays cross
// through nanobind's ndarray (DLPack / the buffer protocol): NumPy, PyTorch and JAX arrays on the
// CPU are read in place when they are C-contiguous, and results come back as NumPy arrays that own
// their memory. lowbit::Error becomes ValueError with lowbit's message. python/lowbit/__init__.py
// adds the ml_dtypes conveniences and the docstrings users read.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/eval/evaluate.h"
#include "lowbit/eval/sweep.h"
#include "lowbit/export/compressed_tensors_export.h"
#include "lowbit/export/gguf_export.h"
#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"
#include "lowbit/kernels/convert.h"
#include "lowbit/model/linear.h"
#include "lowbit/model/model.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/calibration.h"
#include "lowbit/ptq/recipe.h"
#include "lowbit/quant/qtensor.h"
#include "lowbit/quant/scheme.h"
#include "lowbit/util/error.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace lowbit::python {
namespace {

using FloatIn = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using AnyIn = nb::ndarray<nb::c_contig, nb::device::cpu>;

std::vector<size_t> shape_of(const AnyIn& a) {
  std::vector<size_t> s(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) s[i] = a.shape(i);
  return s;
}

// A NumPy array of `shape` that owns `data` (moved into a capsule).
template <class T>
nb::ndarray<nb::numpy, T> owned(std::vector<T>&& data, const std::vector<size_t>& shape) {
  auto* heap = new std::vector<T>(std::move(data));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(heap->data(), shape.size(), shape.data(), owner);
}

RoundOptions round_options(const std::string& rounding, bool saturate, uint64_t seed) {
  return RoundOptions{parse_round_mode(rounding), saturate ? Overflow::Saturate : Overflow::Default,
                      seed};
}

// Calls fn with x's elements as the 16- or 32-bit floats the bulk conversions read in place:
// float32, float16, bfloat16 (DLPack's), or 16-bit integers holding bfloat16 bits when
// `bf16_bits` (ml_dtypes' bfloat16, which NumPy's buffer protocol cannot name).
template <class Fn>
void with_float_source(const AnyIn& x, bool bf16_bits, const char* what, Fn&& fn) {
  const nb::dlpack::dtype t = x.dtype();
  const bool is16 = t.bits == 16 && t.lanes == 1;
  if (bf16_bits && is16 && t.code == uint8_t(nb::dlpack::dtype_code::UInt))
    return fn(static_cast<const BF16*>(x.data()));
  if (t == nb::dtype<float>()) return fn(static_cast<const float*>(x.data()));
  if (is16 && t.code == uint8_t(nb::dlpack::dtype_code::Bfloat))
    return fn(static_cast<const BF16*>(x.data()));
  if (is16 && t.code == uint8_t(nb::dlpack::dtype_code::Float))
    return fn(static_cast<const FP16*>(x.data()));
  throw Error(std::string(what) +
              ": takes float32, float16 or bfloat16 values (convert others with astype)");
}

nb::object encode_array(const AnyIn& x, const std::string& format, const std::string& rounding,
                        bool saturate, uint64_t seed, uint64_t first_index, bool bf16_bits) {
  const Format f = parse_format(format);
  const RoundOptions opt = round_options(rounding, saturate, seed);
  const size_t n = x.size();
  const auto run = [&](auto* codes) {
    with_float_source(x, bf16_bits, "encode", [&](const auto* in) {
      nb::gil_scoped_release unlocked;
      encode(f, in, n, codes, opt, first_index);
    });
  };
  switch (code_bytes(f)) {
    case 1: {
      std::vector<uint8_t> c(n);
      run(c.data());
      return nb::cast(owned(std::move(c), shape_of(x)));
    }
    case 2: {
      std::vector<uint16_t> c(n);
      run(c.data());
      return nb::cast(owned(std::move(c), shape_of(x)));
    }
    default: {
      std::vector<uint32_t> c(n);
      run(c.data());
      return nb::cast(owned(std::move(c), shape_of(x)));
    }
  }
}

nb::ndarray<nb::numpy, float> decode_array(const AnyIn& codes, const std::string& format) {
  const Format f = parse_format(format);
  const nb::dlpack::dtype t = codes.dtype();
  if (t.code != uint8_t(nb::dlpack::dtype_code::UInt) &&
      t.code != uint8_t(nb::dlpack::dtype_code::Int))
    throw Error("decode: takes integer codes (uint8 / uint16 / uint32), not floats");
  const size_t n = codes.size();
  std::vector<float> out(n);
  {
    nb::gil_scoped_release unlocked;
    switch (t.bits) {
      case 8:
        decode(f, static_cast<const uint8_t*>(codes.data()), n, out.data());
        break;
      case 16:
        decode(f, static_cast<const uint16_t*>(codes.data()), n, out.data());
        break;
      case 32:
        decode(f, static_cast<const uint32_t*>(codes.data()), n, out.data());
        break;
      default:
        throw Error("decode: codes of 8, 16 or 32 bits");
    }
  }
  return owned(std::move(out), shape_of(codes));
}

nb::ndarray<nb::numpy, float> fake_quant_array(const AnyIn& x, const std::string& format,
                                               const std::string& rounding, bool saturate,
                                               uint64_t seed, uint64_t first_index,
                                               bool bf16_bits) {
  const Format f = parse_format(format);
  const RoundOptions opt = round_options(rounding, saturate, seed);
  const size_t n = x.size();
  std::vector<float> out(n);
  with_float_source(x, bf16_bits, "fake_quant", [&](const auto* in) {
    nb::gil_scoped_release unlocked;
    fake_quant(f, in, n, out.data(), opt, first_index);
  });
  return owned(std::move(out), shape_of(x));
}

// A QTensor as a dict of NumPy arrays (and back): what Python code stores or inspects.
nb::dict qtensor_dict(QTensor&& q) {
  nb::dict d;
  d["scheme"] = scheme_name(q.scheme);
  d["shape"] = q.shape;
  d["scale_shape"] = q.scale_shape;
  d["global_scale"] = q.global_scale;
  d["bits_per_element"] = q.bits_per_element();
  d["codes"] = owned(std::move(q.codes), {q.codes.size()});
  d["scales"] =
      owned(std::move(q.scales), q.scale_shape.empty() ? std::vector<size_t>{0} : q.scale_shape);
  d["zero_points"] = owned(std::move(q.zero_points), {q.zero_points.size()});
  return d;
}

template <class T>
std::vector<T> vector_from(const nb::handle& h, const char* what) {
  const auto a = nb::cast<nb::ndarray<const T, nb::c_contig, nb::device::cpu>>(h);
  if (!a.data() && a.size()) throw Error(std::string("dequantize: ") + what + " has no data");
  const T* p = a.data();
  return std::vector<T>(p, p + a.size());
}

nb::ndarray<nb::numpy, float> dequantize_dict(const nb::dict& d) {
  QTensor q;
  q.scheme = parse_scheme(nb::cast<std::string>(d["scheme"]));
  q.shape = nb::cast<std::vector<size_t>>(d["shape"]);
  q.scale_shape = nb::cast<std::vector<size_t>>(d["scale_shape"]);
  q.global_scale = nb::cast<float>(d["global_scale"]);
  q.codes = vector_from<uint8_t>(d["codes"], "codes");
  q.scales = vector_from<uint32_t>(d["scales"], "scales");
  q.zero_points = vector_from<uint8_t>(d["zero_points"], "zero_points");
  std::vector<float> out(q.numel());
  dequantize(q, out.data());
  return owned(std::move(out), q.shape);
}

// A loaded model, shared by the Python objects that refer to it.
struct PyModel {
  std::shared_ptr<const model::Model> m;
};

// The calibration data from `calib` (a text file) when a recipe needs it, else null.
std::unique_ptr<ptq::Calibration> calibration_for(bool needed, const model::Model& m,
                                                  const std::string& calib, int seqs, int length) {
  if (!needed) return nullptr;
  if (calib.empty())
    throw Error("the recipe's methods need calibration data: give calib=TEXT_FILE");
  return std::make_unique<ptq::Calibration>(
      ptq::make_calibration(*m.tokenizer, model::read_text_file(calib), calib, seqs, length));
}

// Runs a grid of recipes (JSON texts) on `text` into `out` (results, reports, cache): what
// `lowbit sweep` does. Returns the results as their JSON texts (docs/results.md) and the setup's
// base perplexity.
nb::dict sweep_recipes(const PyModel& pm, const std::string& text_path,
                       const std::vector<std::string>& recipes, const std::string& out, int ctx,
                       int64_t max_tokens, bool layers, const std::string& calib, int calib_seqs,
                       int calib_len, int threads) {
  std::vector<ptq::Recipe> grid;
  for (size_t i = 0; i < recipes.size(); ++i)
    grid.push_back(ptq::parse_recipe_json(recipes[i], "recipe " + std::to_string(i + 1)));
  bool needs_calibration = false;
  for (const ptq::Recipe& r : grid) needs_calibration = needs_calibration || r.needs_calibration();
  const std::unique_ptr<ptq::Calibration> calibration =
      calibration_for(needs_calibration, *pm.m, calib, calib_seqs, calib_len);
  eval::SweepOptions opt;
  opt.n_ctx = ctx;
  opt.max_tokens = max_tokens;
  opt.layer_stats = layers;
  opt.out_dir = out;
  opt.threads = threads;
  opt.calibration = calibration.get();
  const std::string text = model::read_text_file(text_path);
  eval::SweepReport rep;
  {
    nb::gil_scoped_release unlocked;
    model::set_num_threads(threads);
    rep = eval::run_sweep(*pm.m, text_path, text, grid, opt);
  }
  std::vector<std::string> results;
  for (const eval::RecipeResult& r : rep.results) results.push_back(eval::result_json(r));
  nb::dict d;
  d["results"] = results;
  d["base_ppl"] = rep.setup.base_ppl;
  d["base_ppl_stderr"] = rep.setup.base_ppl_stderr;
  d["model"] = rep.setup.model_summary;
  return d;
}

// Runs the recipe on the model (calibrated where it needs it) and `write`s the result, with the
// GIL released: what both exports do before they describe their files.
template <class Write>
auto write_after_recipe(const model::Model& m, const ptq::Recipe& recipe, const std::string& calib,
                        int calib_seqs, int calib_len, Write write) {
  const std::unique_ptr<ptq::Calibration> c =
      calibration_for(recipe.needs_calibration(), m, calib, calib_seqs, calib_len);
  nb::gil_scoped_release unlocked;
  const model::Llama q = ptq::apply_recipe(recipe, *m.llama, nullptr, c.get());
  return write(q);
}

nb::dict export_compressed_tensors(const PyModel& pm, const std::string& recipe_json,
                                   const std::string& out, const std::string& calib, int calib_seqs,
                                   int calib_len, const std::string& keep, bool emulated_f32) {
  const model::Model& m = *pm.m;
  if (!m.llama) throw Error(m.path + ": compressed-tensors export takes a decoder model");
  const ptq::Recipe recipe = ptq::parse_recipe_json(recipe_json, "recipe");
  if (const std::string gap = exports::compressed_tensors_export_gap(recipe); !gap.empty())
    throw Error("cannot export this recipe to compressed-tensors: " + gap);
  exports::CompressedTensorsOptions opt;
  opt.kept_dtype = exports::parse_kept_dtype(keep);
  opt.emulated_f32 = emulated_f32;
  opt.recipe_text = recipe.canonical();
  const exports::CompressedTensorsReport r =
      write_after_recipe(m, recipe, calib, calib_seqs, calib_len, [&](const model::Llama& q) {
        return exports::export_compressed_tensors(q, recipe, m.path, out, opt);
      });
  nb::dict d;
  d["path"] = out;
  d["format"] = r.format;
  d["folder_bytes"] = r.folder_bytes;
  d["bits_per_weight"] = r.weight_bits;
  d["bits_per_linear_weight"] = r.linear_bits;
  nb::list tensors;
  for (const exports::CtExportedTensor& t : r.tensors) {
    nb::dict e;
    e["name"] = t.name;
    e["dtype"] = t.dtype;
    e["shape"] = std::vector<int64_t>(t.shape);
    e["from"] = t.from;
    tensors.append(e);
  }
  d["tensors"] = tensors;
  return d;
}

nb::dict export_model(const PyModel& pm, const std::string& recipe_json, const std::string& out,
                      const std::string& calib, int calib_seqs, int calib_len,
                      const std::string& keep, bool emulated_f32) {
  const model::Model& m = *pm.m;
  if (m.format != "gguf" || !m.llama) throw Error(m.path + ": export takes a GGUF decoder model");
  const ptq::Recipe recipe = ptq::parse_recipe_json(recipe_json, "recipe");
  exports::GgufExportOptions opt;
  opt.kept_type = exports::parse_kept_type(keep);
  opt.emulated_f32 = emulated_f32;
  opt.recipe_text = recipe.canonical();
  const exports::GgufExportReport r = write_after_recipe(
      m, recipe, calib, calib_seqs, calib_len,
      [&](const model::Llama& q) { return exports::export_gguf(q, recipe, m.path, out, opt); });
  nb::dict d;
  d["path"] = out;
  d["file_bytes"] = r.file_bytes;
  d["bits_per_weight"] = r.weight_bits;
  d["bits_per_linear_weight"] = r.linear_bits;
  nb::list tensors;
  for (const exports::ExportedTensor& t : r.tensors) {
    nb::dict e;
    e["name"] = t.name;
    e["type"] = ggml_type_info(uint32_t(t.type))->name;
    e["shape"] = std::vector<int64_t>(t.shape);
    e["from"] = t.from;
    tensors.append(e);
  }
  d["tensors"] = tensors;
  return d;
}

}  // namespace
}  // namespace lowbit::python

NB_MODULE(_lowbit, m) {
  using namespace lowbit;
  using namespace lowbit::python;
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("formats", [] {
    std::vector<std::string> names;
    for (const NamedFormat& f : named_formats()) names.push_back(f.name);
    return names;
  });
  m.def(
      "format_info",
      [](const std::string& name) {
        const Format f = parse_format(name);
        nb::dict d;
        d["name"] = format_name(f);
        d["bits"] = f.bits();
        d["max"] = max_finite(f);
        d["lowest"] = lowest_finite(f);
        d["code_bytes"] = code_bytes(f);
        return d;
      },
      "format"_a);
  m.def("schemes", [] {
    std::vector<std::string> names;
    for (const NamedScheme& s : named_schemes()) names.push_back(s.name);
    return names;
  });
  m.def("encode", &encode_array, "x"_a, "format"_a, "rounding"_a = "nearest-even",
        "saturate"_a = false, "seed"_a = 0, "first_index"_a = 0, "bf16_bits"_a = false);
  m.def("decode", &decode_array, "codes"_a, "format"_a);
  m.def("fake_quant", &fake_quant_array, "x"_a, "format"_a, "rounding"_a = "nearest-even",
        "saturate"_a = false, "seed"_a = 0, "first_index"_a = 0, "bf16_bits"_a = false);
  m.def(
      "quantize",
      [](const FloatIn& x, const std::string& scheme) {
        const Scheme s = parse_scheme(scheme);
        std::vector<size_t> shape(x.ndim());
        for (size_t i = 0; i < x.ndim(); ++i) shape[i] = x.shape(i);
        QTensor q;
        {
          nb::gil_scoped_release unlocked;
          q = quantize(s, x.data(), shape);
        }
        return qtensor_dict(std::move(q));
      },
      "x"_a, "scheme"_a);
  m.def("dequantize", &dequantize_dict, "q"_a);
  m.def(
      "fake_quant_scheme",
      [](const FloatIn& x, const std::string& scheme) {
        const Scheme s = parse_scheme(scheme);
        std::vector<size_t> shape(x.ndim());
        for (size_t i = 0; i < x.ndim(); ++i) shape[i] = x.shape(i);
        std::vector<float> out(x.size());
        {
          nb::gil_scoped_release unlocked;
          fake_quant(s, x.data(), shape, out.data());
        }
        return owned(std::move(out), shape);
      },
      "x"_a, "scheme"_a);
  m.def(
      "scheme_bits",
      [](const std::string& scheme, const std::vector<size_t>& shape) {
        return scheme_bits_per_element(parse_scheme(scheme), shape);
      },
      "scheme"_a, "shape"_a);
  m.def("set_num_threads", &model::set_num_threads, "threads"_a);

  nb::class_<PyModel>(m, "Model")
      .def_prop_ro("path", [](const PyModel& p) { return p.m->path; })
      .def_prop_ro("format", [](const PyModel& p) { return p.m->format; })
      .def_prop_ro("summary", [](const PyModel& p) { return p.m->summary(); })
      .def_prop_ro("content_hash", [](const PyModel& p) { return p.m->content_hash; })
      .def_prop_ro("parameters", [](const PyModel& p) { return p.m->runtime().parameter_count(); })
      .def_prop_ro("sites", [](const PyModel& p) { return ptq::model_sites(p.m->runtime()); })
      .def(
          "tokenize",
          [](const PyModel& p, const std::string& text) { return p.m->tokenizer->encode(text); },
          "text"_a)
      .def("__repr__", [](const PyModel& p) { return "<lowbit.Model " + p.m->path + ">"; });
  m.def(
      "load_model",
      [](const std::string& path) {
        model::Model loaded;
        {
          nb::gil_scoped_release unlocked;
          loaded = model::load_model(path.empty() ? model::default_model_name() : path);
        }
        return PyModel{std::make_shared<const model::Model>(std::move(loaded))};
      },
      "path"_a = "");
  m.def(
      "recipe_canonical",
      [](const std::string& json) { return ptq::parse_recipe_json(json, "recipe").canonical(); },
      "recipe"_a);
  m.def("sweep", &sweep_recipes, "model"_a, "text"_a, "recipes"_a, "out"_a, "ctx"_a = 512,
        "max_tokens"_a = 4096, "layers"_a = false, "calib"_a = "", "calib_seqs"_a = 32,
        "calib_len"_a = 512, "threads"_a = 0);
  m.def("export_gguf", &export_model, "model"_a, "recipe"_a, "out"_a, "calib"_a = "",
        "calib_seqs"_a = 32, "calib_len"_a = 512, "keep"_a = "f32", "emulated_f32"_a = false);
  m.def("export_compressed_tensors", &export_compressed_tensors, "model"_a, "recipe"_a, "out"_a,
        "calib"_a = "", "calib_seqs"_a = 32, "calib_len"_a = 512, "keep"_a = "f32",
        "emulated_f32"_a = false);
  m.def("simd_target", [] { return std::string(active_simd_target()); });
}
