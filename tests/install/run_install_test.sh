#!/usr/bin/env bash
# Installs the current build tree into a fresh temporary prefix, then builds and runs the
# consumer program against it twice, exactly as a user would: with find_package(weft) and
# with `pkg-config weft-runtime`. Also checks the installed files, that every installed header
# compiles, and that nothing installed links MLIR or LLVM. Temporary files are removed.
#
# usage: run_install_test.sh BUILD_DIR CONSUMER_SRC LIBDIR VERSION CMAKE GENERATOR CXX [EXTRA_FLAGS]
#   EXTRA_FLAGS: compile and link flags the consumer needs (sanitizer builds).
set -euo pipefail
build=$1 consumer=$2 libdir=$3 version=$4 cmake=$5 generator=$6 cxx=$7 extra=${8:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
# run LOG CMD...: runs CMD with its output in LOG, shown only when it fails.
run() { local log=$1; shift; "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }; }

echo "== cmake --install $build --prefix <tmp>"
run "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix"
for f in "$libdir/libweft_runtime.a" "$libdir/libweft_ir.a" include/weft/runtime/npy.h \
         include/weft/runtime/safetensors.h include/weft/ir/tensor_data.h include/weft/ir/error.h \
         "$libdir/cmake/weft/weftConfig.cmake" "$libdir/cmake/weft/weftConfigVersion.cmake" \
         "$libdir/cmake/weft/weftTargets.cmake" "$libdir/pkgconfig/weft-runtime.pc"; do
  [ -f "$prefix/$f" ] || fail "not installed: $f"
done
(cd "$prefix" && find . -type f | sort)

echo "== no MLIR/LLVM in what the runtime links"
if grep -Eil 'mlir|llvm' "$prefix/$libdir"/cmake/weft/*.cmake "$prefix/$libdir/pkgconfig/weft-runtime.pc"; then
  fail "the installed package mentions MLIR/LLVM"
fi
if nm -u "$prefix/$libdir/libweft_runtime.a" "$prefix/$libdir/libweft_ir.a" | grep -Ei 'mlir|llvm'; then
  fail "the installed libraries reference MLIR/LLVM symbols"
fi

echo "== every installed header compiles"
for h in "$prefix"/include/weft/runtime/*.h "$prefix"/include/weft/ir/*.h; do
  echo "#include \"${h#"$prefix/include/weft/"}\""
done >"$tmp/all_headers.cpp"
run "$tmp/headers.log" "$cxx" -std=c++17 -fsyntax-only -I"$prefix/include/weft" "$tmp/all_headers.cpp"

expected="npy f32[2,3] sum=1.5 equal=1
safetensors n=2 f32[2,3] sum=1.5 i64[4] sum=100 producer=consumer
png 3x4 sum=1320
truncated npy: weft::Error"
# check_output NAME BINARY: runs BINARY in a fresh work dir and compares its output.
check_output() {
  local work=$tmp/work-$1 out
  mkdir -p "$work"
  out=$("$2" "$work") || fail "$1 consumer exited with $?"
  [ "$out" == "$expected" ] || fail "$1 consumer printed:"$'\n'"$out"$'\n'"expected:"$'\n'"$expected"
  echo "$1 consumer: output as expected"
}

echo "== find_package(weft) consumer"
run "$tmp/configure.log" "$cmake" -S "$consumer" -B "$tmp/cmake-build" -G "$generator" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
found=$(sed -n 's/^weft_DIR:PATH=//p' "$tmp/cmake-build/CMakeCache.txt")
[ "$found" == "$prefix/$libdir/cmake/weft" ] || fail "find_package(weft) found $found, not the fresh prefix"
run "$tmp/build.log" "$cmake" --build "$tmp/cmake-build" -j1
check_output cmake "$tmp/cmake-build/weft_consumer"

echo "== pkg-config weft-runtime consumer"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
[ "$(pkg-config --modversion weft-runtime)" == "$version" ] || fail "pkg-config version is not $version"
flags=$(pkg-config --cflags --libs weft-runtime) || fail "pkg-config --cflags --libs weft-runtime"
echo "flags: ${flags//$prefix/<prefix>}"
# shellcheck disable=SC2086  # the flags are a word list
run "$tmp/pc-build.log" "$cxx" -std=c++17 -O1 $extra "$consumer/main.cpp" -o "$tmp/pc-consumer" $flags
check_output pkg-config "$tmp/pc-consumer"

echo "== installed CLI"
if [ -x "$prefix/bin/weft" ]; then
  run "$tmp/cli.log" "$prefix/bin/weft" list
  grep -q mlp "$tmp/cli.log" || { cat "$tmp/cli.log" >&2; fail "installed 'weft list' does not list mlp"; }
  echo "bin/weft list: runs"
else
  echo "bin/weft not built: skipped"
fi
echo "PASS"
