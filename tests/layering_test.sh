#!/usr/bin/env bash
# The layers the build enforces (src/CMakeLists.txt): each layer compiles against an include root
# that holds only its own and the lower layers' public headers, its own private headers and
# src/util. An include pointing up, or into another layer's private headers, must not compile;
# the same root must compile what the layer may include (so a failure is the layering's doing).
#   layering_test.sh CXX LAYER_ROOTS
set -u
cxx=$1 roots=$2
fails=0
check() {  # expect(ok|fail) layer include
  local expect=$1 layer=$2 header=$3 out
  out=$(printf '#include "%s"\nint main() { return 0; }\n' "$header" |
        "$cxx" -std=c++17 -fsyntax-only -I "$roots/$layer" -x c++ - 2>&1)
  local rc=$?
  if [ "$expect" = ok ] && [ $rc -ne 0 ]; then
    echo "FAIL: the $layer layer cannot include $header:"; echo "$out" | head -5; fails=$((fails + 1))
  elif [ "$expect" = fail ] && { [ $rc -eq 0 ] || ! grep -q "$header: No such file" <<<"$out"; }; then
    echo "FAIL: the $layer layer can include $header (or failed for another reason):"; echo "$out" | head -5
    fails=$((fails + 1))
  else
    [ "$expect" = ok ] && echo "ok: the $layer layer includes $header" || echo "ok: the $layer layer cannot include $header"
  fi
}
check ok format lowbit/format/format.h
check fail format lowbit/eval/perplexity.h    # up: format -> eval
check fail format lowbit/quant/scheme.h       # up: format -> quant
check ok quant lowbit/kernels/convert.h        # down
check fail quant lowbit/model/llama.h          # up
check ok model model/transformer_ops.h         # its own private header
check fail model ptq/input_hessians.h          # another layer's private header
check fail model lowbit/ptq/recipe.h           # up
check ok eval lowbit/ptq/recipe.h              # down
check fail eval ptq/method_rows.h              # another layer's private header
check ok eval util/fnv.h                       # the shared helpers
[ $fails -eq 0 ] && echo "layering: all checks passed" || { echo "layering: $fails checks failed"; exit 1; }
