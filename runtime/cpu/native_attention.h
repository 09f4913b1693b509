#pragma once
/// Causal attention as one native step: a fused node of kind "attention" (ir/fused_attention.h,
/// made by the fuse-attention pass) computes, per batch matrix and block of 12 rows, the
/// block's scores q k^T up to the diagonal, their masked softmax and its product with v, with
/// the block's scores and probabilities kept in a buffer the size of the cache's lines they
/// fill, instead of the three steps writing and reading back the [T, T] scores and
/// probabilities. The products are the triangular step's tiles (triangular_tiles.h).
#include "runtime/cpu/native_steps.h"

namespace weft::cpu {

/// True when node `v` of `g` is a fused attention node this step takes: its scores and its
/// result are matmuls the triangular step takes (triangularProblemOf) over the same batch,
/// the scores needed on and below the diagonal only (needed="lower"), the result reading the
/// probabilities as computed (no view) with lhs_zeros="upper".
bool runsCausalAttention(const ir::Graph& g, ir::ValueId v);

/// Runs node `call.value` (runsCausalAttention). Batch matrices run on the worker threads; on
/// a CPU without AVX-512, through plain loops.
void runCausalAttention(const NativeCall& call);

/// runCausalAttention through the plain loops a CPU without AVX-512 runs, on any CPU (for tests).
void runCausalAttentionPlainly(const NativeCall& call);

}  // namespace weft::cpu
