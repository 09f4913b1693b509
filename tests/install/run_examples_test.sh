#!/usr/bin/env bash
# The ahead-of-time examples built exactly as a user would: weft installed into a fresh
# temporary prefix, then examples/aot_train (C++, a --train bundle of mlp) and
# examples/aot_classifier (C, an inference bundle of mlp) configured with find_package(weft)
# against it (their CMake runs the installed `weft compile --aot` through weft_add_bundle).
# aot_train trains one epoch and saves its weights; aot_classifier loads them and must reach
# 80% test accuracy. Also prints the sizes of the bundles, binaries and runtime library.
#
# usage: run_examples_test.sh BUILD_DIR SOURCE_DIR LIBDIR CMAKE GENERATOR CXX [EXTRA_FLAGS]
set -euo pipefail
build=$1 source=$2 libdir=$3 cmake=$4 generator=$5 cxx=$6 extra=${7:-}
data=${WEFT_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-examples-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { local log=$1; shift; "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$*"; }; }

[ -f "$data/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST not found at $data (apt-get install dataset-fashion-mnist)"
echo "== cmake --install $build --prefix <tmp>"
run "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix"
[ -x "$prefix/bin/weft" ] || fail "the CLI was not installed"

# build NAME: configures and builds examples/NAME against the prefix.
build() {
  run "$tmp/$1-configure.log" "$cmake" -S "$source/examples/$1" -B "$tmp/$1" -G "$generator" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_C_FLAGS="$extra" -DCMAKE_CXX_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  run "$tmp/$1-build.log" "$cmake" --build "$tmp/$1" -j1
  grep -i "warning" "$tmp/$1-build.log" && fail "building $1 printed warnings"
  echo "$1: built"
}
build aot_train
build aot_classifier

echo "== aot_train: one epoch"
"$tmp/aot_train/aot_train" "$tmp/trained.safetensors" "$data" 1 | tee "$tmp/train.log" | tail -3
[ -f "$tmp/trained.safetensors" ] || fail "aot_train saved no weights"

echo "== aot_classifier with the bundle's initial weights"
"$tmp/aot_classifier/aot_classifier" "$tmp/aot_classifier/classifier/classifier.safetensors" "$data" 1000 | tail -1

echo "== aot_classifier with the trained weights"
"$tmp/aot_classifier/aot_classifier" "$tmp/trained.safetensors" "$data" | tee "$tmp/classify.log"
accuracy=$(sed -n 's/^accuracy: \([0-9.]*\)%.*/\1/p' "$tmp/classify.log")
[ -n "$accuracy" ] || fail "aot_classifier printed no accuracy"
awk -v a="$accuracy" 'BEGIN { exit !(a >= 80) }' || fail "accuracy $accuracy% is below 80%"

echo "== a truncated weights file is an error, not a crash"
head -c 1000 "$tmp/trained.safetensors" >"$tmp/truncated.safetensors"
if "$tmp/aot_classifier/aot_classifier" "$tmp/truncated.safetensors" "$data" 10 >"$tmp/bad.log" 2>&1; then
  fail "a truncated weights file was accepted"
fi
grep -q "load weights" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "no clear message for a truncated file"; }
echo "refused: $(cat "$tmp/bad.log")"

echo "== sizes (bytes)"
stat -c '%s %n' "$prefix/$libdir/libweft_runtime.a" "$prefix/$libdir/libweft_ir.a" \
    "$tmp/aot_classifier/classifier/classifier.o" "$tmp/aot_classifier/classifier/classifier.safetensors" \
    "$tmp/aot_train/trainer/trainer.o" "$tmp/aot_train/trainer/trainer.safetensors" \
    "$tmp/aot_classifier/aot_classifier" "$tmp/aot_train/aot_train" | sed "s|$tmp|<tmp>|"
echo "== sizes without debug information (bytes)"
for f in "$prefix/$libdir/libweft_runtime.a" "$prefix/$libdir/libweft_ir.a" \
         "$tmp/aot_classifier/aot_classifier" "$tmp/aot_train/aot_train"; do
  strip --strip-debug -o "$tmp/stripped" "$f" && echo "$(stat -c %s "$tmp/stripped") $(basename "$f")"
done
echo "aot_classifier links: $(ldd "$tmp/aot_classifier/aot_classifier" | awk '{print $1}' | tr '\n' ' ')"
echo "PASS"
