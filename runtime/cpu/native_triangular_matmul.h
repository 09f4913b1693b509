#pragma once
/// Matmuls with a triangular hint (lhs_zeros, needed: the triangular-matmuls pass) as a
/// native step: causal attention's six products per head. Split into blocks, oneDNN 2.6 ran
/// them slower than whole (its brgemm kernels take no views with gaps); this step's kernel
/// (AVX-512, or AVX2 through 6 x 16 register tiles) computes 12 x 32 result tiles, skips the
/// tiles above the diagonal that are not needed and the products with an lhs's zeros, and so
/// does about 60% of the multiply-adds.
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// True when node `v` of `g` runs as the triangular matmul step on this CPU (AVX-512, or AVX2
/// and FMA: hostTileIsa): an f32 matmul, or a fused matmul whose body is one (its operands
/// possibly read through view ops, its result possibly written transposed, keeping the last
/// dim) followed by at most a multiply-add by constants (oneDNN's eltwise_linear post-op), carrying lhs_zeros or needed,
/// with two or more batch matrices (the threads take whole ones) and B at most 16 MiB.
bool runsTriangularMatmul(const ir::Graph& g, ir::ValueId v);

/// Runs node `call.value` (runsTriangularMatmul): per batch matrix, result tiles of 12 rows
/// and 32 columns over the products the hints leave; a result entry right of the last tile
/// a row needs is written 0. Batch matrices run on the worker threads.
void runTriangularMatmul(const NativeCall& call);

}  // namespace weft::cpu
