#pragma once
/// The fuse-attention pass (registered by registerCpuPasses, executable.h): causal
/// attention's kernels merged into the fused nodes the CPU runs as native steps.
#include "ir/graph.h"

namespace weft::cpu {

/// fuse-attention's backward half: each causal attention gradient of `g` (dy v^T, the
/// softmax's gradient, ds k, ds^T q, p^T dy and the concat of their reshapes) as one fused
/// node of kind "attention_grad" where the native step takes it. True when any merged.
bool mergeAttentionGrads(ir::Graph& g);

}  // namespace weft::cpu
