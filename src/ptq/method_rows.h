// The rows of the method registry, each defined in its method's own file.
#pragma once

#include "lowbit/ptq/methods.h"

namespace lowbit::ptq {

MethodInfo hadamard_method();          // rotate.cpp
MethodInfo smoothquant_method();       // smoothquant.cpp
MethodInfo gptq_method();              // gptq.cpp
MethodInfo search_method();            // format_search.cpp
MethodInfo lmul_method();              // lmul_products.cpp
MethodInfo bias_correction_method();   // bias_correction.cpp
MethodInfo equalization_method();      // equalization.cpp
MethodInfo lorc_method();              // lorc.cpp
MethodInfo kv_reorder_method();        // kv_reorder.cpp
MethodInfo learned_rounding_method();  // learned_rounding.cpp
MethodInfo llm_fp4_method();           // llm_fp4.cpp
MethodInfo bit_switch_method();        // bit_switch_method.cpp
MethodInfo dyadic_method();            // dyadic_method.cpp

// Throws for a method that corrects the quantized weights (biascorrect, lorc) when a method that
// chooses them (MethodInfo::chooses_weights) comes after it in the recipe: the correction would
// be for other weights than the model ends up with.
void require_after_weight_methods(const MethodRun& run);

}  // namespace lowbit::ptq
