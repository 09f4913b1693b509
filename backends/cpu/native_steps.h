#pragma once
/// Steps the CPU backend runs with small hand-written kernels over its buffers: data
/// movement that neither oneDNN nor the generated kernels take (today: concat).
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

/// A hand-written step: computes node `v` of `g` from operand buffers into `result`.
using NativeStep = void (*)(const ir::Graph& g, ir::ValueId v, const std::vector<const void*>& operands,
                            void* result);

/// The native step for node `v` of `g`, or null when there is none.
NativeStep nativeStepFor(const ir::Graph& g, ir::ValueId v);

}  // namespace weft::cpu
