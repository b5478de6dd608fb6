#!/bin/sh
# Builds the relaxed-SIMD GEMM micro-benchmark kernels (native/relaxed-simd/gen-wat.mjs) from source into .tmp/relaxed-simd/
# (needs Node and wabt's wat2wasm >= 1.0.32, Debian package `wabt`).
#   sh bench/relaxed-simd/build.sh [MR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../.tmp/relaxed-simd"
mkdir -p "$out"
mr=${1:-6}
node "$here/../../native/relaxed-simd/gen-wat.mjs" "$mr" > "$out/gemm$mr.wat"
wat2wasm --enable-relaxed-simd "$out/gemm$mr.wat" -o "$out/gemm$mr.wasm"
echo "$out/gemm$mr.wasm"
