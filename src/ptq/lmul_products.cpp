// The `lmul` method: the model's products computed by L-Mul (lowbit/model/lmul.h) — every block
// Linear's, and with `attention` also q·k and softmax·v — to measure what the approximation costs
// a real model, alone or under any quantization recipe.
#include <memory>

#include "lowbit/model/lmul.h"
#include "lowbit/util/error.h"
#include "ptq/method_rows.h"

namespace lowbit::ptq {

MethodInfo lmul_method() {
  MethodInfo m;
  m.name = "lmul";
  m.summary =
      "L-Mul: products by adding exponents and mantissas with the paper's offset (Luo & Sun 2024)";
  m.params = {{"mantissa", MethodParam::Kind::Integer, 3, 1, 23, false,
               "mantissa bits both operands are rounded to (3: FP8 E4M3's)"},
              {"attention", MethodParam::Kind::Flag, 0, 0, 0, false,
               "also the attention products (q·k and softmax·v)"},
              {"no_linear", MethodParam::Kind::Flag, 0, 0, 0, false,
               "leave the Linears' products exact (with attention: attention only)"}};
  m.transforms = true;  // the model's arithmetic, not its weights
  m.run = [](MethodRun& r) {
    const model::LMul products{r.integer("mantissa")};
    const bool linears = !r.flag("no_linear"), attention = r.flag("attention");
    if (!linears && !attention)
      throw Error("lmul: no_linear without attention leaves nothing to approximate");
    std::unique_ptr<model::Runtime> out = r.model->clone();
    const model::Sites sites = out->sites();
    if (linears)
      for (const model::LinearSite& site : sites.linears) site.linear->set_products(products);
    if (attention) {
      if (sites.kv.empty() || sites.kv.front().products == nullptr)
        throw Error("lmul: the " + out->architecture() +
                    " runtime's attention has no L-Mul products; drop the attention flag");
      for (const model::KvSite& kv : sites.kv) *kv.products = products;
    }
    r.model = std::move(out);
  };
  return m;
}

}  // namespace lowbit::ptq
