#pragma once
/// Causal attention as one native step, and its gradient as another (both made by the
/// fuse-attention pass; ir/fused_attention.h).
///  - A fused node of kind "attention" computes, per batch matrix and block of 12 rows, the
///    block's scores q k^T up to the diagonal, their masked softmax and its product with v,
///    the block's scores and probabilities kept in a buffer of 12 rows instead of the [T, T]
///    scores and probabilities written and read back; a node returning the probabilities
///    writes them and skips the product.
///  - A fused node of kind "attention_grad" computes, per batch matrix, dy v^T and the
///    softmax's gradient in a buffer of T x T floats, then its products with k and q and p^T
///    dy straight into their columns of the concatenated result.
/// The products are the triangular step's tiles (triangular_tiles.h), in AVX-512 or AVX2.
#include "runtime/cpu/native_steps.h"
#include "runtime/cpu/triangular_tiles.h"

namespace weft::cpu {

/// True when node `v` of `g` is a fused attention node this step takes: its scores and its
/// result (if any) are matmuls the triangular step takes (triangularProblemOf) over the same
/// batch, the scores needed on and below the diagonal only (needed="lower"), the result
/// reading the probabilities as computed (no view) with lhs_zeros="upper".
bool runsCausalAttention(const ir::Graph& g, ir::ValueId v);

/// Runs node `call.value` (runsCausalAttention) with this CPU's tiles (hostTileIsa). Batch
/// matrices run on the worker threads.
void runCausalAttention(const NativeCall& call);

/// runCausalAttention with `isa`'s tiles, or the plain loops, on a CPU that runs them (for tests).
void runCausalAttentionWith(const NativeCall& call, TileIsa isa);

/// True when node `v` of `g` is a fused attention gradient node this step takes: the
/// probabilities' gradient dy v^T and the three products are matmuls the triangular step
/// takes over one batch shape, dq = ds k and dk = ds^T q reading the scores' gradient as
/// computed (no view), the probabilities stored row-major, each product's result placed in
/// the concatenation by strides alone, and T at most 2048 (the buffer below).
bool runsCausalAttentionGrad(const ir::Graph& g, ir::ValueId v);

/// Runs node `call.value` (runsCausalAttentionGrad): per batch matrix, dy v^T into a buffer
/// of T x T floats, the scores' gradient in place, then dq, dk and dv from the buffer into
/// their columns of the result, with this CPU's tiles (hostTileIsa). Batch matrices run on
/// the worker threads.
void runCausalAttentionGrad(const NativeCall& call);

/// runCausalAttentionGrad with `isa`'s tiles, or the plain loops, on a CPU that runs them (for tests).
void runCausalAttentionGradWith(const NativeCall& call, TileIsa isa);

}  // namespace weft::cpu
