#!/usr/bin/env bash
# `cmake --install` of this build into a temporary prefix, then a project outside the tree
# (tests/downstream) that finds it with find_package(lowbit) and links lowbit::lowbit.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix/usr" > "$prefix/install.log"
test -f "$prefix/usr/lib/cmake/lowbit/lowbitConfig.cmake" || { echo "FAIL: no package config"; exit 1; }
cmake -S "$src/tests/downstream" -B "$prefix/build" -DCMAKE_PREFIX_PATH="$prefix/usr" \
  -DCMAKE_BUILD_TYPE=Release > "$prefix/configure.log" || { cat "$prefix/configure.log"; exit 1; }
cmake --build "$prefix/build" -j2 > "$prefix/build.log" || { cat "$prefix/build.log"; exit 1; }
"$prefix/build/use_lowbit"
echo "install: find_package(lowbit) and lowbit::lowbit work from $(ls "$prefix/usr/lib"/*.a | wc -l) installed libraries"
